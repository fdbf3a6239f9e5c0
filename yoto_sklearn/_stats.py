"""The statistics pass over a row source: finiteness, column mean and std.

Public as :func:`yoto_sklearn.sources.scan_columns`.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import scipy.sparse as sp

from ._validation import check_float32_range


class _Moments:
    """Column mean and squared deviations, merged chunk by chunk (Chan et al.)."""

    def __init__(self, n_vars: int) -> None:
        self.mean = np.zeros(n_vars)
        self.m2 = np.zeros(n_vars)
        self.count = 0

    def add(self, block: Any) -> None:
        n_c = block.shape[0]
        if n_c == 0:
            return
        if sp.issparse(block):
            block = block.astype(np.float64)
            mean_c = np.asarray(block.sum(axis=0)).ravel() / n_c
            sq = np.asarray(block.multiply(block).sum(axis=0)).ravel()
            m2_c = np.maximum(sq - n_c * mean_c**2, 0.0)
        else:
            block = np.asarray(block, dtype=np.float64)
            mean_c = block.mean(axis=0)
            m2_c = ((block - mean_c) ** 2).sum(axis=0)
        total = self.count + n_c
        delta = mean_c - self.mean
        self.mean = self.mean + delta * (n_c / total)
        self.m2 = self.m2 + m2_c + delta**2 * (self.count * n_c / total)
        self.count = total

    def std(self) -> np.ndarray:
        std = np.sqrt(self.m2 / max(self.count, 1))
        std[~(std > 1e-12)] = 1.0
        return std


def scan_columns(
    source: Any,
    idx: np.ndarray | None,
    with_stats: bool = True,
    chunk_rows: int | None = None,
    *,
    all_rows_mean: bool = False,
) -> tuple[np.ndarray | None, ...]:
    """One streaming pass: check every value is finite, and column mean / std.

    The statistics (float64, over rows ``idx`` or all rows) are accumulated chunk by
    chunk, so neither a dense matrix nor a copy of the selected rows is built; constant
    columns get a standard deviation of 1. In-memory and backed sources of the same
    data give identical results. With ``all_rows_mean`` the same pass also returns
    the mean over every row (a third value), e.g. for an expression window that must
    mean "over the X given" while standardisation uses the training rows.

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
    for start, block in source.chunks(chunk_rows):
        values = block.data if sp.issparse(block) else np.asarray(block)
        if values.dtype.kind == "f" and not np.isfinite(values).all():
            raise ValueError(
                "Input X contains NaN or infinity (found in rows "
                f"{start}-{start + block.shape[0] - 1})."
            )
        check_float32_range(values, f" (rows {start}-{start + block.shape[0] - 1})")
        if every is not None:
            every.add(block)
        if not with_stats:
            continue
        if sel is not None:
            keep = sel[start : start + block.shape[0]]
            if not keep.all():
                block = block[np.flatnonzero(keep)]
        rows.add(block)
    stats = (rows.mean, rows.std()) if with_stats else (None, None)
    return (*stats, every.mean) if every is not None else stats
