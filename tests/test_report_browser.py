"""The HTML report in a real browser: headless Chromium driven by Playwright.

Needs Debian's ``chromium`` (``apt-get install -y chromium``; Playwright's own
browser download is not used) and ``pip install playwright`` (in the ``test``
extra). Without them the tests are skipped with the reason; ``.ci/run`` installs
chromium when it can. Run them alone with ``python -m pytest
tests/test_report_browser.py``.
"""

from __future__ import annotations

import shutil

import pytest

from tests._scverse_data import make_adata
from yoto_sklearn.cli import main
from yoto_sklearn.report import read_report

playwright = pytest.importorskip(
    "playwright.sync_api", reason="playwright is not installed (pip install playwright)"
)
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = pytest.mark.skipif(
    CHROMIUM is None,
    reason="no chromium on PATH: apt-get install -y chromium to run the browser tests",
)


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """A CLI run with every section: held-out metrics, stability, report page."""
    tmp = tmp_path_factory.mktemp("browser")
    path = tmp / "cells.h5ad"
    make_adata(n_cells=200, sparse=True).write_h5ad(path)
    out = tmp / "run"
    argv = ["fit", str(path), "--k", "8", "--out", str(out), "-t", "cell_type",
            "-t", "score", "--test-size", "0.25", "--stability-runs", "2",
            "--report", "--max-iter", "6", "--set", "hidden_layer_sizes=(16,)",
            "--quiet"]  # fmt: skip
    assert main(argv) == 0
    return out


@pytest.fixture(scope="module")
def page(run):
    with playwright.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        errors: list[str] = []
        page.on(
            "console", lambda m: errors.append(m.text) if m.type == "error" else None
        )
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.goto((run / "report.html").resolve().as_uri())
        page.wait_for_load_state("load")
        page.errors = errors
        yield page
        browser.close()


def _column(page, index):
    return page.eval_on_selector_all(
        "#panel-table tbody tr",
        f"rows => rows.filter(r => !r.hidden).map(r => r.cells[{index}].textContent)",
    )


def test_opens_without_console_errors_and_every_picture_renders(page, run):
    assert page.errors == []
    sizes = page.eval_on_selector_all(
        "figure svg",
        "els => els.map(e => { const b = e.getBoundingClientRect(); "
        "return [b.width, b.height]; })",
    )
    data = read_report(run)
    # confusion (cell_type) + dot plot (cell_type) + training + stability
    assert len(sizes) == len(data["confusion"]) + len(data["dots"]) + 2 == 4
    assert all(w > 50 and h > 50 for w, h in sizes), sizes
    ids = page.eval_on_selector_all("section", "els => els.map(e => e.id)")
    assert ids[:6] == ["panel", "metrics", "confusion", "expression", "training",
                       "stability"]  # fmt: skip
    # no request left the file: every resource is inline
    assert (
        page.eval_on_selector_all("link[href], script[src], img[src]", "e => e.length")
        == 0
    )


def test_clicking_a_header_sorts_the_table(page, run):
    data = read_report(run)
    genes = [r[1] for r in data["panel"]["rows"]]
    assert _column(page, 1) == genes  # best first, as written
    header = page.locator("#panel-table thead th", has_text="gene")
    header.click()
    assert _column(page, 1) == sorted(genes, key=str.lower)
    assert header.get_attribute("aria-sort") == "ascending"
    header.click()
    assert _column(page, 1) == sorted(genes, key=str.lower, reverse=True)
    col = data["panel"]["columns"].index("mean_expression")
    page.locator("#panel-table thead th", has_text="mean expression").click()
    shown = [float(v) for v in _column(page, col)]
    assert shown == sorted(shown)
    page.locator("#panel-table thead th", has_text="rank").click()
    assert _column(page, 1) == genes


def test_filtering_hides_rows(page, run):
    data = read_report(run)
    gene = data["panel"]["rows"][0][1]
    box = page.locator("input.filter")
    box.fill(gene)
    visible = _column(page, 1)
    assert gene in visible and all(gene.lower() in g.lower() for g in visible)
    assert page.locator("#panel-count").text_content() == str(len(visible))
    box.fill("no gene has this name")
    assert _column(page, 1) == []
    assert page.locator("#panel-count").text_content() == "0"
    box.fill("")
    assert len(_column(page, 1)) == len(data["panel"]["rows"])
