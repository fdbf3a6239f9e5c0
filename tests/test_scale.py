"""Scale: sparse input stays sparse, backed AnnData streams, chunked batch order."""

import pickle
import tracemalloc

import numpy as np
import pytest
import scipy.sparse as sp

from yoto_sklearn import YOTOSelector, sources

from .conftest import make_data

anndata = pytest.importorskip("anndata")


def _write(tmp_path, X, y, name="x.h5ad"):
    adata = anndata.AnnData(X)
    adata.var_names = [f"g{i}" for i in range(X.shape[1])]
    adata.obs["label"] = np.asarray(y).astype(str)
    path = tmp_path / name
    adata.write_h5ad(path)
    return path, adata


# Chunks of 16 rows, so 160 cells make 10 chunks in 3 shuffle buffers of 4 chunks.
SMALL_CHUNKS = dict(chunk_rows=16, buffer_chunks=4)


def test_chunked_permutation_is_a_permutation_and_local():
    rng = np.random.default_rng(0)
    idx = np.sort(rng.choice(1000, 700, replace=False))
    order, buffers = sources.chunked_permutation(
        idx, rng, chunk_rows=50, buffer_chunks=3
    )
    assert np.array_equal(np.sort(order), idx)
    assert sum(len(b) for b in buffers) == len(np.unique(idx // 50))
    # the first buffer's rows all come from its own chunks
    first = order[: np.isin(idx // 50, buffers[0]).sum()]
    assert set(np.unique(first // 50)) <= set(buffers[0])


def test_chunked_permutation_single_buffer_is_full_permutation():
    idx = np.arange(100)
    a = sources.chunked_permutation(idx, np.random.default_rng(3), chunk_rows=100)[0]
    b = np.random.default_rng(3).permutation(idx)
    assert np.array_equal(a, b)


@pytest.mark.parametrize("sparse", [False, True])
def test_backed_batches_match_in_memory_chunked(tmp_path, sparse):
    X, y = make_data(n=160)
    X = X.astype(np.float32)
    if sparse:
        X = sp.csr_matrix(np.where(X > 0.5, X, 0.0).astype(np.float32))
    path, _ = _write(tmp_path, X, y)
    backed = anndata.read_h5ad(path, backed="r")
    src_disk = sources.BackedSource(backed.X, **SMALL_CHUNKS)
    src_mem = sources.ArraySource(X, shuffle="chunked", **SMALL_CHUNKS)
    idx = np.sort(np.random.default_rng(1).choice(160, 130, replace=False))
    for rng_seed in (None, 5):
        ra = None if rng_seed is None else np.random.default_rng(rng_seed)
        rb = None if rng_seed is None else np.random.default_rng(rng_seed)
        got = list(src_disk.batches(idx, 16, ra))
        want = list(src_mem.batches(idx, 16, rb))
        assert len(got) == len(want) == 9
        for (i1, b1), (i2, b2) in zip(got, want, strict=True):
            assert np.array_equal(i1, i2)
            assert np.array_equal(b1, b2)
        assert np.array_equal(np.sort(np.concatenate([g[0] for g in got])), idx)
    backed.file.close()


@pytest.mark.parametrize(
    "sparse, early_stopping", [(False, False), (True, True)], ids=["dense", "csr"]
)
def test_backed_fit_predict_equals_in_memory(
    tmp_path, fast_params, sparse, early_stopping
):
    X, y = make_data(n=160)
    X = X.astype(np.float32)
    if sparse:
        X = sp.csr_matrix(np.where(X > 0.5, X, 0.0).astype(np.float32))
    path, adata = _write(tmp_path, X, y)
    params = dict(fast_params, early_stopping=early_stopping, n_iter_no_change=2)
    backed = anndata.read_h5ad(path, backed="r")
    names = list(adata.var_names)
    disk_source = sources.BackedSource(backed.X, var_names=names, **SMALL_CHUNKS)
    disk = YOTOSelector(**params).fit(disk_source, y)
    # the in-memory fit uses the same chunk-wise batch order as the backed one
    mem_source = sources.ArraySource(
        adata.X, "chunked", var_names=names, **SMALL_CHUNKS
    )
    mem = YOTOSelector(**params).fit(mem_source, y)
    np.testing.assert_array_equal(disk.support_, mem.support_)
    np.testing.assert_array_equal(disk.scores_, mem.scores_)
    assert disk.loss_curve_ == mem.loss_curve_
    assert list(disk.feature_names_in_) == list(adata.var_names)
    np.testing.assert_array_equal(disk.predict(backed), mem.predict(adata))
    np.testing.assert_allclose(disk.predict_proba(backed), mem.predict_proba(adata))
    t_disk = disk.transform(backed)
    t_mem = mem.transform(adata)
    t_mem = t_mem.toarray() if sp.issparse(t_mem) else t_mem
    np.testing.assert_allclose(t_disk, t_mem)
    assert t_disk.shape == (160, params["k"])
    backed.file.close()


def test_in_memory_default_order_is_a_full_permutation(fast_params):
    X, y = make_data(n=64)
    src = sources.ArraySource(X)
    idx = np.arange(64)
    got = np.concatenate([b for b, _ in src.batches(idx, 16, np.random.default_rng(0))])
    perm = np.random.default_rng(0).permutation(idx)
    want = np.concatenate([np.sort(perm[i : i + 16]) for i in range(0, 64, 16)])
    assert np.array_equal(got, want)


def test_backed_nan_is_rejected_while_streaming(tmp_path, fast_params):
    X, y = make_data(n=40)
    X[17, 3] = np.nan
    path, _ = _write(tmp_path, X.astype(np.float32), y)
    backed = anndata.read_h5ad(path, backed="r")
    with pytest.raises(ValueError, match="NaN or infinity"):
        YOTOSelector(**fast_params).fit(backed, "label")
    backed.file.close()


def test_backed_csc_is_refused(tmp_path, fast_params):
    X, y = make_data(n=40)
    path, _ = _write(tmp_path, sp.csc_matrix(X.astype(np.float32)), y)
    backed = anndata.read_h5ad(path, backed="r")
    with pytest.raises(ValueError, match="CSC"):
        YOTOSelector(**fast_params).fit(backed, "label")
    backed.file.close()


def test_backed_model_pickles(tmp_path, fast_params):
    X, y = make_data(n=60)
    path, _ = _write(tmp_path, X.astype(np.float32), y)
    backed = anndata.read_h5ad(path, backed="r")
    sel = YOTOSelector(**fast_params).fit(backed, "label")
    again = pickle.loads(pickle.dumps(sel))
    np.testing.assert_array_equal(again.predict(backed), sel.predict(backed))
    backed.file.close()


def test_sparse_fit_never_densifies_the_whole_matrix(monkeypatch):
    """CSR in, peak numpy memory far below the dense cells x genes matrix."""
    n, g, batch = 6000, 2000, 64
    X = sp.random(n, g, density=0.01, format="csr", dtype=np.float64, random_state=0)
    y = np.arange(n) % 3
    dense_bytes = n * g * 8  # 96 MB in float64 (48 MB in float32)

    big = []
    original = sp.csr_matrix.toarray

    def guarded(self, *args, **kwargs):
        if self.shape[0] > batch and self.shape[1] > 5:  # a panel block is fine
            big.append(self.shape)
        return original(self, *args, **kwargs)

    monkeypatch.setattr(sp.csr_matrix, "toarray", guarded)
    sel = YOTOSelector(
        k=5,
        max_iter=1,
        hidden_layer_sizes=(8,),
        batch_size=batch,
        early_stopping=True,
        random_state=0,
    )
    # Warm up first: the first fit imports modules (torch's optimiser machinery
    # pulls in sympy), tens of MB that tracemalloc would count.
    YOTOSelector(k=2, max_iter=1, hidden_layer_sizes=(4,), batch_size=8).fit(
        X[:32], y[:32]
    )
    tracemalloc.start()
    try:
        sel.fit(X, y)
        sel.predict(X)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert big == []
    sparse_bytes = X.data.nbytes + X.indices.nbytes + X.indptr.nbytes  # ~1.5 MB
    assert peak < dense_bytes / 8, (peak, dense_bytes, sparse_bytes)


def test_epoch_rows_visit_every_cell_in_turn():
    from yoto_sklearn.sources import epoch_rows

    idx = np.arange(3, 1003)
    for chunk_rows in (None, 64):
        epochs = epoch_rows(idx, 300, np.random.default_rng(0), chunk_rows)
        chosen = [next(epochs) for _ in range(10)]
        assert all(len(np.unique(e)) == 300 for e in chosen)  # no cell twice
        counts = np.bincount(np.concatenate(chosen) - 3, minlength=1000)
        assert counts.min() == counts.max() == 3  # 10 x 300 cells = 3 passes
    rng = np.random.default_rng(0)
    state = rng.bit_generator.state
    full = epoch_rows(idx, 1000, rng, None)
    assert next(full) is idx and next(full) is idx
    assert rng.bit_generator.state == state  # no random draw without a cap


def test_cap_on_cells_per_epoch_leaves_small_data_unchanged():
    from .conftest import FAST, make_data

    X, y = make_data(n=300)
    params = dict(FAST, n_threads=1, early_stopping=True, max_iter=6)
    a = YOTOSelector(**params).fit(X, y)  # default cap 16384 > 300 cells
    b = YOTOSelector(**params, max_cells_per_epoch=None).fit(X, y)
    np.testing.assert_array_equal(a.scores_, b.scores_)
    np.testing.assert_array_equal(a.predict_proba(X), b.predict_proba(X))


@pytest.mark.parametrize("backed", [False, True])
def test_capped_epochs_train_on_part_of_the_cells(tmp_path, backed):
    from .conftest import FAST, make_data

    sizes: list[int] = []  # cells of every epoch, as the callbacks see them
    X, y = make_data(n=2000, n_features=40, n_informative=6)
    params = dict(FAST, k=6, n_threads=1, max_iter=20, max_cells_per_epoch=1000)
    params["callbacks"] = [lambda info: sizes.append(info.n_cells)]
    data = X.astype(np.float32)
    if backed:
        anndata.AnnData(sp.csr_matrix(data)).write_h5ad(tmp_path / "x.h5ad")
        data = anndata.read_h5ad(tmp_path / "x.h5ad", backed="r")
    sel = YOTOSelector(**params).fit(data, y)
    assert sel.n_iter_ == 20
    assert sizes == [1000] * 20  # not the 2000 training cells of a full pass
    sizes.clear()
    YOTOSelector(**{**params, "max_cells_per_epoch": None}).fit(X, y)
    assert sizes == [2000] * 20  # FAST holds no cells out for validation
    assert len(set(sel.support_) & set(range(6))) >= 5  # the markers


class CountingSource(sources.ArraySource):
    """An in-memory source that counts the passes training asks of it."""

    def __init__(self, X):
        super().__init__(X)
        self.calls = {"batches": 0, "row_passes": 0, "panel_chunks": 0}

    def read_chunk(self, start, stop):  # every pass over all columns reads row 0
        self.calls["row_passes"] += start == 0
        return super().read_chunk(start, stop)

    def batches(self, *args, **kwargs):
        self.calls["batches"] += 1
        return super().batches(*args, **kwargs)

    def panel_chunks(self, *args, **kwargs):
        self.calls["panel_chunks"] += 1
        return super().panel_chunks(*args, **kwargs)


def test_refinement_reads_the_panel_columns_once():
    """After selection, no mini-batch of all genes is made: one pass over the row
    chunks keeps the panel columns, and refinement steps use those (issue 11)."""
    from .conftest import FAST, make_data

    X, y = make_data(n=200)
    source = CountingSource(X)
    sel = YOTOSelector(**dict(FAST, max_iter=10, n_threads=1)).fit(source, y)
    assert sel.history_.selection_epochs == 6 and sel.n_iter_ == 10
    assert source.calls["batches"] == 6  # selection epochs only; 4 refinement epochs
    # the standardisation statistics, then the panel columns for refinement
    assert source.calls["row_passes"] + source.calls["panel_chunks"] == 2
    np.testing.assert_array_equal(
        sel.predict(X), sel.predict(np.where(sel.get_support(), X, 0.0))
    )


class _Counted(sources.ArraySource):
    def batches(self, *args, **kwargs):
        self.calls = getattr(self, "calls", 0) + 1
        return super().batches(*args, **kwargs)


class _StreamOnly:
    """A streamed source with the protocol's methods only (no ``read_chunk``)."""

    def __init__(self, source):
        self._s = source
        self.n_obs, self.n_vars = source.n_obs, source.n_vars
        self.shuffle, self.buffer_chunks = source.shuffle, source.buffer_chunks
        self.density = source.density
        self.calls = 0

    def chunk_rows(self, batch_size):
        return self._s.chunk_rows(batch_size)

    def batches(self, idx, batch_size, rng):
        self.calls += 1
        return self._s.batches(idx, batch_size, rng)

    def chunks(self, chunk_rows=None):
        return self._s.chunks(chunk_rows)

    def panel_chunks(self, cols, chunk_rows=None):
        return self._s.panel_chunks(cols, chunk_rows)


def test_held_validation_rows_give_the_streamed_result():
    """Validation rows of a streamed source are read once and kept: same fit as
    streaming them every epoch, and no evaluation pass over the source after."""
    from .conftest import FAST, make_data

    X, y = make_data(n=600)
    params = dict(FAST, max_iter=8, n_threads=1, max_cells_per_epoch=256)
    params["early_stopping"] = True
    kept = _Counted(sp.csr_matrix(X), shuffle="chunked", chunk_rows=64)
    streamed = _StreamOnly(
        sources.ArraySource(sp.csr_matrix(X), shuffle="chunked", chunk_rows=64)
    )
    a = YOTOSelector(**params).fit(kept, y)
    b = YOTOSelector(**params).fit(streamed, y)
    np.testing.assert_array_equal(a.scores_, b.scores_)
    np.testing.assert_array_equal(a.validation_loss_curve_, b.validation_loss_curve_)
    np.testing.assert_array_equal(a.predict_proba(X), b.predict_proba(X))
    # the streamed run asked for the validation rows at every selection epoch;
    # the kept one only for the training batches
    assert kept.calls == a.history_.selection_epochs < streamed.calls


@pytest.mark.parametrize("option", [{"binarize": 0.5}, {"normalize_counts": True}])
def test_a_view_of_a_protocol_only_streamed_source_trains(option):
    """binarize / normalize_counts wrap the source; a streamed source with the
    protocol's methods only (no read_chunk) must still train with validation."""
    from .conftest import FAST, make_data

    X, y = make_data(n=300)
    X = np.round(np.abs(X) * 3)  # counts, for normalize_counts
    params = dict(FAST, max_iter=6, n_threads=1, early_stopping=True, **option)
    streamed = _StreamOnly(
        sources.ArraySource(sp.csr_matrix(X), shuffle="chunked", chunk_rows=64)
    )
    kept = sources.ArraySource(sp.csr_matrix(X), shuffle="chunked", chunk_rows=64)
    a = YOTOSelector(**params).fit(streamed, y)
    b = YOTOSelector(**params).fit(kept, y)
    np.testing.assert_array_equal(a.scores_, b.scores_)
