"""The statistics pass over a row source: finiteness, column mean and std.

Public as :func:`yoto_sklearn.sources.scan_columns`.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import scipy.sparse as sp

from ._orders import map_row_ranges, reads_row_ranges
from ._validation import check_float32_range


def chunk_moments(block: Any) -> tuple[int, np.ndarray, np.ndarray]:
    """Rows, column mean and squared deviations of one block (float64)."""
    n_c = block.shape[0]
    if sp.issparse(block):
        block = block.astype(np.float64)
        mean_c = np.asarray(block.sum(axis=0)).ravel() / n_c
        sq = np.asarray(block.multiply(block).sum(axis=0)).ravel()
        return n_c, mean_c, np.maximum(sq - n_c * mean_c**2, 0.0)
    block = np.asarray(block, dtype=np.float64)
    mean_c = block.mean(axis=0)
    return n_c, mean_c, ((block - mean_c) ** 2).sum(axis=0)


class _Moments:
    """Column mean and squared deviations, merged chunk by chunk (Chan et al.)."""

    def __init__(self, n_vars: int) -> None:
        self.mean = np.zeros(n_vars)
        self.m2 = np.zeros(n_vars)
        self.count = 0

    def merge(self, part: tuple[int, np.ndarray, np.ndarray] | None) -> None:
        """Add one block's :func:`chunk_moments` (None: an empty block)."""
        if part is None:
            return
        n_c, mean_c, m2_c = part
        total = self.count + n_c
        delta = mean_c - self.mean
        self.mean = self.mean + delta * (n_c / total)
        self.m2 = self.m2 + m2_c + delta**2 * (self.count * n_c / total)
        self.count = total

    def std(self) -> np.ndarray:
        std = np.sqrt(self.m2 / max(self.count, 1))
        std[~(std > 1e-12)] = 1.0
        return std


def _chunk_pass(
    source: Any,
    start: int,
    stop: int,
    sel: np.ndarray | None,
    with_stats: bool,
    every: bool,
) -> tuple[Any, Any]:
    """One chunk of :func:`scan_columns`: checked, then its moments (in a worker)."""
    block = source.read_chunk(start, stop)
    return _checked_moments(block, start, sel, with_stats, every)


def _checked_moments(
    block: Any, start: int, sel: np.ndarray | None, with_stats: bool, every: bool
) -> tuple[Any, Any]:
    values = block.data if sp.issparse(block) else np.asarray(block)
    rows = f"rows {start}-{start + block.shape[0] - 1}"
    if values.dtype.kind == "f" and not np.isfinite(values).all():
        raise ValueError(f"Input X contains NaN or infinity (found in {rows}).")
    check_float32_range(values, f" ({rows})")
    all_rows = chunk_moments(block) if every and block.shape[0] else None
    if not with_stats:
        return all_rows, None
    if sel is not None:
        keep = sel[start : start + block.shape[0]]
        if not keep.all():
            block = block[np.flatnonzero(keep)]
    return all_rows, chunk_moments(block) if block.shape[0] else None


def scan_columns(
    source: Any,
    idx: np.ndarray | None,
    with_stats: bool = True,
    chunk_rows: int | None = None,
    *,
    all_rows_mean: bool = False,
    n_jobs: Any = None,
) -> tuple[np.ndarray | None, ...]:
    """One streaming pass: check every value is finite, and column mean / std.

    The statistics (float64, over rows ``idx`` or all rows) are accumulated chunk by
    chunk, so neither a dense matrix nor a copy of the selected rows is built; constant
    columns get a standard deviation of 1. In-memory and backed sources of the same
    data give identical results. With ``all_rows_mean`` the same pass also returns
    the mean over every row (a third value), e.g. for an expression window that must
    mean "over the X given" while standardisation uses the training rows.

    With ``n_jobs`` (a source with ``read_chunk``, which then replaces ``chunks``:
    the row ranges are the same) the chunks are read and
    summarised by joblib workers (:func:`~yoto_sklearn.sources.map_row_ranges`) and
    merged here in row order: the result is the serial one, bit for bit.

    Raises
    ------
    ValueError
        If the matrix holds NaN or infinity.
    """
    rows = _Moments(source.n_vars)
    every = _Moments(source.n_vars) if all_rows_mean else None
    sel = None if idx is None else np.zeros(source.n_obs, dtype=bool)
    if sel is not None:
        sel[idx] = True
    args = (sel, with_stats, every is not None)
    if n_jobs not in (None, 1) and reads_row_ranges(source):  # in parallel
        step = chunk_rows or source.chunk_rows(1)
        parts = map_row_ranges(source, _chunk_pass, step, n_jobs, *args)
    else:  # the protocol's chunks(), here
        parts = (_checked_moments(b, a, *args) for a, b in source.chunks(chunk_rows))
    for all_rows, selected in parts:  # merged in row order: the serial result
        if every is not None:
            every.merge(all_rows)
        rows.merge(selected)
    stats = (rows.mean, rows.std()) if with_stats else (None, None)
    return (*stats, every.mean) if every is not None else stats
