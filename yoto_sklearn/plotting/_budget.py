"""Picture of an expression budget: the panel's total expression per cell."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

import numpy as np
from sklearn.utils._param_validation import HasMethods, validate_params

from .._docs import shared

if TYPE_CHECKING:  # pragma: no cover
    from matplotlib.figure import Figure
from ._classes import panel_matrix
from ._common import DPI, PATH, check_fitted, figure, save_figure

N_BINS = 40


def budget_histogram(totals: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Counts and bin edges of the per-cell totals (what a report stores)."""
    totals = np.asarray(totals, dtype=np.float64)
    high = float(totals.max()) if totals.size else 1.0
    edges = np.linspace(0.0, high if high > 0 else 1.0, N_BINS + 1)
    counts, edges = np.histogram(totals, bins=edges)
    return counts, edges


def budget_figure(
    counts: np.ndarray,
    edges: np.ndarray,
    budget: float,
    mean: float,
    title: str | None = None,
) -> Figure:
    """The histogram of per-cell panel totals with the mean and the budget marked."""
    fig = figure((6.0, 3.4))
    ax = fig.add_subplot()
    ax.stairs(counts, edges, fill=True, color="0.75", label="cells")
    ax.axvline(mean, color="C0", lw=1.5, label=f"mean per cell {mean:.3g}")
    ax.axvline(budget, color="C3", lw=1.5, ls="--", label=f"budget {budget:.3g}")
    ax.set_xlabel("panel total per cell (sum of the panel genes' values)")
    ax.set_ylabel("cells")
    ax.legend(fontsize=8)
    ax.set_title(
        title
        or f"Panel expression per cell: mean {mean:.3g} = "
        f"{mean / budget:.0%} of the budget",
        fontsize=10,
    )
    return fig


@validate_params(
    {
        "selector": [HasMethods(["transform"])],
        "X": "no_validation",
        "path": PATH,
        "dpi": DPI,
    },
    prefer_skip_nested_validation=True,
)
@shared("path_dpi", "selector_fitted")
def plot_panel_budget(
    selector: Any,
    X: Any,
    *,
    path: str | os.PathLike[str] | None = None,
    dpi: int = 120,
) -> Figure:
    """Histogram of the panel's total expression per cell against the budget.

    The budget (``expression_budget``) bounds the mean of this total (the sum of
    the panel genes' means); the histogram shows how far single cells spread
    around it.

    Parameters
    ----------
    {selector_fitted}
    X : array-like, sparse matrix or AnnData
        Cells with the genes seen at fit (the fitted matrix: the mean over the
        fitting cells is ``panel_load_``).
    {path_dpi}

    Returns
    -------
    fig : matplotlib.figure.Figure

    Raises
    ------
    ValueError
        If the selector was fitted without ``expression_budget``.
    """
    check_fitted(selector, "support_")
    if getattr(selector, "gene_loads_", None) is None:
        raise ValueError(
            "the selector was fitted without expression_budget: there is no budget "
            "to plot"
        )
    totals = panel_matrix(selector, X).sum(axis=1)
    counts, edges = budget_histogram(totals)
    budget = float(selector.get_params()["expression_budget"])
    return save_figure(
        budget_figure(counts, edges, budget, float(totals.mean())), path, dpi
    )
