"""Row sources: where training and prediction read cells from (the X side).

Training never holds more than a shuffle buffer and one dense mini-batch of a large
matrix: it reads cells through a :class:`RowSource`, a small protocol with public
methods (mini-batches in a shuffled order, contiguous row chunks for the statistics
pass, and panel-column blocks for refinement and prediction). Three sources ship:

- :class:`ArraySource`: an in-memory ndarray or CSR/CSC matrix (densified one
  mini-batch at a time);
- :class:`BackedSource`: a backed AnnData matrix (``read_h5ad(path, backed="r")``),
  streamed from disk in contiguous chunks, shuffled chunk-wise;
- :class:`BinarizedSource`: any source seen as detection (``x > threshold``).

``YOTOSelector.fit``, ``predict``, ``predict_proba`` and ``transform`` accept a row
source in place of ``X``: that is how a new storage engine plugs in, and how the
chunk sizes can be chosen (``chunk_rows``, ``buffer_chunks``).

The module also owns the one AnnData-matrix chooser (:func:`anndata_matrix`, which of
``X`` / a layer / ``raw`` is read, in the spirit of scanpy's ``get._get_arr``), the
batch orders (:func:`chunked_permutation`, :func:`epoch_rows`) and the streaming
statistics pass (:func:`scan_columns`).
"""

from __future__ import annotations

import functools
from collections.abc import Iterator
from typing import Any, Protocol, runtime_checkable

import numpy as np
import scipy.sparse as sp

from ._orders import (
    BUFFER_CHUNKS,
    CHUNK_ENTRIES,
    chunked_permutation,
    default_chunk_rows,
    epoch_rows,
    map_row_ranges,
    reads_row_ranges,
    rows_in_chunks,
)
from ._reads import ChunkStore, innermost, keeping_chunks, read_ahead
from ._stats import scan_columns

__all__ = [
    "ArraySource",
    "BackedSource",
    "BinarizedSource",
    "ChunkStore",
    "WrappedSource",
    "RowSource",
    "anndata_matrix",
    "chunked_permutation",
    "epoch_rows",
    "innermost",
    "keeping_chunks",
    "map_row_ranges",
    "panel_blocks",
    "read_ahead",
    "reads_row_ranges",
    "scan_columns",
]

# Rows per block of panel columns at prediction time (in-memory data).
PREDICT_CHUNK = 65536


@runtime_checkable
class RowSource(Protocol):
    """What training and prediction need from a cells x genes matrix.

    Attributes
    ----------
    n_obs, n_vars : int
        Number of cells and genes.
    density : float
        Fraction of stored values (1 for dense data); sizes the chunks.
    shuffle : {"full", "chunked"}
        How :meth:`batches` shuffles: a full permutation, or the chunk-wise
        shuffle of :func:`chunked_permutation` (streaming readers).
    buffer_chunks : int
        Chunks per shuffle buffer of the chunk-wise shuffle.
    """

    n_obs: int
    n_vars: int
    shuffle: str
    buffer_chunks: int

    @property
    def density(self) -> float:
        """Fraction of stored values."""

    def chunk_rows(self, batch_size: int) -> int:
        """Rows per contiguous read for mini-batches of ``batch_size``."""

    def batches(
        self, idx: np.ndarray, batch_size: int, rng: np.random.Generator | None
    ) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """``(sorted rows, dense float32 block)`` mini-batches over ``idx``.

        Shuffled with ``rng`` (see ``shuffle``), in row order with ``rng=None``.
        """

    def chunks(self, chunk_rows: int | None = None) -> Iterator[tuple[int, Any]]:
        """``(start, block)`` for contiguous row blocks (sparse stays sparse)."""

    def panel_chunks(
        self, cols: np.ndarray, chunk_rows: int | None = None
    ) -> Iterator[np.ndarray]:
        """Float64 row blocks of columns ``cols`` only, in row order (finite)."""


def detected(block: Any, threshold: float) -> Any:
    """``1.0`` where ``block > threshold``, else ``0.0`` (float32; sparse stays sparse).

    The comparison is made in float64 on the values as stored, before any cast
    to the float32 of training: a float64 value that float32 rounds to the
    threshold, or a tiny positive value that float32 rounds to zero, is detected
    (or not) the same way in training, statistics, refinement and prediction.
    """
    t = np.float64(threshold)  # a numpy scalar: float32 values compare in float64
    if sp.issparse(block):
        block = sp.csr_matrix(block, copy=True)
        block.data = (block.data > t).astype(np.float32)
        block.eliminate_zeros()
        return block
    return (np.asarray(block) > t).astype(np.float32)


def dense_float(block: Any, dtype: type = np.float32) -> np.ndarray:
    if sp.issparse(block):
        block = block.toarray()
    return np.asarray(block, dtype=dtype)


def check_finite_panel(block: np.ndarray, start: int, stop: int) -> None:
    if not np.isfinite(block).all():
        raise ValueError(
            "Input X contains NaN or infinity in the panel columns (rows "
            f"{start}-{stop - 1})."
        )


def _read_panel(source: Any, start: int, stop: int, cols: np.ndarray) -> np.ndarray:
    return source.read_panel(cols, start, stop)


class ArraySource:
    """Row access to an in-memory matrix, densified one mini-batch at a time.

    CSC input is converted to CSR once (a copy of the non-zeros, never a dense
    matrix), since mini-batches are rows.

    Parameters
    ----------
    X : ndarray or sparse matrix
        The validated matrix, cells by genes.
    shuffle : {"full", "chunked"}, default="full"
        Batch order of :meth:`batches`: a full permutation of the rows, or the
        chunk-wise shuffle of :func:`chunked_permutation` that a backed source uses
        (so an in-memory fit can reproduce a backed fit exactly).
    chunk_rows : int, optional
        Rows per contiguous chunk; default :func:`default_chunk_rows`.
    buffer_chunks : int, default=BUFFER_CHUNKS
        Chunks per shuffle buffer (``shuffle="chunked"``).
    var_names : sequence of str, optional
        Gene names; a selector fitted on the source takes them as
        ``feature_names_in_``.
    threshold : float, optional
        Give detection (:func:`detected`) instead of the values, compared on the
        values as stored (see :func:`binarized`).
    """

    def __init__(
        self,
        X: np.ndarray | sp.spmatrix | sp.sparray,
        shuffle: str = "full",
        *,
        chunk_rows: int | None = None,
        buffer_chunks: int = BUFFER_CHUNKS,
        var_names: Any = None,
        threshold: float | None = None,
    ) -> None:
        if sp.issparse(X) and X.format != "csr":
            X = sp.csr_matrix(X)
        self.X = X
        self.n_obs, self.n_vars = X.shape
        self.shuffle = shuffle
        self.fixed_chunk_rows = chunk_rows
        self.buffer_chunks = buffer_chunks
        self.var_names = var_names
        self.threshold = threshold

    def _native(self, block: Any) -> Any:
        """A block as stored, or its detection when the source has a threshold."""
        return block if self.threshold is None else detected(block, self.threshold)

    @property
    def density(self) -> float:
        """Fraction of stored values (1 for a dense matrix)."""
        if not sp.issparse(self.X):
            return 1.0
        return self.X.nnz / max(self.n_obs * self.n_vars, 1)

    def chunk_rows(self, batch_size: int) -> int:
        """Rows per contiguous chunk for mini-batches of ``batch_size``."""
        return self.fixed_chunk_rows or default_chunk_rows(
            self.n_vars, self.density, batch_size
        )

    def _order(
        self, idx: np.ndarray, batch_size: int, rng: np.random.Generator | None
    ) -> tuple[np.ndarray, list[np.ndarray] | None]:
        """The batch order of an epoch, and its shuffle buffers (chunked only)."""
        if rng is None:
            return np.sort(idx), None
        if self.shuffle == "chunked":
            return chunked_permutation(
                idx, rng, self.chunk_rows(batch_size), self.buffer_chunks
            )
        return rng.permutation(idx), None

    def batches(
        self,
        idx: np.ndarray,
        batch_size: int,
        rng: np.random.Generator | None,
    ) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """Yield ``(rows, dense float32 block)`` mini-batches over ``idx``.

        With ``rng=None`` the batches follow the sorted ``idx`` (evaluation);
        otherwise the order is shuffled (see ``shuffle``). The rows of each batch are
        sorted.
        """
        order = self._order(idx, batch_size, rng)[0]
        for start in range(0, len(order), batch_size):
            batch = np.sort(order[start : start + batch_size])
            yield batch, dense_float(self._native(self.X[batch]))

    def read_chunk(self, start: int, stop: int) -> Any:
        """Rows ``start:stop``, every column (sparse stays sparse)."""
        return self._native(self.X[start:stop])

    def chunks(self, chunk_rows: int | None = None) -> Iterator[tuple[int, Any]]:
        """Yield ``(start, block)`` for contiguous row blocks (sparse stays sparse)."""
        step = chunk_rows or self.chunk_rows(1)
        for start in range(0, self.n_obs, step):
            yield start, self.read_chunk(start, min(start + step, self.n_obs))

    def panel_rows(self, cols: np.ndarray) -> int:
        """Rows per block of :meth:`panel_chunks` (in memory: PREDICT_CHUNK)."""
        return PREDICT_CHUNK

    def read_panel(self, cols: np.ndarray, start: int, stop: int) -> np.ndarray:
        """Float64 rows ``start:stop`` of columns ``cols`` (checked finite)."""
        block = dense_float(self._native(self.X[start:stop][:, cols]), np.float64)
        check_finite_panel(block, start, stop)
        return block

    def panel_chunks(
        self, cols: np.ndarray, chunk_rows: int | None = None, n_jobs: Any = None
    ) -> Iterator[np.ndarray]:
        """Yield float64 row blocks of columns ``cols`` only, in row order.

        With ``n_jobs`` the blocks are read by joblib workers (see
        :func:`map_row_ranges`); the blocks are the same.
        """
        cols = np.asarray(cols)
        step = chunk_rows or self.panel_rows(cols)
        return map_row_ranges(self, _read_panel, step, n_jobs, cols)


def panel_blocks(source: RowSource, cols: np.ndarray, n_jobs: Any = None) -> Any:
    """``source.panel_chunks(cols)``, read by ``n_jobs`` joblib workers when set.

    A user's row source may implement the protocol's ``panel_chunks(cols,
    chunk_rows)`` without ``n_jobs``: it is only passed when asked for.
    """
    if n_jobs is None:
        return source.panel_chunks(cols)
    return source.panel_chunks(cols, n_jobs=n_jobs)


def binarized(source: RowSource, threshold: float) -> RowSource:
    """``source`` seen as detection, ``x > threshold`` (1.0 / 0.0).

    The platform-robust "detected / not detected" input that PERSIST trains on for
    the shift from scRNA-seq to targeted assays. An :class:`ArraySource` (or
    :class:`BackedSource`) detects on its values as stored (:func:`detected`);
    any other source is wrapped in a :class:`BinarizedSource`, which detects on
    the blocks it yields (float32 mini-batches).
    """
    if isinstance(source, ArraySource):
        copy = object.__new__(type(source))
        copy.__dict__.update(source.__dict__)
        copy.threshold = float(threshold)
        return copy
    return BinarizedSource(source, threshold)


class WrappedSource:
    """A row source seen through a transform of its blocks (same rows, same order).

    The base of :class:`BinarizedSource` and
    :class:`~yoto_sklearn.counts.NormalizedSource`: a subclass says what a block
    becomes (``_rows`` for contiguous rows, ``_batch`` for a mini-batch, ``_panel``
    for panel columns); reading, chunking and the parallel passes are the wrapped
    source's.
    """

    def __init__(self, source: RowSource) -> None:
        self.source = source
        self.n_obs, self.n_vars = source.n_obs, source.n_vars
        self.shuffle = source.shuffle
        self.buffer_chunks = source.buffer_chunks
        self.var_names = getattr(source, "var_names", None)

    @property
    def density(self) -> float:
        """The wrapped source's fraction of stored values."""
        return self.source.density

    def chunk_rows(self, batch_size: int) -> int:
        """The wrapped source's chunk size."""
        return self.source.chunk_rows(batch_size)

    def _rows(self, block: Any, start: int) -> Any:
        raise NotImplementedError

    def _batch(self, block: np.ndarray, rows: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def _panel(self, block: np.ndarray, start: int) -> np.ndarray:
        raise NotImplementedError

    def batches(
        self, idx: np.ndarray, batch_size: int, rng: np.random.Generator | None
    ) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """The wrapped source's mini-batches, transformed."""
        for rows, block in self.source.batches(idx, batch_size, rng):
            yield rows, self._batch(block, rows)

    def read_chunk(self, start: int, stop: int) -> Any:
        """Rows ``start:stop`` of the wrapped source, transformed."""
        return self._rows(self.source.read_chunk(start, stop), start)

    def chunks(self, chunk_rows: int | None = None) -> Iterator[tuple[int, Any]]:
        """The wrapped source's row chunks, transformed."""
        for start, block in self.source.chunks(chunk_rows):
            yield start, self._rows(block, start)

    def panel_rows(self, cols: np.ndarray) -> int:
        """The wrapped source's rows per panel block."""
        return self.source.panel_rows(cols)

    def read_panel(self, cols: np.ndarray, start: int, stop: int) -> np.ndarray:
        """Float64 rows ``start:stop`` of columns ``cols``, transformed."""
        return self._panel(self.source.read_panel(cols, start, stop), start)

    def panel_chunks(
        self, cols: np.ndarray, chunk_rows: int | None = None, n_jobs: Any = None
    ) -> Iterator[np.ndarray]:
        """The wrapped source's panel blocks, transformed (float64)."""
        cols = np.asarray(cols)
        if n_jobs not in (None, 1) and hasattr(self.source, "read_panel"):
            step = chunk_rows or self.panel_rows(cols)
            return map_row_ranges(self, _read_panel, step, n_jobs, cols)
        return self._panel_stream(cols, chunk_rows)

    def _panel_stream(self, cols: np.ndarray, chunk_rows: int | None) -> Iterator:
        start = 0  # the wrapped source's own blocks, in row order
        for block in self.source.panel_chunks(cols, chunk_rows):
            yield self._panel(block, start)
            start += block.shape[0]


class BinarizedSource(WrappedSource):
    """A row source whose values are ``1.0`` where ``x > threshold``, else ``0.0``.

    Wraps another source (same batches, same order); see :func:`binarized`.
    Sparse chunks stay sparse (``threshold >= 0`` keeps zeros zero).
    """

    def __init__(self, source: RowSource, threshold: float) -> None:
        super().__init__(source)
        self.threshold = float(threshold)

    def _rows(self, block: Any, start: int) -> Any:
        return detected(block, self.threshold)

    def _batch(self, block: np.ndarray, rows: np.ndarray) -> np.ndarray:
        return detected(block, self.threshold)

    def _panel(self, block: np.ndarray, start: int) -> np.ndarray:
        return detected(block, self.threshold).astype(np.float64)


def is_backed_matrix(X: Any) -> bool:
    """Whether ``X`` is an on-disk matrix (h5py dataset, anndata sparse dataset)."""
    if sp.issparse(X) or isinstance(X, np.ndarray):
        # in memory, including anndata's view classes (SparseCSRMatrixView, ...)
        return False
    module = type(X).__module__ or ""
    if module.startswith("dask") and hasattr(X, "compute"):  # e.g. read_lazy's X
        return len(getattr(X, "shape", ())) == 2
    if module.startswith("h5py") and hasattr(X, "shape") and hasattr(X, "dtype"):
        return True
    if module.startswith("anndata") and hasattr(X, "format"):
        return True
    try:
        from anndata.abc import CSCDataset, CSRDataset
    except ImportError:  # pragma: no cover - anndata is a dependency
        return False
    return isinstance(X, CSRDataset | CSCDataset)


class BackedSource(ArraySource):
    """Streaming row access to a backed AnnData matrix (``read_h5ad(..., "r")``).

    Rows are read from disk in contiguous chunks; :meth:`batches` shuffles the chunk
    order and the rows inside a buffer of ``buffer_chunks`` chunks, so at most one
    buffer (kept sparse when the file is sparse) and one dense mini-batch are in
    memory. Dense (``h5py.Dataset``) and CSR datasets are supported; a CSC dataset
    cannot be read by rows and is refused. A dask array (the ``X`` of
    ``anndata.experimental.read_lazy``) is read the same way, one computed row
    chunk at a time; for sparse blocks its density (chunk sizing) is that of its
    first 1,024 rows. The source pickles (joblib workers): the file is reopened by
    path, a dask array travels as its task graph.

    Parameters
    ----------
    X : h5py.Dataset, anndata CSRDataset or dask array
        The backed matrix, cells by genes.
    chunk_rows : int, optional
        Rows per contiguous read; default :func:`default_chunk_rows`.
    buffer_chunks : int, default=BUFFER_CHUNKS
        Chunks per shuffle buffer.
    var_names : sequence of str, optional
        Gene names (see :class:`ArraySource`).
    threshold : float, optional
        Detection instead of values (see :class:`ArraySource`).
    """

    # chunks kept across the epochs of a training run (see keeping_chunks)
    chunk_store: ChunkStore | None = None
    reads_ahead = True  # passes read the next block in the background (read_ahead)

    def __init__(
        self,
        X: Any,
        *,
        chunk_rows: int | None = None,
        buffer_chunks: int = BUFFER_CHUNKS,
        var_names: Any = None,
        threshold: float | None = None,
    ) -> None:
        fmt = getattr(X, "format", None)
        if fmt == "csc":
            raise ValueError(
                "A backed AnnData whose X is stored as CSC cannot be streamed by "
                "rows; rewrite it as CSR (adata.X = adata.X.tocsr() before "
                "write_h5ad) or load it into memory."
            )
        dtype = np.dtype(X.dtype)
        if dtype.kind not in "biuf":
            raise ValueError(f"Backed X has a non-numeric dtype {dtype}.")
        if len(X.shape) != 2:
            raise ValueError(f"Backed X must be 2-D, got shape {X.shape}.")
        self.X = X
        self.n_obs, self.n_vars = (int(s) for s in X.shape)
        self.shuffle = "chunked"
        self.fixed_chunk_rows = chunk_rows
        self.buffer_chunks = buffer_chunks
        self.var_names = var_names
        self.threshold = threshold
        if fmt == "csr":
            nnz = int(X.group["indptr"][-1])
            self._density = nnz / max(self.n_obs * self.n_vars, 1)
        elif hasattr(X, "compute") and sp.issparse(getattr(X, "_meta", None)):
            # a dask array of sparse blocks: the density of its first rows
            head = _computed(X[: min(self.n_obs, 1024)])
            self._density = head.nnz / max(head.shape[0] * self.n_vars, 1)
        else:
            self._density = 1.0

    @property
    def density(self) -> float:
        """Fraction of stored values (1 for a dense dataset)."""
        return self._density

    def read_chunk(self, start: int, stop: int) -> np.ndarray | sp.csr_matrix:
        """Rows ``start:stop`` read from disk (sparse stays sparse)."""
        block = _computed(self.X[start:stop])
        block = sp.csr_matrix(block) if sp.issparse(block) else np.asarray(block)
        return self._native(block)

    def chunks(self, chunk_rows: int | None = None) -> Iterator[tuple[int, Any]]:
        """``(start, block)`` row blocks; the next one is read while this is used."""
        return read_ahead(super().chunks(chunk_rows))

    # ------------------------------------------------ pickling (joblib workers)
    def __getstate__(self) -> dict:
        """The open file is not pickled: its path and dataset name are."""
        state = dict(self.__dict__)
        state.pop("chunk_store", None)  # a training run's, not the source's
        if hasattr(self.X, "compute"):  # a dask array pickles as its task graph
            return state
        X = state.pop("X")
        node = getattr(X, "group", X)  # anndata's CSR dataset, or an h5py dataset
        state["_h5"] = (node.file.filename, node.name, hasattr(X, "format"))
        return state

    def __setstate__(self, state: dict) -> None:
        import h5py

        if "_h5" not in state:
            self.__dict__.update(state)
            return
        filename, name, sparse = state.pop("_h5")
        self.__dict__.update(state)
        node = h5py.File(filename, "r")[name]
        if sparse:
            from anndata.io import sparse_dataset

            node = sparse_dataset(node)
        self.X = node

    def _load(
        self, chunk_ids: np.ndarray, members: np.ndarray, chunk_rows: int
    ) -> tuple[np.ndarray, Any]:
        """Read the chunks ``chunk_ids`` and keep rows ``members`` (sorted)."""
        blocks = []
        ids = []
        store = self.chunk_store  # set during a training run (keeping_chunks)
        starts = [int(c) * chunk_rows for c in chunk_ids]  # this buffer's chunks
        needed = {(a, min(a + chunk_rows, self.n_obs)) for a in starts}
        for c in np.sort(chunk_ids):
            start = int(c) * chunk_rows
            stop = min(start + chunk_rows, self.n_obs)
            want = members[(members >= start) & (members < stop)]
            if len(want) == 0:
                continue
            if store is None:
                block = self.read_chunk(start, stop)
            else:  # a store lives for one run: its threshold does not change
                read = functools.partial(self.read_chunk, start, stop)
                block = store.get((start, stop), read, needed)
            # no copy when every row of the chunk is wanted (the usual case)
            blocks.append(block if len(want) == stop - start else block[want - start])
            ids.append(want)
        if not blocks:
            return np.empty(0, dtype=np.int64), np.empty((0, self.n_vars), np.float32)
        if len(blocks) == 1:
            return ids[0], blocks[0]
        stack = sp.vstack(blocks, format="csr") if sp.issparse(blocks[0]) else None
        return np.concatenate(ids), stack if stack is not None else np.vstack(blocks)

    def batches(
        self,
        idx: np.ndarray,
        batch_size: int,
        rng: np.random.Generator | None,
    ) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """Yield ``(rows, dense float32 block)`` mini-batches streamed from disk.

        Same batches as :meth:`ArraySource.batches` with ``shuffle="chunked"`` (or in
        ``idx`` order with ``rng=None``), so results match an in-memory fit that uses
        the chunked order.
        """
        idx = np.asarray(idx)
        chunk_rows = self.chunk_rows(batch_size)
        order, buffers = self._order(idx, batch_size, rng)
        if buffers is None:  # evaluation order: chunk by chunk
            buffers = [np.array([c]) for c in np.unique(idx // chunk_rows)]
        offset = 0  # position in ``order`` of the first row of the current buffer
        held_ids = np.empty(0, dtype=np.int64)
        held: Any = None
        sorted_idx = np.sort(idx)
        for group in buffers:
            members = rows_in_chunks(sorted_idx, group, chunk_rows)
            ids, block = self._load(group, members, chunk_rows)
            want = order[offset : offset + len(ids)]
            offset += len(ids)
            block = block[np.searchsorted(ids, want)]  # rows in the order they go out
            if held is not None and len(held_ids):
                block = (
                    sp.vstack([held, block], format="csr")
                    if sp.issparse(block)
                    else np.concatenate([held, block])
                )
                want = np.concatenate([held_ids, want])
            n_full = (len(want) // batch_size) * batch_size
            for start in range(0, n_full, batch_size):
                yield self._emit(want[start : start + batch_size], block, start)
            held_ids = want[n_full:]
            held = block[n_full:]
            block = None  # free this buffer before the next one is read
        if len(held_ids):
            yield self._emit(held_ids, held, 0)

    def panel_rows(self, cols: np.ndarray) -> int:
        """Rows per panel block: ~CHUNK_ENTRIES panel values (dense), else chunks."""
        if hasattr(self.X, "format"):
            return self.chunk_rows(1)
        return max(CHUNK_ENTRIES // max(len(cols), 1), 1)

    def read_panel(self, cols: np.ndarray, start: int, stop: int) -> np.ndarray:
        """Float64 rows ``start:stop`` of columns ``cols`` (checked finite).

        A dense HDF5 dataset (or a dask array) is read column-selectively (only the
        panel columns leave the disk); a CSR dataset is read by rows and the columns
        picked in memory.
        """
        if hasattr(self.X, "format"):
            block = self.read_chunk(start, stop)[:, cols]
        else:
            order = np.argsort(cols, kind="stable")
            inverse = np.empty_like(order)
            inverse[order] = np.arange(len(order))
            block = _computed(self.X[start:stop, cols[order]])
            block = block.toarray() if sp.issparse(block) else np.asarray(block)
            block = self._native(block[:, inverse])
        block = dense_float(block, np.float64)
        check_finite_panel(block, start, stop)
        return block

    @staticmethod
    def _emit(ids: np.ndarray, block: Any, start: int) -> tuple[np.ndarray, np.ndarray]:
        part = block[start : start + len(ids)]
        order = np.argsort(ids, kind="stable")
        return ids[order], dense_float(part[order])


def _computed(block: Any) -> Any:
    """A dask block computed (a read_lazy AnnData's X); anything else as is."""
    return block.compute() if hasattr(block, "compute") else block


def has_obs_table(X: Any) -> bool:
    """Whether ``X`` carries cell metadata that targets can name (AnnData, SOMA)."""
    return is_anndata(X) or (
        isinstance(X, RowSource) and getattr(X, "obs", None) is not None
    )


def num_samples(X: Any) -> int:
    """Number of cells of any input ``fit`` takes (AnnData, row source, arrays)."""
    if isinstance(X, RowSource):
        return X.n_obs
    if is_anndata(X):
        return X.n_obs
    return X.shape[0] if hasattr(X, "shape") else len(X)


# ------------------------------------------------------------------ AnnData
def is_anndata(obj: Any) -> bool:
    """Whether ``obj`` is an AnnData object (without importing anndata)."""
    return type(obj).__name__ in ("AnnData", "Raw") and hasattr(obj, "var_names")


def anndata_matrix(
    adata: Any, layer: str | None = None, use_raw: bool = False
) -> tuple[Any, np.ndarray]:
    """The matrix of ``adata`` to read, and its gene names: X, a layer, or raw.

    The one place that decides which AnnData matrix is read (the estimator, the
    scverse door and the command line all call it).

    Raises
    ------
    ValueError
        ``layer`` together with ``use_raw``, an unknown layer, no ``adata.raw``, or
        an ``adata.X`` that is None.
    """
    if layer is not None and use_raw:
        raise ValueError(
            "use either a layer (layer=, --layer) or .raw (use_raw=True, "
            "--use-raw), not both"
        )
    if use_raw:
        if adata.raw is None:
            raise ValueError("use_raw=True (--use-raw) but the data has no .raw")
        return adata.raw.X, np.asarray(adata.raw.var_names, dtype=object)
    names = np.asarray(adata.var_names, dtype=object)
    if layer is not None:
        if layer not in adata.layers:
            raise ValueError(
                f"layer {layer!r} not found; the data has layers: {list(adata.layers)}"
            )
        return adata.layers[layer], names
    if adata.X is None:
        raise ValueError(
            "adata.X is None; put the expression matrix in adata.X, or read a "
            "layer or .raw."
        )
    return adata.X, names
