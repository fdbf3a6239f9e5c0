"""``fit`` and ``predict`` on a TileDB-SOMA experiment (a local folder or a URI).

The data stay where they are: the cells are streamed from the experiment by
:class:`~yoto_sklearn.soma.SomaSource` (``--obs-filter`` / ``--var-filter`` are its
value filters, ``--layer`` its X layer, ``--measurement`` the measurement,
``--tiledb-config KEY=VALUE`` its TileDB configuration), the
held-out part is a set of cell positions, and prediction reads only the panel
columns. Pictures and the HTML report need the expression in memory and are not
drawn for a SOMA input (metrics.json says so); everything else a ``fit`` writes is
written.
"""

from __future__ import annotations

import argparse
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .._budget import budget_use
from ..report._data import evaluate_tasks
from ._design import design_params, merge_options
from ._outputs import (
    RUN_FILE,
    clear_previous_run,
    save_model,
    say,
    write_json,
    write_panel,
)
from ._parser import CLIError

NOT_DRAWN = (
    "pictures and report.html are not drawn for a SOMA experiment (they need the "
    "expression in memory); metrics, panel and model are written"
)


def refuse_soma_options(args: argparse.Namespace) -> None:
    """``--obs-filter`` and friends name a SOMA query: not for a file."""
    for flag in ("obs_filter", "var_filter", "panel_layer", "tiledb_config"):
        if getattr(args, flag, None) is not None:
            raise CLIError(
                f"--{flag.replace('_', '-')} is for a TileDB-SOMA experiment; "
                f"{args.data} is not one"
            )


def is_soma(data: str) -> bool:
    """Whether the DATA argument names a TileDB-SOMA experiment (folder or URI)."""
    if "://" in data:  # s3://, tiledb://, file://: only tiledbsoma opens these
        return True
    path = Path(data)
    return path.is_dir() and (
        (path / "__tiledb_group.tdb").exists() or (path / "__group").is_dir()
    )


def soma_source(
    args: argparse.Namespace, genes: Any = None, layer: str | None = None
) -> Any:
    """The :class:`~yoto_sklearn.soma.SomaSource` the options describe."""
    from ..soma import SomaSource

    if getattr(args, "use_raw", None):
        raise CLIError("--use-raw is for AnnData files; a SOMA experiment has no .raw")
    return SomaSource(
        args.data,
        measurement=args.measurement,
        X_layer=args.layer or layer or "data",
        panel_layer=getattr(args, "panel_layer", None),
        obs_value_filter=args.obs_filter,
        var_value_filter=None if genes is not None else args.var_filter,
        genes=genes,
        tiledb_config=dict(args.tiledb_config) if args.tiledb_config else None,
    )


def fit_soma(
    args: argparse.Namespace, targets: list[str], params: dict, user_types: Any
) -> dict[str, Any]:
    """``yoto-sklearn fit`` on a SOMA experiment; returns the run record."""
    from .. import YOTOSelector
    from ..anndata import obs_targets
    from ..evaluation import holdout_split

    refused = (
        ("--obs", args.obs),
        ("--stability-runs", args.stability_runs),
        ("--report", args.report),
    )
    for flag, given in refused:
        if given:
            raise CLIError(f"{flag} is not available for a SOMA experiment")
    started = time.perf_counter()
    out = Path(args.out)
    if out.exists() and not out.is_dir():
        raise CLIError(f"--out {out} exists and is not a folder")
    source = soma_source(args)
    names = pd.Index(source.var_names.astype(str))
    if args.k > len(names):
        raise CLIError(
            f"--k {args.k} is larger than the number of genes ({len(names)})"
        )
    merge_options(params, design_params(args, names), {})
    y_all, task_types = obs_targets(source.read_obs(targets), targets, user_types)
    if args.test_size > 0:
        train_idx, test_idx, strat = holdout_split(
            y_all, task_types, args.test_size, args.seed
        )
    else:
        train_idx, test_idx, strat = np.arange(source.n_obs), np.arange(0), None
    say(
        args,
        f"fitting YOTO on the SOMA experiment {args.data}: {len(train_idx)} cells x "
        f"{len(names)} genes, k={args.k}, tasks: " + ", ".join(targets),
    )
    fit_started = time.perf_counter()
    selector = YOTOSelector(k=args.k, task_types=task_types, **params)
    with warnings.catch_warnings():
        if args.quiet:
            warnings.simplefilter("ignore")
        selector.fit(source[train_idx], y_all.iloc[train_idx])
    fit_seconds = time.perf_counter() - fit_started
    out.mkdir(parents=True, exist_ok=True)
    clear_previous_run(out)
    panel = write_panel(selector, list(names), out)
    model_path = save_model(selector, out)
    record: dict[str, Any] = {
        "data": {
            "source": str(args.data),
            "format": "tiledbsoma",
            "measurement": args.measurement,
            "X_layer": source.X_layer,
            "obs_filter": args.obs_filter,
            "var_filter": args.var_filter,
            "n_cells": int(source.n_obs),
            "n_genes": len(names),
            "n_train": int(len(train_idx)),
            "n_test": int(len(test_idx)),
            "test_size": args.test_size,
            "stratified_on": strat,
            "seed": args.seed,
        },
        "command": getattr(args, "command_line", None),
        "k": args.k,
        "targets": list(targets),
        "task_types": list(task_types),
        "params": selector.get_params(deep=False),
        "panel": panel,
        "model": model_path.name,
        "n_iter": selector.n_iter_,
        "budget": budget_use(selector),
        "device": str(selector.device_),
        "fit_seconds": round(fit_seconds, 2),
        "train_metrics": evaluate_tasks(
            selector, source[train_idx], y_all.iloc[train_idx], task_types
        ),
        "loss_curve": selector.loss_curve_,
        "validation_loss_curve": selector.validation_loss_curve_,
        "validation_scores": selector.validation_scores_,
        "plots": [],
        "note": NOT_DRAWN,
    }
    if len(test_idx):
        record["test_metrics"] = evaluate_tasks(
            selector, source[test_idx], y_all.iloc[test_idx], task_types
        )
    say(args, NOT_DRAWN)
    record["wall_seconds"] = round(time.perf_counter() - started, 2)
    write_json(out / RUN_FILE, record)
    return record


def predict_source(
    args: argparse.Namespace, selector: Any, record: dict | None
) -> tuple[Any, pd.Index]:
    """The model's genes of the SOMA cells to predict, and the cells' names.

    The X layer is ``--layer``, else the one the model was fitted on (a SOMA fit
    records it), else ``data``.
    """
    genes = getattr(selector, "feature_names_in_", None)
    if genes is None:
        raise CLIError(
            "this model was fitted without gene names; a SOMA experiment's genes "
            "are matched by name"
        )
    fitted = ((record or {}).get("data") or {}).get("X_layer")
    source = soma_source(args, genes=[str(g) for g in genes], layer=fitted)
    return source, pd.Index(source.obs_ids, name="soma_joinid")
