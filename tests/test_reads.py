"""Fewer and overlapped reads of streamed sources: ChunkStore and read_ahead."""

from __future__ import annotations

import pickle
import threading

import numpy as np
import pytest
import scipy.sparse as sp

from yoto_sklearn import YOTOSelector, sources

from .conftest import FAST, make_data

anndata = pytest.importorskip("anndata")


def test_chunk_store_keeps_the_most_recent_and_never_the_buffer_twice():
    store = sources.ChunkStore(2)
    reads = []

    def reader(key):
        return lambda: reads.append(key) or f"block{key}"

    for key in (1, 2, 1, 3):  # 1 is used again: 2 is the oldest when 3 comes
        assert store.get(key, reader(key), {key}) == f"block{key}"
    assert reads == [1, 2, 3] and len(store) == 2
    store.get(2, reader(2), {2})
    assert reads == [1, 2, 3, 2]
    # the chunks of the buffer being assembled stay, whatever the capacity
    for key in (4, 5, 6):
        store.get(key, reader(key), {4, 5, 6})
    assert len(store) == 3 and reads[-3:] == [4, 5, 6]
    store.clear()
    assert len(store) == 0


def test_read_ahead_yields_the_same_items_and_raises_the_producers_error():
    assert list(sources.read_ahead(iter(range(7)))) == list(range(7))
    assert list(sources.read_ahead([])) == []

    def failing():
        yield 1
        raise ValueError("bad chunk")

    it = sources.read_ahead(failing())
    assert next(it) == 1
    with pytest.raises(ValueError, match="bad chunk"):
        next(it)


def test_read_ahead_stops_when_closed_and_reads_in_another_thread():
    produced, threads = [], set()

    def blocks():
        for i in range(100):
            produced.append(i)
            threads.add(threading.get_ident())
            yield i

    it = sources.read_ahead(blocks())
    assert [next(it), next(it)] == [0, 1]
    it.close()
    assert len(produced) <= 3  # one block ahead at most
    assert threading.get_ident() not in threads


class _CountedBacked(sources.BackedSource):
    """A backed source that counts its chunk reads; ``keep=False`` refuses a store."""

    def __init__(self, X, keep=True, **kw):
        super().__init__(X, **kw)
        self.keep, self.reads = keep, 0

    def read_chunk(self, start, stop):
        self.reads += 1
        return super().read_chunk(start, stop)

    def __setattr__(self, name, value):
        if name == "chunk_store" and not getattr(self, "keep", True):
            value = None
        super().__setattr__(name, value)


@pytest.mark.parametrize("sparse", [False, True], ids=["dense", "csr"])
def test_kept_chunks_change_no_result_and_save_reads(tmp_path, sparse):
    """A capped fit from a backed file: with the chunks of the last buffers kept,
    the same panel, scores, loss curve and predictions, from fewer chunk reads."""
    X, y = make_data(n=600)
    X = X.astype(np.float32)
    if sparse:
        X = sp.csr_matrix(np.where(X > 0.5, X, 0.0).astype(np.float32))
    path = tmp_path / "cells.h5ad"
    anndata.AnnData(X).write_h5ad(path)
    backed = anndata.read_h5ad(path, backed="r")
    params = dict(FAST, max_iter=12, max_cells_per_epoch=100, n_threads=1)
    fits = {}
    for keep in (True, False):
        source = _CountedBacked(backed.X, keep=keep, chunk_rows=40, buffer_chunks=2)
        sel = YOTOSelector(**params).fit(source, y)
        fits[keep] = (sel, source.reads)
        assert source.chunk_store is None  # the run's store is not left behind
    (kept, kept_reads), (plain, plain_reads) = fits[True], fits[False]
    np.testing.assert_array_equal(kept.support_, plain.support_)
    np.testing.assert_array_equal(kept.scores_, plain.scores_)
    assert kept.loss_curve_ == plain.loss_curve_
    np.testing.assert_array_equal(kept.predict_proba(X), plain.predict_proba(X))
    assert kept_reads < plain_reads
    backed.file.close()


def test_a_store_never_travels_with_a_pickled_source(tmp_path):
    X, _ = make_data(n=50)
    path = tmp_path / "cells.h5ad"
    anndata.AnnData(X.astype(np.float32)).write_h5ad(path)
    source = sources.BackedSource(anndata.read_h5ad(path, backed="r").X)
    store = sources.ChunkStore(2)
    with sources.keeping_chunks(source, store):
        assert source.chunk_store is store
        copy = pickle.loads(pickle.dumps(source))
    assert copy.chunk_store is None and source.chunk_store is None
    np.testing.assert_array_equal(copy.read_chunk(0, 5), X[:5].astype(np.float32))
