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

from collections.abc import Iterator
from typing import Any, Protocol, runtime_checkable

import numpy as np
import scipy.sparse as sp

from ._stats import scan_columns

__all__ = [
    "ArraySource",
    "BackedSource",
    "BinarizedSource",
    "RowSource",
    "anndata_matrix",
    "chunked_permutation",
    "epoch_rows",
    "scan_columns",
]

# A contiguous chunk of rows holds about ``CHUNK_ENTRIES`` stored values (16 MiB of
# float32 when dense, about 32 MiB for CSR); a shuffle buffer holds ``BUFFER_CHUNKS``
# chunks (kept sparse for sparse data).
CHUNK_ENTRIES = 1 << 22
BUFFER_CHUNKS = 4
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

    def chunks(self, chunk_rows: int | None = None) -> Iterator[tuple[int, Any]]:
        """Yield ``(start, block)`` for contiguous row blocks (sparse stays sparse)."""
        step = chunk_rows or self.chunk_rows(1)
        for start in range(0, self.n_obs, step):
            yield start, self._native(self.X[start : start + step])

    def panel_chunks(
        self, cols: np.ndarray, chunk_rows: int | None = None
    ) -> Iterator[np.ndarray]:
        """Yield float64 row blocks of columns ``cols`` only, in row order."""
        panel = self._native(self.X[:, np.asarray(cols)])
        step = chunk_rows or PREDICT_CHUNK
        for start in range(0, self.n_obs, step):
            block = dense_float(panel[start : start + step], np.float64)
            check_finite_panel(block, start, start + block.shape[0])
            yield block


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


class BinarizedSource:
    """A row source whose values are ``1.0`` where ``x > threshold``, else ``0.0``.

    Wraps another source (same batches, same order); see :func:`binarized`.
    Sparse chunks stay sparse (``threshold >= 0`` keeps zeros zero).
    """

    def __init__(self, source: RowSource, threshold: float) -> None:
        self.source = source
        self.threshold = float(threshold)
        self.n_obs, self.n_vars = source.n_obs, source.n_vars
        self.shuffle = source.shuffle
        self.buffer_chunks = source.buffer_chunks

    @property
    def density(self) -> float:
        """The wrapped source's fraction of stored values."""
        return self.source.density

    def chunk_rows(self, batch_size: int) -> int:
        """The wrapped source's chunk size."""
        return self.source.chunk_rows(batch_size)

    def _binary(self, block: Any) -> Any:
        return detected(block, self.threshold)

    def batches(
        self, idx: np.ndarray, batch_size: int, rng: np.random.Generator | None
    ) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """The wrapped source's mini-batches, binarised."""
        for rows, block in self.source.batches(idx, batch_size, rng):
            yield rows, self._binary(block)

    def chunks(self, chunk_rows: int | None = None) -> Iterator[tuple[int, Any]]:
        """The wrapped source's row chunks, binarised."""
        for start, block in self.source.chunks(chunk_rows):
            yield start, self._binary(block)

    def panel_chunks(
        self, cols: np.ndarray, chunk_rows: int | None = None
    ) -> Iterator[np.ndarray]:
        """The wrapped source's panel blocks, binarised (float64)."""
        for block in self.source.panel_chunks(cols, chunk_rows):
            yield detected(block, self.threshold).astype(np.float64)


def is_backed_matrix(X: Any) -> bool:
    """Whether ``X`` is an on-disk matrix (h5py dataset, anndata sparse dataset)."""
    if sp.issparse(X) or isinstance(X, np.ndarray):
        # in memory, including anndata's view classes (SparseCSRMatrixView, ...)
        return False
    module = type(X).__module__ or ""
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
    cannot be read by rows and is refused.

    Parameters
    ----------
    X : h5py.Dataset or anndata CSRDataset
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
        else:
            self._density = 1.0

    @property
    def density(self) -> float:
        """Fraction of stored values (1 for a dense dataset)."""
        return self._density

    def _read(self, start: int, stop: int) -> np.ndarray | sp.csr_matrix:
        block = self.X[start:stop]
        block = sp.csr_matrix(block) if sp.issparse(block) else np.asarray(block)
        return self._native(block)

    def chunks(self, chunk_rows: int | None = None) -> Iterator[tuple[int, Any]]:
        """Yield ``(start, block)`` for contiguous row blocks read from disk."""
        step = chunk_rows or self.chunk_rows(1)
        for start in range(0, self.n_obs, step):
            yield start, self._read(start, min(start + step, self.n_obs))

    def _load(
        self, chunk_ids: np.ndarray, members: np.ndarray, chunk_rows: int
    ) -> tuple[np.ndarray, Any]:
        """Read the chunks ``chunk_ids`` and keep rows ``members`` (sorted)."""
        blocks = []
        ids = []
        for c in np.sort(chunk_ids):
            start = int(c) * chunk_rows
            stop = min(start + chunk_rows, self.n_obs)
            want = members[(members >= start) & (members < stop)]
            if len(want) == 0:
                continue
            block = self._read(start, stop)
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

    def panel_chunks(
        self, cols: np.ndarray, chunk_rows: int | None = None
    ) -> Iterator[np.ndarray]:
        """Yield float64 row blocks of columns ``cols`` only, in row order.

        A dense HDF5 dataset is read column-selectively (only the panel columns leave
        the disk); a CSR dataset is read by row chunks and the columns picked in
        memory.
        """
        cols = np.asarray(cols)
        order = np.argsort(cols, kind="stable")
        sorted_cols = cols[order]
        inverse = np.empty_like(order)
        inverse[order] = np.arange(len(order))
        dense = not hasattr(self.X, "format")
        if chunk_rows is None:
            chunk_rows = (
                max(CHUNK_ENTRIES // max(len(cols), 1), 1)
                if dense
                else self.chunk_rows(1)
            )
        for start in range(0, self.n_obs, chunk_rows):
            stop = min(start + chunk_rows, self.n_obs)
            if dense:
                block = np.asarray(self.X[start:stop, sorted_cols])[:, inverse]
                block = self._native(block)
            else:
                block = self._read(start, stop)[:, cols]
            block = dense_float(block, np.float64)
            check_finite_panel(block, start, stop)
            yield block

    @staticmethod
    def _emit(ids: np.ndarray, block: Any, start: int) -> tuple[np.ndarray, np.ndarray]:
        part = block[start : start + len(ids)]
        order = np.argsort(ids, kind="stable")
        return ids[order], dense_float(part[order])


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
