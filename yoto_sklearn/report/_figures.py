"""The report's pictures, drawn from the report's numbers as inline SVG."""

from __future__ import annotations

import io
from html import escape
from typing import Any

import numpy as np
import pandas as pd

from ..plotting import (
    plot_confusion_matrix,
    plot_loss_curves,
    plot_selection_frequency,
)
from ..plotting._classes import marker_order


def matplotlib_available() -> bool:
    import importlib.util

    return importlib.util.find_spec("matplotlib") is not None


def svg(fig: Any) -> str:
    """A figure as an ``<svg>`` element: text stays text, no fonts embedded."""
    from matplotlib import rc_context

    buffer = io.StringIO()
    with rc_context({"svg.fonttype": "none", "svg.hashsalt": "yoto-sklearn"}):
        fig.savefig(buffer, format="svg", bbox_inches="tight")
    text = buffer.getvalue()
    return text[text.index("<svg") :]  # drop the XML prolog and DOCTYPE


def confusion_svg(task: str, table: dict[str, Any], cells: str) -> str:
    """Confusion matrix from counts (labels re-expanded from the counts)."""
    labels = table["labels"]
    counts = np.asarray(table["counts"], dtype=int)
    rows, cols = np.nonzero(counts)
    reps = counts[rows, cols]
    truth = np.repeat(np.asarray(labels, dtype=object)[rows], reps)
    pred = np.repeat(np.asarray(labels, dtype=object)[cols], reps)
    return svg(
        plot_confusion_matrix(truth, pred, labels=labels, title=task, cells=cells)
    )


def _reds(value: float) -> str:
    """Matplotlib's "Reds" colour of ``value`` in [0, 1], as ``#rrggbb``."""
    from matplotlib import colormaps
    from matplotlib.colors import to_hex

    return to_hex(colormaps["Reds"](float(value)))


def dots_svg(task: str, table: dict[str, Any]) -> str:
    """The dot plot as hand-written SVG: one ``<circle>`` per class and gene.

    matplotlib writes every dot of a scatter with varying sizes as a full path
    (about 600 bytes); a circle is about 90, so 60 genes x 50 classes stay near
    300 KB. Each dot's tooltip gives its numbers.
    """
    mean = np.asarray(table["mean"], dtype=float)
    frac = np.asarray(table["fraction"], dtype=float)
    classes, genes = (
        [str(c) for c in table["classes"]],
        [str(g) for g in table["genes"]],
    )
    order = marker_order(mean)
    mean, frac, genes = mean[:, order], frac[:, order], [genes[i] for i in order]
    low, high = mean.min(axis=0), mean.max(axis=0)
    scaled = (mean - low) / np.where(high > low, high - low, 1.0)
    cell, char = 18, 6.6
    left = 12 + char * max(len(c) for c in classes)
    top = 30 + char * max(len(g) for g in genes) * 0.75
    width = left + cell * len(genes) + 150
    height = top + cell * len(classes) + 40
    title = task + (
        f" (best {len(genes)} genes shown)" if table.get("genes_left_out") else ""
    )
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width:.0f}" '
        f'height="{height:.0f}" viewBox="0 0 {width:.0f} {height:.0f}" '
        'font-family="sans-serif" font-size="11" class="dotplot">',
        f'<text x="{left:.0f}" y="14" font-size="13">{escape(title)}</text>',
    ]
    for j, gene in enumerate(genes):
        x = left + cell * (j + 0.5)
        out.append(
            f'<text transform="translate({x + 4:.1f},{top - 6:.0f}) rotate(-60)">'
            f"{escape(gene)}</text>"
        )
    for i, name in enumerate(classes):
        y = top + cell * (i + 0.5)
        out.append(
            f'<text x="{left - 6:.0f}" y="{y + 4:.1f}" text-anchor="end">'
            f"{escape(name)}</text>"
        )
        for j, gene in enumerate(genes):
            radius = 0.8 + 7.6 * np.sqrt(frac[i, j])
            out.append(
                f'<circle cx="{left + cell * (j + 0.5):.1f}" cy="{y:.1f}" '
                f'r="{radius:.1f}" fill="{_reds(scaled[i, j])}" stroke="#888" '
                f'stroke-width="0.3"><title>{escape(gene)} in {escape(name)}: mean '
                f"{mean[i, j]:.3g}, detected in {frac[i, j]:.0%}</title></circle>"
            )
    lx = left + cell * len(genes) + 24
    out.append(f'<text x="{lx}" y="{top + 4:.0f}">detected in</text>')
    for n, share in enumerate((0.25, 0.5, 1.0)):
        y = top + 20 + 20 * n
        out.append(
            f'<circle cx="{lx + 8}" cy="{y}" r="{0.8 + 7.6 * np.sqrt(share):.1f}" '
            f'fill="#999"/><text x="{lx + 22}" y="{y + 4}">{share:.0%}</text>'
        )
    y0 = top + 90
    out.append(
        '<defs><linearGradient id="reds" x1="0" y1="1" x2="0" y2="0">'
        + "".join(
            f'<stop offset="{v:.2f}" stop-color="{_reds(v)}"/>'
            for v in np.linspace(0, 1, 6)
        )
        + "</linearGradient></defs>"
        f'<text x="{lx}" y="{y0}">mean (scaled per gene)</text>'
        f'<rect x="{lx}" y="{y0 + 8}" width="14" height="60" fill="url(#reds)" '
        f'stroke="#888" stroke-width="0.3"/><text x="{lx + 20}" y="{y0 + 16}">1</text>'
        f'<text x="{lx + 20}" y="{y0 + 68}">0</text>'
    )
    out.append(
        f'<text x="{left:.0f}" y="{height - 12:.0f}" fill="#555">panel gene '
        "(grouped by the class it marks); rows: classes</text></svg>"
    )
    return "".join(out)


def training_svg(training: dict[str, Any]) -> str:
    def arr(key: str) -> np.ndarray | None:
        values = training.get(key) or []
        return np.asarray([np.nan if v is None else v for v in values], dtype=float)

    return svg(
        plot_loss_curves(
            arr("loss"),
            arr("validation_loss"),
            arr("validation_scores"),
            panel_fixed_after=training.get("panel_fixed_after") or None,
            kept_epoch=training.get("kept_epoch") or None,
            note=training.get("note"),
        )
    )


def stability_svg(stability: dict[str, Any]) -> str:
    table = pd.DataFrame(
        {"frequency": stability["frequency"], "consensus": stability["consensus"]},
        index=pd.Index(stability["genes"]),
    )
    return svg(
        plot_selection_frequency(
            table,
            title=f"{stability['n_runs']} refits, mean pairwise Jaccard "
            f"{stability['mean_jaccard']:.2f} (red: consensus panel)",
        )
    )


def budget_svg(budget: dict[str, Any]) -> str:
    from ..plotting._budget import budget_figure

    cells = budget["cells"]
    hist = cells["histogram"]
    return svg(
        budget_figure(
            np.asarray(hist["counts"], dtype=float),
            np.asarray(hist["edges"], dtype=float),
            float(budget["expression_budget"]),
            float(cells["mean_total"]),
        )
    )
