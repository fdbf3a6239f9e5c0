"""Panel design for targeted assays: required / excluded genes, expression window,
binarised input, stability (issue 10)."""

from __future__ import annotations

import warnings

import anndata as ad
import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from yoto_sklearn import YOTOSelector
from yoto_sklearn.anndata import select_genes
from yoto_sklearn.stability import panel_stability

from .conftest import FAST, make_data

FIT = dict(FAST, n_threads=1, device="cpu", k=4, max_iter=20)
NAMES = [f"g{i}" for i in range(30)]


@pytest.fixture(scope="module")
def data():
    X, y = make_data(n=200, n_informative=6)
    return pd.DataFrame(X, columns=NAMES), y


def test_required_genes_are_in_the_panel_first(data):
    X, y = data
    sel = YOTOSelector(**FIT, required_genes=["g20", "g7"]).fit(X, y)
    assert list(sel.support_[:2]) == [20, 7]
    assert len(sel.support_) == 4 and len(set(sel.support_)) == 4  # k counts them
    assert list(sel.required_) == [20, 7]
    assert list(sel.ranking_[[20, 7]]) == [1, 2]
    np.testing.assert_array_equal(
        YOTOSelector(**FIT, required_genes=[20, 7]).fit(X.to_numpy(), y).support_,
        sel.support_,
    )


def test_required_genes_drive_predictions_when_they_carry_signal(data):
    X, y = data
    # all informative genes but one are excluded: the required marker g0 carries
    # the signal, and the predictor reads it
    sel = YOTOSelector(
        **FIT, required_genes=["g0"], excluded_genes=["g1", "g2", "g3", "g4", "g5"]
    ).fit(X, y)
    before = sel.predict_proba(X)
    shifted = X.assign(g0=X["g0"] + 3.0)
    assert np.abs(sel.predict_proba(shifted) - before).max() > 0.05
    other = next(g for g in NAMES if X.columns.get_loc(g) not in sel.support_)
    np.testing.assert_array_equal(sel.predict_proba(X.assign(**{other: 9.0})), before)


def test_excluded_genes_never_appear(data):
    X, y = data
    markers = ["g0", "g1", "g2", "g3", "g4", "g5"]
    free = YOTOSelector(**FIT).fit(X, y)
    assert set(free.support_) & set(range(6))  # the markers win when allowed
    sel = YOTOSelector(**FIT, excluded_genes=markers).fit(X, y)
    assert not set(sel.support_) & set(range(6))
    assert list(sel.excluded_) == list(range(6))
    assert set(sel.ranking_[:6]) == set(range(25, 31))  # ranked last


def test_expression_window_is_respected(data):
    X, y = data
    means = X.mean(axis=0).to_numpy()  # early_stopping=False: all cells train
    high = float(np.quantile(means, 0.5))
    sel = YOTOSelector(**FIT, expression_window=(None, high)).fit(X, y)
    assert (means[sel.support_] <= high).all()
    assert set(np.flatnonzero(means > high)) == set(sel.excluded_)
    low_only = YOTOSelector(**FIT, expression_window=(high, None)).fit(X, y)
    assert (means[low_only.support_] >= high).all()
    top = int(np.argmax(means))
    with pytest.warns(UserWarning, match="outside expression_window and stay"):
        kept = YOTOSelector(
            **FIT, expression_window=(None, high), required_genes=[top]
        ).fit(X, y)
    assert kept.support_[0] == top


def test_binarized_model_reads_detection_only():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 300)
    counts = rng.poisson(0.3, size=(300, 20)).astype(float)
    counts[y == 1, :3] += rng.poisson(3, size=((y == 1).sum(), 3))
    logged = np.log1p(counts)
    a = YOTOSelector(**FIT, binarize=True).fit(logged, y)
    b = YOTOSelector(**FIT, binarize=True).fit(counts * 7.0, y)  # another scale
    np.testing.assert_array_equal(a.support_, b.support_)
    np.testing.assert_array_equal(a.predict(logged), b.predict(counts))
    # any positive rescaling of a new platform's values gives the same predictions
    np.testing.assert_array_equal(a.predict(counts * 50.0), a.predict(logged))
    assert not np.array_equal(
        YOTOSelector(**FIT).fit(logged, y).predict_proba(logged * 3.0),
        YOTOSelector(**FIT).fit(logged, y).predict_proba(logged),
    )
    thr = YOTOSelector(**FIT, binarize=1.0).fit(counts, y)
    brighter = np.where(counts > 1.0, counts + 5.0, counts)  # same detections at 1
    np.testing.assert_array_equal(thr.predict(counts), thr.predict(brighter))
    assert not np.array_equal(thr.predict(counts), thr.predict(counts + 0.5))


@pytest.mark.parametrize("container", ["csr", "csc", "backed"])
def test_design_options_work_on_sparse_and_backed_input(data, container, tmp_path):
    X, y = data
    values = np.abs(X.to_numpy()).astype(np.float32)
    values[values < 0.5] = 0.0
    params = dict(
        FIT,
        required_genes=["g9"],
        excluded_genes=["g0", "g1"],
        expression_window=(None, float(np.quantile(values.mean(0), 0.8))),
        binarize=True,
    )
    dense_adata = ad.AnnData(values)
    dense_adata.var_names = NAMES
    reference = YOTOSelector(**params).fit(dense_adata, y)
    matrix = sp.csr_matrix(values) if container != "csc" else sp.csc_matrix(values)
    adata = ad.AnnData(matrix)
    adata.var_names = NAMES
    if container == "backed":
        adata.write_h5ad(tmp_path / "x.h5ad")
        adata = ad.read_h5ad(tmp_path / "x.h5ad", backed="r")
        reference = YOTOSelector(**params).fit(dense_adata, y)
    sel = YOTOSelector(**params).fit(adata, y)
    assert sel.support_[0] == 9 and not {0, 1} & set(sel.support_)
    np.testing.assert_array_equal(sel.excluded_, reference.excluded_)
    if container != "backed":  # a backed fit shuffles in chunks: other batches
        np.testing.assert_array_equal(sel.support_, reference.support_)
        np.testing.assert_array_equal(sel.predict(adata), reference.predict(adata))


def test_design_options_survive_save_and_load(data, tmp_path):
    X, y = data
    sel = YOTOSelector(
        **FIT, required_genes=["g3"], excluded_genes=["g0"], binarize=0.5
    ).fit(X, y)
    sel.save(tmp_path / "m.safetensors")
    loaded = YOTOSelector.load(tmp_path / "m.safetensors")
    assert loaded.required_genes == ["g3"] and loaded.binarize == 0.5
    np.testing.assert_array_equal(loaded.required_, sel.required_)
    np.testing.assert_array_equal(loaded.excluded_, sel.excluded_)
    np.testing.assert_array_equal(loaded.predict(X), sel.predict(X))


@pytest.mark.parametrize(
    ("params", "exc", "match"),
    [
        ({"required_genes": ["nope"]}, ValueError, r"names 1 gene\(s\) not in X"),
        ({"required_genes": ["g1", "g1"]}, ValueError, r"lists \['g1'\] more than"),
        ({"required_genes": [0, 1, 2, 3, 4]}, ValueError, "5 genes, more than k=4"),
        ({"required_genes": [99]}, ValueError, r"indices outside \[0, 30\)"),
        ({"required_genes": "g1"}, ValueError, "must be None or an array-like"),
        ({"required_genes": ["g1", 2]}, TypeError, "only gene names"),
        (
            {"required_genes": ["g1"], "excluded_genes": ["g1"]},
            ValueError,
            r"\['g1'\] are both required and excluded",
        ),
        ({"excluded_genes": NAMES[:27]}, ValueError, "only 3 genes can be selected"),
        ({"expression_window": (1.0,)}, ValueError, "must be a pair"),
        ({"expression_window": (2.0, 1.0)}, ValueError, r"low \(2.0\) is above"),
        ({"expression_window": (None, float("nan"))}, ValueError, "not be NaN"),
        ({"binarize": -1.0}, ValueError, "'binarize' parameter"),
    ],
)
def test_design_options_bad_input(data, params, exc, match):
    X, y = data
    with pytest.raises(exc, match=match):
        YOTOSelector(**{**FIT, **params}).fit(X, y)


def test_gene_names_without_names_in_X(data):
    X, y = data
    with pytest.raises(ValueError, match="X has no gene names"):
        YOTOSelector(**FIT, required_genes=["g1"]).fit(X.to_numpy(), y)


def test_stability_frequencies(data):
    X, y = data
    est = YOTOSelector(**FIT)
    result = panel_stability(est, X, y, n_runs=4, random_state=0)
    assert result.frequency.shape == (30,)
    assert ((result.frequency >= 0) & (result.frequency <= 1)).all()
    # every run selects exactly k genes, so frequencies sum to k
    assert result.frequency.sum() == pytest.approx(4.0)
    assert result.panels.shape == (4, 4) and len(result.consensus) == 4
    assert 0.0 <= result.mean_jaccard <= 1.0
    table = result.to_frame()
    assert list(table.index[:4]) == [NAMES[i] for i in result.consensus]
    assert table["consensus"].sum() == 4
    parallel = panel_stability(est, X, y, n_runs=4, random_state=0, n_jobs=2)
    np.testing.assert_array_equal(parallel.panels, result.panels)
    with pytest.raises(
        ValueError, match="subsample. parameter of panel_stability must be"
    ):
        panel_stability(est, X, y, subsample=0.0)


def test_select_genes_writes_stability_and_design_options():
    from tests._scverse_data import make_adata

    adata = make_adata()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        select_genes(
            adata,
            "cell_type",
            k=5,
            stability_runs=3,
            required_genes=["G39"],
            excluded_genes=["G0"],
            max_iter=4,
            hidden_layer_sizes=(16,),
            random_state=0,
        )
    var = adata.var
    assert var.loc["G39", "yoto_selected"] and not var.loc["G0", "yoto_selected"]
    assert var["yoto_frequency"].between(0, 1).all()
    assert var["yoto_frequency"].sum() == pytest.approx(5.0)
    assert (
        var.loc["G39", "yoto_frequency"] == 1.0 and var.loc["G0", "yoto_frequency"] == 0
    )
    assert var["yoto_consensus"].sum() == 5
    stab = adata.uns["yoto"]["stability"]
    assert stab["n_runs"] == 3 and len(stab["consensus"]) == 5
