"""Picture of panel stability: selection frequency over refits."""

from __future__ import annotations

import os
from numbers import Integral
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from sklearn.utils._param_validation import HasMethods, validate_params

from .._docs import shared
from .._validation import Number

if TYPE_CHECKING:  # pragma: no cover
    from matplotlib.figure import Figure
from ._common import DPI, PATH, figure, save_figure


@validate_params(
    {
        "stability": [HasMethods(["to_frame"]), pd.DataFrame],
        "max_genes": [Number(Integral, 1, None, closed="left")],
        "title": [None, str],
        "path": PATH,
        "dpi": DPI,
    },
    prefer_skip_nested_validation=True,
)
@shared("path_dpi")
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
    {path_dpi}

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
    fig = figure((max(5.0, 0.22 * len(table) + 2.0), 3.6))
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
    return save_figure(fig, path, dpi)
