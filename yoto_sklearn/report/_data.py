"""The numbers behind a panel report, as one JSON-safe dictionary.

Everything the HTML page shows is drawn or written from this dictionary, and the
dictionary itself is embedded in the page (``<script type="application/json">``),
so what a reader sees and what a program reads back are the same numbers.
"""

from __future__ import annotations

import datetime as _dt
import importlib.metadata
import math
import platform
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from .._targets import has_classes
from ..plotting._classes import panel_matrix
from ..plotting._common import label_strings, task_table
from ..plotting._training import stop_note

SCHEMA = "yoto-sklearn panel report 1"
# The dot plot shows the best genes only: 60 columns stay legible on a laptop
# screen; the panel table always lists every gene.
MAX_DOT_GENES = 60
DIGITS = 4  # significant digits kept for expression statistics
VERSIONED = (
    "yoto-sklearn",
    "numpy",
    "scipy",
    "pandas",
    "scikit-learn",
    "torch",
    "anndata",
    "scanpy",
    "matplotlib",
    "spapros",
)


# --------------------------------------------------------------------- metrics


def task_metrics(kind: str, y_true: Any, y_pred: Any) -> dict[str, Any]:
    """Masked metrics of one task (cells without a label are left out).

    Classification: ``f1_macro`` (over the classes present in ``y_true``) and
    ``accuracy``; regression: ``r2`` and ``mae``; always ``n``, the labelled cells.
    """
    from sklearn.metrics import accuracy_score, f1_score, mean_absolute_error

    from .._targets import scaled_r2

    y_true = np.asarray(y_true, dtype=object)
    observed = ~pd.isna(y_true)
    n = int(observed.sum())
    if n == 0:
        return {"n": 0}
    t, p = y_true[observed], np.asarray(y_pred, dtype=object)[observed]
    if has_classes(kind):
        t, p = label_strings(t), label_strings(p)
        return {
            "n": n,
            "f1_macro": float(f1_score(t, p, average="macro", labels=np.unique(t))),
            "accuracy": float(accuracy_score(t, p)),
        }
    t, p = t.astype(float), p.astype(float)
    return {
        "n": n,
        "r2": scaled_r2(t, p) if n > 1 else float("nan"),
        "mae": float(mean_absolute_error(t, p)),
    }


def predict_table(selector: Any, X: Any) -> np.ndarray:
    """Predictions as an (n_cells, n_tasks) object array."""
    pred = np.asarray(selector.predict(X), dtype=object)
    return pred.reshape(pred.shape[0], -1)


def evaluate_tasks(
    selector: Any, X: Any, y: pd.DataFrame, task_types: Sequence[str]
) -> dict[str, dict[str, Any]]:
    """Metrics of every task of ``y`` (columns in the fitted task order)."""
    pred = predict_table(selector, X)
    return {
        str(name): task_metrics(kind, y[name].to_numpy(dtype=object), pred[:, j])
        for j, (name, kind) in enumerate(zip(y.columns, task_types, strict=True))
    }


# ------------------------------------------------------------------ JSON-safe


def jsonable(value: Any) -> Any:
    """``value`` with numpy, pandas and path objects turned into JSON types.

    Non-finite floats become ``None`` (JSON has no NaN).
    """
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, pd.Index | pd.Series):
        return [jsonable(v) for v in value.tolist()]
    if isinstance(value, np.ndarray):
        return [jsonable(v) for v in value.tolist()]
    if isinstance(value, list | tuple | set | frozenset):
        items = sorted(value, key=str) if isinstance(value, set | frozenset) else value
        return [jsonable(v) for v in items]
    if isinstance(value, bool | np.bool_):
        return bool(value)
    if isinstance(value, int | np.integer):
        return int(value)
    if isinstance(value, float | np.floating):
        return float(value) if math.isfinite(value) else None
    if value is None or isinstance(value, str):
        return value
    return str(value)


def _round(values: np.ndarray) -> list:
    """Floats to ``DIGITS`` significant digits (the file stays small)."""
    out = np.asarray(values, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        scale = np.where(
            out == 0, 0, np.floor(np.log10(np.abs(np.where(out == 0, 1, out))))
        )
    factor = 10.0 ** (DIGITS - 1 - scale)
    return jsonable(np.round(out * factor) / factor)


def versions() -> dict[str, str | None]:
    """Python and the versions of the packages a panel depends on."""
    found: dict[str, str | None] = {"python": platform.python_version()}
    for name in VERSIONED:
        try:
            found[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            found[name] = None
    return found


# ------------------------------------------------------------------- sections


def _names(selector: Any, feature_names: Sequence[str] | None) -> np.ndarray:
    if feature_names is not None:
        return np.asarray([str(g) for g in feature_names], dtype=object)
    names = getattr(selector, "feature_names_in_", None)
    if names is None:
        names = [f"x{i}" for i in range(len(selector.scores_))]
    return np.asarray([str(g) for g in names], dtype=object)


def _task_names(selector: Any) -> list[str]:
    names = list(getattr(selector, "task_names_", []) or [])
    kinds = list(selector.task_types_)
    return [str(n) for n in names] or [f"task_{i}" for i in range(len(kinds))]


def _class_stats(panel: np.ndarray, labels: np.ndarray) -> tuple[list, Any, Any]:
    observed = ~pd.isna(labels)
    values, labels = panel[observed], label_strings(labels[observed])
    classes = sorted(set(labels), key=str)
    mean = np.vstack([values[labels == c].mean(axis=0) for c in classes])
    frac = np.vstack([(values[labels == c] > 0).mean(axis=0) for c in classes])
    return classes, mean, frac


def panel_section(
    selector: Any,
    panel: np.ndarray,
    truth: np.ndarray | None,
    names: np.ndarray,
) -> dict[str, Any]:
    """The panel table: one row per panel gene, best first."""
    support = np.asarray(selector.support_, dtype=int)
    required = set(np.asarray(getattr(selector, "required_", []), dtype=int).tolist())
    kinds = list(selector.task_types_)
    tasks = _task_names(selector)
    columns = [
        "rank",
        "gene",
        "score",
        "required",
        "mean_expression",
        "fraction_expressing",
    ]
    rows = [
        [
            int(selector.ranking_[g]),
            str(names[g]),
            jsonable(float(selector.scores_[g])),
            g in required,
        ]
        for g in support
    ]
    stats = [_round(panel.mean(axis=0)), _round((panel > 0).mean(axis=0))]
    for row, mean, frac in zip(rows, *stats, strict=True):
        row += [mean, frac]
    by_class = None
    if truth is not None:
        # the task with the most classes: the finest view of what a gene marks
        candidates = [j for j, kind in enumerate(kinds) if has_classes(kind)]
        if candidates:
            counts = [
                len(set(label_strings(truth[~pd.isna(truth[:, j]), j])))
                for j in candidates
            ]
            j = candidates[int(np.argmax(counts))]
            classes, mean, _ = _class_stats(panel, truth[:, j])
            top = mean.argmax(axis=0)
            columns.append("top_class")
            columns += [f"mean in {c}" for c in classes]
            for i, row in enumerate(rows):
                row.append(classes[int(top[i])])
                row += _round(mean[:, i])
            by_class = {"task": tasks[j], "classes": classes}
    return {"columns": columns, "rows": rows, "by_class": by_class}


def dots_section(
    selector: Any, panel: np.ndarray, truth: np.ndarray, names: np.ndarray
) -> dict[str, Any]:
    """Per-class mean and detected fraction of the best panel genes, per task."""
    support = np.asarray(selector.support_, dtype=int)
    shown = min(len(support), MAX_DOT_GENES)
    out = {}
    for j, (task, kind) in enumerate(
        zip(_task_names(selector), selector.task_types_, strict=True)
    ):
        if not has_classes(kind) or pd.isna(truth[:, j]).all():
            continue
        classes, mean, frac = _class_stats(panel[:, :shown], truth[:, j])
        out[task] = {
            "classes": classes,
            "genes": [str(names[g]) for g in support[:shown]],
            "mean": [_round(r) for r in mean],
            "fraction": [_round(r) for r in frac],
            "genes_left_out": int(len(support) - shown),
        }
    return out


def confusion_section(
    selector: Any, X: Any, truth: np.ndarray
) -> dict[str, dict[str, Any]]:
    """Confusion counts of every classification task on the report's cells."""
    from sklearn.metrics import confusion_matrix

    pred = predict_table(selector, X)
    classes = getattr(selector, "classes_", None)
    kinds = list(selector.task_types_)
    if len(kinds) == 1:
        classes = [classes]
    out = {}
    for j, (task, kind) in enumerate(zip(_task_names(selector), kinds, strict=True)):
        if not has_classes(kind):
            continue
        observed = ~pd.isna(truth[:, j])
        if not observed.any():
            continue
        t = label_strings(truth[observed, j])
        p = label_strings(pred[observed, j])
        known = [] if classes is None or classes[j] is None else classes[j]
        labels = list(label_strings(known)) or sorted(set(t) | set(p))
        labels += sorted((set(t) | set(p)) - set(labels))
        cm = confusion_matrix(t, p, labels=labels)
        out[task] = {"labels": labels, "counts": jsonable(cm)}
    return out


def _curve(values: Any) -> list:
    return [] if values is None else _round(np.asarray(values, dtype=float).ravel())


def training_section(selector: Any) -> dict[str, Any] | None:
    """Loss curves, the phase switch and the kept epoch."""
    loss = getattr(selector, "loss_curve_", None)
    if loss is None:
        return None
    history = getattr(selector, "history_", None)
    return {
        "loss": _round(loss),
        "validation_loss": _curve(getattr(selector, "validation_loss_curve_", None)),
        "validation_scores": _curve(getattr(selector, "validation_scores_", None)),
        "panel_fixed_after": jsonable(getattr(history, "selection_epochs", None)),
        "kept_epoch": jsonable(getattr(history, "best_epoch", None)),
        "note": stop_note(selector, history, len(loss)),
    }


def stability_section(stability: Any) -> dict[str, Any] | None:
    """Selection frequency over refits (a ``PanelStability`` or its table)."""
    if stability is None:
        return None
    if hasattr(stability, "to_frame"):
        table = stability.to_frame()
        n_runs, jaccard = len(stability.panels), float(stability.mean_jaccard)
    else:
        table = stability["table"]
        n_runs, jaccard = int(stability["n_runs"]), float(stability["mean_jaccard"])
    table = table.sort_values("frequency", ascending=False, kind="stable")
    table = table[table["frequency"] > 0]
    return {
        "n_runs": n_runs,
        "mean_jaccard": jsonable(jaccard),
        "genes": [str(g) for g in table.index],
        "frequency": _round(table["frequency"].to_numpy(dtype=float)),
        "consensus": jsonable(table["consensus"].to_numpy(dtype=bool)),
    }


def budget_section(
    selector: Any, panel: np.ndarray, given: Mapping[str, Any] | None
) -> dict[str, Any] | None:
    """Budget use (``given``, else the selector's) and the per-cell totals."""
    from .._budget import budget_use
    from ..plotting._budget import budget_histogram

    use = dict(given) if given is not None else budget_use(selector)
    if use is None:
        return None
    if getattr(selector, "gene_loads_", None) is not None:
        totals = panel.sum(axis=1)
        counts, edges = budget_histogram(totals)
        use["cells"] = {
            "mean_total": float(totals.mean()),
            "q95_total": float(np.quantile(totals, 0.95)),
            "histogram": {"counts": jsonable(counts), "edges": _round(edges)},
        }
    return jsonable(use)


def design_section(selector: Any, names: np.ndarray) -> dict[str, Any]:
    """Required and excluded genes and the expression window."""

    def listed(attr: str) -> list[str]:
        return [str(names[i]) for i in np.asarray(getattr(selector, attr, []), int)]

    params = selector.get_params(deep=False)
    return {
        "required": listed("required_"),
        "excluded": listed("excluded_"),
        "expression_window": jsonable(params.get("expression_window")),
    }


def report_data(
    selector: Any,
    X: Any,
    y: Any = None,
    *,
    feature_names: Sequence[str] | None = None,
    cells: str = "cells given to the report",
    baselines: Mapping[str, Mapping[str, Any]] | None = None,
    baseline_labels: Mapping[str, str] | None = None,
    stability: Any = None,
    evaluator: pd.DataFrame | None = None,
    budget: Mapping[str, Any] | None = None,
    provenance: Mapping[str, Any] | None = None,
    title: str | None = None,
) -> dict[str, Any]:
    """Every number of a panel report, as a JSON-safe dictionary.

    Parameters
    ----------
    selector : YOTOSelector
        A fitted selector.
    X : array-like, sparse matrix or AnnData
        The cells the report describes (held-out cells, ideally), with the genes
        seen at fit.
    y : pandas.DataFrame or array-like, optional
        Their labels, one column per task (a DataFrame's columns matched by task
        name). Without labels the report has no metrics, confusion matrices,
        dot plots or per-class columns.
    feature_names : sequence of str, optional
        Gene names (default: the names seen at fit).
    cells : str
        Which cells these are, said next to every number (e.g. ``"held-out
        test cells"``).
    baselines : dict, optional
        ``{name: {task: {metric: value}}}``: other models' metrics on the same
        cells, shown next to YOTO's.
    baseline_labels : dict, optional
        ``{name: column title}`` for ``baselines``.
    stability : PanelStability or dict, optional
        The result of :func:`yoto_sklearn.stability.panel_stability`, or
        ``{"table": DataFrame, "n_runs": int, "mean_jaccard": float}``.
    evaluator : pandas.DataFrame, optional
        A table of evaluator metrics (e.g. from
        :func:`yoto_sklearn.evaluation.evaluate_panel`).
    budget : dict, optional
        Budget use to show (name -> value).
    provenance : dict, optional
        What made the panel: ``data``, ``command``, ``seed``... (parameters and
        package versions are always added).
    title : str, optional
        Page title.

    Returns
    -------
    data : dict
        Sections ``summary``, ``panel``, ``design``, ``metrics``, ``confusion``,
        ``dots``, ``training``, ``stability``, ``budget``, ``evaluator`` and
        ``provenance``; ``schema`` names the layout.
    """
    names = _names(selector, feature_names)
    panel = panel_matrix(selector, X)
    tasks = _task_names(selector)
    kinds = [str(k) for k in selector.task_types_]
    truth = None if y is None else task_table(selector, y, tasks)
    if truth is not None and truth.shape[0] != panel.shape[0]:
        raise ValueError(
            f"y has {truth.shape[0]} rows but X has {panel.shape[0]} cells"
        )
    metrics = None
    if truth is not None:
        frame = pd.DataFrame(truth, columns=tasks)
        metrics = {
            "cells": cells,
            "yoto": evaluate_tasks(selector, X, frame, kinds),
            "baselines": jsonable(baselines or {}),
            "baseline_labels": dict(baseline_labels or {}),
        }
    data = {
        "schema": SCHEMA,
        "title": title or f"Gene panel: {len(selector.support_)} genes",
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "summary": {
            "k": int(len(selector.support_)),
            "n_genes": int(len(names)),
            "tasks": tasks,
            "task_types": kinds,
            "n_cells": int(panel.shape[0]),
            "cells": cells,
        },
        "panel": panel_section(selector, panel, truth, names),
        "design": design_section(selector, names),
        "metrics": jsonable(metrics),
        "confusion": {} if truth is None else confusion_section(selector, X, truth),
        "dots": {} if truth is None else dots_section(selector, panel, truth, names),
        "training": training_section(selector),
        "stability": stability_section(stability),
        "budget": budget_section(selector, panel, budget),
        "evaluator": None
        if evaluator is None
        else {
            "columns": [str(c) for c in evaluator.reset_index().columns],
            "rows": jsonable(evaluator.reset_index().to_numpy(dtype=object)),
        },
        "provenance": {
            "params": jsonable(selector.get_params(deep=False)),
            "versions": versions(),
            **jsonable(dict(provenance or {})),
        },
    }
    return data
