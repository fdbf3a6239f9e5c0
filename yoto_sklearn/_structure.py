"""Principal components of a row source, streamed: the "structure" targets.

``YOTOSelector(structure_components=m)`` asks the panel to predict, besides the
labels, the top ``m`` principal components of the training cells' expression (all
genes, centred, not scaled: the variation a kNN graph or a clustering of the cells
sees). They are found by a randomized SVD (Halko, Martinsson & Tropp 2011) of the
implicitly centred matrix, computed from row chunks of the source: the matrix is
never densified and never centred in memory, so sparse and backed data work as
they do for training. Passes over the data: one for the sketch, two per power
iteration, one for the projection onto the components, one to project every cell.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from ._reads import row_blocks
from .sources import RowSource

POWER_ITERATIONS = 4  # as scikit-learn's randomized_svd (n_iter="auto")
OVERSAMPLING = 10


@dataclass
class Components:
    """Top principal components and every cell's scores on them."""

    components: np.ndarray  # (m, n_vars), orthonormal rows
    scores: np.ndarray  # (n_obs, m): every cell, train and held out
    explained_variance: np.ndarray  # (m,) over the training cells


def _times(source: RowSource, rows: np.ndarray, mean: np.ndarray, right: np.ndarray):
    """``(X[rows] - mean) @ right``, chunk by chunk (n_rows x l)."""
    out = np.empty((len(rows), right.shape[1]))
    shift = mean @ right
    for pos, block in row_blocks(source, rows):
        out[pos] = np.asarray(block @ right) - shift
    return out


def _transposed_times(
    source: RowSource, rows: np.ndarray, mean: np.ndarray, left: np.ndarray
) -> np.ndarray:
    """``(X[rows] - mean).T @ left``, chunk by chunk (n_vars x l)."""
    out = np.zeros((source.n_vars, left.shape[1]))
    for pos, block in row_blocks(source, rows):
        part = left[pos]
        out += np.asarray(block.T @ part)
        out -= np.outer(mean, part.sum(axis=0))
    return out


def column_means(source: RowSource, rows: np.ndarray) -> np.ndarray:
    """Mean of every column over ``rows`` (float64), chunk by chunk."""
    total = np.zeros(source.n_vars)
    for _, block in row_blocks(source, rows):
        total += np.asarray(block.sum(axis=0)).ravel()
    return total / max(len(rows), 1)


def principal_components(
    source: RowSource,
    rows: np.ndarray,
    n_components: int,
    rng: np.random.Generator,
    mean: np.ndarray | None = None,
) -> Components:
    """Top ``n_components`` PCs of ``source``'s rows ``rows`` (centred, not scaled).

    Every cell of the source (not only ``rows``) is projected onto them.
    """
    rows = np.sort(np.asarray(rows))
    if mean is None:
        mean = column_means(source, rows)
    m = min(n_components, source.n_vars, len(rows) - 1)
    width = min(m + OVERSAMPLING, source.n_vars, len(rows))
    sketch = rng.standard_normal((source.n_vars, width))
    Q = np.linalg.qr(_times(source, rows, mean, sketch))[0]
    for _ in range(POWER_ITERATIONS):
        Z = np.linalg.qr(_transposed_times(source, rows, mean, Q))[0]
        Q = np.linalg.qr(_times(source, rows, mean, Z))[0]
    B = _transposed_times(source, rows, mean, Q).T  # (width, n_vars) = Q^T Xc
    _, s, vt = np.linalg.svd(B, full_matrices=False)
    components = vt[:m]
    # a component's sign is arbitrary: make its largest loading positive
    signs = np.sign(components[np.arange(m), np.abs(components).argmax(axis=1)])
    components = components * signs[:, None]
    every = np.arange(source.n_obs)
    scores = _times(source, every, mean, components.T)
    return Components(components, scores, s[:m] ** 2 / max(len(rows) - 1, 1))


def structure_targets(
    source: RowSource,
    Y: np.ndarray,
    train: np.ndarray,
    n_components: int,
    weight: float,
    rng: np.random.Generator,
) -> tuple[np.ndarray, list[float]]:
    """``Y`` with the top principal components appended as target columns.

    The components come from the training rows ``train``; every cell's scores are
    standardised over the training rows (float32 columns). The loss weights split
    ``weight`` over the components in proportion to the variance each explains.
    """
    pcs = principal_components(source, train, n_components, rng)
    scores = pcs.scores - pcs.scores[train].mean(axis=0)
    spread = scores[train].std(axis=0)
    scores /= np.where(spread > 0, spread, 1.0)
    share = pcs.explained_variance / max(pcs.explained_variance.sum(), 1e-300)
    return np.hstack([Y, scores.astype(np.float32)]), [float(weight * w) for w in share]


def with_structure(
    source: RowSource, data: Any, n_components: int, weight: float, seed: int
) -> tuple[Any, list[float]]:
    """The fit's ``TrainingData`` with the structure targets, and their weights.

    ``structure_components`` = 0 returns ``data`` unchanged and no weights. The
    SVD draws from its own generator, so the training RNG is untouched.
    """
    if not n_components:
        return data, []
    rng = np.random.default_rng(seed + 2)
    Y, weights = structure_targets(source, data.Y, data.train_idx,
                                   int(n_components), float(weight), rng)  # fmt: skip
    return replace(data, Y=Y), weights
