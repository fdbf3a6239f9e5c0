"""Raw counts in, model-ready values out: ``normalize_counts`` (issue 18, item 2)."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from yoto_sklearn import YOTOSelector
from yoto_sklearn.counts import NormalizedSource, log_normalize
from yoto_sklearn.sources import ArraySource, BackedSource

anndata = pytest.importorskip("anndata")

FIT = dict(k=5, max_iter=8, n_threads=1, random_state=0, device="cpu")


def _counts(n=240, g=40, seed=0):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 3, n)
    rates = rng.gamma(1.0, 1.0, (3, g)) * 3
    depth = rng.uniform(0.3, 3.0, (n, 1))  # library sizes differ tenfold
    X = rng.poisson(rates[y] * depth).astype(np.float32)
    X[7] = 0  # an empty cell
    return X, y


def test_values_are_scanpys_normalize_total_and_log1p():
    sc = pytest.importorskip("scanpy")
    X, _ = _counts()
    adata = anndata.AnnData(X.copy())
    with pytest.warns(UserWarning, match="zero counts"):
        sc.pp.normalize_total(adata, target_sum=1e4)
    sc.pp.log1p(adata)
    for data in (X, sp.csr_matrix(X)):
        blocks = [b for _, b in NormalizedSource(ArraySource(data)).chunks(50)]
        ours = sp.vstack(blocks).toarray() if sp.issparse(blocks[0]) else blocks
        ours = np.vstack(ours)
        assert ours.dtype == np.float32
        np.testing.assert_allclose(ours, adata.X, rtol=2e-6, atol=1e-7)
        assert not ours[7].any()  # an empty cell stays empty
        if sp.issparse(data):  # sparse stays sparse, zeros stay unstored
            assert all(sp.issparse(b) and b.nnz <= data.nnz for b in blocks)


def test_a_counts_fit_equals_a_fit_on_the_normalised_matrix():
    X, y = _counts()
    X_before = X.copy()
    normalised = log_normalize(X, X.astype(np.float64).sum(axis=1), 1e4)
    a = YOTOSelector(normalize_counts=True, **FIT).fit(X, y)
    b = YOTOSelector(**FIT).fit(normalised, y)
    np.testing.assert_array_equal(a.support_, b.support_)
    np.testing.assert_array_equal(a.scores_, b.scores_)
    # the model normalises new counts itself, by each cell's whole library
    np.testing.assert_array_equal(a.predict_proba(X), b.predict_proba(normalised))
    np.testing.assert_array_equal(X, X_before)  # nothing the user passed changes
    assert a.count_target_sum_ == 1e4 and b.count_target_sum_ is None
    # transform selects the counts as given
    np.testing.assert_array_equal(a.transform(X), X[:, a.get_support(indices=True)])


def test_target_sum_is_a_float_and_changes_the_values():
    X, y = _counts()
    a = YOTOSelector(normalize_counts=100.0, **FIT).fit(X, y)
    normalised = log_normalize(X, X.astype(np.float64).sum(axis=1), 100.0)
    b = YOTOSelector(**FIT).fit(normalised, y)
    assert a.count_target_sum_ == 100.0
    np.testing.assert_array_equal(a.predict_proba(X), b.predict_proba(normalised))


def test_sparse_and_backed_counts_give_the_same_model(tmp_path):
    X, y = _counts()
    csr = sp.csr_matrix(X)
    path = tmp_path / "counts.h5ad"
    anndata.AnnData(csr).write_h5ad(path)
    backed = anndata.read_h5ad(path, backed="r")
    kw = dict(normalize_counts=True, **FIT)
    # the backed source streams chunk-wise: an in-memory source with that order
    a = YOTOSelector(**kw).fit(ArraySource(csr, shuffle="chunked"), y)
    b = YOTOSelector(**kw).fit(BackedSource(backed.X), y)
    np.testing.assert_array_equal(a.support_, b.support_)
    np.testing.assert_array_equal(a.predict_proba(csr), b.predict_proba(backed))


def test_saved_model_keeps_the_transform(tmp_path):
    X, y = _counts()
    a = YOTOSelector(normalize_counts=True, **FIT).fit(X, y)
    a.save(tmp_path / "m.yoto")
    b = YOTOSelector.load(tmp_path / "m.yoto")
    assert b.count_target_sum_ == 1e4
    np.testing.assert_array_equal(a.predict_proba(X), b.predict_proba(X))
    # set_params after fit cannot change what the fitted model does
    b.set_params(normalize_counts=False)
    np.testing.assert_array_equal(a.predict(X), b.predict(X))


def test_negative_values_are_refused_and_non_integers_warned():
    X, y = _counts()
    bad = X.copy()
    bad[3, 2] = -1.0
    with pytest.raises(ValueError, match="negative values"):
        YOTOSelector(normalize_counts=True, **FIT).fit(bad, y)
    with pytest.warns(UserWarning, match="non-integer values"):
        YOTOSelector(normalize_counts=True, **FIT).fit(np.log1p(X), y)


@pytest.mark.parametrize(
    "params, message",
    [
        (dict(normalize_counts=True, binarize=True), "exclude each other"),
        (dict(normalize_counts=0.0), "normalize_counts"),
        (dict(normalize_counts="yes"), "normalize_counts"),
    ],
)
def test_bad_options_get_one_clear_error(params, message):
    X, y = _counts()
    with pytest.raises(ValueError, match=message):
        YOTOSelector(**{**FIT, **params}).fit(X, y)


def test_numpy_false_means_off():
    X, y = _counts()
    off = YOTOSelector(normalize_counts=np.False_, **FIT).fit(X, y)
    plain = YOTOSelector(**FIT).fit(X, y)
    assert off.count_target_sum_ is None
    np.testing.assert_array_equal(off.scores_, plain.scores_)
