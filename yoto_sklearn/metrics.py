"""NaN-masked multi-task scorers for ``GridSearchCV(scoring=...)``.

scikit-learn's built-in scorers do not mask missing labels: on NaN-masked targets they
return NaN on every fold (with only a warning), so ``best_params_`` becomes arbitrary.
These scorers score each task on its observed labels only and average over tasks.
"""

from __future__ import annotations

from collections.abc import Callable
from numbers import Integral
from typing import Any

import numpy as np
import pandas as pd
from sklearn.metrics import (
    accuracy_score,
    balanced_accuracy_score,
    f1_score,
    mean_absolute_error,
    mean_squared_error,
)
from sklearn.utils._param_validation import validate_params

from ._targets import (
    as_frame,
    detect_task_type,
    has_classes,
    match_task_columns,
    obs_columns,
    scaled_r2,
)
from .sources import is_anndata

_CLASSIFICATION_METRICS: dict[str, Callable[[Any, Any], float]] = {
    "f1_macro": lambda t, p: f1_score(t, p, average="macro"),
    "f1_weighted": lambda t, p: f1_score(t, p, average="weighted"),
    "accuracy": accuracy_score,
    "balanced_accuracy": balanced_accuracy_score,
}


_REGRESSION_METRICS: dict[str, Callable[[Any, Any], float]] = {
    "r2": scaled_r2,
    "neg_mean_squared_error": lambda t, p: -mean_squared_error(t, p),
    "neg_mean_absolute_error": lambda t, p: -mean_absolute_error(t, p),
}


def _metric(metric: str | Callable, table: dict, kind: str) -> Callable:
    if callable(metric):
        return metric
    if metric not in table:
        raise ValueError(
            f"Unknown {kind} metric {metric!r}; use one of {sorted(table)} or a "
            "callable metric(y_true, y_pred)."
        )
    return table[metric]


def _final_estimator(estimator: Any) -> Any:
    steps = getattr(estimator, "steps", None)
    return steps[-1][1] if steps else estimator


_METRIC = [str, callable]


@validate_params(
    {
        "y_true": ["array-like"],
        "y_pred": ["array-like"],
        "task_types": [None, list],
        "classification_metric": _METRIC,
        "regression_metric": _METRIC,
    },
    prefer_skip_nested_validation=True,
)
def masked_task_scores(
    y_true: Any,
    y_pred: Any,
    task_types: list[str] | None = None,
    *,
    classification_metric: str | Callable = "f1_macro",
    regression_metric: str | Callable = "r2",
) -> dict[str, float]:
    """Score every task on its observed labels only.

    Parameters
    ----------
    y_true : array-like of shape (n_samples,) or (n_samples, n_tasks)
        True targets; NaN / None / ``pd.NA`` mark missing labels.
    y_pred : array-like of the same shape
        Predictions.
    task_types : list of str, optional
        ``"classification"`` or ``"regression"`` per task; detected from ``y_true``
        (as :class:`~yoto_sklearn.YOTOSelector` does) when omitted.
    classification_metric, regression_metric : str or callable
        Metric names (``"f1_macro"``, ``"f1_weighted"``, ``"accuracy"``,
        ``"balanced_accuracy"``; ``"r2"``, ``"neg_mean_squared_error"``,
        ``"neg_mean_absolute_error"``) or callables ``metric(y_true, y_pred)``.

    Returns
    -------
    scores : dict
        Task name to score; NaN for a task with no observed label.
    """
    true = as_frame(y_true)
    pred = np.asarray(
        y_pred, dtype=object if np.asarray(y_pred).dtype == object else None
    )
    if pred.ndim == 1:
        pred = pred[:, None]
    if pred.shape != true.shape:
        raise ValueError(
            f"y_true has shape {true.shape} but y_pred has shape {pred.shape}."
        )
    if task_types is None:
        task_types = []
        for name in true.columns:
            col = true[name]
            observed = col[~pd.isna(col)]
            kind = detect_task_type(col) if len(observed) else "regression"
            task_types.append(kind)
    cls_metric = _metric(
        classification_metric, _CLASSIFICATION_METRICS, "classification"
    )
    reg_metric = _metric(regression_metric, _REGRESSION_METRICS, "regression")
    scores: dict[str, float] = {}
    for j, (name, kind) in enumerate(zip(true.columns, task_types, strict=True)):
        col = true.iloc[:, j]
        obs = ~pd.isna(col).to_numpy()
        if not obs.any():
            scores[name] = float("nan")
            continue
        t = col.to_numpy()[obs]
        p = pred[obs, j]
        if has_classes(kind):
            if t.dtype == object or p.dtype == object:
                t, p = t.astype(str) if _mixed(t, p) else t, p
                p = p.astype(t.dtype) if t.dtype != object else p
            scores[name] = float(cls_metric(t, p))
        else:
            scores[name] = float(reg_metric(t.astype(np.float64), p.astype(np.float64)))
    return scores


def _mixed(t: np.ndarray, p: np.ndarray) -> bool:
    return {type(v) for v in t} != {type(v) for v in p}


@validate_params(
    {
        "classification_metric": _METRIC,
        "regression_metric": _METRIC,
        "task": [None, str, Integral],
    },
    prefer_skip_nested_validation=True,
)
def make_masked_scorer(
    classification_metric: str | Callable = "f1_macro",
    regression_metric: str | Callable = "r2",
    task: str | int | None = None,
) -> Callable[[Any, Any, Any], float]:
    """Build a scorer ``scorer(estimator, X, y)`` that ignores missing labels.

    Parameters
    ----------
    classification_metric, regression_metric : str or callable
        See :func:`masked_task_scores`.
    task : str, int or None
        Score only this task (name or position); ``None`` averages over all tasks
        that have observed labels.

    Returns
    -------
    scorer : callable
        Usable as ``GridSearchCV(scoring=scorer)`` and ``cross_val_score``.

    Examples
    --------
    >>> from yoto_sklearn import make_masked_scorer
    >>> scorer = make_masked_scorer("f1_macro")
    """
    _metric(classification_metric, _CLASSIFICATION_METRICS, "classification")
    _metric(regression_metric, _REGRESSION_METRICS, "regression")

    def scorer(estimator: Any, X: Any, y: Any) -> float:
        if is_anndata(X):
            y = obs_columns(X, y)
        y_pred = estimator.predict(X)
        final = _final_estimator(estimator)
        types = getattr(final, "task_types_", None)
        frame = as_frame(y)
        names = getattr(final, "task_names_", None)
        if names is not None:
            frame = match_task_columns(y, frame, list(names))
        elif types is not None and len(types) != frame.shape[1]:
            types = None
        scores = masked_task_scores(
            frame,
            y_pred,
            types,
            classification_metric=classification_metric,
            regression_metric=regression_metric,
        )
        values = list(scores.values())
        if task is not None:
            key = task if isinstance(task, str) else list(scores)[task]
            return scores[key]
        finite = [v for v in values if np.isfinite(v)]
        return float(np.mean(finite)) if finite else float("nan")

    scorer.__name__ = (
        f"masked_{getattr(classification_metric, '__name__', classification_metric)}"
    )
    return scorer


masked_f1_macro_scorer = make_masked_scorer("f1_macro", "r2")
masked_accuracy_scorer = make_masked_scorer("accuracy", "r2")

__all__ = [
    "make_masked_scorer",
    "masked_accuracy_scorer",
    "masked_f1_macro_scorer",
    "masked_task_scores",
]
