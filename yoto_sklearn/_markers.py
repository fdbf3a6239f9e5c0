"""Marker statistics for ``marker_coverage``: one-vs-rest AUROC of every gene.

``YOTOSelector(marker_coverage=w)`` asks the selection for panels in which every
class of one classification task (``marker_task``) has a gene that separates it
from the other classes on its own: a marker, as panel designers and tree
classifiers read panels. YOTO's network combines genes, so without the term it
can solve a task with genes none of which marks a class alone; spapros's
evaluator scores cell-type recovery with tree classifiers, which split on one
gene at a time.

The statistic is ``A[g, c]``, the area under the ROC curve of gene ``g`` for
class ``c`` against the other labelled cells (the Mann-Whitney U over the two
groups' sizes, ties counted half; 1 when every cell of ``c`` expresses ``g`` more
than every other cell, 0.5 for no difference). It is computed once before
training, from the training cells labelled for the task (at most
:data:`MAX_CELLS`, sampled class by class beyond that), with exact ranks, a block
of genes at a time, from the row source's chunks: nothing but the sampled cells
is held (float32; sparse rows when the source is sparse). The selection term
itself lives with the network (``_network.marker_gain``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import Any

import numpy as np
import scipy.sparse as sp
from scipy.stats import rankdata

from ._reads import row_blocks
from ._targets import CLASSIFICATION, TaskSpec

MAX_CELLS = 10_000  # cells the statistic is computed from, at most
GENE_BLOCK = 512  # genes ranked at once (MAX_CELLS x GENE_BLOCK float64: 41 MB)


def marker_task_index(tasks: Sequence[TaskSpec], task: str | int | None) -> int:
    """Position of the task whose classes need markers (``marker_task``).

    None: the first classification task. Raises ``ValueError`` for a task that
    does not exist or is not a classification task.
    """
    names = [t.name for t in tasks]
    if task is None:
        found = [j for j, t in enumerate(tasks) if t.kind == CLASSIFICATION]
        if not found:
            raise ValueError(
                "marker_coverage needs a classification task (markers separate "
                f"classes); the tasks are all regression: {names}."
            )
        return found[0]
    if isinstance(task, str):
        if task not in names:
            raise ValueError(f"marker_task={task!r} is not a task name: {names}.")
        j = names.index(task)
    else:
        j = int(task)
        if not 0 <= j < len(tasks):
            raise ValueError(
                f"marker_task={task!r} is out of range: there are {len(tasks)} "
                f"task(s), {names}."
            )
    if tasks[j].kind != CLASSIFICATION:
        raise ValueError(
            f"marker_task={task!r} is a regression task ({names[j]!r}); markers "
            "need a classification task."
        )
    return j


def sample_cells(
    codes: np.ndarray, rows: np.ndarray, rng: np.random.Generator
) -> np.ndarray:
    """The labelled cells of ``rows`` to compute the statistic from, sorted.

    All of them up to :data:`MAX_CELLS`; beyond, the same number from every class
    (a class with fewer cells gives all of its cells).
    """
    labelled = rows[~np.isnan(codes[rows])]
    if len(labelled) <= MAX_CELLS:
        return np.sort(labelled)
    classes = codes[labelled].astype(np.int64)
    per_class = max(MAX_CELLS // (classes.max() + 1), 1)
    keep = []
    for c in np.unique(classes):
        members = labelled[classes == c]
        take = min(per_class, len(members))
        keep.append(rng.choice(members, size=take, replace=False))
    return np.sort(np.concatenate(keep))


def one_vs_rest_auroc(X: np.ndarray | sp.spmatrix, labels: np.ndarray) -> np.ndarray:
    """``A[g, c]``: AUROC of column ``g`` for class ``c`` vs the other rows.

    ``labels`` are class codes ``0 .. C-1``; a class without a row, or with every
    row, gets 0.5 (no evidence either way). Exact ranks with ties averaged.
    """
    n, n_genes = X.shape
    n_classes = int(labels.max()) + 1 if len(labels) else 0
    counts = np.bincount(labels, minlength=n_classes).astype(np.float64)
    onehot = sp.csr_matrix((np.ones(n), (labels, np.arange(n))), shape=(n_classes, n))
    X = X.tocsc() if sp.issparse(X) else np.asarray(X)
    out = np.full((n_genes, n_classes), 0.5)
    rest = n - counts
    valid = (counts > 0) & (rest > 0)
    for start in range(0, n_genes, GENE_BLOCK):
        stop = min(start + GENE_BLOCK, n_genes)
        block = X[:, start:stop]
        block = block.toarray() if sp.issparse(block) else block
        rank_sums = onehot @ rankdata(block, axis=0)  # (C, genes in block)
        u = rank_sums - (counts * (counts + 1) / 2)[:, None]
        auc = u[valid] / (counts[valid] * rest[valid])[:, None]
        out[start:stop, valid] = auc.T
    return out


def marker_table(
    source,
    codes: np.ndarray,
    rows: np.ndarray,
    n_classes: int,
    rng: np.random.Generator,
) -> np.ndarray:
    """``A`` (n_vars x n_classes, float32) from the training ``rows`` of a source.

    ``codes`` are the task's class codes for every cell (NaN: unlabelled).
    """
    cells = sample_cells(codes, np.asarray(rows), rng)
    parts, order = [], []
    for pos, block in row_blocks(source, cells):
        parts.append(block.astype(np.float32))  # ranks need only the order
        order.append(pos)
    if not parts:
        return np.full((source.n_vars, n_classes), 0.5, dtype=np.float32)
    stack = sp.vstack if sp.issparse(parts[0]) else np.vstack
    X = stack(parts)
    where = np.concatenate(order)
    labels = codes[cells][where].astype(np.int64)
    table = np.full((source.n_vars, n_classes), 0.5)
    auc = one_vs_rest_auroc(X, labels)
    table[:, : auc.shape[1]] = auc
    return table.astype(np.float32)


def with_markers(
    panel: Any,
    tasks: Sequence[TaskSpec],
    data: Any,
    weight: float,
    task: str | int | None,
    seed: int,
) -> Any:
    """``panel`` (a ``PanelDesign``) with its marker table, when ``weight`` > 0.

    ``data`` is the fit's ``TrainingData`` (its source, encoded targets and
    training rows); the cells are sampled with their own generator, so the
    training RNG is untouched.
    """
    if not weight:
        return panel
    j = marker_task_index(tasks, task)
    rng = np.random.default_rng(seed + 3)
    table = marker_table(data.source, data.Y[:, j], data.train_idx,
                         tasks[j].n_outputs, rng)  # fmt: skip
    return replace(panel, markers=table)
