"""Raw counts in, model-ready values out: library-size normalisation + log1p on the fly.

Reference atlases store raw counts (the CELLxGENE Census's ``raw`` layer, most
``tiledbsoma.io.from_anndata`` exports, a backed h5ad's ``X``). With
``YOTOSelector(normalize_counts=True)`` each cell is scaled so that its genes sum to
``target_sum`` (10,000; a float sets another) and then ``log1p``-transformed, as
``scanpy.pp.normalize_total(target_sum=...)`` followed by ``scanpy.pp.log1p`` does
it, but chunk by chunk while the data stream in: a sparse matrix stays sparse and
nothing is written back. The transform is part of the fitted model (stored in its
file) and applied again at prediction time to the cells given.

The library size is the sum over **all input genes of the cell** (the columns of the
``X`` given to ``fit``, which are the model's ``n_features_in_`` genes at
prediction), computed once per input in one pass over its rows and then used by
every read (mini-batches, statistics, panel columns), so training and prediction see
exactly the same values. Prediction therefore reads each cell's genes once for its
library size even where it otherwise reads only the panel columns. Cells whose
genes sum to 0 stay 0 (as in scanpy).
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from typing import Any

import numpy as np
import scipy.sparse as sp

__all__ = [
    "TARGET_SUM",
    "NormalizedSource",
    "check_counts_options",
    "count_target_sum",
    "log_normalize",
    "normalized",
]

TARGET_SUM = 1e4


def count_target_sum(normalize_counts: bool | float) -> float | None:
    """The target sum of ``normalize_counts`` (True: 10,000), or None when off."""
    if isinstance(normalize_counts, bool | np.bool_):
        return TARGET_SUM if normalize_counts else None
    return float(normalize_counts)


def check_counts_options(
    normalize_counts: bool | float, binarize: bool | float, owner: str
) -> None:
    """Refuse ``normalize_counts`` together with ``binarize`` (one ValueError)."""
    on = normalize_counts is not False and normalize_counts is not np.False_
    if on and binarize is not False and binarize is not np.False_:
        raise ValueError(
            f"{owner}: normalize_counts and binarize exclude each other (detection "
            "x > threshold is read on the counts as stored); choose one."
        )


def log_normalize(block: Any, library: np.ndarray, target_sum: float) -> Any:
    """``log1p(block / (library / target_sum))`` row-wise, float32; sparse stays sparse.

    Computed in float64 and rounded once to float32, the precision the network
    trains in, whatever path (mini-batch, chunk or panel block) reads the cells.
    """
    divisor = np.asarray(library, dtype=np.float64) / float(target_sum)
    divisor[divisor == 0] = 1.0  # an empty cell stays empty (scanpy does the same)
    if sp.issparse(block):
        out = sp.csr_matrix(block, dtype=np.float64, copy=True)
        out.data /= np.repeat(divisor, np.diff(out.indptr))
        np.log1p(out.data, out=out.data)
        return out.astype(np.float32)
    values = np.asarray(block, dtype=np.float64) / divisor[:, None]
    return np.log1p(values).astype(np.float32)


class NormalizedSource:
    """A row source whose values are ``log1p`` of library-size-normalised counts.

    Wraps another row source (same batches, same order, see
    :mod:`yoto_sklearn.sources`); the library sizes (row sums over every column) are
    taken in the first pass over the rows and kept (one float64 per cell).

    Parameters
    ----------
    source : RowSource
        The counts, cells by genes.
    target_sum : float, default=TARGET_SUM
        What each cell's genes sum to before ``log1p``.

    Raises
    ------
    ValueError
        While reading, if a value is negative (counts are not).
    """

    def __init__(self, source: Any, target_sum: float = TARGET_SUM) -> None:
        self.source = source
        self.target_sum = float(target_sum)
        self.n_obs, self.n_vars = source.n_obs, source.n_vars
        self.shuffle = source.shuffle
        self.buffer_chunks = source.buffer_chunks
        self.var_names = getattr(source, "var_names", None)
        self._library: np.ndarray | None = None
        self._warned = False

    @property
    def density(self) -> float:
        """The wrapped source's fraction of stored values."""
        return self.source.density

    def chunk_rows(self, batch_size: int) -> int:
        """The wrapped source's chunk size."""
        return self.source.chunk_rows(batch_size)

    def _check_counts(self, block: Any, start: int) -> None:
        values = block.data if sp.issparse(block) else np.asarray(block)
        rows = f"rows {start}-{start + block.shape[0] - 1}"
        if values.size and np.nanmin(values) < 0:
            raise ValueError(
                "normalize_counts expects raw counts, but X has negative values "
                f"({rows}); give counts, or log-normalised data without "
                "normalize_counts."
            )
        if not self._warned and values.size and not np.all(values == np.round(values)):
            self._warned = True
            warnings.warn(
                "normalize_counts expects raw counts, but X has non-integer values "
                f"({rows}): data already normalised would be normalised twice. "
                "Ignore this for non-integer counts (e.g. ambient-corrected).",
                UserWarning,
                stacklevel=2,
            )

    def _row_sums(self, block: Any) -> np.ndarray:
        if sp.issparse(block):
            return np.asarray(block.sum(axis=1, dtype=np.float64)).ravel()
        return np.asarray(block, dtype=np.float64).sum(axis=1)

    def chunks(self, chunk_rows: int | None = None) -> Iterator[tuple[int, Any]]:
        """The wrapped source's row chunks, normalised (library sizes kept)."""
        filling = self._library is None
        library = np.empty(self.n_obs) if filling else self._library
        for start, block in self.source.chunks(chunk_rows):
            stop = start + block.shape[0]
            if filling:
                self._check_counts(block, start)
                library[start:stop] = self._row_sums(block)
            yield start, log_normalize(block, library[start:stop], self.target_sum)
        if filling:  # complete only after a whole pass
            self._library = library

    @property
    def library(self) -> np.ndarray:
        """Each cell's sum over all genes (float64), from one pass if not yet known."""
        if self._library is None:
            for _ in self.chunks():
                pass
        return self._library

    def batches(
        self, idx: np.ndarray, batch_size: int, rng: np.random.Generator | None
    ) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """The wrapped source's mini-batches, normalised."""
        library = self.library
        for rows, block in self.source.batches(idx, batch_size, rng):
            yield rows, log_normalize(block, library[rows], self.target_sum)

    def panel_chunks(
        self, cols: np.ndarray, chunk_rows: int | None = None
    ) -> Iterator[np.ndarray]:
        """Float64 row blocks of columns ``cols``, normalised by the whole cell."""
        library = self.library
        start = 0
        for block in self.source.panel_chunks(cols, chunk_rows):
            stop = start + block.shape[0]
            part = log_normalize(block, library[start:stop], self.target_sum)
            yield part.astype(np.float64)
            start = stop


def normalized(source: Any, target_sum: float) -> NormalizedSource:
    """``source`` seen as ``log1p`` of library-size-normalised counts."""
    return NormalizedSource(source, target_sum)
