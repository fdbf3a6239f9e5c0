"""Linear passes in parallel (``n_jobs``): identical to the serial pass (issue 18)."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
import scipy.sparse as sp
from joblib import parallel_config

from yoto_sklearn import YOTOSelector
from yoto_sklearn.counts import NormalizedSource
from yoto_sklearn.sources import ArraySource, BackedSource, scan_columns

anndata = pytest.importorskip("anndata")

FIT = dict(k=4, max_iter=6, n_threads=1, random_state=0, device="cpu")
CHUNK = 37  # rows per range: several ranges, the last one short


def _data(n=300, g=24, seed=0):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 3, n)
    X = sp.random(n, g, density=0.3, format="csr", random_state=seed, dtype=np.float32)
    X = X + sp.csr_matrix((np.full(n, 4.0, np.float32), (np.arange(n), y)), (n, g))
    return sp.csr_matrix(X), y


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    X, y = _data()
    root = tmp_path_factory.mktemp("parallel")
    sparse_path, dense_path = root / "sparse.h5ad", root / "dense.h5ad"
    anndata.AnnData(X).write_h5ad(sparse_path)
    anndata.AnnData(X.toarray()).write_h5ad(dense_path)
    return X, y, sparse_path, dense_path


def _sources(files):
    X, _, sparse_path, dense_path = files
    yield "csr", ArraySource(X, chunk_rows=CHUNK)
    yield "dense", ArraySource(X.toarray(), chunk_rows=CHUNK)
    for name, path in (("backed csr", sparse_path), ("backed dense", dense_path)):
        X = anndata.read_h5ad(path, backed="r").X
        yield name, BackedSource(X, chunk_rows=CHUNK)


@pytest.mark.parametrize("backend", ["loky", "threading"])
def test_statistics_pass_equals_the_serial_pass(files, backend):
    train = np.arange(0, 300, 2)
    for name, source in _sources(files):
        serial = scan_columns(source, train, all_rows_mean=True)
        with parallel_config(backend=backend):
            parallel = scan_columns(source, train, all_rows_mean=True, n_jobs=2)
        for a, b in zip(serial, parallel, strict=True):
            np.testing.assert_array_equal(a, b, err_msg=name)
        cols = np.array([5, 1, 17])
        with parallel_config(backend=backend):
            blocks = list(source.panel_chunks(cols, n_jobs=2))
        np.testing.assert_array_equal(
            np.vstack(blocks), np.vstack(list(source.panel_chunks(cols))), name
        )


def test_a_parallel_error_names_the_rows(files):
    X, *_ = files
    bad = X.copy()
    bad.data[bad.indptr[200]] = np.nan  # first stored value of row 200
    with pytest.raises(ValueError, match="NaN or infinity .*rows 185-221"):
        scan_columns(ArraySource(bad, chunk_rows=CHUNK), None, n_jobs=2)


def test_backed_source_pickles_by_path(files):
    _, _, sparse_path, dense_path = files
    for path in (sparse_path, dense_path):
        source = BackedSource(anndata.read_h5ad(path, backed="r").X, chunk_rows=CHUNK)
        copy = pickle.loads(pickle.dumps(source))
        a, b = source.read_chunk(10, 50), copy.read_chunk(10, 50)
        a, b = (m.toarray() if sp.issparse(m) else m for m in (a, b))
        np.testing.assert_array_equal(a, b)


def test_fit_and_predict_with_n_jobs_equal_the_serial_run(files):
    X, y, sparse_path, _ = files
    backed = anndata.read_h5ad(sparse_path, backed="r")
    for data in (X, backed):
        a = YOTOSelector(**FIT).fit(data, y)
        b = YOTOSelector(n_jobs=2, **FIT).fit(data, y)
        np.testing.assert_array_equal(a.support_, b.support_)
        np.testing.assert_array_equal(a.scores_, b.scores_)
        np.testing.assert_array_equal(a.predict_proba(data), b.predict_proba(data))


def test_counts_normalised_in_parallel_equal_the_serial_pass(files):
    X, y, *_ = files
    counts = sp.csr_matrix(np.round(X.toarray() * 3))
    serial = NormalizedSource(ArraySource(counts, chunk_rows=CHUNK))
    parallel = NormalizedSource(ArraySource(counts, chunk_rows=CHUNK))
    for a, b in zip(
        scan_columns(serial, None), scan_columns(parallel, None, n_jobs=2), strict=True
    ):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(serial.library, parallel.library)
    a = YOTOSelector(normalize_counts=True, **FIT).fit(counts, y)
    b = YOTOSelector(normalize_counts=True, n_jobs=2, **FIT).fit(counts, y)
    np.testing.assert_array_equal(a.predict_proba(counts), b.predict_proba(counts))


def test_passes_run_on_a_dask_cluster(files):
    distributed = pytest.importorskip("distributed")
    _, _, sparse_path, _ = files
    X = anndata.read_h5ad(sparse_path, backed="r").X
    source = BackedSource(X, chunk_rows=CHUNK)
    serial = scan_columns(source, None)
    with (
        distributed.LocalCluster(
            n_workers=2,
            threads_per_worker=1,
            processes=False,
            dashboard_address=None,
        ) as cluster,
        distributed.Client(cluster),
        parallel_config(backend="dask"),
    ):
        on_cluster = scan_columns(source, None, n_jobs=2)
    for a, b in zip(serial, on_cluster, strict=True):
        np.testing.assert_array_equal(a, b)
