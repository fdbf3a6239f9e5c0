"""Pictures per classification task: confusion matrices and dot plots."""

from __future__ import annotations

import os
import warnings
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from sklearn.utils._param_validation import HasMethods, validate_params

from .._docs import shared
from .._targets import has_classes

if TYPE_CHECKING:  # pragma: no cover
    from matplotlib.figure import Figure
from ._common import (
    DPI,
    PATH,
    check_fitted,
    figure,
    label_strings,
    save_figure,
    task_png,
    task_table,
)


@validate_params(
    {
        "y_true": ["array-like"],
        "y_pred": ["array-like"],
        "labels": [None, "array-like"],
        "title": [None, str],
        "normalize": ["boolean"],
        "cells": [None, str],
        "path": PATH,
        "dpi": DPI,
    },
    prefer_skip_nested_validation=True,
)
@shared("path_dpi")
def plot_confusion_matrix(
    y_true: Any,
    y_pred: Any,
    *,
    labels: Sequence[Any] | None = None,
    title: str | None = None,
    normalize: bool = True,
    cells: str | None = None,
    path: str | os.PathLike[str] | None = None,
    dpi: int = 120,
) -> Figure:
    """Plot the confusion matrix of one classification task.

    Parameters
    ----------
    y_true, y_pred : array-like of shape (n_cells,)
        True and predicted labels. Cells whose true label is missing (``None``
        or ``NaN``) are left out.
    labels : sequence, optional
        Class order; defaults to the sorted union of the observed labels.
    title : str, optional
        Figure title (e.g. the task name).
    normalize : bool, default=True
        Show the fraction of each true class (rows sum to 1), with the cell
        counts in the row labels.
    cells : str, optional
        Which cells these are, for the title (e.g. ``"held-out test cells"`` or
        ``"training cells (not held out)"``): an accuracy on the cells a model
        was trained on must not read like a held-out result.
    {path_dpi}

    Returns
    -------
    fig : matplotlib.figure.Figure

    Raises
    ------
    ValueError
        If ``y_true`` and ``y_pred`` differ in length or no cell is labelled.
    ImportError
        If matplotlib is not installed.
    """
    from sklearn.metrics import confusion_matrix

    y_true = np.asarray(y_true, dtype=object).ravel()
    y_pred = np.asarray(y_pred, dtype=object).ravel()
    if y_true.shape != y_pred.shape:
        raise ValueError(
            f"y_true has {y_true.size} labels but y_pred has {y_pred.size}"
        )
    observed = ~pd.isna(y_true)
    if not observed.any():
        raise ValueError("no cell has a true label: nothing to plot")
    y_true = label_strings(y_true[observed])
    y_pred = label_strings(y_pred[observed])
    if labels is None:
        labels = sorted(set(y_true) | set(y_pred))
    labels = list(label_strings(labels))
    cm = confusion_matrix(y_true, y_pred, labels=labels)
    counts = cm.sum(axis=1)
    shown = cm / np.maximum(counts, 1)[:, None] if normalize else cm

    n = len(labels)
    size = min(12.0, 2.5 + 0.45 * n)
    fig = figure((size + 1.0, size))
    ax = fig.subplots()
    image = ax.imshow(shown, cmap="Blues", vmin=0, vmax=1 if normalize else None)
    fig.colorbar(image, ax=ax, shrink=0.8, label="fraction of true class")
    ax.set_xticks(np.arange(n), labels, rotation=60, ha="right", fontsize=8)
    ax.set_yticks(
        np.arange(n),
        [f"{lab} (n={c})" for lab, c in zip(labels, counts, strict=True)],
        fontsize=8,
    )
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    if n <= 20:
        for i in range(n):
            for j in range(n):
                if cm[i, j]:
                    value = f"{shown[i, j]:.2f}" if normalize else str(cm[i, j])
                    ax.text(
                        j, i, value, ha="center", va="center", fontsize=7,
                        color="white" if shown[i, j] > 0.5 * shown.max() else "black",
                    )  # fmt: skip
    accuracy = float(np.trace(cm) / max(cm.sum(), 1))
    which = f"{int(cm.sum())} {cells}" if cells else f"{int(cm.sum())} cells"
    ax.set_title(f"{title + ': ' if title else ''}accuracy {accuracy:.3f} on {which}")
    return save_figure(fig, path, dpi)


@validate_params(
    {
        "selector": [HasMethods(["predict"])],
        "X": "no_validation",
        "y": ["array-like"],
        "directory": PATH,
        "prefix": [str],
        "cells": [None, str],
        "dpi": DPI,
    },
    prefer_skip_nested_validation=True,
)
@shared("selector_fitted")
def plot_confusion_matrices(
    selector: Any,
    X: Any,
    y: Any,
    *,
    directory: str | os.PathLike[str] | None = None,
    prefix: str = "confusion_",
    cells: str | None = None,
    dpi: int = 120,
) -> dict[str, Figure]:
    """Plot one confusion matrix per classification task of a fitted selector.

    Parameters
    ----------
    {selector_fitted}
    X : array-like, sparse matrix or AnnData
        Cells to predict.
    y : pandas.DataFrame or array-like of shape (n_cells, n_tasks)
        True labels, one column per task (a DataFrame's columns are matched to
        the tasks by name, an array's by position; missing labels allowed).
    directory : str or path-like, optional
        Write ``{prefix}{task}.png`` there for every classification task.
    prefix : str
        File name prefix (default ``"confusion_"``).
    cells : str, optional
        Which cells these are, for the titles (see
        :func:`plot_confusion_matrix`).
    dpi : int, default=120
        Resolution of the PNGs.

    Returns
    -------
    figures : dict of str to matplotlib.figure.Figure
        One figure per classification task, keyed by task name; empty when
        every task is a regression.
    """
    check_fitted(selector, "task_types_")
    task_types = list(selector.task_types_)
    names = list(getattr(selector, "task_names_", [])) or [
        f"task_{i}" for i in range(len(task_types))
    ]
    if not any(has_classes(t) for t in task_types):
        return {}
    truth = task_table(selector, y, names)
    pred = np.asarray(selector.predict(X), dtype=object).reshape(truth.shape[0], -1)
    classes = getattr(selector, "classes_", None)
    if len(task_types) == 1:
        classes = [classes]
    figures: dict[str, Figure] = {}
    for j, (name, kind) in enumerate(zip(names, task_types, strict=True)):
        if not has_classes(kind):
            continue
        labels = None
        if classes is not None and classes[j] is not None:
            labels = list(classes[j])
        path = task_png(directory, prefix, name)
        figures[str(name)] = plot_confusion_matrix(
            truth[:, j],
            pred[:, j],
            labels=labels,
            title=str(name),
            cells=cells,
            path=path,
            dpi=dpi,
        )
    return figures


def panel_matrix(selector: Any, X: Any) -> np.ndarray:
    """The panel columns of ``X``, best gene first, as a dense float array."""
    import scipy.sparse as sp

    panel = selector.transform(X)  # columns in their original (ascending) order
    if hasattr(panel, "to_numpy"):
        panel = panel.to_numpy()
    if sp.issparse(panel):
        panel = panel.toarray()
    support = np.asarray(selector.support_)
    best_first = np.searchsorted(np.sort(support), support)
    return np.asarray(panel, dtype=np.float64)[:, best_first]


def _panel_names(selector: Any, feature_names: Sequence[str] | None) -> list[str]:
    support = np.asarray(selector.support_)
    if feature_names is not None:
        return [str(feature_names[i]) for i in support]
    names = getattr(selector, "feature_names_in_", None)
    if names is not None:
        return [str(names[i]) for i in support]
    return [f"x{i}" for i in support]


@validate_params(
    {
        "selector": [HasMethods(["transform"])],
        "X": "no_validation",
        "labels": ["array-like"],
        "title": [None, str],
        "feature_names": [None, "array-like"],
        "use_scanpy": [None, "boolean"],
        "path": PATH,
        "dpi": DPI,
    },
    prefer_skip_nested_validation=True,
)
@shared("path_dpi", "selector_fitted")
def plot_panel_expression(
    selector: Any,
    X: Any,
    labels: Any,
    *,
    title: str | None = None,
    feature_names: Sequence[str] | None = None,
    use_scanpy: bool | None = None,
    path: str | os.PathLike[str] | None = None,
    dpi: int = 120,
) -> Figure:
    """Dot plot of the panel genes' expression in each class.

    One row per class, one column per panel gene (best first). The dot's size is
    the fraction of the class's cells in which the gene is detected (value > 0),
    its colour the class's mean expression scaled to [0, 1] per gene, as
    ``scanpy.pl.dotplot(..., standard_scale="var")`` draws it. This is the picture
    to check that a panel has a marker for every class.

    Parameters
    ----------
    {selector_fitted}
    X : array-like, sparse matrix or AnnData
        Cells with the genes seen at fit (e.g. log-normalised expression).
    labels : array-like of shape (n_cells,)
        The class of each cell; missing labels are left out.
    title : str, optional
        Figure title.
    feature_names : sequence of str, optional
        Gene names (default: the names seen at fit).
    use_scanpy : bool, optional
        Draw with ``scanpy.pl.dotplot``. ``None`` uses scanpy when it is
        installed and falls back to matplotlib alone otherwise; both draw the same
        quantities.
    {path_dpi}

    Returns
    -------
    fig : matplotlib.figure.Figure
        The figure.
    """
    check_fitted(selector, "support_")
    panel = panel_matrix(selector, X)
    genes = _panel_names(selector, feature_names)
    labels = np.asarray(labels, dtype=object).ravel()
    if labels.shape[0] != panel.shape[0]:
        raise ValueError(
            f"labels has {labels.shape[0]} entries but X has {panel.shape[0]} cells"
        )
    observed = ~pd.isna(labels)
    panel, labels = panel[observed], label_strings(labels[observed])
    if (panel < 0).any():
        from .._design import SCALED_HINT

        warnings.warn(
            "the panel's values include negative numbers, as scaled data (z-scores) "
            "do: 'fraction of cells detecting' and the class means then mean "
            f"something else; {SCALED_HINT}.",
            UserWarning,
            stacklevel=3,
        )
    classes = sorted(set(labels), key=str)
    mean, frac = class_means(panel, labels, classes)
    order = marker_order(mean)
    panel, genes = panel[:, order], [genes[i] for i in order]
    if use_scanpy is None:
        import importlib.util

        use_scanpy = importlib.util.find_spec("scanpy") is not None
    if use_scanpy:
        fig = _scanpy_dotplot(panel, labels, classes, genes, title)
        if path is not None:  # scanpy lays out for a tight bounding box
            fig.savefig(path, dpi=dpi, bbox_inches="tight")
        return fig
    return plot_class_dots(
        mean[:, order],
        frac[:, order],
        classes=classes,
        genes=genes,
        title=title,
        group_by_class=False,
        path=path,
        dpi=dpi,
    )


def class_means(
    panel: np.ndarray, labels: np.ndarray, classes: Sequence[str]
) -> tuple[np.ndarray, np.ndarray]:
    """Per-class mean expression and fraction of cells detecting (value > 0).

    Returns two arrays of shape (n_classes, n_genes).
    """
    mean = np.vstack([panel[labels == c].mean(axis=0) for c in classes])
    frac = np.vstack([(panel[labels == c] > 0).mean(axis=0) for c in classes])
    return mean, frac


@validate_params(
    {
        "mean": ["array-like"],
        "fraction": ["array-like"],
        "classes": ["array-like"],
        "genes": ["array-like"],
        "title": [None, str],
        "group_by_class": ["boolean"],
        "path": PATH,
        "dpi": DPI,
    },
    prefer_skip_nested_validation=True,
)
@shared("path_dpi")
def plot_class_dots(
    mean: Any,
    fraction: Any,
    *,
    classes: Sequence[str],
    genes: Sequence[str],
    title: str | None = None,
    group_by_class: bool = True,
    path: str | os.PathLike[str] | None = None,
    dpi: int = 120,
) -> Figure:
    """Dot plot drawn from per-class numbers (matplotlib only).

    The same picture as :func:`plot_panel_expression` without scanpy, for
    numbers kept elsewhere (a report's data, ``class_means`` of another panel).

    Parameters
    ----------
    mean, fraction : array-like of shape (n_classes, n_genes)
        Each class's mean expression of each gene, and the fraction of its
        cells in which the gene is detected.
    classes, genes : sequence of str
        Row and column names.
    title : str, optional
        Figure title.
    group_by_class : bool, default=True
        Reorder the genes by the class they mark (block-diagonal picture).
    {path_dpi}

    Returns
    -------
    fig : matplotlib.figure.Figure
    """
    mean = np.asarray(mean, dtype=float)
    frac = np.asarray(fraction, dtype=float)
    classes, genes = [str(c) for c in classes], [str(g) for g in genes]
    if mean.shape != frac.shape or mean.shape != (len(classes), len(genes)):
        raise ValueError(
            f"mean {mean.shape} and fraction {frac.shape} must both have shape "
            f"(n_classes, n_genes) = ({len(classes)}, {len(genes)})"
        )
    if group_by_class:
        order = marker_order(mean)
        mean, frac, genes = mean[:, order], frac[:, order], [genes[i] for i in order]
    low, high = mean.min(axis=0), mean.max(axis=0)
    scaled = (mean - low) / np.where(high > low, high - low, 1.0)
    fig = figure(
        (max(4.0, 0.32 * len(genes) + 2.5), max(2.5, 0.35 * len(classes) + 1.6))
    )
    ax = fig.add_subplot()
    xs, ys = np.meshgrid(np.arange(len(genes)), np.arange(len(classes)))
    dots = ax.scatter(
        xs.ravel(),
        ys.ravel(),
        s=frac.ravel() * 160 + 1,
        c=scaled.ravel(),
        cmap="Reds",
        vmin=0,
        vmax=1,
        edgecolors="0.5",
        linewidths=0.3,
    )
    ax.set_xticks(range(len(genes)), genes, rotation=90, fontsize=8)
    ax.set_yticks(range(len(classes)), classes, fontsize=8)
    ax.set_xlim(-0.7, len(genes) - 0.3)
    ax.set_ylim(len(classes) - 0.5, -0.5)
    ax.set_xlabel("panel gene (grouped by the class it marks)")
    fig.colorbar(dots, ax=ax, label="mean expression\n(scaled per gene)", shrink=0.7)
    for size in (0.25, 0.5, 1.0):
        ax.scatter([], [], s=size * 160 + 1, c="0.6", label=f"{size:.0%}")
    ax.legend(
        title="detected in",
        loc="upper left",
        bbox_to_anchor=(1.25, 1.0),
        frameon=False,
        fontsize=8,
        title_fontsize=8,
    )
    if title:
        ax.set_title(title)
    return save_figure(fig, path, dpi)


def marker_order(mean: np.ndarray) -> np.ndarray:
    """Genes grouped by the class they mark (a block-diagonal dot plot).

    ``mean`` is (n_classes, n_genes). A gene's class is where its scaled mean is
    highest; within a class the strongest gene comes first.
    """
    low, high = mean.min(axis=0), mean.max(axis=0)
    scaled = (mean - low) / np.where(high > low, high - low, 1.0)
    marked = scaled.argmax(axis=0)
    strength = scaled[marked, np.arange(mean.shape[1])]
    return np.lexsort((-strength, marked))


def _scanpy_dotplot(
    panel: np.ndarray,
    labels: np.ndarray,
    classes: list[str],
    genes: list[str],
    title: str | None,
) -> Figure:
    import anndata
    import matplotlib.pyplot as plt
    import scanpy as sc

    adata = anndata.AnnData(
        panel.astype(np.float32),
        obs=pd.DataFrame(
            {"class": pd.Categorical(labels, categories=classes)},
            index=pd.Index([str(i) for i in range(len(labels))]),
        ),
        var=pd.DataFrame(index=pd.Index(genes)),
    )
    plot = sc.pl.dotplot(
        adata,
        var_names=genes,
        groupby="class",
        standard_scale="var",
        return_fig=True,
        show=False,
    )
    plot.make_figure()
    fig = plot.fig
    if title:  # on the dot axes: scanpy's figure title leaves a blank band
        plot.get_axes()["mainplot_ax"].set_title(title)
    plt.close(fig)  # scanpy draws through pyplot: drop it from pyplot's registry
    return fig


@validate_params(
    {
        "selector": [HasMethods(["transform"])],
        "X": "no_validation",
        "y": ["array-like"],
        "directory": PATH,
        "prefix": [str],
        "use_scanpy": [None, "boolean"],
        "dpi": DPI,
    },
    prefer_skip_nested_validation=True,
)
@shared("selector_fitted")
def plot_panel_expressions(
    selector: Any,
    X: Any,
    y: Any,
    *,
    directory: str | os.PathLike[str] | None = None,
    prefix: str = "panel_expression_",
    use_scanpy: bool | None = None,
    dpi: int = 120,
) -> dict[str, Figure]:
    """One :func:`plot_panel_expression` per classification task.

    Parameters
    ----------
    {selector_fitted}
    X : array-like, sparse matrix or AnnData
        Cells with the genes seen at fit.
    y : pandas.DataFrame or array-like of shape (n_cells, n_tasks)
        True labels, one column per task (a DataFrame's columns are matched to
        the tasks by name, an array's by position).
    directory : str or path-like, optional
        Write ``{prefix}{task}.png`` there for every classification task.
    prefix : str
        File name prefix (default ``"panel_expression_"``).
    use_scanpy : bool, optional
        See :func:`plot_panel_expression`.
    dpi : int, default=120
        Resolution of the PNGs.

    Returns
    -------
    figures : dict of str to matplotlib.figure.Figure
        One figure per classification task, keyed by task name.
    """
    check_fitted(selector, "task_types_")
    names = [str(n) for n in selector.task_names_]
    truth = task_table(selector, y, names)
    figures: dict[str, Figure] = {}
    for j, (name, kind) in enumerate(zip(names, selector.task_types_, strict=True)):
        if not has_classes(kind):
            continue
        path = task_png(directory, prefix, name)
        figures[name] = plot_panel_expression(
            selector,
            X,
            truth[:, j],
            title=name,
            use_scanpy=use_scanpy,
            path=path,
            dpi=dpi,
        )
    return figures
