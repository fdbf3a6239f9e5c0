"""Fewer and overlapped reads of a streamed source: kept chunks, reading ahead.

Two measures for sources read from storage (a backed h5ad, a SOMA experiment, a
dask array), neither of which changes a value read or the order of anything:

- :class:`ChunkStore` keeps the row chunks a training run read last, for its next
  epochs (see :func:`keeping_chunks`);
- :func:`read_ahead` reads the next block of a pass in a background thread while
  the current one is used.

:func:`row_blocks` reads a set of rows, chunk by chunk, for the passes that need
only some cells (the structure targets' SVD, the marker statistics).

Public through :mod:`yoto_sklearn.sources`.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from typing import Any, TypeVar

import numpy as np
import scipy.sparse as sp

T = TypeVar("T")


class ChunkStore:
    """The row chunks a training run read last, kept for its next epochs.

    With ``max_cells_per_epoch`` an epoch is the next cells of a chunk-wise shuffled
    pass (:func:`~yoto_sklearn.sources.epoch_rows`), so consecutive epochs draw
    their cells from the same few chunks: a shuffle buffer of ``buffer_chunks``
    chunks holds the cells of 2-3 epochs. Each epoch read every chunk its cells
    lie in, again: 388 chunk reads in 71 epochs of a 10^6-cell fit like the
    benchmark's, where its cells lie in 110 (counted by replaying row orders of
    that size and those settings with ``epoch_rows`` and ``chunked_permutation``).
    With the chunks of the last two buffers kept, the same orders read 110. The
    blocks are the ones the source returned, so training is unchanged; memory grows
    by at most ``capacity`` chunks (about 32 MB each for CSR, 16 MB dense).

    Parameters
    ----------
    capacity : int
        Chunks kept; the least recently used go first.
    """

    def __init__(self, capacity: int) -> None:
        self.capacity = int(capacity)
        self._blocks: OrderedDict[Any, Any] = OrderedDict()

    def __len__(self) -> int:
        return len(self._blocks)

    def get(self, key: Any, read: Callable[[], Any], needed: set) -> Any:
        """The block stored under ``key``, or ``read()`` (then kept).

        ``needed`` are the keys of the buffer being assembled: they are not evicted
        to make room, so a buffer never reads a chunk twice.
        """
        if key in self._blocks:
            self._blocks.move_to_end(key)
            return self._blocks[key]
        block = read()
        self._blocks[key] = block
        for old in [k for k in self._blocks if k not in needed]:  # oldest first
            if len(self._blocks) <= self.capacity:
                break
            del self._blocks[old]
        return block

    def clear(self) -> None:
        """Forget every block (their memory goes back)."""
        self._blocks.clear()


def innermost(source: Any) -> Any:
    """The source that reads storage, under any transformed view of it."""
    while hasattr(source, "_rows") and hasattr(source, "source"):
        source = source.source
    return source


@contextmanager
def keeping_chunks(source: Any, store: ChunkStore | None) -> Iterator[None]:
    """Within the block, a streamed ``source`` takes its row chunks from ``store``.

    Only sources that assemble shuffle buffers from chunks (those with a
    ``chunk_store`` attribute: ``BackedSource`` and its subclasses, under any
    transformed view) use it; for others this does nothing. The store is attached
    for the duration of the block only, so a source never keeps blocks beyond the
    run that owns the store.
    """
    inner = innermost(source)
    if store is None or not hasattr(inner, "chunk_store"):
        yield
        return
    inner.chunk_store = store
    try:
        yield
    finally:
        inner.chunk_store = None


_DONE = object()


def read_ahead(items: Iterable[T]) -> Iterator[T]:
    """Yield ``items`` in order, producing the next one in a background thread.

    TileDB, h5py and numpy release the GIL while they read, decompress and copy, so
    reading the next block of a pass overlaps the work done on the current one
    (5 chunk reads of a SOMA experiment and 60 matrix products on one torch thread:
    3.50 s one after the other, 2.38 s overlapped, with two other processes on the
    2 cores). One block waits at most; the items and their order are unchanged. An
    exception raised while producing is raised here; closing this iterator early
    lets the block being read finish, then stops.
    """
    iterator = iter(items)
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="yoto-read") as pool:
        pending = pool.submit(next, iterator, _DONE)
        try:
            while True:
                item = pending.result()
                if item is _DONE:
                    return
                pending = pool.submit(next, iterator, _DONE)
                yield item
        finally:
            pending.cancel()
            if not pending.cancelled():
                pending.exception()  # wait: the iterator is not closed while in use
            close = getattr(iterator, "close", None)
            if close is not None:
                close()


def row_blocks(source: Any, rows: Any) -> Iterator[tuple[Any, Any]]:
    """``(positions in rows, float64 block)`` for the chunks holding ``rows``.

    One pass over ``source.chunks()``; a chunk without any of ``rows`` is skipped,
    a sparse block stays sparse. ``rows`` may be in any order; the positions say
    where each block row sits in it.
    """
    keep = np.zeros(source.n_obs, dtype=bool)
    keep[rows] = True
    position = np.full(source.n_obs, -1, dtype=np.int64)
    position[rows] = np.arange(len(rows))
    for start, block in source.chunks():
        stop = start + block.shape[0]
        wanted = np.flatnonzero(keep[start:stop])
        if len(wanted) == 0:
            continue
        if len(wanted) < block.shape[0]:
            block = block[wanted]
        block = (
            block.astype(np.float64)
            if sp.issparse(block)
            else np.asarray(block, dtype=np.float64)
        )
        yield position[start + wanted], block
