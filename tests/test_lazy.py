"""Dask-backed AnnData (``anndata.experimental.read_lazy``) as input (issue 18)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from yoto_sklearn import YOTOSelector
from yoto_sklearn.sources import ArraySource, BackedSource, is_backed_matrix

anndata = pytest.importorskip("anndata")
pytest.importorskip("xarray")  # read_lazy reads obs through xarray
pytest.importorskip("dask")
from anndata.experimental import read_lazy  # noqa: E402

FIT = dict(k=4, max_iter=6, n_threads=1, random_state=0, device="cpu")


@pytest.fixture(scope="module", params=["sparse", "dense"])
def lazy(tmp_path_factory, request):
    rng = np.random.default_rng(0)
    n, g = 300, 20
    y = rng.integers(0, 3, n)
    X = sp.random(n, g, density=0.3, format="csr", random_state=0, dtype=np.float32)
    X = sp.csr_matrix(
        X + sp.csr_matrix((np.full(n, 4.0, "f4"), (np.arange(n), y)), (n, g))
    )
    obs = pd.DataFrame(
        {"cell_type": np.array(["a", "b", "c"])[y]}, index=[f"c{i}" for i in range(n)]
    )
    var = pd.DataFrame(index=[f"G{i}" for i in range(g)])
    adata = anndata.AnnData(X if request.param == "sparse" else X.toarray(), obs, var)
    path = tmp_path_factory.mktemp("lazy") / "cells.h5ad"
    adata.write_h5ad(path)
    return read_lazy(path), adata


def test_a_lazy_anndata_streams_like_the_same_cells_in_memory(lazy):
    lz, adata = lazy
    assert is_backed_matrix(lz.X)  # a dask array: streamed, never computed whole
    source = BackedSource(lz.X)
    X = adata.X
    step = source.chunk_rows(FIT.get("batch_size", 128))
    # the same cells in memory, cut into the same chunks and shuffled alike
    memory = ArraySource(X, shuffle="chunked", chunk_rows=step)
    y = adata.obs["cell_type"].to_numpy()
    a = YOTOSelector(**FIT).fit(lz, "cell_type")
    b = YOTOSelector(**FIT).fit(memory, y)
    np.testing.assert_array_equal(a.support_, b.support_)
    np.testing.assert_array_equal(a.scores_, b.scores_)
    # prediction blocks have other row counts (file chunks vs PREDICT_CHUNK): the
    # float64 products may differ in the last bit
    np.testing.assert_allclose(a.predict_proba(lz), b.predict_proba(X), atol=1e-12)
    assert list(a.get_feature_names_out()) == list(adata.var_names[a.get_support()])
    np.testing.assert_array_equal(a.predict(lz), a.predict(adata))
    panel = a.transform(lz)
    np.testing.assert_array_equal(
        panel, np.asarray(sp.csr_matrix(X)[:, a.get_support(indices=True)].todense())
    )


def test_lazy_anndata_in_parallel_passes(lazy):
    lz, adata = lazy
    a = YOTOSelector(**FIT).fit(lz, "cell_type")
    b = YOTOSelector(n_jobs=2, **FIT).fit(lz, "cell_type")
    np.testing.assert_array_equal(a.scores_, b.scores_)
    np.testing.assert_array_equal(a.predict_proba(lz), b.predict_proba(lz))
