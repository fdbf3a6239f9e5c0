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

from ._design import binarize_threshold
from .sources import WrappedSource

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
    counts = count_target_sum(normalize_counts) is not None
    if counts and binarize_threshold(binarize) is not None:
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


class NormalizedSource(WrappedSource):
    """A row source whose values are ``log1p`` of library-size-normalised counts.

    Wraps another row source (same batches, same order, see
    :mod:`yoto_sklearn.sources`). A block of contiguous rows (all columns) is
    normalised by its own row sums; mini-batches and panel columns by the library
    sizes (one float64 per cell), which are the row sums kept from a pass over the
    rows (the statistics pass of ``fit``), or taken in one pass when first needed.

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
        super().__init__(source)
        self.target_sum = float(target_sum)
        self._sums = np.full(self.n_obs, np.nan)  # row sums seen so far
        self._complete = False
        self._warned = False

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

    def _rows(self, block: Any, start: int) -> Any:
        """All columns of rows ``start:``: normalised by their own sums (kept)."""
        self._check_counts(block, start)
        sums = row_sums(block)
        self._sums[start : start + len(sums)] = sums
        return log_normalize(block, sums, self.target_sum)

    def _batch(self, block: np.ndarray, rows: np.ndarray) -> np.ndarray:
        return log_normalize(block, self.library[rows], self.target_sum)

    def _panel(self, block: np.ndarray, start: int) -> np.ndarray:
        library = self.library[start : start + block.shape[0]]
        return log_normalize(block, library, self.target_sum).astype(np.float64)

    @property
    def library(self) -> np.ndarray:
        """Each cell's sum over all genes (float64), from one pass if not yet known."""
        if not self._complete:  # checked once, not at every mini-batch
            if np.isnan(self._sums).any():
                for _ in self.chunks():
                    pass
            self._complete = True
        return self._sums

    def panel_chunks(
        self, cols: np.ndarray, chunk_rows: int | None = None, n_jobs: Any = None
    ) -> Iterator[np.ndarray]:
        """Panel blocks normalised by the whole cell (library sizes known first)."""
        self.library  # noqa: B018 - computed here, before workers get a copy
        return super().panel_chunks(cols, chunk_rows, n_jobs)


def row_sums(block: Any) -> np.ndarray:
    """Float64 sum of each row of a dense or sparse block (a cell's library size)."""
    if sp.issparse(block):
        return np.asarray(block.sum(axis=1, dtype=np.float64)).ravel()
    return np.asarray(block, dtype=np.float64).sum(axis=1)


def normalized(source: Any, target_sum: float) -> NormalizedSource:
    """``source`` seen as ``log1p`` of library-size-normalised counts."""
    return NormalizedSource(source, target_sum)
