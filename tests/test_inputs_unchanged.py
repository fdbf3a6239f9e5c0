"""fit / predict / predict_proba / transform / score never modify their inputs."""

from __future__ import annotations

import copy

import anndata as ad
import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from yoto_sklearn import YOTOSelector

from .conftest import FAST as BASE_FAST

FAST = dict(BASE_FAST, max_iter=2, early_stopping=True, device="cpu", n_threads=1)


def _data(n=60, g=10, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.poisson(1.0, size=(n, g)).astype(np.float32)
    X[:, 0] += (np.arange(n) % 3).astype(np.float32)
    ct = np.array(["B", "T", "NK"], dtype=object)[np.arange(n) % 3]
    ct[::7] = None
    age = rng.normal(50, 10, size=n)
    age[::5] = np.nan
    y = pd.DataFrame({"ct": ct, "age": age}, index=[f"c{i}" for i in range(n)])
    return X, y


def _exercise(X, y):
    sel = YOTOSelector(**FAST).fit(X, y)
    sel.predict(X)
    sel.predict_proba(X)
    sel.transform(X)
    sel.score(X, y)
    sel.score_tasks(X, y)
    return sel


def _assert_same_sparse(a, b):
    assert a.format == b.format and a.shape == b.shape and a.dtype == b.dtype
    for attr in ("data", "indices", "indptr"):
        np.testing.assert_array_equal(getattr(a, attr), getattr(b, attr))
        assert getattr(a, attr).dtype == getattr(b, attr).dtype


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_ndarray_inputs_unchanged(dtype):
    X, y = _data()
    X = X.astype(dtype)
    X_before = X.copy()
    y_arr = y.to_numpy()
    y_before = y_arr.copy()
    _exercise(X, y_arr)
    np.testing.assert_array_equal(X, X_before)
    assert X.dtype == dtype and X.flags.writeable
    pd.testing.assert_frame_equal(pd.DataFrame(y_arr), pd.DataFrame(y_before))


def test_dataframe_inputs_unchanged():
    X, y = _data()
    Xf = pd.DataFrame(X, columns=[f"g{i}" for i in range(X.shape[1])], index=y.index)
    Xf_before, y_before = Xf.copy(deep=True), y.copy(deep=True)
    _exercise(Xf, y)
    pd.testing.assert_frame_equal(Xf, Xf_before)
    pd.testing.assert_frame_equal(y, y_before)
    # a Series target keeps its name and values too
    s = y["ct"].copy()
    s_before = s.copy()
    YOTOSelector(**FAST).fit(Xf, s).score(Xf, s)
    pd.testing.assert_series_equal(s, s_before)


@pytest.mark.parametrize("fmt", ["csr", "csc"])
def test_sparse_inputs_unchanged(fmt):
    X, y = _data()
    Xs = sp.csr_matrix(X) if fmt == "csr" else sp.csc_matrix(X)
    # non-canonical on purpose: unsorted indices must not get sorted in place
    if fmt == "csr":
        Xs.indices = Xs.indices.copy()
        Xs.has_sorted_indices = False
    before = Xs.copy()
    _exercise(Xs, y)
    _assert_same_sparse(Xs, before)


@pytest.mark.filterwarnings("ignore:X does not have valid feature names")
def test_anndata_inputs_unchanged():
    X, y = _data()
    adata = ad.AnnData(
        sp.csr_matrix(X),
        obs=y.copy(),
        var=pd.DataFrame(index=[f"g{i}" for i in range(X.shape[1])]),
    )
    snapshot = copy.deepcopy(adata)
    sel = YOTOSelector(**FAST).fit(adata, ["ct", "age"])
    sel.predict(adata)
    sel.predict_proba(adata)
    sel.transform(adata.X)
    sel.score(adata, ["ct", "age"])
    _assert_same_sparse(adata.X, snapshot.X)
    pd.testing.assert_frame_equal(adata.obs, snapshot.obs)
    pd.testing.assert_frame_equal(adata.var, snapshot.var)
    assert list(adata.uns) == list(snapshot.uns)
    assert list(adata.obsm) == list(snapshot.obsm)
    assert list(adata.layers) == list(snapshot.layers)
