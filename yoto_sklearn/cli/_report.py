"""Metrics, the demo's baseline, and the tables the command line prints."""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from .._targets import has_classes
from ..report import evaluate_tasks, task_metrics

__all__ = ["evaluate_tasks", "task_metrics"]


def _linear_model(kind: str) -> Any:
    from sklearn.linear_model import LogisticRegression, Ridge
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    if has_classes(kind):
        return make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000))
    return make_pipeline(StandardScaler(), Ridge(alpha=1.0))


def _f_ranking(X: np.ndarray, target: np.ndarray, kind: str) -> np.ndarray:
    """Genes by f_classif / f_regression score, best first (as SelectKBest).

    NaN scores come last; among ties the later gene comes first.
    """
    from sklearn.feature_selection import f_classif, f_regression

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # constant genes
        scores = (f_classif if has_classes(kind) else f_regression)(X, target)[0]
    scores = np.where(np.isnan(scores), np.finfo(np.float64).min, scores)
    return np.argsort(scores, kind="mergesort")[::-1]


def baseline_metrics(
    X_train: Any,
    y_train: pd.DataFrame,
    X_test: Any,
    y_test: pd.DataFrame,
    task_types: Sequence[str],
    k: int,
    shared: bool = False,
) -> dict[str, dict[str, Any]]:
    """f-test panels + a linear model per task (LogisticRegression / Ridge).

    ``shared=False``: each task picks its own ``k`` genes (SelectKBest; up to
    ``k x n_tasks`` genes in all). ``shared=True``: one ``k``-gene panel for all
    tasks, the round-robin merge of the per-task f-test rankings, the same budget
    as YOTO's one panel.
    """
    import scipy.sparse as sp

    from ..plotting import label_strings

    X_train = X_train.toarray() if sp.issparse(X_train) else np.asarray(X_train)
    X_test = X_test.toarray() if sp.issparse(X_test) else np.asarray(X_test)
    columns = list(zip(y_train.columns, task_types, strict=True))
    targets, rankings = {}, {}
    for name, kind in columns:
        labels = y_train[name].to_numpy(dtype=object)
        observed = ~pd.isna(labels)
        target = (
            label_strings(labels[observed])
            if has_classes(kind)
            else labels[observed].astype(float)
        )
        targets[name] = (observed, target)
        rankings[name] = _f_ranking(X_train[observed], target, kind)
    panel = _round_robin(list(rankings.values()), k) if shared else None
    results: dict[str, dict[str, Any]] = {}
    for name, kind in columns:
        genes = panel if shared else np.sort(rankings[name][:k])
        observed, target = targets[name]
        model = _linear_model(kind).fit(X_train[observed][:, genes], target)
        pred = model.predict(X_test[:, genes])
        results[str(name)] = task_metrics(
            kind, y_test[name].to_numpy(dtype=object), pred
        )
    return results


def _round_robin(rankings: list[np.ndarray], k: int) -> np.ndarray:
    """The first ``k`` distinct genes taking the rankings' heads in turn."""
    panel: list[int] = []
    for position in range(max(len(r) for r in rankings)):
        for ranking in rankings:
            if position < len(ranking) and int(ranking[position]) not in panel:
                panel.append(int(ranking[position]))
                if len(panel) == k:
                    return np.asarray(panel)
    return np.asarray(panel)


BASELINES = {
    "baseline_shared": "f-test panel, same budget (k genes for all tasks)",
    "baseline": "SelectKBest+linear (own k genes per task)",
}


def metric_rows(record: dict[str, Any], with_baseline: bool) -> list[list[str]]:
    """Rows of the per-task metrics table (header first)."""
    head = ["task", "type", "metric", "YOTO (one k-gene panel)"]
    shown = [key for key in BASELINES if with_baseline and key in record]
    head += [BASELINES[key] for key in shown]
    rows = [head]
    metrics = record.get("test_metrics") or record["train_metrics"]
    for name, kind in zip(record["targets"], record["task_types"], strict=True):
        keys = ["f1_macro", "accuracy"] if has_classes(kind) else ["r2", "mae"]
        for i, key in enumerate(keys):
            row = [name if i == 0 else "", kind if i == 0 else "", key]
            row.append(f"{metrics[name].get(key, float('nan')):.3f}")
            for base in shown:
                row.append(f"{record[base][name].get(key, float('nan')):.3f}")
            rows.append(row)
    return rows


def format_table(rows: list[list[str]]) -> str:
    """Align ``rows`` in columns, with a rule under the header."""
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = [
        "  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip()
        for r in rows
    ]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def wrap(words: Sequence[str], width: int = 88, indent: str = "  ") -> str:
    """Words on indented lines of at most ``width`` characters."""
    lines, line = [], indent
    for word in words:
        if len(line) + len(word) + 1 > width and line.strip():
            lines.append(line.rstrip())
            line = indent
        line += word + " "
    lines.append(line.rstrip())
    return "\n".join(lines)
