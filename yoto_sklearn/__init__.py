"""YOTO: differentiable top-k gene panel selection with multi-task heads.

``YOTOSelector`` trains one network that picks exactly ``k`` genes through a hard,
differentiable top-k mask and predicts several tasks from them.
"""

from ._selector import YOTOSelector
from .metrics import (
    make_masked_scorer,
    masked_accuracy_scorer,
    masked_f1_macro_scorer,
    masked_task_scores,
)

__version__ = "0.1.0.dev0"

__all__ = [
    "YOTOSelector",
    "__version__",
    "make_masked_scorer",
    "masked_accuracy_scorer",
    "masked_f1_macro_scorer",
    "masked_task_scores",
]
