"""Row orders of the row sources: chunks, shuffles, epochs, parallel row ranges.

Chunk sizes, the chunk-wise shuffle, the rows of an epoch, and the row ranges of
the linear passes (serial or under joblib). Public through
:mod:`yoto_sklearn.sources` (``chunked_permutation``, ``epoch_rows``,
``map_row_ranges``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import numpy as np

from ._reads import innermost, read_ahead

# A contiguous chunk of rows holds about ``CHUNK_ENTRIES`` stored values (16 MiB of
# float32 when dense, about 32 MiB for CSR); a shuffle buffer holds ``BUFFER_CHUNKS``
# chunks (kept sparse for sparse data).
CHUNK_ENTRIES = 1 << 22
BUFFER_CHUNKS = 4


def default_chunk_rows(
    n_vars: int, density: float, batch_size: int, entries: int = CHUNK_ENTRIES
) -> int:
    """Rows per contiguous read: about ``entries`` stored values, >= one batch.

    It depends only on the shape, the fraction of stored values (1 for dense) and the
    batch size, not on the storage, so an in-memory and a backed source of the same
    data cut the same chunks.
    """
    per_row = max(float(n_vars) * min(max(float(density), 1e-6), 1.0), 1.0)
    return max(int(batch_size), int(entries / per_row), 1)


def chunked_permutation(
    idx: np.ndarray,
    rng: np.random.Generator,
    chunk_rows: int,
    buffer_chunks: int = BUFFER_CHUNKS,
) -> tuple[np.ndarray, list[np.ndarray]]:
    """Shuffle ``idx`` chunk-wise, as a streaming reader can afford to.

    The row range is cut into contiguous chunks of ``chunk_rows`` rows; the order of
    the chunks is shuffled, consecutive groups of ``buffer_chunks`` chunks form a
    buffer, and the rows of each buffer are shuffled together. When every row fits in
    one buffer this is exactly ``rng.permutation(idx)``.

    Returns
    -------
    order : ndarray
        The permuted rows (the concatenation of the buffers).
    buffers : list of ndarray
        The chunk numbers of each buffer, in order.
    """
    idx = np.asarray(idx)
    chunks = np.unique(idx // chunk_rows)
    if len(chunks) <= buffer_chunks:
        return rng.permutation(idx), [chunks]
    chunk_order = rng.permutation(chunks)
    sorted_idx = np.sort(idx)
    parts: list[np.ndarray] = []
    buffers: list[np.ndarray] = []
    for b in range(0, len(chunk_order), buffer_chunks):
        group = chunk_order[b : b + buffer_chunks]
        parts.append(rng.permutation(rows_in_chunks(sorted_idx, group, chunk_rows)))
        buffers.append(group)
    return np.concatenate(parts), buffers


def rows_in_chunks(
    sorted_idx: np.ndarray, chunk_ids: np.ndarray, chunk_rows: int
) -> np.ndarray:
    """The rows of ``sorted_idx`` that lie in chunks ``chunk_ids``, sorted."""
    parts = []
    for c in np.sort(chunk_ids):
        lo, hi = np.searchsorted(sorted_idx, [c * chunk_rows, (c + 1) * chunk_rows])
        parts.append(sorted_idx[lo:hi])
    return np.concatenate(parts) if parts else sorted_idx[:0]


def epoch_rows(
    train_idx: np.ndarray,
    cap: int | None,
    rng: np.random.Generator,
    chunk_rows: int | None,
    buffer_chunks: int = BUFFER_CHUNKS,
) -> Iterator[np.ndarray]:
    """The training rows of each epoch: all of them, or ``cap`` at a time.

    With ``cap`` at least the number of training cells (every dataset up to that
    size) each epoch is ``train_idx`` and no random number is drawn, so training
    is exactly what it is without a cap. Above it, an epoch is the next ``cap``
    cells of a shuffled pass over the data (a new pass starts when one is used up),
    so the cost of an epoch, and of the whole schedule, stops growing with the
    number of cells while every cell is still visited in turn. With ``chunk_rows``
    (a source streamed from disk) the pass is the reader's chunk-wise shuffle
    (:func:`chunked_permutation`), so an epoch reads about ``cap`` cells from disk,
    not the whole file.
    """
    n = len(train_idx)
    if cap is None or n <= cap:
        while True:
            yield train_idx
    pending = np.empty(0, dtype=train_idx.dtype)
    while True:
        if len(pending) >= cap:
            epoch, pending = pending[:cap], pending[cap:]
        else:  # the rest of this pass, topped up from the next (no cell twice)
            if chunk_rows:  # the streaming reader's chunk-wise shuffle
                fresh = chunked_permutation(train_idx, rng, chunk_rows, buffer_chunks)[
                    0
                ]
            else:
                fresh = rng.permutation(train_idx)
            # cells still pending wait for a later epoch of the new pass
            take = np.flatnonzero(~np.isin(fresh, pending))[: cap - len(pending)]
            epoch = np.concatenate([pending, fresh[take]])
            pending = np.delete(fresh, take)
        yield np.sort(epoch)


def map_row_ranges(
    source: Any, fn: Callable, step: int, n_jobs: Any = None, *args: Any
) -> Iterator[Any]:
    """``fn(source, start, stop, *args)`` over consecutive row ranges, in row order.

    The linear passes (column statistics and finiteness, panel columns) are built on
    it. ``n_jobs`` None or 1 runs them here, one range after the other; otherwise
    under joblib's active backend (``joblib.parallel_config``: processes by default,
    threads, or a Dask cluster with ``backend="dask"``), where each worker gets a
    pickled copy of the source and reads its own rows (a backed file or a SOMA
    experiment is reopened by path). Results come back in row order, so a pass
    that merges them in order gives exactly the serial result.
    """
    ranges = [(a, min(a + step, source.n_obs)) for a in range(0, source.n_obs, step)]
    if n_jobs is None or n_jobs == 1 or len(ranges) < 2:
        serial = (fn(source, a, b, *args) for a, b in ranges)
        # a source read from storage reads the next range while this one is used
        return read_ahead(serial) if reads_ahead(source) else serial
    from joblib import Parallel, delayed

    run = Parallel(n_jobs=n_jobs, return_as="generator")
    return iter(run(delayed(fn)(source, a, b, *args) for a, b in ranges))


def reads_ahead(source: Any) -> bool:
    """Whether ``source`` (under any transformed view) reads from storage."""
    return bool(getattr(innermost(source), "reads_ahead", False))


def reads_row_ranges(source: Any) -> bool:
    """Whether ``source.read_chunk(start, stop)`` works.

    The protocol needs only ``chunks``; the parallel passes and the kept validation
    rows need ``read_chunk``. A view of a source (``sources.WrappedSource``: it has
    ``_rows`` and the wrapped ``source``) reads through the source it wraps.
    """
    return hasattr(innermost(source), "read_chunk")
