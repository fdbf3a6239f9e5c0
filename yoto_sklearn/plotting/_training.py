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


def stop_note(selector: Any, history: Any, n_iter: int) -> str:
    """How training ended, in words (for the figure title)."""
    planned = selector.get_params().get("max_iter", n_iter)
    if getattr(history, "interrupted", False):
        return f"interrupted (Ctrl-C) at epoch {n_iter} of {planned}"
    if getattr(history, "stopped_by_callback", False):
        return f"stopped by a callback at epoch {n_iter} of {planned}"
    if getattr(history, "stopped_early", False):
        return (
            f"stopped early at epoch {n_iter} of {planned}: no validation improvement"
        )
    return f"{n_iter} epochs (all of max_iter={planned})"


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
        Left: losses against epochs. Right (when available): the validation
        score (mean over tasks of balanced accuracy / R² on the held-out
        validation cells) against epochs. Both mark the switch from panel
        selection to refinement and the epoch whose weights were kept; the
        title says how training ended (all epochs, stopped early, ...).

    Raises
    ------
    ValueError
        If the selector is not fitted.
    ImportError
        If matplotlib is not installed.
    """
    check_fitted(selector, "loss_curve_")
    history = getattr(selector, "history_", None)
    return plot_loss_curves(
        selector.loss_curve_,
        getattr(selector, "validation_loss_curve_", None),
        getattr(selector, "validation_scores_", None),
        panel_fixed_after=getattr(history, "selection_epochs", 0) or None,
        kept_epoch=getattr(history, "best_epoch", None),
        note=stop_note(selector, history, len(selector.loss_curve_)),
        path=path,
        dpi=dpi,
    )


@validate_params(
    {
        "loss": ["array-like"],
        "validation_loss": [None, "array-like"],
        "validation_scores": [None, "array-like"],
        "panel_fixed_after": [None, Number(Integral, 0, None, closed="left")],
        "kept_epoch": [None, Number(Integral, 0, None, closed="left")],
        "note": [None, str],
        "path": PATH,
        "dpi": DPI,
    },
    prefer_skip_nested_validation=True,
)
@shared("path_dpi")
def plot_loss_curves(
    loss: Any,
    validation_loss: Any = None,
    validation_scores: Any = None,
    *,
    panel_fixed_after: int | None = None,
    kept_epoch: int | None = None,
    note: str | None = None,
    path: str | os.PathLike[str] | None = None,
    dpi: int = 120,
) -> Figure:
    """Plot loss curves given as numbers (e.g. read back from ``metrics.json``).

    :func:`plot_training_curves` draws a fitted selector's curves with this.

    Parameters
    ----------
    loss : array-like of shape (n_epochs,)
        Training loss per epoch.
    validation_loss : array-like, optional
        Validation loss per epoch.
    validation_scores : array-like, optional
        Validation score per epoch (mean balanced accuracy / R²); drawn in a
        second panel when given.
    panel_fixed_after : int, optional
        The epoch after which the panel was fixed (a dashed line).
    kept_epoch : int, optional
        The epoch whose weights were kept (a dotted line).
    note : str, optional
        How training ended, for the title.
    {path_dpi}

    Returns
    -------
    fig : matplotlib.figure.Figure
    """
    train = np.asarray(loss, dtype=float).ravel()
    val_loss = None if validation_loss is None else np.asarray(validation_loss, float)
    val_score = (
        None if validation_scores is None else np.asarray(validation_scores, float)
    )
    has_scores = val_score is not None and val_score.size > 0
    switch = panel_fixed_after or 0
    kept = kept_epoch
    fig = figure((9.5, 3.8) if has_scores else (5.2, 3.8))
    axes = fig.subplots(1, 2 if has_scores else 1, squeeze=False)[0]
    ax = axes[0]
    ax.plot(np.arange(1, train.size + 1), train, label="training loss")
    if val_loss is not None and val_loss.size:
        ax.plot(np.arange(1, val_loss.size + 1), val_loss, label="validation loss")
    ax.set_ylabel("loss")
    ax.set_title("Loss")
    if has_scores:
        ax2 = axes[1]
        epochs = np.arange(1, val_score.shape[0] + 1)
        ax2.plot(epochs, val_score, color="C2", label="validation score")
        ax2.set_ylabel("validation score\n(mean balanced accuracy / R²)")
        ax2.set_title("Validation score (held-out cells)")
    for ax in axes:
        ax.set_xlabel("epoch")
        integer_epochs(ax)
        if 0 < switch < train.size:
            ax.axvline(switch + 0.5, color="0.4", ls="--", lw=1,
                       label=f"panel fixed after epoch {switch}")  # fmt: skip
        if kept:
            ax.axvline(kept, color="C3", ls=":", lw=1.5,
                       label=f"weights kept: epoch {kept}")  # fmt: skip
        ax.legend(fontsize=8)
    if note:
        fig.suptitle(note, fontsize=9)
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
        Left: every gene's score against its fitted rank (1 = first in the
        panel): learned panel genes in red, required genes in blue (they are
        placed first and their score is not learned), excluded genes last, in
        light grey. Right: the panel's scores as horizontal bars with gene names,
        in panel order.

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
    # x = the fitted rank (required genes first, excluded last), not the score:
    # a required gene is placed, its score is not learned
    ranking = np.asarray(selector.ranking_, dtype=int)
    kind = np.full(scores.size, "not selected", dtype=object)
    kind[support] = "panel (learned)"
    kind[np.asarray(getattr(selector, "required_", []), dtype=int)] = "required"
    kind[np.asarray(getattr(selector, "excluded_", []), dtype=int)] = "excluded"
    colors = {
        "not selected": "0.65",
        "excluded": "0.85",
        "panel (learned)": "C3",
        "required": "C0",
    }
    k = support.size
    shown = support[: max(0, max_labels)]

    fig = figure((10.0, max(3.6, 0.2 * shown.size + 1.2)))
    ax_all, ax_panel = fig.subplots(1, 2, width_ratios=[1.4, 1.0])
    legends = {"required": "required: placed, score not learned"}
    for label, color in colors.items():
        genes = np.flatnonzero(kind == label)
        if not len(genes):
            continue
        ax_all.scatter(
            ranking[genes],
            scores[genes],
            s=14 if label == "required" else 10 if label != "not selected" else 6,
            marker="^" if label == "required" else "o",
            color=color,
            label=f"{legends.get(label, label)} ({len(genes)})",
        )
    ax_all.set_xlabel("gene rank (1 = first in the panel)")
    ax_all.set_ylabel("learned score")
    ax_all.set_title(f"Gene scores ({scores.size} genes, panel of {k})")
    ax_all.legend(fontsize=8)

    y_pos = np.arange(shown.size)
    required = kind[shown] == "required"
    ax_panel.barh(y_pos[~required], scores[shown][~required], color="C3")
    for y in y_pos[required]:
        ax_panel.text(0, y, " required: placed first", va="center", fontsize=8,
                      color="C0")  # fmt: skip
    ax_panel.set_yticks(y_pos, [str(n) for n in names[shown]], fontsize=8)
    ax_panel.invert_yaxis()
    ax_panel.set_xlabel("learned score")
    title = "Panel genes" if shown.size == k else f"Top {shown.size} of {k} panel genes"
    ax_panel.set_title(title)
    return save_figure(fig, path, dpi)
