"""Silent wrong answers and unhelpful errors, round 3 (issue 20).

Each test failed before its fix (the plausible but wrong answer, or the message a
user could not act on). docs/reliability.md lists them ("round 3").
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from tests._scverse_data import make_adata
from yoto_sklearn import YOTOSelector
from yoto_sklearn.anndata import select_genes
from yoto_sklearn.cli import main
from yoto_sklearn.stability import panel_stability

from .conftest import FAST, make_data

FIT = dict(FAST, n_threads=1, device="cpu")
CLI_FAST = ["--max-iter", "4", "--set", "hidden_layer_sizes=(16,)", "--quiet"]


def _error_line(capsys) -> str:
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0, err
    assert err.startswith("yoto-sklearn: error: ")
    return err


# ------------------------------------------------- 1. gene lists without header
@pytest.mark.parametrize("suffix, sep", [(".csv", ","), (".tsv", "\t"), (".txt", "")])
def test_gene_list_files_without_header_keep_their_first_gene(tmp_path, suffix, sep):
    adata = make_adata(sparse=True)
    data = tmp_path / "cells.h5ad"
    adata.write_h5ad(data)
    excluded = tmp_path / f"excluded{suffix}"
    excluded.write_text("G0\nG1\nG2\n")
    required = tmp_path / f"required{suffix}"
    required.write_text("G30\nG31\n")
    out = tmp_path / "run"
    rc = main(["fit", str(data), "-t", "cell_type", "--k", "5", "--out", str(out),
               "--excluded-genes", str(excluded), "--required-genes", str(required),
               *CLI_FAST])  # fmt: skip
    assert rc == 0
    panel = pd.read_csv(out / "panel.csv")
    assert "G0" not in set(panel["gene"])  # the first line is a gene, not a header
    assert {"G30", "G31"} <= set(panel["gene"])
    with_header = tmp_path / f"with_header{suffix}"
    with_header.write_text(f"gene{sep}score\nG0{sep}1\n" if sep else "gene\nG0\n")
    from yoto_sklearn.cli._design import read_gene_list

    assert read_gene_list(str(with_header), "--x") == ["G0"]


# ------------------------------------------- 2. the window means X as given
def test_expression_window_is_computed_on_all_cells_of_X():
    rng = np.random.default_rng(0)
    X, y = make_data(n=200, n_features=20)
    X = np.abs(X)
    # gene 5: mean 1.0 over all cells, but 3.0 over the 10 % a split may hold out
    X[:, 5] = 0.0
    X[:20, 5] = 10.0
    rng.shuffle(X[:, 5])
    mean5 = X[:, 5].mean()
    window = (None, mean5 + 0.01)  # inside over X: gene 5 may be selected
    for seed in range(4):
        params = dict(FIT, early_stopping=True, random_state=seed, k=3)
        sel = YOTOSelector(**params, expression_window=window).fit(X, y)
        assert 5 not in set(sel.excluded_)
    window = (None, mean5 - 0.01)  # outside over X: gene 5 never selected
    for seed in range(4):
        params = dict(FIT, early_stopping=True, random_state=seed, k=3)
        sel = YOTOSelector(**params, expression_window=window).fit(X, y)
        assert 5 in set(sel.excluded_)


def test_stability_refits_use_the_full_fits_window():
    X, y = make_data(n=160, n_features=20)
    X = np.abs(X)
    means = X.mean(axis=0)
    high = float(np.sort(means)[-4])  # the 3 most expressed genes are outside
    sel = YOTOSelector(**FIT, expression_window=(None, high))
    result = panel_stability(sel, X, y, n_runs=4, random_state=0)
    outside = np.flatnonzero(means > high)
    assert len(outside) == 3
    assert result.frequency[outside].sum() == 0


# ------------------------------------------ 3. a model file carries its input
def test_model_file_carries_the_matrix_it_was_fitted_on(tmp_path, capsys):
    adata = make_adata(sparse=True)
    adata.raw = adata.copy()
    adata.X = sp.csr_matrix(np.asarray(adata.X.todense()) * 0.0 - 1.0)  # scaled-like
    data = tmp_path / "cells.h5ad"
    adata.write_h5ad(data)
    out = tmp_path / "run"
    assert main(["fit", str(data), "-t", "cell_type", "--k", "5", "--use-raw",
                 "--out", str(out), *CLI_FAST]) == 0  # fmt: skip
    elsewhere = tmp_path / "copied.safetensors"
    elsewhere.write_bytes((out / "model.safetensors").read_bytes())
    pred = tmp_path / "pred.csv"
    assert main(["predict", str(elsewhere), str(data), "--out", str(pred)]) == 0
    ref = tmp_path / "ref.csv"
    assert main(["predict", str(out), str(data), "--out", str(ref)]) == 0
    got = pd.read_csv(pred, index_col=0)
    want = pd.read_csv(ref, index_col=0)
    pd.testing.assert_frame_equal(got, want)  # .raw read both times


def test_estimator_reads_the_fitted_anndata_matrix_at_predict():
    adata = make_adata()
    adata.raw = adata.copy()
    adata.X = -np.asarray(adata.X)  # what a scaled X would look like
    sel = YOTOSelector(**FIT, use_raw=True).fit(adata, "cell_type")
    assert sel.anndata_input_ == {"layer": None, "use_raw": True}
    ref = YOTOSelector(**FIT).fit(adata.raw.to_adata(), "cell_type")
    np.testing.assert_array_equal(sel.predict(adata), ref.predict(adata.raw.to_adata()))
    sel.set_params(use_raw=False)  # a live parameter cannot change a fitted model
    np.testing.assert_array_equal(sel.predict(adata), ref.predict(adata.raw.to_adata()))


# ----------------------------------- 4. design lists as Index / Series / set
@pytest.mark.parametrize("kind", ["index", "series", "set", "array"])
def test_design_lists_survive_save_and_load(tmp_path, kind):
    adata = make_adata()
    names = adata.var_names[[1, 3]]
    value = {
        "index": names,
        "series": pd.Series(names),
        "set": set(names),
        "array": np.asarray(names),
    }[kind]
    sel = YOTOSelector(**FIT, excluded_genes=value).fit(adata, "cell_type")
    path = tmp_path / "m.safetensors"
    sel.save(path)
    loaded = YOTOSelector.load(path)
    assert sorted(loaded.get_params()["excluded_genes"]) == sorted(names)
    refit = loaded.__class__(**loaded.get_params()).fit(adata, "cell_type")
    np.testing.assert_array_equal(refit.excluded_, sel.excluded_)


def test_a_set_of_required_genes_has_one_order():
    adata = make_adata()
    genes = {"G7", "G3", "G11", "G5"}
    sel = YOTOSelector(**dict(FIT, k=5), required_genes=genes).fit(adata, "cell_type")
    assert [adata.var_names[i] for i in sel.required_] == sorted(genes)


# -------------------------------------------- 5. fitted behaviour is fitted
def test_predict_uses_the_fitted_binarize_not_the_live_parameter():
    X, y = make_data()
    X = np.abs(X)
    sel = YOTOSelector(**FIT).fit(X, y)
    before = sel.predict_proba(X)
    sel.set_params(binarize=True)
    np.testing.assert_array_equal(sel.predict_proba(X), before)
    sel = YOTOSelector(**FIT, binarize=0.5).fit(X, y)
    before = sel.predict_proba(X)
    sel.set_params(binarize=False)
    np.testing.assert_array_equal(sel.predict_proba(X), before)


# ---------------------------------------- 6. one precision for binarisation
def test_binarisation_compares_at_the_datas_own_precision():
    X, y = make_data(n=120, n_features=10)
    X = np.abs(X).astype(np.float64)
    # values that float32 cannot tell from the threshold, and a tiny positive value
    X[:40, 0] = 0.1 + 1e-12
    X[40:80, 0] = 1e-300
    sel = YOTOSelector(**dict(FIT, k=10), binarize=0.1).fit(X, y)
    detected = (X[:, 0] > 0.1).astype(np.float64)
    # training saw the same detection as prediction: the network's first-layer
    # standardisation holds the training mean of the binarised gene
    probe = X.copy()
    np.testing.assert_array_equal(sel.predict_proba(probe), sel.predict_proba(X))
    from yoto_sklearn.sources import ArraySource, binarized, scan_columns

    mean, _ = scan_columns(binarized(ArraySource(X), 0.1), None)
    assert mean[0] == detected.mean()
    rows, block = next(binarized(ArraySource(X), 0.0).batches(
        np.arange(120), 120, None))  # fmt: skip
    assert block[40:80, 0].min() == 1.0  # 1e-300 > 0: detected, not lost to float32


# --------------------------------------------------- 7. one stability run
def test_one_stability_run_is_refused():
    X, y = make_data()
    with pytest.raises(ValueError, match="n_runs"):
        panel_stability(YOTOSelector(**FIT), X, y, n_runs=1)
    with pytest.raises(ValueError, match="stability_runs"):
        select_genes(make_adata(), "cell_type", stability_runs=1, **FAST)


# ------------------------------------- 8. a threshold above every value
def test_binarize_threshold_above_every_value_is_an_error():
    X, y = make_data()
    with pytest.raises(ValueError, match="nothing is detected"):
        YOTOSelector(**FIT, binarize=float(np.abs(X).max() + 1)).fit(X, y)
    sparse_signal = np.zeros_like(X)
    sparse_signal[0, 0] = 5.0
    with pytest.warns(UserWarning, match="detects 1 value"):
        YOTOSelector(**FIT, binarize=1.0).fit(sparse_signal, y)


# ------------------------------------------------ errors a user can act on
def test_boolean_masks_are_accepted_as_gene_lists():
    adata = make_adata()
    mask = adata.var_names.str.startswith("G3")  # G3, G30..G39
    sel = YOTOSelector(**FIT, excluded_genes=mask).fit(adata, "cell_type")
    assert set(sel.excluded_) == set(np.flatnonzero(mask))
    with pytest.raises(ValueError, match="boolean mask of 39 entries for 40 genes"):
        YOTOSelector(**FIT, excluded_genes=mask[:-1]).fit(adata, "cell_type")


def test_numpy_scalars_are_numbers_everywhere():
    X, y = make_data()
    X = np.abs(X)
    window = (np.float32(0.0), np.int64(5))
    YOTOSelector(**FIT, expression_window=window).fit(X, y)
    panel_stability(YOTOSelector(**FIT), X, y, n_runs=np.int64(2))


def test_stability_refit_failures_name_the_refit():
    X, _ = make_data(n=60)
    y = (np.arange(60) == 0).astype(int)  # one cell of class 1
    YOTOSelector(**FIT).fit(X, y)  # the fit on all cells works
    with pytest.raises(ValueError, match=r"stability refit \d+ of 6 .*only one class"):
        panel_stability(
            YOTOSelector(**FIT), X, y, n_runs=6, subsample=0.5, random_state=0
        )


def test_stability_aligns_y_indexed_by_cell_names_like_fit():
    adata = make_adata()
    y = adata.obs["cell_type"].iloc[::-1]  # same cells, other order
    sel = YOTOSelector(**FIT).fit(adata, y)
    stability = dict(n_runs=2, subsample=0.8, random_state=0)
    result = panel_stability(YOTOSelector(**FIT), adata, y, **stability)
    assert result.panels.shape == (2, sel.k_)
    aligned = y.reindex(adata.obs_names)  # what fit reads: labels matched by name
    same = panel_stability(YOTOSelector(**FIT), adata, aligned, **stability)
    np.testing.assert_array_equal(result.panels, same.panels)


def test_labels_equal_to_obs_column_names_are_ambiguous():
    adata = make_adata(n_cells=12, n_genes=8)
    names = [f"col{i}" for i in range(12)]
    adata.obs = pd.DataFrame({c: ["x", "y"] * 6 for c in names}, index=adata.obs_names)
    with pytest.raises(ValueError, match="both obs column names and one label per"):
        YOTOSelector(**FIT).fit(adata, names)
    sel = YOTOSelector(**FIT).fit(adata, tuple(names[:2]))  # a tuple: names
    assert sel.task_names_ == names[:2]


# --------------------------------------------------------------- the CLI
def test_cli_failures_are_one_line(tmp_path, capsys):
    import h5py

    other = tmp_path / "other.h5"
    with h5py.File(other, "w") as fh:
        fh["numbers"] = np.arange(5)
    rc = main(["fit", str(other), "-t", "x", "--k", "3", "--out", str(tmp_path / "o")])
    assert rc == 1
    assert "other.h5" in _error_line(capsys)


def test_cli_predict_with_duplicated_genes_outside_the_panel(tmp_path, capsys):
    adata = make_adata(sparse=True)
    data = tmp_path / "cells.h5ad"
    adata.write_h5ad(data)
    out = tmp_path / "run"
    assert main(["fit", str(data), "-t", "cell_type", "--k", "3", "--out", str(out),
                 *CLI_FAST]) == 0  # fmt: skip
    panel = set(pd.read_csv(out / "panel.csv")["gene"])
    names = list(adata.var_names)
    free = [i for i, g in enumerate(names) if g not in panel][:2]
    names[free[1]] = names[free[0]]  # a duplicate outside the panel
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        adata.var_names = names
    dup = tmp_path / "dup.h5ad"
    adata.write_h5ad(dup)
    rc = main(["predict", str(out), str(dup), "--out", str(tmp_path / "p.csv")])
    assert rc == 0, capsys.readouterr().err


def test_cli_gene_list_path_that_is_not_a_file(tmp_path, capsys):
    adata = make_adata(sparse=True)
    data = tmp_path / "cells.h5ad"
    adata.write_h5ad(data)
    args = [
        "fit",
        str(data),
        "-t",
        "cell_type",
        "--k",
        "3",
        "--out",
        str(tmp_path / "o"),
    ]
    assert main([*args, "--required-genes", "reqs.txt"]) == 1
    assert "no such file" in _error_line(capsys)
    assert main([*args, "--required-genes", str(tmp_path)]) == 1
    assert "is a folder" in _error_line(capsys)
    bom = tmp_path / "bom.txt"
    bom.write_bytes("\ufeffG3\nG4\n".encode())
    from yoto_sklearn.cli._design import read_gene_list

    assert read_gene_list(str(bom), "--required-genes") == ["G3", "G4"]


def test_cli_reader_near_misses(tmp_path, capsys):
    adata = make_adata(sparse=True)
    named_h5 = tmp_path / "cells.h5"
    adata.write_h5ad(named_h5)  # an .h5ad under another name
    out = tmp_path / "o"
    assert main(["fit", str(named_h5), "-t", "cell_type", "--k", "3", "--out",
                 str(out), *CLI_FAST]) == 0  # fmt: skip
    table = pd.DataFrame(np.asarray(adata.X.todense()), columns=adata.var_names)
    table["cell_type"] = adata.obs["cell_type"].to_numpy()
    semi = tmp_path / "cells.csv"
    table.to_csv(semi, sep=";", index=False)
    assert main(["fit", str(semi), "-t", "cell_type", "--k", "3", "--out",
                 str(tmp_path / "o2"), *CLI_FAST]) == 0  # fmt: skip
    h5ad = tmp_path / "cells.h5ad"
    adata.write_h5ad(h5ad)
    rc = main(["fit", "--binarize", str(h5ad), "-t", "cell_type", "--k", "3",
               "--out", str(tmp_path / "o3"), *CLI_FAST])  # fmt: skip
    assert rc == 0, capsys.readouterr().err


def test_cli_set_conflicting_with_an_option_is_refused(tmp_path, capsys):
    adata = make_adata(sparse=True)
    data = tmp_path / "cells.h5ad"
    adata.write_h5ad(data)
    rc = main(["fit", str(data), "-t", "cell_type", "--k", "3", "--out",
               str(tmp_path / "o"), "--required-genes", "G1",
               "--set", "required_genes=['G2']"])  # fmt: skip
    assert rc == 1
    assert "given twice" in _error_line(capsys)


def test_save_and_load_take_bytes_paths_and_name_the_requested_path(tmp_path):
    X, y = make_data()
    sel = YOTOSelector(**FIT).fit(X, y)
    path = tmp_path / "m.safetensors"
    sel.save(bytes(path))
    assert YOTOSelector.load(bytes(path)).k_ == sel.k_
    with pytest.raises(OSError, match="no-such-folder"):
        sel.save(tmp_path / "no-such-folder" / "m.safetensors")
