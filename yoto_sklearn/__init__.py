"""YOTO: differentiable top-k gene panel selection with multi-task heads.

``YOTOSelector`` trains one network that picks exactly ``k`` genes through a hard,
differentiable top-k mask and predicts several tasks from them.

The public names are imported on first use (PEP 562), so ``import yoto_sklearn`` and
``yoto-sklearn --help`` do not pay for torch, anndata or matplotlib.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0.dev0"

_LAZY = {
    "YOTOSelector": "._selector",
    "PanelRefit": ".refit",
    "make_masked_scorer": ".metrics",
    "masked_accuracy_scorer": ".metrics",
    "masked_f1_macro_scorer": ".metrics",
    "masked_task_scores": ".metrics",
}

__all__ = [
    "PanelRefit",
    "YOTOSelector",
    "__version__",
    "make_masked_scorer",
    "masked_accuracy_scorer",
    "masked_f1_macro_scorer",
    "masked_task_scores",
]

if TYPE_CHECKING:  # pragma: no cover
    from ._selector import YOTOSelector
    from .metrics import (
        make_masked_scorer,
        masked_accuracy_scorer,
        masked_f1_macro_scorer,
        masked_task_scores,
    )
    from .refit import PanelRefit


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name], __name__), name)
        globals()[name] = value  # later look-ups skip this function
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))
