"""Pictures of a fitted YOTOSelector (matplotlib is an optional extra).

Every function builds a :class:`matplotlib.figure.Figure` without pyplot (no
GUI backend, no global figure registry), returns it, and writes a PNG when
``path`` is given. Install matplotlib with ``pip install "yoto-sklearn[plot]"``.
"""

from ._budget import plot_panel_budget
from ._classes import (
    class_means,
    plot_class_dots,
    plot_confusion_matrices,
    plot_confusion_matrix,
    plot_panel_expression,
    plot_panel_expressions,
)
from ._common import label_strings, task_png
from ._stability import plot_selection_frequency
from ._training import plot_gene_scores, plot_loss_curves, plot_training_curves

__all__ = [
    "plot_training_curves",
    "plot_loss_curves",
    "plot_gene_scores",
    "plot_confusion_matrix",
    "plot_confusion_matrices",
    "plot_panel_expression",
    "plot_panel_expressions",
    "plot_class_dots",
    "class_means",
    "plot_selection_frequency",
    "plot_panel_budget",
    "label_strings",
    "task_png",
]
