"""A panel report a collaborator can open: one self-contained HTML file.

The page holds the panel table (sortable, filterable), per-task metrics next to
the baselines a run computed, confusion matrices and dot plots (inline SVG), the
training curves, stability and budget use when present, spapros's evaluator
metrics when computed, and the parameters, data, versions and command that made
it. It loads nothing from the network, so it opens from a USB stick or an e-mail
attachment. Every number on it comes from one dictionary that is embedded in the
page as JSON (``<script type="application/json" id="yoto-report-data">``);
:func:`read_report` reads it back.

- :func:`write_report`: a fitted selector and cells -> ``report.html``;
- :func:`report_data` / :func:`render_report`: the same in two steps;
- :func:`read_report`: the numbers of a report page, ``report.json`` or run folder;
- :func:`compare_reports`: two panels side by side (overlap, ranks, metrics).

On the command line: ``yoto-sklearn fit --report``, ``yoto-sklearn report RUN``
and ``yoto-sklearn report RUN_A RUN_B``.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd
from sklearn.utils._param_validation import HasMethods, validate_params

from ._data import SCHEMA, evaluate_tasks, task_metrics
from ._data import report_data as unchecked_report_data
from ._html import COMPARISON_SCHEMA, DATA_ID, render, render_comparison

__all__ = [
    "report_data",
    "render_report",
    "write_report",
    "read_report",
    "compare_reports",
    "evaluate_tasks",
    "task_metrics",
    "RUN_REPORT_DATA",
]

RUN_REPORT_DATA = "report.json"  # what a CLI run folder keeps for the page
PATH = [str, os.PathLike]
_REPORT_PARAMS = {
    "selector": [HasMethods(["transform", "predict"])],
    "X": "no_validation",
    "y": "no_validation",
    "feature_names": [None, "array-like"],
    "cells": [str],
    "baselines": [None, dict],
    "baseline_labels": [None, dict],
    "stability": "no_validation",
    "evaluator": [None, pd.DataFrame],
    "budget": [None, dict],
    "provenance": [None, dict],
    "title": [None, str],
}


# the public door: arguments checked declaratively, then built by _data
report_data = validate_params(_REPORT_PARAMS, prefer_skip_nested_validation=True)(
    unchecked_report_data
)


def render_report(data: Mapping[str, Any]) -> str:
    """The HTML page of :func:`report_data`'s dictionary (or of :func:`read_report`).

    Raises
    ------
    ValueError
        If ``data`` is not a report's dictionary.
    """
    _check_schema(data, SCHEMA)
    return render(dict(data))


@validate_params({**_REPORT_PARAMS, "path": PATH}, prefer_skip_nested_validation=True)
def write_report(
    selector: Any,
    X: Any,
    y: Any = None,
    path: str | os.PathLike[str] = "panel_report.html",
    **options: Any,
) -> Path:
    """Write the report of a fitted selector to one self-contained HTML file.

    Parameters
    ----------
    selector, X, y
        See :func:`report_data`.
    path : str or path-like, default="panel_report.html"
        Where to write the page.
    **options
        The keyword arguments of :func:`report_data`.

    Returns
    -------
    path : pathlib.Path
        The file written.

    Examples
    --------
    >>> from yoto_sklearn.report import write_report
    >>> write_report(selector, X_test, y_test, "panel.html",
    ...              cells="held-out test cells")  # doctest: +SKIP
    """
    data = report_data(selector, X, y, **options)
    path = Path(path)
    path.write_text(render(data), encoding="utf-8")
    return path


def _check_schema(data: Any, schema: str) -> None:
    if not isinstance(data, Mapping) or data.get("schema") != schema:
        found = data.get("schema") if isinstance(data, Mapping) else type(data).__name__
        raise ValueError(
            f"not a yoto-sklearn report ({schema!r} expected, got {found!r})"
        )


def read_report(source: str | os.PathLike[str]) -> dict[str, Any]:
    """The numbers of a report: from its HTML page, a ``report.json``, or a run folder.

    Parameters
    ----------
    source : str or path-like
        An HTML report (the embedded JSON is decoded), a ``report.json``, or a
        folder written by ``yoto-sklearn fit`` / ``demo`` (its ``report.json``).

    Returns
    -------
    data : dict
        The dictionary :func:`report_data` returned (or, for a comparison page,
        the comparison's dictionary with both reports).

    Raises
    ------
    ValueError
        If the file holds no report, or the folder has no ``report.json``.
    FileNotFoundError
        If ``source`` does not exist.
    """
    path = Path(source)
    if not path.exists():
        raise FileNotFoundError(f"no such file or folder: {path}")
    if path.is_dir():
        if not (path / RUN_REPORT_DATA).is_file():
            raise ValueError(
                f"{path} has no {RUN_REPORT_DATA}: it is not a folder written by "
                "yoto-sklearn fit/demo of version 0.3 or later (rerun the fit)"
            )
        path = path / RUN_REPORT_DATA
    text = path.read_text(encoding="utf-8")
    if path.suffix.lower() in (".html", ".htm"):
        start = text.find(f'id="{DATA_ID}">')
        if start < 0:
            raise ValueError(f"{path} has no embedded report data ({DATA_ID})")
        start += len(f'id="{DATA_ID}">')
        text = text[start : text.index("</script>", start)].replace("<\\/", "</")
        text = text.replace("<\\!--", "<!--")
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path} is not a report: {exc}") from None
    if data.get("schema") not in (SCHEMA, COMPARISON_SCHEMA):
        _check_schema(data, SCHEMA)
    return data


def compare_reports(
    a: str | os.PathLike[str] | Mapping[str, Any],
    b: str | os.PathLike[str] | Mapping[str, Any],
    path: str | os.PathLike[str] = "panel_comparison.html",
    *,
    names: Sequence[str] | None = None,
) -> Path:
    """Write one page comparing two panels: overlap, ranks, per-task metrics.

    Parameters
    ----------
    a, b : path or dict
        Reports (HTML pages, ``report.json`` files, run folders, or
        :func:`report_data` dictionaries).
    path : str or path-like, default="panel_comparison.html"
        Where to write the page.
    names : pair of str, optional
        Names of the two panels (default: the run folders' or files' names, or
        ``"A"`` and ``"B"``).

    Returns
    -------
    path : pathlib.Path
    """
    loaded = []
    default = []
    for i, item in enumerate((a, b)):
        if isinstance(item, Mapping):
            _check_schema(item, SCHEMA)
            loaded.append(dict(item))
            default.append("AB"[i])
        else:
            loaded.append(read_report(item))
            _check_schema(loaded[-1], SCHEMA)
            p = Path(item)
            default.append(p.name if p.is_dir() else p.stem)
    if names is None:
        names = default if default[0] != default[1] else ["A", "B"]
    if len(names) != 2 or names[0] == names[1]:
        raise ValueError(f"names must be two different names; got {list(names)}")
    path = Path(path)
    path.write_text(render_comparison(*loaded, names=[str(n) for n in names]), "utf-8")
    return path
