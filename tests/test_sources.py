"""Row sources: the protocol, batches, chunks, panel blocks, statistics, chooser."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from yoto_sklearn import YOTOSelector, sources
from yoto_sklearn.sources import (
    ArraySource,
    BinarizedSource,
    RowSource,
    anndata_matrix,
    scan_columns,
)

from .conftest import FAST, make_data


def _matrix(sparse: bool) -> np.ndarray | sp.csr_matrix:
    X, _ = make_data(n=50, n_features=12)
    X = np.where(X > 0.3, X, 0.0)
    return sp.csr_matrix(X) if sparse else X


@pytest.mark.parametrize("sparse", [False, True])
def test_array_source_batches_cover_the_rows_once(sparse):
    X = _matrix(sparse)
    dense = X.toarray() if sparse else X
    src = ArraySource(X)
    idx = np.arange(3, 50, 2)
    for rng in (None, np.random.default_rng(0)):
        seen = []
        for rows, block in src.batches(idx, 7, rng):
            assert block.dtype == np.float32 and np.all(np.diff(rows) > 0)
            np.testing.assert_array_equal(block, dense[rows].astype(np.float32))
            seen.append(rows)
        np.testing.assert_array_equal(np.sort(np.concatenate(seen)), idx)


@pytest.mark.parametrize("sparse", [False, True])
def test_panel_chunks_and_statistics_equal_numpy(sparse):
    X = _matrix(sparse)
    dense = X.toarray() if sparse else X
    src = ArraySource(X, chunk_rows=8)
    cols = np.array([5, 0, 7])
    got = np.concatenate(list(src.panel_chunks(cols, chunk_rows=9)))
    np.testing.assert_array_equal(got, dense[:, cols])
    rows = np.arange(0, 50, 3)
    mean, std = scan_columns(src, rows)
    np.testing.assert_allclose(mean, dense[rows].mean(axis=0), rtol=1e-12)
    want = dense[rows].std(axis=0)
    np.testing.assert_allclose(std, np.where(want > 1e-12, want, 1.0), rtol=1e-9)


def test_binarized_source_sees_detection():
    X = _matrix(True)
    src = BinarizedSource(ArraySource(X), 0.5)
    assert src.shuffle == "full" and src.density == ArraySource(X).density
    block = next(src.batches(np.arange(50), 50, None))[1]
    np.testing.assert_array_equal(block, (X.toarray() > 0.5).astype(np.float32))
    panel = next(src.panel_chunks(np.array([1, 2])))
    np.testing.assert_array_equal(panel, (X.toarray()[:, [1, 2]] > 0.5))


def test_scan_columns_refuses_non_finite_values():
    X = _matrix(False)
    X[4, 2] = np.inf
    with pytest.raises(ValueError, match="NaN or infinity .*rows 0-7"):
        scan_columns(ArraySource(X, chunk_rows=8), None)


class ListSource:
    """The smallest row source: rows of a list of lists (not an ArraySource)."""

    shuffle = "full"
    buffer_chunks = 4
    density = 1.0

    def __init__(self, rows: list[list[float]], var_names=None) -> None:
        self.data = np.asarray(rows, dtype=np.float64)
        self.n_obs, self.n_vars = self.data.shape
        self.var_names = var_names

    def chunk_rows(self, batch_size):
        return 64

    def batches(self, idx, batch_size, rng):
        order = np.sort(idx) if rng is None else rng.permutation(idx)
        for start in range(0, len(order), batch_size):
            rows = np.sort(order[start : start + batch_size])
            yield rows, self.data[rows].astype(np.float32)

    def chunks(self, chunk_rows=None):
        yield 0, self.data

    def panel_chunks(self, cols, chunk_rows=None):
        yield self.data[:, np.asarray(cols)]


def test_any_object_with_the_protocol_trains_and_predicts():
    X, y = make_data(n=120)
    names = [f"g{i}" for i in range(X.shape[1])]
    source = ListSource(X.tolist(), var_names=names)
    assert isinstance(source, RowSource)
    assert not isinstance(X, RowSource)
    params = dict(FAST, n_threads=1)
    sel = YOTOSelector(**params).fit(source, y)
    ref = YOTOSelector(**params).fit(pd.DataFrame(X, columns=names), y)
    np.testing.assert_array_equal(sel.support_, ref.support_)
    np.testing.assert_array_equal(sel.predict(source), ref.predict(X))
    assert list(sel.feature_names_in_) == names
    assert sel.transform(source).shape == (120, FAST["k"])


def test_anndata_matrix_is_the_one_chooser():
    import anndata

    adata = anndata.AnnData(np.ones((3, 2)))
    adata.var_names = ["a", "b"]
    adata.layers["counts"] = np.zeros((3, 2))
    matrix, names = anndata_matrix(adata, layer="counts")
    assert matrix is adata.layers["counts"] and list(names) == ["a", "b"]
    with pytest.raises(ValueError, match="has no .raw"):
        anndata_matrix(adata, use_raw=True)
    with pytest.raises(ValueError, match="layer 'x' not found"):
        anndata_matrix(adata, layer="x")
    with pytest.raises(ValueError, match="not both"):
        anndata_matrix(adata, layer="counts", use_raw=True)
    adata.raw = adata
    assert anndata_matrix(adata, use_raw=True)[0] is adata.raw.X
    assert sources.num_samples(adata) == 3
