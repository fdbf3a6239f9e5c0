"""Helpers shared by the plotting functions: figures, files, labels."""

from __future__ import annotations

import os
from numbers import Integral
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from .._validation import Number

if TYPE_CHECKING:  # pragma: no cover
    from matplotlib.figure import Figure


PATH = [None, str, os.PathLike]
DPI = [Number(Integral, 1, None, closed="left")]

PLOT_HINT = 'install it with: pip install "yoto-sklearn[plot]"'


def figure(figsize: tuple[float, float]) -> Figure:
    """Return a pyplot-free Figure, or raise a helpful ImportError."""
    try:
        from matplotlib.figure import Figure
    except ImportError as exc:
        raise ImportError(
            f"yoto_sklearn.plotting needs matplotlib, which is not installed; "
            f"{PLOT_HINT}"
        ) from exc
    return Figure(figsize=figsize, layout="constrained")


def integer_epochs(ax: Any) -> None:
    from matplotlib.ticker import MaxNLocator

    ax.xaxis.set_major_locator(MaxNLocator(integer=True))


def save_figure(fig: Figure, path: str | os.PathLike[str] | None, dpi: int) -> Figure:
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


def check_fitted(selector: Any, attribute: str) -> None:
    if not hasattr(selector, attribute):
        raise ValueError(
            f"{type(selector).__name__} has no {attribute!r}: fit it before plotting"
        )


def task_table(selector: Any, y: Any, names: list[str]) -> np.ndarray:
    """Labels as an (n_cells, n_tasks) object array in the selector's task order."""
    from .._targets import match_task_columns

    frame = (
        y
        if isinstance(y, pd.DataFrame)
        else pd.DataFrame(np.asarray(y, dtype=object).reshape(len(y), -1))
    )
    frame = match_task_columns(y, frame, names)
    return frame.to_numpy(dtype=object)
