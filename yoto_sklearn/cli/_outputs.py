"""What ``fit`` and ``demo`` write: model file, panel tables, metrics.json, PNGs."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ._parser import CLIError

MODEL_FILE = "model.safetensors"
# Written by yoto-sklearn 0.1 (a torch archive); still read.
LEGACY_MODEL_FILE = "model.pt"
JOBLIB_MODEL_FILE = "model.joblib"
RUN_FILE = "metrics.json"
# Files a run always writes (pictures are listed in the run record).
REPORT_DATA = "report.json"
REPORT_PAGE = "report.html"
_RUN_FILES = (
    "panel.csv",
    REPORT_DATA,
    REPORT_PAGE,
    "stability.csv",
    "gene_scores.csv",
    RUN_FILE,
    MODEL_FILE,
    LEGACY_MODEL_FILE,
    JOBLIB_MODEL_FILE,
)


def say(args: argparse.Namespace, message: str) -> None:
    """Print a progress message on stderr unless ``--quiet``."""
    if not args.quiet:
        print(message, file=sys.stderr, flush=True)


def clear_previous_run(out: Path) -> None:
    """Remove the files an earlier run wrote into ``out`` (and nothing else).

    Without this, a second ``fit`` into the same folder would leave the first run's
    pictures (e.g. a confusion matrix of a task it no longer has) next to the new
    results. Only the fixed output names and the pictures listed in the earlier
    ``metrics.json`` are removed; other files in the folder are left alone.
    """
    if not out.is_dir():
        return
    names = list(_RUN_FILES)
    record_file = out / RUN_FILE
    if record_file.is_file():
        try:
            plots = json.loads(record_file.read_text()).get("plots") or []
        except (OSError, ValueError, AttributeError):
            plots = []
        names += [p for p in plots if isinstance(p, str) and "/" not in p]
    for name in names:
        path = out / name
        if path.is_file():
            path.unlink()


def save_model(selector: Any, out: Path) -> Path:
    """Save with the selector's own safe format, else with joblib.

    joblib (pickle) is used when the selector has no ``save`` method or when
    ``save`` refuses the model (e.g. class labels it cannot store without
    pickling), so that a finished fit is never lost; a note says so.
    """
    if hasattr(selector, "save"):
        path = out / MODEL_FILE
        try:
            selector.save(path)
            return path
        except ValueError as exc:
            print(
                f"note: {type(selector).__name__}.save refused this model ({exc}); "
                f"writing {JOBLIB_MODEL_FILE} with joblib instead",
                file=sys.stderr,
            )
    import joblib

    path = out / JOBLIB_MODEL_FILE
    joblib.dump(selector, path)
    return path


def resolve_model(path: Path) -> tuple[Path, dict[str, Any]]:
    """Return the model file and the run record found next to it (if any)."""
    if not path.exists():
        raise FileNotFoundError(f"no such model: {path}")
    folder = path if path.is_dir() else path.parent
    if path.is_dir():
        for name in (MODEL_FILE, LEGACY_MODEL_FILE, JOBLIB_MODEL_FILE):
            if (path / name).exists():
                path = path / name
                break
        else:
            raise CLIError(
                f"{path} holds no {MODEL_FILE} or {JOBLIB_MODEL_FILE}: give the "
                "folder written by 'yoto-sklearn fit' or the model file itself"
            )
    record: dict[str, Any] = {}
    run_file = folder / RUN_FILE
    if run_file.is_file():
        try:
            record = json.loads(run_file.read_text())
        except (OSError, ValueError):
            record = {}
    return path, record


def load_model(path: Path) -> Any:
    """Load a model file written by :func:`save_model`."""
    if path.suffix == ".joblib":
        import joblib

        return joblib.load(path)
    from yoto_sklearn import YOTOSelector

    return YOTOSelector.load(path)


def write_panel(selector: Any, gene_names: Sequence[str], out: Path) -> list[str]:
    """Write ``panel.csv`` and ``gene_scores.csv``; return the panel genes."""
    scores = np.asarray(selector.scores_, dtype=float)
    ranking = np.asarray(selector.ranking_, dtype=int)
    support = np.asarray(selector.support_, dtype=int)
    names = np.asarray(gene_names, dtype=object)
    # required genes are placed, not ranked: their score is not learned
    required = np.isin(np.arange(names.size), getattr(selector, "required_", []))
    excluded = np.isin(np.arange(names.size), getattr(selector, "excluded_", []))
    panel = pd.DataFrame(
        {
            "gene": names[support],
            "score": scores[support],
            "rank": ranking[support],
            "required": required[support],
        }
    )
    loads = getattr(selector, "gene_loads_", None)
    if loads is not None:  # with a budget: what each gene spends of it
        panel["mean_expression"] = np.asarray(loads)[support]
    panel.to_csv(out / "panel.csv", index=False)
    every = pd.DataFrame(
        {
            "gene": names,
            "score": scores,
            "rank": ranking,
            "selected": np.isin(np.arange(names.size), support),
            "required": required,
            "excluded": excluded,
            **({} if loads is None else {"mean_expression": np.asarray(loads)}),
        }
    ).sort_values("rank", kind="stable")
    every.to_csv(out / "gene_scores.csv", index=False)
    return [str(g) for g in names[support]]


def write_plots(
    args: argparse.Namespace,
    selector: Any,
    gene_names: Sequence[str],
    out: Path,
    X_eval: Any,
    y_eval: pd.DataFrame,
    which: str,
) -> list[str]:
    """Write the PNGs of a run; return their file names (none without matplotlib)."""
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        say(
            args,
            "plots skipped: matplotlib is not installed "
            '(pip install "yoto-sklearn[plot]")',
        )
        return []
    from .. import plotting

    written = []
    plotting.plot_training_curves(selector, path=out / "training_curves.png")
    written.append("training_curves.png")
    plotting.plot_gene_scores(
        selector, feature_names=list(gene_names), path=out / "gene_scores.png"
    )
    written.append("gene_scores.png")
    cells = (
        "held-out test cells" if which == "test" else "training cells (not held out)"
    )
    figures = plotting.plot_confusion_matrices(
        selector, X_eval, y_eval, directory=out, prefix=f"confusion_{which}_",
        cells=cells,
    )  # fmt: skip
    written += [
        Path(plotting.task_png(".", f"confusion_{which}_", name)).name
        for name in figures
    ]
    expression = plotting.plot_panel_expressions(
        selector,
        X_eval,
        y_eval,
        directory=out,
        prefix=f"panel_expression_{which}_",
    )
    written += [
        Path(plotting.task_png(".", f"panel_expression_{which}_", name)).name
        for name in expression
    ]
    if getattr(selector, "gene_loads_", None) is not None:
        plotting.plot_panel_budget(selector, X_eval, path=out / "budget.png")
        written.append("budget.png")
    return written


def write_stability_plot(table: pd.DataFrame, out: Path, stability: dict) -> list[str]:
    """Write ``selection_frequency.png``; return its name (none without matplotlib)."""
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        return []
    from .. import plotting

    plotting.plot_selection_frequency(
        table,
        title=f"{stability['n_runs']} refits on 80% of the cells, mean pairwise "
        f"Jaccard {float(stability['mean_jaccard']):.2f} (red: consensus panel)",
        path=out / "selection_frequency.png",
    )
    return ["selection_frequency.png"]


def _json_default(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, tuple | set):
        return list(value)
    return str(value)


def write_json(path: Path, record: dict[str, Any]) -> None:
    """Write ``record`` as indented JSON (numpy values converted)."""
    path.write_text(json.dumps(record, indent=2, default=_json_default) + "\n")


def write_report_files(
    selector: Any,
    X_eval: Any,
    y_eval: pd.DataFrame,
    gene_names: Sequence[str],
    record: dict[str, Any],
    out: Path,
    *,
    stability: pd.DataFrame | None,
    page: bool,
) -> list[str]:
    """Write ``report.json`` (always) and ``report.html`` (when ``page``).

    The report's numbers are computed once, on the cells the run's metrics are
    on; ``yoto-sklearn report RUN`` renders the page from ``report.json`` later.
    """
    from ..report import render_report, report_data
    from ._report import BASELINES

    which = "test" if "test_metrics" in record else "train"
    cells = (
        "held-out test cells" if which == "test" else "training cells (not held out)"
    )
    baselines = {key: record[key] for key in BASELINES if key in record}
    data = record["data"]
    provenance = {
        "data": data["source"],
        "command": record.get("command"),
        "seed": data["seed"],
        "n_train": data["n_train"],
        "n_test": data["n_test"],
        "fit_seconds": record["fit_seconds"],
        "n_iter": record["n_iter"],
        "device": record["device"],
    }
    stab = None
    if stability is not None:
        stab = {
            "table": stability,
            "n_runs": record["stability"]["n_runs"],
            "mean_jaccard": record["stability"]["mean_jaccard"],
        }
    report = report_data(
        selector,
        X_eval,
        y_eval,
        budget=record.get("budget"),
        feature_names=list(gene_names),
        cells=cells,
        baselines=baselines or None,
        baseline_labels={k: BASELINES[k] for k in baselines} or None,
        stability=stab,
        provenance=provenance,
        title=f"Gene panel: {len(record['panel'])} genes from {data['source']}",
    )
    write_json(out / REPORT_DATA, report)
    written = [REPORT_DATA]
    if page:
        (out / REPORT_PAGE).write_text(render_report(report), encoding="utf-8")
        written.append(REPORT_PAGE)
    return written
