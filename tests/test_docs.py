"""Docs that cannot drift: README snippets run, README numbers come from generated
files, gallery figures are captured (issue 22)."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()


def _snippets(text: str) -> list[str]:
    return re.findall(r"```python\n(.*?)```", text, flags=re.S)


def _setup() -> dict:
    """The small data the README's snippets are written against."""
    from tests._scverse_data import make_adata

    adata = make_adata(n_cells=400, n_genes=60)
    X = pd.DataFrame(np.asarray(adata.X), columns=adata.var_names)
    y = adata.obs["cell_type"].astype(str).to_numpy()
    Y = pd.DataFrame({"cell_type": y, "batch": adata.obs["batch"].to_numpy()})
    Y.loc[::3, "batch"] = None  # labels missing for a third of the cells
    return {
        "X": X,
        "y": y,
        "Y": Y,
        "adata": adata,
        "base_panel": ["G0", "G2"],
        "mito_ribo": ["G50", "G51"],
    }


def _soma_atlas(adata, folder: Path) -> None:
    """The README's ``atlas_soma/``: the setup cells as a SOMA experiment."""
    soma_io = pytest.importorskip("tiledbsoma.io")
    cells = adata.copy()
    cells.obs["tissue"] = np.where(np.arange(cells.n_obs) % 2, "lung", "blood")
    i = np.arange(cells.n_obs)
    cells.obs["disease"] = np.where(
        i % 3 == 0, "unknown", np.where(i % 4 == 1, "covid", "normal")
    )
    soma_io.from_anndata(str(folder / "atlas_soma"), cells, measurement_name="RNA")


@pytest.mark.parametrize("index", range(len(_snippets(README))))
def test_readme_python_snippets_run_as_written(index, tmp_path, monkeypatch):
    code = _snippets(README)[index]
    namespace = _setup()
    if "atlas_soma/" in code:
        _soma_atlas(namespace["adata"], tmp_path)
        monkeypatch.chdir(tmp_path)
    exec(compile(code, f"README.md snippet {index}", "exec"), namespace)  # noqa: S102


def test_readme_tables_come_from_generated_files():
    """A README table under ``<!-- from: PATH -->`` is copied from PATH."""
    blocks = re.findall(r"<!-- from: (\S+) -->\n((?:\|.*\n)+)", README)
    assert blocks, "the README's generated tables are marked"
    for path, table in blocks:
        source = (ROOT / path).read_text()
        for line in table.strip().splitlines():
            assert line in source, f"{line!r} is not in {path}"


def test_gallery_scraper_saves_figures_built_without_pyplot(tmp_path):
    pytest.importorskip("sphinx_gallery")
    from matplotlib.figure import Figure

    sys.path.insert(0, str(ROOT / "docs"))
    from gallery_scraper import pyplot_free_scraper

    fig = Figure()
    fig.add_subplot().plot([1, 2])
    others = {"a": Figure(), "b": Figure()}
    paths = iter(tmp_path / f"image_{i}.png" for i in range(10))
    block_vars = {"example_globals": {"fig": fig, "figs": others, "x": 3},
                  "image_path_iterator": paths}  # fmt: skip
    rst = pyplot_free_scraper(None, block_vars, {"src_dir": str(tmp_path)})
    saved = sorted(tmp_path.glob("image_*.png"))
    assert len(saved) == 3 and all(p.stat().st_size > 0 for p in saved)
    assert rst.count(".. image-sg::") == 3
    assert pyplot_free_scraper(None, block_vars, {"src_dir": str(tmp_path)}) == ""


def test_demo_output_in_docs_is_the_current_layout_and_quoted_right():
    """The demo output pasted in the docs has today's columns, and the numbers the
    text around it quotes are the ones in the output."""
    from yoto_sklearn.cli._report import metric_rows

    page = (ROOT / "docs" / "cli_and_anndata.md").read_text()
    block = re.search(r"```text\n\$ yoto-sklearn demo\n(.*?)```", page, flags=re.S)
    assert block, "the demo's output is pasted in docs/cli_and_anndata.md"
    output = block.group(1)
    record = {
        "targets": ["t"],
        "task_types": ["classification"],
        "test_metrics": {"t": {"f1_macro": 0.5, "accuracy": 0.5}},
        "baseline_shared": {"t": {"f1_macro": 0.5, "accuracy": 0.5}},
        "baseline": {"t": {"f1_macro": 0.5, "accuracy": 0.5}},
    }
    header = output.splitlines()[1]
    for column in metric_rows(record, with_baseline=True)[0]:
        assert column in header, f"demo column {column!r} missing from the docs"
    reading = page[block.end() : page.index("![Gene scores learned by the demo")]
    quoted = re.findall(r"(?<![+−\-\d.])0\.\d{3}\b", reading)
    assert quoted, "the text after the demo output quotes its numbers"
    for number in quoted:
        assert number in output, f"{number} quoted but not in the demo output"
    start = README.index("pbmc68k tasks and prints its test metrics")
    summary = README[start : README.index("docs/cli_and_anndata.md", start)]
    for number in re.findall(r"0\.\d{3}\b", summary):
        assert number in output, f"README quotes {number}, not in the demo output"
