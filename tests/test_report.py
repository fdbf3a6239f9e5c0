"""The HTML panel report (issue 21): the page's numbers are the run's numbers.

Fast tests parse the page with lxml and compare the embedded JSON and the table
cells with the run's files. The browser tests (``test_report_browser.py``) open
the page in headless Chromium.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from tests._scverse_data import FAST, make_adata
from yoto_sklearn import YOTOSelector
from yoto_sklearn.cli import main
from yoto_sklearn.report import (
    compare_reports,
    read_report,
    render_report,
    report_data,
    write_report,
)

lxml_html = pytest.importorskip("lxml.html")
pytest.importorskip("matplotlib")

FAST_ARGS = ["--max-iter", "4", "--set", "hidden_layer_sizes=(16,)", "--quiet"]


@pytest.fixture(scope="module")
def fitted():
    adata = make_adata(n_cells=150, sparse=True)
    y = adata.obs[["cell_type", "score"]]
    selector = YOTOSelector(k=6, **FAST).fit(adata, y)
    return selector, adata, y


def _doc(path):
    return lxml_html.fromstring(path.read_bytes())


def _table(doc, table_id):
    table = doc.get_element_by_id(table_id)
    head = [th.text_content() for th in table.xpath("./thead/tr/th")]
    rows = [
        [td.text_content() for td in tr.xpath("./td")]
        for tr in table.xpath("./tbody/tr")
    ]
    return head, rows


def test_page_numbers_are_the_embedded_numbers(fitted, tmp_path):
    selector, adata, y = fitted
    path = write_report(selector, adata, y, tmp_path / "r.html", cells="test cells")
    data = read_report(path)
    names = list(adata.var_names[selector.support_])
    assert [r[1] for r in data["panel"]["rows"]] == names  # best first
    assert [r[0] for r in data["panel"]["rows"]] == list(
        selector.ranking_[selector.support_]
    )
    # the panel table shows the JSON's rows, cell by cell (numbers rounded)
    head, rows = _table(_doc(path), "panel-table")
    assert len(head) == len(data["panel"]["columns"])
    assert [r[1] for r in rows] == names
    col = data["panel"]["columns"].index("mean_expression")
    shown = [float(r[col]) for r in rows]
    np.testing.assert_allclose(
        shown, [r[col] for r in data["panel"]["rows"]], atol=5e-4
    )
    # the statistics are the panel columns' statistics on these cells
    X = adata.X.toarray()[:, selector.support_]
    np.testing.assert_allclose(shown, X.mean(axis=0), rtol=1e-3, atol=5e-4)
    frac = data["panel"]["columns"].index("fraction_expressing")
    np.testing.assert_allclose(
        [r[frac] for r in data["panel"]["rows"]], (X > 0).mean(axis=0), rtol=1e-3
    )
    # per-class means of the task with the most classes
    assert data["panel"]["by_class"] == {
        "task": "cell_type",
        "classes": ["B", "NK", "T"],
    }
    t_col = data["panel"]["columns"].index("mean in T")
    in_t = (adata.obs["cell_type"] == "T").to_numpy()
    np.testing.assert_allclose(
        [r[t_col] for r in data["panel"]["rows"]], X[in_t].mean(axis=0), rtol=1e-3
    )


def test_metrics_and_confusion_match_the_model(fitted, tmp_path):
    selector, adata, y = fitted
    data = report_data(selector, adata, y, cells="test cells")
    pred = selector.predict(adata)
    truth = y["cell_type"].astype(str).to_numpy()
    acc = float(np.mean(pred[:, 0].astype(str) == truth))
    assert data["metrics"]["yoto"]["cell_type"]["accuracy"] == pytest.approx(acc)
    cm = np.asarray(data["confusion"]["cell_type"]["counts"])
    assert cm.sum() == len(truth) and np.trace(cm) == round(acc * len(truth))
    assert "score" not in data["confusion"]  # a regression task has none
    assert data["metrics"]["yoto"]["score"]["n"] == int(y["score"].notna().sum())
    # the training curves are the selector's
    np.testing.assert_allclose(
        data["training"]["loss"], selector.loss_curve_, rtol=1e-3
    )
    assert data["provenance"]["params"]["k"] == 6
    assert data["provenance"]["versions"]["yoto-sklearn"]


def test_without_labels_the_page_has_the_panel_only(fitted, tmp_path):
    selector, adata, _ = fitted
    path = write_report(selector, adata, None, tmp_path / "r.html")
    doc = _doc(path)
    ids = {s.get("id") for s in doc.xpath("//section")}
    assert {"panel", "training", "reproduce"} <= ids
    assert not ids & {"metrics", "confusion", "expression"}
    assert len(_table(doc, "panel-table")[1]) == 6


def test_gene_names_cannot_break_the_page(tmp_path):
    adata = make_adata(n_cells=90, n_genes=12)
    adata.var_names = [f"</script><b>g{i}" for i in range(12)]
    y = adata.obs[["cell_type"]]
    selector = YOTOSelector(k=3, **FAST).fit(adata, y)
    path = write_report(selector, adata, y, tmp_path / "r.html")
    doc = _doc(path)
    assert doc.xpath("//b") == []  # no markup injected
    data = read_report(path)
    assert all(r[1].startswith("</script><b>g") for r in data["panel"]["rows"])
    assert [r[1] for r in _table(doc, "panel-table")[1]] == [
        r[1] for r in data["panel"]["rows"]
    ]


def test_cli_fit_report_matches_the_run_files(tmp_path):
    adata = make_adata(n_cells=160, sparse=True)
    path = tmp_path / "cells.h5ad"
    adata.write_h5ad(path)
    out = tmp_path / "run"
    rc = main(
        ["fit", str(path), "--k", "5", "--out", str(out), "-t", "cell_type",
         "-t", "score", "--test-size", "0.25", "--report", *FAST_ARGS]
    )  # fmt: skip
    assert rc == 0
    page = out / "report.html"
    data = read_report(page)
    assert data == read_report(out)  # report.json and the page agree
    panel = pd.read_csv(out / "panel.csv")
    assert [r[1] for r in data["panel"]["rows"]] == list(panel["gene"])
    np.testing.assert_allclose(
        [r[2] for r in data["panel"]["rows"]], panel["score"], rtol=1e-6
    )
    record = json.loads((out / "metrics.json").read_text())
    for task, values in record["test_metrics"].items():
        assert data["metrics"]["yoto"][task] == pytest.approx(values)
    assert data["metrics"]["cells"] == "held-out test cells"
    assert data["summary"]["n_cells"] == record["data"]["n_test"]
    prov = data["provenance"]
    assert prov["command"].startswith("yoto-sklearn fit ")
    assert "--report" in prov["command"] and prov["data"] == str(path)
    assert prov["seed"] == 0 and prov["n_train"] == record["data"]["n_train"]
    # metrics table on the page: one row per task and metric, YOTO's numbers
    head, rows = _table(_doc(page), "metrics-table")
    f1 = next(r for r in rows if r[0] == "cell_type" and r[2] == "f1_macro")
    assert float(f1[3]) == pytest.approx(
        record["test_metrics"]["cell_type"]["f1_macro"], abs=5e-4
    )


def test_cli_report_command_rebuilds_and_compares(tmp_path, capsys):
    adata = make_adata(n_cells=140, sparse=True)
    path = tmp_path / "cells.h5ad"
    adata.write_h5ad(path)
    runs = []
    for seed, k in ((0, 5), (1, 7)):
        out = tmp_path / f"run{seed}"
        argv = ["fit", str(path), "--k", str(k), "--out", str(out),
                "-t", "cell_type", "--seed", str(seed), *FAST_ARGS]  # fmt: skip
        assert main(argv) == 0
        assert not (out / "report.html").exists()  # only with --report
        runs.append(out)
    assert main(["report", str(runs[0]), "-q"]) == 0
    data = read_report(runs[0] / "report.html")
    assert data == read_report(runs[0])
    cmp = tmp_path / "cmp.html"
    assert main(["report", str(runs[0]), str(runs[1]), "--out", str(cmp), "-q"]) == 0
    both = read_report(cmp)
    a = list(pd.read_csv(runs[0] / "panel.csv")["gene"])
    b = list(pd.read_csv(runs[1] / "panel.csv")["gene"])
    assert both["overlap"]["shared"] == [g for g in a if g in b]
    assert both["overlap"]["only_b"] == [g for g in b if g not in a]
    assert both["overlap"]["jaccard"] == pytest.approx(
        len(set(a) & set(b)) / len(set(a) | set(b))
    )
    assert both["names"] == ["run0", "run1"]
    _, rows = _table(_doc(cmp), "compare-table")
    assert len(rows) == len(set(a) | set(b))


@pytest.mark.parametrize(
    "argv, message",
    [
        (["report", "{empty}"], "has no report.json"),
        (["report", "{missing}"], "no such file"),
        (["report", "{empty}", "{empty}", "{empty}"], "one run, or two"),
        (["report", "{empty}", "--names", "a", "b"], "--names names the two runs"),
    ],
)
def test_cli_report_bad_input_is_one_line(tmp_path, capsys, argv, message):
    (tmp_path / "empty").mkdir()
    argv = [a.format(empty=tmp_path / "empty", missing=tmp_path / "nope") for a in argv]
    assert main(argv) == 1
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and message in err, err


def test_read_report_rejects_other_files(tmp_path):
    other = tmp_path / "x.json"
    other.write_text('{"a": 1}')
    with pytest.raises(ValueError, match="not a yoto-sklearn report"):
        read_report(other)
    page = tmp_path / "x.html"
    page.write_text("<html></html>")
    with pytest.raises(ValueError, match="no embedded report data"):
        read_report(page)
    with pytest.raises(ValueError, match="not a yoto-sklearn report"):
        render_report({"schema": "something else"})


def test_compare_needs_two_names(fitted, tmp_path):
    selector, adata, y = fitted
    data = report_data(selector, adata, y)
    with pytest.raises(ValueError, match="two different names"):
        compare_reports(data, data, tmp_path / "c.html", names=["a", "a"])
    path = compare_reports(data, data, tmp_path / "c.html")
    assert read_report(path)["overlap"]["jaccard"] == 1.0


def test_large_panel_many_classes_stays_small(tmp_path):
    """500 genes and 50 classes: about 1.6 MB (measured), every gene listed."""
    rng = np.random.default_rng(0)
    n, p, n_classes = 1500, 700, 50
    labels = rng.integers(0, n_classes, n)
    X = rng.poisson(0.5, (n, p)).astype(np.float32)
    for c in range(n_classes):
        X[labels == c, c] += 3
    y = pd.DataFrame({"type": [f"type_{c:02d}" for c in labels]})
    selector = YOTOSelector(
        k=500, max_iter=2, hidden_layer_sizes=(16,), random_state=0, verbose=0
    ).fit(X, y)
    path = write_report(selector, X, y, tmp_path / "big.html")
    size = path.stat().st_size
    assert size < 2_500_000, size
    data = read_report(path)
    assert len(data["panel"]["rows"]) == 500
    assert len(data["dots"]["type"]["genes"]) == 60  # the dot plot's best genes
    assert data["dots"]["type"]["genes_left_out"] == 440
    assert len(data["panel"]["by_class"]["classes"]) == 50
