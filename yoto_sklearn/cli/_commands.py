"""The three commands, ``demo``, ``fit`` and ``predict``: from a file to a panel.

The data path of ``fit``: :func:`~yoto_sklearn.cli.readers.read_data` (file to
AnnData) -> :func:`~yoto_sklearn.anndata.obs_targets` (obs columns to tasks, one
type rule for every door) -> train/test split -> :func:`~yoto_sklearn.anndata.
select_genes` (the fit) -> ``_outputs`` (model, panel, metrics.json, PNGs).
"""

from __future__ import annotations

import argparse
import ast
import time
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from .._budget import budget_use
from ..report._data import predict_table
from ..sources import ArraySource
from ._design import (
    design_params,
    merge_options,
    read_gene_list,
    stability_table,
)
from ._outputs import (
    RUN_FILE,
    clear_previous_run,
    load_model,
    resolve_model,
    save_model,
    say,
    write_json,
    write_panel,
    write_plots,
    write_report_files,
    write_stability_plot,
)
from ._parser import CLIError
from ._report import (
    baseline_metrics,
    evaluate_tasks,
    format_table,
    metric_rows,
    wrap,
)
from ._soma import fit_soma, is_soma, predict_source, refuse_soma_options
from .readers import TABLE_SUFFIXES, read_data, read_obs_table, read_panel_columns
from .readers import suffix as data_suffix

if TYPE_CHECKING:  # pragma: no cover
    import anndata


def _parse_set(items: Sequence[str] | None) -> dict[str, Any]:
    """``--set NAME=VALUE`` pairs, checked against YOTOSelector's parameters."""
    from .. import YOTOSelector

    valid = YOTOSelector().get_params()
    params: dict[str, Any] = {}
    for item in items or ():
        key, sep, raw = item.partition("=")
        key = key.strip()
        if not sep or not key:
            raise CLIError(f"--set expects NAME=VALUE, got {item!r}")
        if key not in valid:
            raise CLIError(
                f"--set {key}: not a YOTOSelector parameter; valid names: "
                + ", ".join(sorted(valid))
            )
        try:
            value: Any = ast.literal_eval(raw)
        except (ValueError, SyntaxError):
            value = raw
        params[key] = value
    return params


def _selector_params(args: argparse.Namespace) -> dict[str, Any]:
    params = _parse_set(getattr(args, "set", None))
    params.setdefault("random_state", args.seed)
    params.setdefault("device", args.device)
    params.setdefault("verbose", 0 if args.quiet else 1)
    options = {
        key: getattr(args, key)
        for key in ("max_iter", "temperature")
        if getattr(args, key, None) is not None
    }
    merge_options(params, options, {})
    return params


def _task_type_flags(
    args: argparse.Namespace, targets: Sequence[str], user_types: Any
) -> Any:
    """``--categorical`` / ``--regression`` as a task_types dict."""
    flags = {
        "classification": list(getattr(args, "categorical", None) or []),
        "regression": list(getattr(args, "regression", None) or []),
    }
    option = {"classification": "--categorical", "regression": "--regression"}
    chosen: dict[str, str] = {}
    for kind, columns in flags.items():
        for column in columns:
            if column not in targets:
                raise CLIError(
                    f"{option[kind]} {column!r} is not one of the --target columns"
                )
            if chosen.get(column, kind) != kind:
                raise CLIError(
                    f"{column!r} is given both --categorical and --regression"
                )
            chosen[column] = kind
    if chosen and user_types is None:
        return chosen
    return user_types


def _check_targets(adata: anndata.AnnData, targets: Sequence[str]) -> None:
    from .._targets import short_list

    missing = [t for t in targets if t not in adata.obs.columns]
    if missing:
        raise CLIError(
            f"unknown obs column {missing[0]!r}; available: "
            f"{short_list(list(adata.obs.columns))}"
        )


def fit_and_report(
    args: argparse.Namespace,
    adata: anndata.AnnData,
    targets: Sequence[str],
    *,
    k: int,
    layer: str | None,
    use_raw: bool,
    test_size: float,
    out: Path,
    source: str,
    baseline: bool,
    report: bool,
) -> dict[str, Any]:
    """Shared body of ``fit`` and ``demo``: split, fit, evaluate, write."""
    from ..anndata import obs_targets, select_genes
    from ..evaluation import holdout_split
    from ..sources import anndata_matrix

    started = time.perf_counter()
    if out.exists() and not out.is_dir():
        raise CLIError(f"--out {out} exists and is not a folder")
    all_genes = pd.Index(anndata_matrix(adata, layer, use_raw)[1])
    n_genes = len(all_genes)
    _check_targets(adata, targets)
    if k > n_genes:
        raise CLIError(f"--k {k} is larger than the number of genes ({n_genes})")
    params = _selector_params(args)
    flags = {"expression_window": "--min/--max-mean-expression"}
    merge_options(params, design_params(args, all_genes), flags)
    stability_runs = getattr(args, "stability_runs", None) or 0
    user_types = _task_type_flags(args, targets, params.pop("task_types", None))
    y_all, task_types = obs_targets(adata.obs, targets, user_types)

    if test_size > 0:
        train_idx, test_idx, strat = holdout_split(
            y_all, task_types, test_size, args.seed
        )
        train = adata[train_idx].copy()
        test = adata[test_idx].copy()
    else:
        train, test, strat = adata, None, None
        train_idx, test_idx = np.arange(adata.n_obs), np.arange(0)

    say(
        args,
        f"fitting YOTO: {train.n_obs} cells x {n_genes} genes, k={k}, tasks: "
        + ", ".join(
            f"{t} ({kind})" for t, kind in zip(targets, task_types, strict=True)
        ),
    )
    fit_started = time.perf_counter()
    with warnings.catch_warnings():
        if args.quiet:
            warnings.simplefilter("ignore")
        selector = select_genes(
            train,
            list(targets),
            k=k,
            layer=layer,
            use_raw=use_raw,
            task_types=task_types,
            stability_runs=stability_runs,
            **params,
        )
    fit_seconds = time.perf_counter() - fit_started

    matrix, gene_names = anndata_matrix(train, layer, use_raw)
    gene_names = pd.Index(gene_names)
    out.mkdir(parents=True, exist_ok=True)
    clear_previous_run(out)
    panel = write_panel(selector, list(gene_names), out)
    model_path = save_model(selector, out)

    # the selector reads the matrix it was fitted on (X, a layer or .raw) itself
    X_train = train
    record: dict[str, Any] = {
        "data": {
            "source": source,
            "n_cells": int(adata.n_obs),
            "n_genes": n_genes,
            "layer": layer,
            "use_raw": use_raw,
            "n_train": int(train_idx.size),
            "n_test": int(test_idx.size),
            "test_size": test_size,
            "stratified_on": strat,
            "seed": args.seed,
        },
        "command": getattr(args, "command_line", None),
        "k": k,
        "targets": list(targets),
        "task_types": list(task_types),
        "params": selector.get_params(deep=False),
        "panel": panel,
        "model": model_path.name,
        "n_iter": getattr(selector, "n_iter_", None),
        "budget": budget_use(selector),
        "device": str(getattr(selector, "device_", args.device)),
        "fit_seconds": round(fit_seconds, 2),
        "train_metrics": evaluate_tasks(
            selector, X_train, y_all.iloc[train_idx], task_types
        ),
        "loss_curve": getattr(selector, "loss_curve_", None),
        "validation_loss_curve": getattr(selector, "validation_loss_curve_", None),
        "validation_scores": getattr(selector, "validation_scores_", None),
    }

    X_eval, y_eval, which = X_train, y_all.iloc[train_idx], "train"
    if test is not None:
        test_matrix = anndata_matrix(test, layer, use_raw)[0]
        X_eval = test
        y_eval, which = y_all.iloc[test_idx], "test"
        record["test_metrics"] = evaluate_tasks(selector, X_eval, y_eval, task_types)
        if baseline:
            for key, shared in (("baseline", False), ("baseline_shared", True)):
                record[key] = baseline_metrics(
                    matrix, y_all.iloc[train_idx], test_matrix, y_eval, task_types,
                    k, shared=shared,
                )  # fmt: skip
    # The record is complete before any picture is drawn: a plotting failure
    # cannot leave a run folder without its metrics.
    record["plots"] = []
    record["wall_seconds"] = round(time.perf_counter() - started, 2)
    write_json(out / RUN_FILE, record)
    record["plots"] = write_plots(
        args, selector, gene_names, out, X_eval, y_eval, which
    )
    if stability_runs:
        var = train.raw.var if use_raw else train.var
        table = stability_table(var)
        table.to_csv(out / "stability.csv")
        stability = dict(train.uns["yoto"]["stability"])
        record["stability"] = {
            "n_runs": stability_runs,
            "mean_jaccard": float(stability["mean_jaccard"]),
            "consensus": [str(g) for g in stability["consensus"]],
        }
        record["plots"] += write_stability_plot(table, out, stability)
    record["report"] = write_report_files(
        selector,
        X_eval,
        y_eval,
        gene_names,
        record,
        out,
        stability=table if stability_runs else None,
        page=report,
    )
    record["wall_seconds"] = round(time.perf_counter() - started, 2)
    write_json(out / RUN_FILE, record)
    return record


def cmd_fit(args: argparse.Namespace) -> int:
    """``yoto-sklearn fit``."""
    targets = list(dict.fromkeys(args.target))
    if args.layer is not None and args.use_raw:
        raise CLIError("use either --layer or --use-raw, not both")
    _parse_set(args.set)  # a misspelt --set name fails before the data are read
    if is_soma(str(args.data)):  # streamed from the experiment, never loaded whole
        params = _selector_params(args)
        user_types = _task_type_flags(args, targets, params.pop("task_types", None))
        record = fit_soma(args, targets, params, user_types)
        _print_fit(args, record)
        return 0
    refuse_soma_options(args)
    extra = None
    if args.obs is not None:
        extra = read_obs_table(Path(args.obs))
    in_data = [t for t in targets if extra is None or t not in extra.columns]
    adata = read_data(args.data, in_data)
    if extra is not None:
        if not extra.index.isin(adata.obs_names).any():
            raise CLIError(
                f"no cell name of {Path(args.obs).name} matches the data's cell names"
            )
        adata.obs = adata.obs.join(extra.reindex(adata.obs_names), rsuffix="_obs")
    record = fit_and_report(
        args,
        adata,
        targets,
        k=args.k,
        layer=args.layer,
        use_raw=args.use_raw,
        test_size=args.test_size,
        out=Path(args.out),
        source=str(args.data),
        baseline=False,
        report=args.report,
    )
    _print_fit(args, record)
    return 0


def _print_fit(args: argparse.Namespace, record: dict[str, Any]) -> None:
    """What ``fit`` prints on stdout: metrics, panel, where the files went."""
    if args.quiet:
        return
    which = "test" if "test_metrics" in record else "training"
    print(f"Per-task {which} metrics:")
    print(format_table(metric_rows(record, with_baseline=False)))
    print(f"Panel ({len(record['panel'])} genes, best first):")
    print(wrap(record["panel"]))
    if "stability" in record:
        stab = record["stability"]
        print(
            f"Stability: {stab['n_runs']} refits on 80% of the cells, mean "
            f"pairwise Jaccard {stab['mean_jaccard']:.2f} (stability.csv: each "
            "gene's selection frequency)"
        )
    if "note" in record:  # a SOMA experiment: no pictures, no report
        print(f"Wrote {Path(args.out)}/ (panel.csv, {record['model']}, metrics.json)")
        return
    page = ", report.html" if args.report else ""
    print(
        f"Wrote {Path(args.out)}/ (panel.csv, {record['model']}, metrics.json, "
        f"PNGs{page}); 'yoto-sklearn report {args.out}' writes the HTML report"
        if not args.report
        else f"Wrote {Path(args.out)}/ (panel.csv, {record['model']}, "
        f"metrics.json, PNGs{page})"
    )


def cmd_demo(args: argparse.Namespace) -> int:
    """``yoto-sklearn demo``."""
    from ..datasets import load_pbmc68k_reduced

    started = time.perf_counter()
    adata = load_pbmc68k_reduced()
    from ._parser import DEMO_TARGETS

    targets = list(args.target or DEMO_TARGETS)
    say(
        args,
        f"pbmc68k_reduced: {adata.n_obs} cells x {adata.raw.n_vars} genes "
        "(adata.raw, log-normalised); "
        f"{int(round(args.test_size * 100))}% test cells, stratified on bulk_labels",
    )
    record = fit_and_report(
        args,
        adata,
        targets,
        k=args.k,
        layer=None,
        use_raw=True,
        test_size=args.test_size,
        out=Path(args.out),
        source="pbmc68k_reduced (scanpy)",
        baseline=True,
        report=True,
    )
    record["wall_seconds"] = round(time.perf_counter() - started, 2)
    write_json(Path(args.out) / RUN_FILE, record)
    if not args.quiet:
        n_test = record["data"]["n_test"]
        print(f"\nTest metrics on {n_test} held-out cells, k={args.k} genes:")
        print(format_table(metric_rows(record, with_baseline=True)))
        print(
            f"YOTO: one model, one panel of {args.k} genes for all tasks, trained "
            "once. Same budget: one panel of the same k genes for all tasks (the "
            "round-robin merge of each task's f_classif / f_regression ranking), "
            "then LogisticRegression / Ridge per task. Own k genes per task: "
            f"SelectKBest picks {args.k} genes for each task separately (up to "
            f"{args.k * len(record['targets'])} genes in all), a larger budget "
            "than YOTO's."
        )
        print(f"\nYOTO panel ({len(record['panel'])} genes, best first):")
        print(wrap(record["panel"]))
        print(
            f"\nWrote {args.out}/: panel.csv, gene_scores.csv, {record['model']}, "
            f"metrics.json, {', '.join(record['plots']) or 'no plots'}, "
            "report.html (open it in a browser)"
        )
        print(
            f"Wall time {record['wall_seconds']:.1f} s "
            f"(YOTO fit {record['fit_seconds']:.1f} s, {record['n_iter']} epochs)"
        )
    return 0


def _predict_matrix(
    args: argparse.Namespace, selector: Any, record: dict[str, Any]
) -> tuple[str | None, bool]:
    """Which matrix of DATA to read: the flags, else what the model was fitted on.

    The model file records it (``anndata_input_``); older files fall back on the
    run's metrics.json, and without either X is read with a note.
    """
    fitted = getattr(selector, "anndata_input_", None)
    unknown = fitted is not None and fitted.get("use_raw") is None
    if unknown and "data" in record:  # an older model file: its run's record
        fitted, unknown = (
            {k: record["data"].get(k) for k in ("layer", "use_raw")},
            False,
        )
    if unknown and args.layer is None and args.use_raw is None:
        say(
            args,
            "note: the model file does not say which matrix it was fitted on "
            "(saved before yoto-sklearn recorded it); reading X. Pass --use-raw "
            "or --layer NAME if it was another.",
        )
    fitted = fitted or {}
    use_raw = args.use_raw if args.use_raw is not None else bool(fitted.get("use_raw"))
    layer = args.layer if args.layer is not None else fitted.get("layer")
    if args.layer == "" or args.use_raw:
        layer = None
    if args.layer:
        use_raw = False
    return layer, use_raw


def _panel_matrix(
    args: argparse.Namespace, selector: Any, record: dict, data: Path
) -> tuple[Any, Any]:
    """The cells of a data file as the model's input, and their names."""
    import scipy.sparse as sp

    layer, use_raw = _predict_matrix(args, selector, record)
    n_features = int(selector.n_features_in_)
    fitted_names = getattr(selector, "feature_names_in_", None)
    names = None if fitted_names is None else [str(n) for n in fitted_names]
    # a normalize_counts model divides by each cell's sum over all its genes
    counts = getattr(selector, "count_target_sum_", None) is not None
    support = (
        np.arange(n_features) if counts else np.asarray(selector.support_, dtype=int)
    )
    block, cells = read_panel_columns(data, names, n_features, support, layer, use_raw)
    # Only the panel columns are read (matched by name above); the others are
    # zeros, which the prediction never looks at (YOTO masks every non-panel gene).
    # The values keep their dtype: a binarised model detects on them as stored.
    coo = sp.csr_matrix(block).tocoo()
    full = sp.csr_matrix(
        (coo.data, (coo.row, support[coo.col])),
        shape=(coo.shape[0], n_features),
        dtype=coo.dtype,
    )
    return ArraySource(full), cells


def cmd_predict(args: argparse.Namespace) -> int:
    """``yoto-sklearn predict``."""
    out = Path(args.out)
    out_sep = TABLE_SUFFIXES.get(data_suffix(out))
    if out_sep is None or out.suffix.lower() == ".gz":
        raise CLIError(f"--out must end in .csv or .tsv, got {out.name!r}")
    model_path, record = resolve_model(Path(args.model))
    data = Path(args.data)
    soma = is_soma(str(args.data))
    if not soma and not data.exists():
        raise FileNotFoundError(f"no such file or folder: {data}")
    selector = load_model(model_path)
    if soma:  # the model's genes by name, streamed (panel columns only, or every
        # gene once for the library sizes of a normalize_counts model)
        X, cells = predict_source(args, selector, record)
    else:
        refuse_soma_options(args)
        X, cells = _panel_matrix(args, selector, record, data)
    pred = predict_table(selector, X)
    task_names = list(getattr(selector, "task_names_", [])) or [
        f"task_{j}" for j in range(pred.shape[1])
    ]
    task_types = list(getattr(selector, "task_types_", []))
    table = pd.DataFrame(
        index=pd.Index(cells, name=getattr(cells, "name", None) or "cell")
    )
    proba = None
    if "classification" in task_types:
        proba = selector.predict_proba(X)
        if len(task_types) == 1:
            proba = [proba]
    for j, name in enumerate(task_names):
        table[name] = pred[:, j]
        if proba is not None and proba[j] is not None:
            table[f"{name}_probability"] = np.asarray(proba[j]).max(axis=1)
    out.parent.mkdir(parents=True, exist_ok=True)
    table.to_csv(out, sep=out_sep)
    say(
        args,
        f"predicted {len(task_names)} task(s) for {table.shape[0]} cells from "
        f"{selector.k_} panel genes -> {out}",
    )
    return 0


def _panel_arguments(items: Sequence[str]) -> dict[str, list[str]]:
    """``{name: genes}`` of the PANEL arguments (files or comma lists)."""
    panels: dict[str, list[str]] = {}
    for i, item in enumerate(items, start=1):
        name, sep, text = item.partition("=")
        if not sep or Path(item).is_file():
            name, text = "", item
        path = Path(text)
        if not name:
            name = path.stem if path.is_file() else f"panel{i}"
            if path.is_file() and name == "panel":  # a run's panel.csv
                name = path.parent.name or name
        base, n = name, 2
        while name in panels:
            name, n = f"{base}_{n}", n + 1
        panels[name] = read_gene_list(text, f"PANEL {item!r}")
    return panels


def cmd_evaluate(args: argparse.Namespace) -> int:
    """``yoto-sklearn evaluate``."""
    from ..evaluation import evaluate_panel

    if args.layer is not None and args.use_raw:
        raise CLIError("use either --layer or --use-raw, not both")
    out = Path(args.out) if args.out else None
    if out is not None and TABLE_SUFFIXES.get(data_suffix(out)) is None:
        raise CLIError(f"--out must end in .csv or .tsv, got {out.name!r}")
    panels = _panel_arguments(args.panels)
    targets = list(dict.fromkeys(args.target))
    adata = read_data(args.data, targets)
    _check_targets(adata, targets)
    params = _selector_params(args)
    params.pop("random_state")  # the split's and the heads' seed: --seed
    params["verbose"] = 0
    say(args, f"evaluating {len(panels)} panel(s) on {adata.n_obs} cells ...")
    with warnings.catch_warnings():
        if args.quiet:
            warnings.simplefilter("ignore")
        table = evaluate_panel(
            adata,
            panels,
            targets,
            layer=args.layer,
            use_raw=args.use_raw,
            test_size=args.test_size,
            random_state=args.seed,
            spapros=False if args.no_spapros else None,
            forest_min_cells=args.forest_min_cells,
            key_added=None,
            **params,
        )
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        table.to_csv(out, sep=TABLE_SUFFIXES[data_suffix(out)])
    if not args.quiet:
        rows = [["model", "task", "metric", *table.columns]]
        for (model, task, metric), values in table.iterrows():
            rows.append([model, task, metric, *(f"{v:.3f}" for v in values)])
        print(format_table(rows))
        if out is not None:
            print(f"Wrote {out}")
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    """``yoto-sklearn report``."""
    from ..report import compare_reports, read_report, render_report

    if len(args.runs) > 2:
        raise CLIError(f"report takes one run, or two to compare; got {len(args.runs)}")
    if args.names is not None and len(args.runs) != 2:
        raise CLIError("--names names the two runs of a comparison")
    if len(args.runs) == 2:
        out = Path(args.out or "panel_comparison.html")
        compare_reports(*args.runs, out, names=args.names)
    else:
        run = Path(args.runs[0])
        data = read_report(run)
        default = (run if run.is_dir() else run.parent) / "report.html"
        out = Path(args.out) if args.out else default
        if out.resolve() == run.resolve():
            raise CLIError(f"--out {out} would overwrite the report it reads")
        out.write_text(render_report(data), encoding="utf-8")
    if not args.quiet:
        size = out.stat().st_size
        print(f"Wrote {out} ({size / 1024:.0f} KiB, self-contained)")
    return 0
