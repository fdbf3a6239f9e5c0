"""evaluate_panel / yoto-sklearn evaluate: any gene list scored on held-out cells."""

from __future__ import annotations

import sys

import numpy as np
import pandas as pd
import pytest

from tests._scverse_data import make_adata
from yoto_sklearn.cli import main
from yoto_sklearn.evaluation import HEADS, REFIT, SPAPROS, evaluate_panel

MARKERS = ["G0", "G1", "G2", "G3", "G4", "G5"]  # cell_type markers (make_adata)
NOISE = ["G20", "G21", "G22", "G23", "G24", "G25"]
HEADS_PARAMS = dict(max_iter=40, hidden_layer_sizes=(16,), n_threads=1)


@pytest.fixture(scope="module")
def adata():
    return make_adata(n_cells=300, n_genes=40)


def test_panels_side_by_side_without_spapros(adata, monkeypatch):
    monkeypatch.setitem(sys.modules, "spapros", None)  # as if not installed
    data = adata.copy()
    panels = {"markers": MARKERS, "noise": NOISE}
    with pytest.warns(UserWarning, match="spapros is not installed"):
        table = evaluate_panel(data, panels, ["cell_type", "score"], **HEADS_PARAMS)
    assert list(table.columns) == ["markers", "noise"]
    models = set(table.index.get_level_values("model"))
    assert models == {HEADS, REFIT, "panel"}
    for model in (HEADS, REFIT):
        f1 = table.loc[(model, "cell_type", "f1_macro")]
        assert f1["markers"] > 0.8 and f1["markers"] > f1["noise"] + 0.3
        assert (model, "score", "r2") in table.index
    assert table.loc[("panel", "-", "n_genes")].tolist() == [6, 6]
    stored = data.uns["yoto_evaluation"]
    assert stored["panels"]["markers"] == MARKERS and stored["n_test"] == 75
    assert "yoto_evaluation" not in adata.uns  # only the AnnData passed is written


def test_spapros_metric_families(adata):
    pytest.importorskip("spapros")
    table = evaluate_panel(
        adata.copy(),
        {"markers": MARKERS, "noise": NOISE},
        "cell_type",
        test_size=0.5,
        forest_min_cells=10,
        key_added=None,
        **HEADS_PARAMS,
    )
    spapros = table.loc[SPAPROS]
    forest = spapros.loc[("cell_type", "forest_clfs accuracy")]
    assert forest["markers"] > 0.9 and forest["noise"] < 0.7
    knn = spapros.loc[("(all genes)", "knn_overlap mean_overlap_AUC")]
    assert knn["markers"] > knn["noise"]
    for metric in ("cluster_similarity nmi_5_20", "gene_corr 1 - mean"):
        assert np.isfinite(spapros.loc[("(all genes)", metric)]).all()


@pytest.mark.parametrize(
    ("panels", "error", "match"),
    [
        ({"p": ["G0", "nope"]}, ValueError, r"panel 'p': 1 gene\(s\) not in the data"),
        ({"p": ["G0", "G1", "G0"]}, ValueError, r"lists \['G0'\] more than once"),
        ({"p": []}, ValueError, "panel 'p' is empty"),
        ({"p": [f"G{i}" for i in range(40)] * 2}, ValueError, "only 40"),
        ({"p": "G0"}, TypeError, "must be a list of gene names"),
        ({}, ValueError, "panels is empty"),
    ],
)
def test_bad_panels_give_one_clear_error(adata, panels, error, match):
    with pytest.raises(error, match=match):
        evaluate_panel(adata, panels, "cell_type", spapros=False)


def test_heads_cannot_be_resized_and_spapros_can_be_required(adata, monkeypatch):
    with pytest.raises(ValueError, match=r"\['k'\] cannot be set"):
        evaluate_panel(adata, MARKERS, "cell_type", spapros=False, k=3)
    monkeypatch.setitem(sys.modules, "spapros", None)
    with pytest.raises(ImportError, match="pip install spapros"):
        evaluate_panel(adata, MARKERS, "cell_type", spapros=True)


def test_cli_evaluate_scores_files_and_lists(adata, tmp_path, capsys):
    path = tmp_path / "cells.h5ad"
    adata.write_h5ad(path)
    vendor = tmp_path / "vendor.txt"
    vendor.write_text("\n".join(MARKERS) + "\n")
    out = tmp_path / "table.csv"
    status = main(
        ["evaluate", str(vendor), "noise=" + ",".join(NOISE), str(path), "-t",
         "cell_type", "--no-spapros", "--max-iter", "40", "--out", str(out)]
    )  # fmt: skip
    assert status == 0
    table = pd.read_csv(out, index_col=[0, 1, 2])
    assert list(table.columns) == ["vendor", "noise"]
    f1 = table.loc[(REFIT, "cell_type", "f1_macro")]
    assert f1["vendor"] > f1["noise"]
    assert "vendor" in capsys.readouterr().out
    status = main(["evaluate", "G0,nope", str(path), "-t", "cell_type", "--no-spapros"])
    assert status == 1
    assert "not in the data" in capsys.readouterr().err
