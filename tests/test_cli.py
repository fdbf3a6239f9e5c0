from __future__ import annotations

import importlib.util
import json
import sys

import numpy as np
import pandas as pd
import pytest

from tests._scverse_data import make_adata, write_10x_folder, write_10x_h5
from yoto_sklearn.cli import main, read_data

FAST_ARGS = ["--max-iter", "4", "--set", "hidden_layer_sizes=(16,)", "--quiet"]


@pytest.fixture
def h5ad(tmp_path):
    adata = make_adata(sparse=True)
    path = tmp_path / "cells.h5ad"
    adata.write_h5ad(path)
    return path


def _fit(data, out, *extra):
    return main(["fit", str(data), "--k", "5", "--out", str(out), *FAST_ARGS, *extra])


def _error_line(capsys) -> str:
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0, err  # a one-line message
    assert err.startswith("yoto-sklearn: error: ")
    return err


def test_fit_predict_round_trip(h5ad, tmp_path, capsys):
    out = tmp_path / "run"
    rc = _fit(h5ad, out, "--target", "cell_type", "--target", "score")
    assert rc == 0
    panel = pd.read_csv(out / "panel.csv")
    assert list(panel.columns) == ["gene", "score", "rank", "required"]
    assert list(panel["rank"]) == [1, 2, 3, 4, 5]
    assert panel["score"].is_monotonic_decreasing
    record = json.loads((out / "metrics.json").read_text())
    assert record["targets"] == ["cell_type", "score"]
    assert record["task_types"] == ["classification", "regression"]
    assert record["panel"] == list(panel["gene"])
    assert set(record["train_metrics"]) == {"cell_type", "score"}
    assert (out / record["model"]).exists()
    for png in (
        "training_curves.png",
        "gene_scores.png",
        "confusion_train_cell_type.png",
    ):
        assert (out / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert len(pd.read_csv(out / "gene_scores.csv")) == 40

    pred_file = tmp_path / "pred.csv"
    assert main(["predict", str(out), str(h5ad), "--out", str(pred_file), "-q"]) == 0
    pred = pd.read_csv(pred_file, index_col="cell")
    assert list(pred.columns) == ["cell_type", "cell_type_probability", "score"]
    assert len(pred) == 120
    assert set(pred["cell_type"]) <= {"T", "B", "NK"}
    assert pred["cell_type_probability"].between(0, 1).all()

    # Only the panel genes are needed: a file with just those predicts the same.
    import anndata

    panel_only = anndata.read_h5ad(h5ad)[:, list(panel["gene"])[::-1]].copy()
    small = tmp_path / "panel_only.h5ad"
    panel_only.write_h5ad(small)
    pred_file2 = tmp_path / "pred2.tsv"
    model_file = out / record["model"]
    assert main(["predict", str(model_file), str(small), "--out", str(pred_file2)]) == 0
    pred2 = pd.read_csv(pred_file2, sep="\t", index_col="cell")
    pd.testing.assert_frame_equal(pred, pred2)


def test_fit_with_test_split_layer_and_raw(h5ad, tmp_path):
    out = tmp_path / "layer"
    rc = _fit(h5ad, out, "-t", "cell_type", "--layer", "counts", "--test-size", "0.25")
    assert rc == 0
    record = json.loads((out / "metrics.json").read_text())
    assert record["data"]["layer"] == "counts"
    assert record["data"]["n_test"] == 30 and record["data"]["n_train"] == 90
    assert record["data"]["stratified_on"] == "cell_type"
    assert set(record["test_metrics"]["cell_type"]) == {"n", "f1_macro", "accuracy"}
    assert (out / "confusion_test_cell_type.png").exists()
    # predict reads the layer recorded at fit time
    pred = tmp_path / "p.csv"
    assert main(["predict", str(out), str(h5ad), "--out", str(pred), "-q"]) == 0
    assert len(pd.read_csv(pred)) == 120

    import anndata

    adata = anndata.read_h5ad(h5ad)
    adata.raw = adata.copy()
    with_raw = tmp_path / "raw.h5ad"
    adata[:, :10].copy().write_h5ad(with_raw)
    out_raw = tmp_path / "raw_run"
    assert _fit(with_raw, out_raw, "-t", "batch", "--use-raw") == 0
    assert len(pd.read_csv(out_raw / "gene_scores.csv")) == 40
    pred = tmp_path / "p_raw.csv"
    assert main(["predict", str(out_raw), str(with_raw), "--out", str(pred), "-q"]) == 0


def test_fit_and_predict_csv(tmp_path):
    adata = make_adata()
    table = pd.DataFrame(adata.X, columns=adata.var_names, index=adata.obs_names)
    table.insert(0, "label", adata.obs["cell_type"].astype(str).to_numpy())
    table.index.name = "cell"
    data = tmp_path / "cells.csv"
    table.to_csv(data)
    out = tmp_path / "csv_run"
    assert _fit(data, out, "--target", "label") == 0
    panel = list(pd.read_csv(out / "panel.csv")["gene"])
    assert all(g.startswith("G") for g in panel)
    # new cells as TSV with only the panel columns, in another order
    new = table[panel[::-1]].iloc[:12]
    new_file = tmp_path / "new.tsv"
    new.to_csv(new_file, sep="\t")
    pred = tmp_path / "pred.csv"
    assert main(["predict", str(out), str(new_file), "--out", str(pred), "-q"]) == 0
    result = pd.read_csv(pred, index_col="cell")
    assert list(result.index) == list(table.index[:12])


def test_fit_categorical_flag_makes_numeric_target_a_classification(h5ad, tmp_path):
    import anndata

    adata = anndata.read_h5ad(h5ad)
    adata.obs["cluster"] = adata.obs["cell_type"].cat.codes.astype(int)
    path = tmp_path / "clusters.h5ad"
    adata.write_h5ad(path)
    out = tmp_path / "clusters"
    assert (
        _fit(path, out, "-t", "cluster", "-t", "score", "--categorical", "cluster") == 0
    )
    record = json.loads((out / "metrics.json").read_text())
    assert record["task_types"] == ["classification", "regression"]


@pytest.mark.parametrize("v3", [True, False], ids=["cellranger_v3", "cellranger_v2"])
def test_fit_10x_folder_with_obs_file(tmp_path, v3):
    pytest.importorskip("scanpy")
    adata = make_adata()
    folder = tmp_path / "filtered_feature_bc_matrix"
    write_10x_folder(adata, folder, v3=v3)
    labels = tmp_path / "labels.csv"
    adata.obs[["cell_type"]].to_csv(labels)
    out = tmp_path / "tenx"
    assert _fit(folder, out, "-t", "cell_type", "--obs", str(labels)) == 0
    assert len(pd.read_csv(out / "panel.csv")) == 5
    read = read_data(folder)
    assert list(read.var_names) == list(adata.var_names)
    np.testing.assert_array_equal(read.X.toarray(), adata.layers["counts"])


def test_fit_and_predict_10x_h5(tmp_path):
    pytest.importorskip("scanpy")
    adata = make_adata()
    path = tmp_path / "filtered_feature_bc_matrix.h5"
    write_10x_h5(adata, path)
    read = read_data(path)
    assert list(read.obs_names) == list(adata.obs_names)
    np.testing.assert_array_equal(read.X.toarray(), adata.layers["counts"])
    labels = tmp_path / "labels.tsv"
    adata.obs[["cell_type", "flag"]].to_csv(labels, sep="\t")
    out = tmp_path / "h5run"
    assert _fit(path, out, "-t", "cell_type", "-t", "flag", "--obs", str(labels)) == 0
    pred = tmp_path / "p.csv"
    assert main(["predict", str(out), str(path), "--out", str(pred), "-q"]) == 0
    assert list(pd.read_csv(pred, index_col="cell").index) == list(adata.obs_names)


def test_10x_formats_without_scanpy_say_what_is_needed(tmp_path, capsys, monkeypatch):
    adata = make_adata()
    write_10x_h5(adata, tmp_path / "x.h5")
    monkeypatch.setitem(sys.modules, "scanpy", None)
    rc = _fit(tmp_path / "x.h5", tmp_path / "out", "-t", "cell_type")
    assert rc == 1
    assert "reading a 10x .h5 file needs scanpy" in _error_line(capsys)


def test_predict_missing_panel_gene_names_it(h5ad, tmp_path, capsys):
    import anndata

    out = tmp_path / "run"
    assert _fit(h5ad, out, "-t", "cell_type") == 0
    gene = pd.read_csv(out / "panel.csv")["gene"][2]
    adata = anndata.read_h5ad(h5ad)
    broken = tmp_path / "broken.h5ad"
    adata[:, adata.var_names != gene].copy().write_h5ad(broken)
    capsys.readouterr()
    rc = main(["predict", str(out), str(broken), "--out", str(tmp_path / "p.csv")])
    assert rc == 1
    assert f"panel gene '{gene}' is missing from" in _error_line(capsys)


@pytest.mark.parametrize(
    ("argv", "match"),
    [
        (["fit", "{tmp}/nope.h5ad", "-t", "x", "--k", "3"], "no such file or folder"),
        (["fit", "{data}", "-t", "nope", "--k", "3"], "unknown obs column 'nope'"),
        (["fit", "{data}", "-t", "cell_type", "--k", "41"], "--k 41 is larger than"),
        (
            ["fit", "{data}", "-t", "cell_type", "--k", "3", "--layer", "zz"],
            "layer 'zz'",
        ),
        (["fit", "{data}", "-t", "cell_type", "--k", "3", "--use-raw"], "no .raw"),
        (["fit", "{tmp}/x.parquet", "-t", "a", "--k", "3"], "no such file"),
        (["fit", "{bad}", "-t", "a", "--k", "3"], "unsupported data file 'x.loom'"),
        (
            ["fit", "{data}", "-t", "cell_type", "--k", "3", "--set", "oops"],
            "NAME=VALUE",
        ),
        (
            ["fit", "{data}", "-t", "score", "--k", "3", "--categorical", "batch"],
            "--categorical 'batch' is not one of the --target columns",
        ),
        (
            ["fit", "{data}", "-t", "cell_type", "--k", "3", "--set", "bogus=1"],
            "bogus",
        ),
        (["predict", "{tmp}/none", "{data}", "--out", "{tmp}/p.csv"], "no such model"),
        (["predict", "{tmp}", "{data}", "--out", "{tmp}/p.csv"], "holds no model"),
        (["predict", "{tmp}", "{data}", "--out", "{tmp}/p.xlsx"], "--out must end"),
        (
            ["fit", "{data}", "-t", "cell_type", "--k", "3", "--out", "{bad}"],
            "is not a folder",
        ),
    ],
)
def test_bad_input_exits_with_one_line(h5ad, tmp_path, capsys, argv, match):
    bad = tmp_path / "x.loom"
    bad.write_text("not data")
    argv = [a.format(tmp=tmp_path, data=h5ad, bad=bad) for a in argv]
    if argv[0] == "fit" and "--out" not in argv:
        argv += ["--out", str(tmp_path / "out")]
    argv.append("-q")
    assert main(argv) == 1
    assert match in _error_line(capsys)


def test_usage_errors_exit_2(capsys):
    with pytest.raises(SystemExit) as info:
        main(["fit", "data.h5ad", "--k", "0", "-t", "a", "--out", "o"])
    assert info.value.code == 2
    assert "expected an integer >= 1" in capsys.readouterr().err
    with pytest.raises(SystemExit) as info:
        main([])
    assert info.value.code == 2


def test_help_explains_options(capsys):
    for command, options in [
        ("fit", ["--target", "--k", "--layer", "--use-raw", "--out", "--quiet"]),
        ("predict", ["MODEL", "DATA", "--out", "--layer", "--use-raw", "--quiet"]),
        ("demo", ["--out", "--k", "--seed", "--device", "--quiet"]),
    ]:
        with pytest.raises(SystemExit) as info:
            main([command, "--help"])
        assert info.value.code == 0
        text = capsys.readouterr().out
        for option in options:
            assert option in text


def test_python_dash_m_entry_point(monkeypatch, capsys):
    # what `python -m yoto_sklearn --help` runs, in this process (no torch re-import)
    import runpy

    monkeypatch.setattr(sys, "argv", ["yoto_sklearn", "--help"])
    with pytest.raises(SystemExit) as info:
        runpy.run_module("yoto_sklearn", run_name="__main__", alter_sys=True)
    assert info.value.code == 0
    out = capsys.readouterr().out
    assert "demo" in out and "predict" in out


@pytest.mark.skipif(
    importlib.util.find_spec("scanpy") is None, reason="the demo data ships with scanpy"
)
def test_demo_smoke(tmp_path, capsys):
    out = tmp_path / "demo"
    rc = main(
        ["demo", "--out", str(out), "--k", "10", "--max-iter", "2", "--seed", "1"]
        + ["--set", "hidden_layer_sizes=(16,)"]
    )
    assert rc == 0
    text = capsys.readouterr().out
    assert "SelectKBest" in text and "bulk_labels" in text and "G2M_score" in text
    record = json.loads((out / "metrics.json").read_text())
    assert record["data"]["n_cells"] == 700 and record["data"]["n_genes"] == 765
    assert set(record["baseline"]) == {"bulk_labels", "phase", "S_score", "G2M_score"}
    assert len(pd.read_csv(out / "panel.csv")) == 10
    assert np.isfinite(record["test_metrics"]["bulk_labels"]["f1_macro"])
    assert (out / "confusion_test_phase.png").exists()


def test_fit_without_matplotlib_says_so(h5ad, tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    out = tmp_path / "noplot"
    rc = main(
        ["fit", str(h5ad), "-t", "cell_type", "--k", "3", "--out", str(out)]
        + ["--max-iter", "2", "--set", "hidden_layer_sizes=(8,)"]
    )
    assert rc == 0
    assert (
        'plots skipped: matplotlib is not installed (pip install "yoto-sklearn[plot]")'
        in (capsys.readouterr().err)
    )
    assert (out / "panel.csv").exists() and not list(out.glob("*.png"))


def test_predict_with_a_model_fitted_without_gene_names(h5ad, tmp_path, capsys):
    import anndata

    import yoto_sklearn
    from yoto_sklearn.cli._outputs import save_model as _save_model

    adata = anndata.read_h5ad(h5ad)
    sel = yoto_sklearn.YOTOSelector(
        k=4, max_iter=3, hidden_layer_sizes=(8,), random_state=0
    ).fit(adata.X, adata.obs["cell_type"].astype(str).to_numpy())
    folder = tmp_path / "plain"
    folder.mkdir()
    _save_model(sel, folder)
    pred = tmp_path / "p.csv"
    assert main(["predict", str(folder), str(h5ad), "--out", str(pred), "-q"]) == 0
    result = pd.read_csv(pred, index_col="cell")
    np.testing.assert_array_equal(result.iloc[:, 0].to_numpy(), sel.predict(adata.X))
    adata[:, :30].copy().write_h5ad(tmp_path / "fewer.h5ad")
    rc = main(
        ["predict", str(folder), str(tmp_path / "fewer.h5ad"), "--out", str(pred)]
    )
    assert rc == 1
    assert "must have its 40 genes in the fitted order; it has 30" in _error_line(
        capsys
    )


class _Refuses:
    def save(self, path):
        raise ValueError("labels cannot be stored")


class _NoSave:
    pass


def test_save_model_falls_back_to_joblib(tmp_path, capsys):
    import joblib

    from yoto_sklearn.cli._outputs import save_model as _save_model

    path = _save_model(_Refuses(), tmp_path)
    assert path.name == "model.joblib"
    assert isinstance(joblib.load(path), _Refuses)
    assert (
        "save refused this model (labels cannot be stored)" in capsys.readouterr().err
    )
    (tmp_path / "b").mkdir()
    assert _save_model(_NoSave(), tmp_path / "b").name == "model.joblib"


def test_import_and_help_do_not_load_heavy_libraries():
    """`import yoto_sklearn` and `yoto-sklearn --help` stay instant (issue 13)."""
    import subprocess

    code = (
        "import sys, contextlib, io, yoto_sklearn\n"
        "from yoto_sklearn.cli import main\n"
        "with contextlib.redirect_stdout(io.StringIO()):\n"
        "    try:\n"
        "        main(['--help'])\n"
        "    except SystemExit:\n"
        "        pass\n"
        "print(sorted(m for m in ('torch', 'anndata', 'matplotlib', 'pandas')"
        " if m in sys.modules))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert out.strip() == "[]"


def test_fit_extends_an_existing_panel_with_design_options(h5ad, tmp_path):
    """The worked example of docs/panel_design.md, on small generated data."""
    base = tmp_path / "base"
    assert _fit(h5ad, base, "-t", "cell_type") == 0  # a 5-gene "existing" panel
    base_genes = list(pd.read_csv(base / "panel.csv")["gene"])
    out = tmp_path / "extended"
    rc = main(
        ["fit", str(h5ad), "-t", "cell_type", "--k", "8", "--out", str(out)]
        + ["--required-genes", str(base / "panel.csv")]
        + ["--excluded-genes", "G39,G38", "--exclude-pattern", "^G3[0-4]$"]
        + ["--max-mean-expression", "2.5", "--binarize", "--stability-runs", "2"]
        + FAST_ARGS
    )
    assert rc == 0
    table = pd.read_csv(out / "panel.csv")
    panel = list(table["gene"])
    assert panel[:5] == base_genes and len(panel) == 8
    assert list(table["required"]) == [True] * 5 + [False] * 3
    every = pd.read_csv(out / "gene_scores.csv", index_col="gene")
    assert every.loc[["G38", "G39", "G30"], "excluded"].all()
    assert not {"G38", "G39", "G30", "G31", "G32", "G33", "G34"} & set(panel)
    record = json.loads((out / "metrics.json").read_text())
    assert record["params"]["binarize"] is True
    assert record["params"]["expression_window"] == [None, 2.5]
    assert (
        record["stability"]["n_runs"] == 2
        and len(record["stability"]["consensus"]) == 8
    )
    stability = pd.read_csv(out / "stability.csv", index_col="gene")
    assert stability["frequency"].sum() == pytest.approx(8.0)
    assert (stability.loc[base_genes, "frequency"] == 1.0).all()
    assert (out / "selection_frequency.png").exists()
    assert "selection_frequency.png" in record["plots"]


def test_design_options_errors_are_one_line(h5ad, tmp_path, capsys):
    out = ["--k", "3", "--out", str(tmp_path / "o"), "-q"]
    assert (
        main(["fit", str(h5ad), "-t", "cell_type", "--required-genes", "CD3E"] + out)
        == 1
    )
    assert "--required-genes: gene 'CD3E' is not in the data" in _error_line(capsys)
    assert (
        main(["fit", str(h5ad), "-t", "cell_type", "--exclude-pattern", "("] + out) == 1
    )
    assert "--exclude-pattern '('" in _error_line(capsys)
