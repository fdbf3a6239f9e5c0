"""Pictures of a fitted YOTOSelector (matplotlib is an optional extra).

Every function builds a :class:`matplotlib.figure.Figure` without pyplot (no
GUI backend, no global figure registry), returns it, and writes a PNG when
``path`` is given. Install matplotlib with ``pip install "yoto-sklearn[plot]"``.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from ._targets import has_classes

if TYPE_CHECKING:  # pragma: no cover
    from matplotlib.figure import Figure

__all__ = [
    "plot_training_curves",
    "plot_gene_scores",
    "plot_confusion_matrix",
    "plot_confusion_matrices",
    "plot_panel_expression",
    "plot_panel_expressions",
    "plot_selection_frequency",
]

_PLOT_HINT = 'install it with: pip install "yoto-sklearn[plot]"'


def _figure(figsize: tuple[float, float]) -> Figure:
    """Return a pyplot-free Figure, or raise a helpful ImportError."""
    try:
        from matplotlib.figure import Figure
    except ImportError as exc:
        raise ImportError(
            f"yoto_sklearn.plotting needs matplotlib, which is not installed; "
            f"{_PLOT_HINT}"
        ) from exc
    return Figure(figsize=figsize, layout="constrained")


def _integer_epochs(ax: Any) -> None:
    from matplotlib.ticker import MaxNLocator

    ax.xaxis.set_major_locator(MaxNLocator(integer=True))


def _save(fig: Figure, path: str | os.PathLike[str] | None, dpi: int) -> Figure:
    if path is not None:
        fig.savefig(path, dpi=dpi)
    return fig


def label_strings(values: Any) -> np.ndarray:
    """Class labels as strings, integral numbers without a decimal point.

    Labels ``2``, ``2.0`` and ``"2"`` all become ``"2"``, so true labels and
    predictions compare equal whatever numeric type either side carries.
    """
    out = []
    for value in np.asarray(values, dtype=object).ravel():
        if isinstance(value, (float, np.floating)) and float(value).is_integer():
            value = int(value)
        out.append(str(value))
    return np.asarray(out, dtype=object)


def task_png(
    directory: str | os.PathLike[str] | None, prefix: str, task: Any
) -> str | None:
    """``directory/{prefix}{task}.png`` with the task name made file-safe."""
    if directory is None:
        return None
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in str(task))
    return os.path.join(directory, f"{prefix}{safe}.png")


def _check_fitted(selector: Any, attribute: str) -> None:
    if not hasattr(selector, attribute):
        raise ValueError(
            f"{type(selector).__name__} has no {attribute!r}: fit it before plotting"
        )


def plot_training_curves(
    selector: Any,
    *,
    path: str | os.PathLike[str] | None = None,
    dpi: int = 120,
) -> Figure:
    """Plot the training and validation loss per epoch, and validation scores.

    Parameters
    ----------
    selector : YOTOSelector
        A fitted selector with ``loss_curve_`` and, when early stopping was
        used, ``validation_loss_curve_`` and ``validation_scores_``.
    path : str or path-like, optional
        Write the figure there as PNG.
    dpi : int, default=120
        Resolution of the PNG.

    Returns
    -------
    fig : matplotlib.figure.Figure
        Left: losses against epochs. Right (when available): validation
        score against epochs (one line per task if the scores are per task).

    Raises
    ------
    ValueError
        If the selector is not fitted.
    ImportError
        If matplotlib is not installed.
    """
    _check_fitted(selector, "loss_curve_")
    train = np.asarray(selector.loss_curve_, dtype=float)
    val_loss = getattr(selector, "validation_loss_curve_", None)
    val_loss = None if val_loss is None else np.asarray(val_loss, dtype=float)
    val_score = getattr(selector, "validation_scores_", None)
    val_score = None if val_score is None else np.asarray(val_score, dtype=float)
    has_scores = val_score is not None and val_score.size > 0

    fig = _figure((9.0, 3.6) if has_scores else (5.0, 3.6))
    axes = fig.subplots(1, 2 if has_scores else 1, squeeze=False)[0]
    ax = axes[0]
    ax.plot(np.arange(1, train.size + 1), train, label="training loss")
    if val_loss is not None and val_loss.size:
        ax.plot(np.arange(1, val_loss.size + 1), val_loss, label="validation loss")
    ax.set_xlabel("epoch")
    _integer_epochs(ax)
    ax.set_ylabel("loss")
    ax.set_title("Loss")
    ax.legend()
    if has_scores:
        ax = axes[1]
        epochs = np.arange(1, val_score.shape[0] + 1)
        if val_score.ndim == 2:
            names = list(getattr(selector, "task_names_", [])) or [
                f"task {i}" for i in range(val_score.shape[1])
            ]
            for j in range(val_score.shape[1]):
                label = names[j] if j < len(names) else f"task {j}"
                ax.plot(epochs, val_score[:, j], label=label)
            ax.legend()
        else:
            ax.plot(epochs, val_score, color="C2")
        ax.set_xlabel("epoch")
        _integer_epochs(ax)
        ax.set_ylabel("validation score")
        ax.set_title("Validation score")
    return _save(fig, path, dpi)


def plot_gene_scores(
    selector: Any,
    *,
    feature_names: Sequence[str] | None = None,
    max_labels: int = 40,
    path: str | os.PathLike[str] | None = None,
    dpi: int = 120,
) -> Figure:
    """Plot the learned gene scores, ranked, with the selected panel highlighted.

    Parameters
    ----------
    selector : YOTOSelector
        A fitted selector (``scores_`` and ``support_``).
    feature_names : sequence of str, optional
        Gene names; defaults to ``selector.feature_names_in_`` when present,
        else ``gene_<index>``.
    max_labels : int, default=40
        At most this many panel genes are named on the right-hand bar chart
        (the best ones).
    path : str or path-like, optional
        Write the figure there as PNG.
    dpi : int, default=120
        Resolution of the PNG.

    Returns
    -------
    fig : matplotlib.figure.Figure
        Left: every gene's score in decreasing order, the ``k`` panel genes
        in colour. Right: the panel's scores as horizontal bars with gene
        names, best at the top.

    Raises
    ------
    ValueError
        If the selector is not fitted or ``feature_names`` has the wrong
        length.
    ImportError
        If matplotlib is not installed.
    """
    _check_fitted(selector, "scores_")
    scores = np.asarray(selector.scores_, dtype=float)
    support = np.asarray(selector.support_, dtype=int)
    if feature_names is None:
        feature_names = getattr(selector, "feature_names_in_", None)
    if feature_names is None:
        names = np.array([f"gene_{i}" for i in range(scores.size)], dtype=object)
    else:
        names = np.asarray(feature_names, dtype=object)
        if names.size != scores.size:
            raise ValueError(
                f"feature_names has {names.size} entries for {scores.size} scores"
            )
    order = np.argsort(-scores, kind="stable")
    in_panel = np.zeros(scores.size, dtype=bool)
    in_panel[support] = True
    k = support.size
    shown = support[: max(0, max_labels)]

    fig = _figure((10.0, max(3.6, 0.2 * shown.size + 1.2)))
    ax_all, ax_panel = fig.subplots(1, 2, width_ratios=[1.4, 1.0])
    x = np.arange(1, scores.size + 1)
    ranked_panel = in_panel[order]
    ax_all.scatter(
        x[~ranked_panel], scores[order][~ranked_panel], s=6, color="0.6",
        label="not selected",
    )  # fmt: skip
    ax_all.scatter(
        x[ranked_panel], scores[order][ranked_panel], s=10, color="C3",
        label=f"panel (k={k})",
    )  # fmt: skip
    ax_all.set_xlabel("gene rank")
    ax_all.set_ylabel("learned score")
    ax_all.set_title(f"Gene scores ({scores.size} genes)")
    ax_all.legend()

    y_pos = np.arange(shown.size)
    ax_panel.barh(y_pos, scores[shown], color="C3")
    ax_panel.set_yticks(y_pos, [str(n) for n in names[shown]], fontsize=8)
    ax_panel.invert_yaxis()
    ax_panel.set_xlabel("learned score")
    title = "Panel genes" if shown.size == k else f"Top {shown.size} of {k} panel genes"
    ax_panel.set_title(title)
    return _save(fig, path, dpi)


def plot_confusion_matrix(
    y_true: Any,
    y_pred: Any,
    *,
    labels: Sequence[Any] | None = None,
    title: str | None = None,
    normalize: bool = True,
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
    path : str or path-like, optional
        Write the figure there as PNG.
    dpi : int, default=120
        Resolution of the PNG.

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
    import pandas as pd
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
    fig = _figure((size + 1.0, size))
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
    ax.set_title(f"{title + ': ' if title else ''}accuracy {accuracy:.3f}")
    return _save(fig, path, dpi)


def plot_confusion_matrices(
    selector: Any,
    X: Any,
    y: Any,
    *,
    directory: str | os.PathLike[str] | None = None,
    prefix: str = "confusion_",
    dpi: int = 120,
) -> dict[str, Figure]:
    """Plot one confusion matrix per classification task of a fitted selector.

    Parameters
    ----------
    selector : YOTOSelector
        A fitted selector.
    X : array-like, sparse matrix or AnnData
        Cells to predict.
    y : pandas.DataFrame or array-like of shape (n_cells, n_tasks)
        True labels, one column per task (a DataFrame's columns are matched to
        the tasks by name, an array's by position; missing labels allowed).
    directory : str or path-like, optional
        Write ``{prefix}{task}.png`` there for every classification task.
    prefix : str
        File name prefix (default ``"confusion_"``).
    dpi : int, default=120
        Resolution of the PNGs.

    Returns
    -------
    figures : dict of str to matplotlib.figure.Figure
        One figure per classification task, keyed by task name; empty when
        every task is a regression.
    """
    _check_fitted(selector, "task_types_")
    task_types = list(selector.task_types_)
    names = list(getattr(selector, "task_names_", [])) or [
        f"task_{i}" for i in range(len(task_types))
    ]
    if not any(has_classes(t) for t in task_types):
        return {}
    truth = _task_table(selector, y, names)
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
            truth[:, j], pred[:, j], labels=labels, title=str(name), path=path, dpi=dpi
        )
    return figures


def _task_table(selector: Any, y: Any, names: list[str]) -> np.ndarray:
    """Labels as an (n_cells, n_tasks) object array in the selector's task order."""
    import pandas as pd

    from ._targets import match_task_columns

    frame = (
        y
        if isinstance(y, pd.DataFrame)
        else pd.DataFrame(np.asarray(y, dtype=object).reshape(len(y), -1))
    )
    frame = match_task_columns(y, frame, names)
    return frame.to_numpy(dtype=object)


def _panel_matrix(selector: Any, X: Any) -> np.ndarray:
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
    selector : YOTOSelector
        A fitted selector.
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
    path : str or path-like, optional
        Write a PNG there.
    dpi : int, default=120
        Resolution of the PNG.

    Returns
    -------
    fig : matplotlib.figure.Figure
        The figure.
    """
    import pandas as pd

    _check_fitted(selector, "support_")
    panel = _panel_matrix(selector, X)
    genes = _panel_names(selector, feature_names)
    labels = np.asarray(labels, dtype=object).ravel()
    if labels.shape[0] != panel.shape[0]:
        raise ValueError(
            f"labels has {labels.shape[0]} entries but X has {panel.shape[0]} cells"
        )
    observed = ~pd.isna(labels)
    panel, labels = panel[observed], label_strings(labels[observed])
    classes = sorted(set(labels), key=str)
    if use_scanpy is None:
        import importlib.util

        use_scanpy = importlib.util.find_spec("scanpy") is not None
    if use_scanpy:
        fig = _scanpy_dotplot(panel, labels, classes, genes, title)
        if path is not None:  # scanpy lays out for a tight bounding box
            fig.savefig(path, dpi=dpi, bbox_inches="tight")
        return fig
    mean = np.vstack([panel[labels == c].mean(axis=0) for c in classes])
    frac = np.vstack([(panel[labels == c] > 0).mean(axis=0) for c in classes])
    low, high = mean.min(axis=0), mean.max(axis=0)
    scaled = (mean - low) / np.where(high > low, high - low, 1.0)
    fig = _figure(
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
    ax.set_xlabel("panel gene (best first)")
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
    return _save(fig, path, dpi)


def _scanpy_dotplot(
    panel: np.ndarray,
    labels: np.ndarray,
    classes: list[str],
    genes: list[str],
    title: str | None,
) -> Figure:
    import anndata
    import matplotlib.pyplot as plt
    import pandas as pd
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
        title=title,
        return_fig=True,
        show=False,
    )
    plot.make_figure()
    fig = plot.fig
    plt.close(fig)  # scanpy draws through pyplot: drop it from pyplot's registry
    return fig


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
    selector : YOTOSelector
        A fitted selector.
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
    _check_fitted(selector, "task_types_")
    names = [str(n) for n in selector.task_names_]
    truth = _task_table(selector, y, names)
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


def plot_selection_frequency(
    stability: Any,
    *,
    max_genes: int = 40,
    title: str | None = None,
    path: str | os.PathLike[str] | None = None,
    dpi: int = 120,
) -> Figure:
    """Bar chart of the genes' selection frequency over refits.

    Parameters
    ----------
    stability : PanelStability or pandas.DataFrame
        The result of :func:`yoto_sklearn.stability.panel_stability`, or a table
        indexed by gene with ``frequency`` and ``consensus`` columns (what
        ``PanelStability.to_frame()`` returns and ``select_genes`` writes to
        ``adata.var``).
    max_genes : int, default=40
        Show the most frequently selected genes only.
    title : str, optional
        Figure title (default: the number of refits and the mean Jaccard index).
    path : str or path-like, optional
        Write a PNG there.
    dpi : int, default=120
        Resolution of the PNG.

    Returns
    -------
    fig : matplotlib.figure.Figure
        The figure: one bar per gene, consensus-panel genes in red.
    """
    if hasattr(stability, "to_frame"):
        table = stability.to_frame()
        if title is None:
            title = (
                f"{len(stability.panels)} refits, mean pairwise Jaccard "
                f"{stability.mean_jaccard:.2f} (red: consensus panel of "
                f"{len(stability.consensus)})"
            )
    else:
        table = stability.sort_values("frequency", ascending=False, kind="stable")
    table = table.head(max_genes)
    table = table[table["frequency"] > 0]
    fig = _figure((max(5.0, 0.22 * len(table) + 2.0), 3.6))
    ax = fig.add_subplot()
    colors = np.where(table["consensus"].to_numpy(dtype=bool), "tab:red", "0.7")
    ax.bar(np.arange(len(table)), table["frequency"].to_numpy(), color=colors)
    ax.set_xticks(
        np.arange(len(table)), [str(g) for g in table.index], rotation=90, fontsize=7
    )
    ax.set_ylim(0, 1.05)
    ax.set_ylabel("selection frequency")
    if title:
        ax.set_title(title, fontsize=9)
    return _save(fig, path, dpi)
