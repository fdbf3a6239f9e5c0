"""Pictures of a fit: training curves and gene scores."""

from __future__ import annotations

import os
from collections.abc import Sequence
from numbers import Integral
from typing import TYPE_CHECKING, Any

import numpy as np
from sklearn.utils._param_validation import HasMethods, validate_params

from .._docs import shared
from .._validation import Number

if TYPE_CHECKING:  # pragma: no cover
    from matplotlib.figure import Figure
from ._common import DPI, PATH, check_fitted, figure, integer_epochs, save_figure


@validate_params(
    {"selector": [HasMethods(["fit"])], "path": PATH, "dpi": DPI},
    prefer_skip_nested_validation=True,
)
@shared("path_dpi")
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
    {path_dpi}

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
    check_fitted(selector, "loss_curve_")
    train = np.asarray(selector.loss_curve_, dtype=float)
    val_loss = getattr(selector, "validation_loss_curve_", None)
    val_loss = None if val_loss is None else np.asarray(val_loss, dtype=float)
    val_score = getattr(selector, "validation_scores_", None)
    val_score = None if val_score is None else np.asarray(val_score, dtype=float)
    has_scores = val_score is not None and val_score.size > 0

    fig = figure((9.0, 3.6) if has_scores else (5.0, 3.6))
    axes = fig.subplots(1, 2 if has_scores else 1, squeeze=False)[0]
    ax = axes[0]
    ax.plot(np.arange(1, train.size + 1), train, label="training loss")
    if val_loss is not None and val_loss.size:
        ax.plot(np.arange(1, val_loss.size + 1), val_loss, label="validation loss")
    ax.set_xlabel("epoch")
    integer_epochs(ax)
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
        integer_epochs(ax)
        ax.set_ylabel("validation score")
        ax.set_title("Validation score")
    return save_figure(fig, path, dpi)


@validate_params(
    {
        "selector": [HasMethods(["fit"])],
        "feature_names": [None, "array-like"],
        "max_labels": [Number(Integral, 0, None, closed="left")],
        "path": PATH,
        "dpi": DPI,
    },
    prefer_skip_nested_validation=True,
)
@shared("path_dpi")
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
    {path_dpi}

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
    check_fitted(selector, "scores_")
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

    fig = figure((10.0, max(3.6, 0.2 * shown.size + 1.2)))
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
    return save_figure(fig, path, dpi)
