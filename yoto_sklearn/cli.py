"""Command line: ``yoto-sklearn demo | fit | predict``.

Run ``yoto-sklearn --help`` (or ``python -m yoto_sklearn --help``) for the
options. Bad input ends with a one-line ``yoto-sklearn: error: ...`` on
stderr and exit status 1 (2 for unusable command-line syntax).
"""

from __future__ import annotations

import argparse
import ast
import json
import os
import sys
import time
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

if TYPE_CHECKING:  # pragma: no cover
    import anndata

__all__ = ["main", "build_parser", "read_data"]

PROG = "yoto-sklearn"
MODEL_FILE = "model.pt"
JOBLIB_MODEL_FILE = "model.joblib"
RUN_FILE = "metrics.json"
DEMO_TARGETS = ("bulk_labels", "phase", "S_score", "G2M_score")
_TABLE_SUFFIXES = {".csv": ",", ".tsv": "\t", ".txt": "\t"}


class CLIError(Exception):
    """Bad input detected by the command line itself (one-line message)."""


# --------------------------------------------------------------------------- I/O
def _suffix(path: Path) -> str:
    """Return the data suffix, ignoring a trailing ``.gz``."""
    suffixes = [s.lower() for s in path.suffixes]
    if suffixes and suffixes[-1] == ".gz":
        suffixes = suffixes[:-1]
    return suffixes[-1] if suffixes else ""


def _find(folder: Path, names: Sequence[str]) -> Path | None:
    for name in names:
        for candidate in (folder / name, folder / f"{name}.gz"):
            if candidate.is_file():
                return candidate
    return None


def _read_10x_mtx(folder: Path) -> anndata.AnnData:
    """Read a Cell Ranger matrix folder (matrix.mtx, features/genes, barcodes)."""
    import anndata
    import scipy.io
    import scipy.sparse as sp

    matrix = _find(folder, ["matrix.mtx"])
    genes = _find(folder, ["features.tsv", "genes.tsv"])
    barcodes = _find(folder, ["barcodes.tsv"])
    if matrix is None or genes is None or barcodes is None:
        raise CLIError(
            f"{folder} is a folder but not a 10x matrix folder (needs matrix.mtx, "
            "features.tsv or genes.tsv, and barcodes.tsv, optionally .gz)"
        )
    counts = sp.csr_matrix(scipy.io.mmread(matrix).T, dtype=np.float32)
    var = pd.read_csv(genes, sep="\t", header=None, dtype=str)
    obs = pd.read_csv(barcodes, sep="\t", header=None, dtype=str)
    names = var[1] if var.shape[1] > 1 else var[0]
    if counts.shape != (len(obs), len(var)):
        raise CLIError(
            f"{matrix.name} is {counts.shape[1]} x {counts.shape[0]} (genes x cells) "
            f"but the folder lists {len(var)} genes and {len(obs)} barcodes"
        )
    adata = anndata.AnnData(
        X=counts,
        obs=pd.DataFrame(index=pd.Index(obs[0].to_numpy(), name=None)),
        var=pd.DataFrame({"gene_ids": var[0].to_numpy()}, index=names.to_numpy()),
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        adata.var_names_make_unique()
    return adata


def _read_table(
    path: Path, targets: Sequence[str], usecols: Sequence[str] | None = None
) -> anndata.AnnData:
    """Read a cells x genes CSV/TSV with a header into an AnnData.

    The first column holds cell names when it is not numeric. Columns named
    in ``targets`` and other non-numeric columns go to ``obs`` (a non-numeric
    column not named as a target is an error); every other column is a gene.
    """
    import anndata

    sep = _TABLE_SUFFIXES[_suffix(path)]
    header = pd.read_csv(path, sep=sep, nrows=5)
    if header.shape[1] == 0:
        raise CLIError(f"{path} has no columns")
    first = header.columns[0]
    index_col = None
    if first not in targets and not pd.api.types.is_numeric_dtype(header[first]):
        index_col = first
    if usecols is not None:
        wanted = list(usecols) + ([index_col] if index_col is not None else [])
        table = pd.read_csv(path, sep=sep, usecols=wanted)
    else:
        table = pd.read_csv(path, sep=sep)
    if index_col is not None:
        table = table.set_index(index_col)
        table.index = table.index.astype(str)
    else:
        table.index = table.index.astype(str)
    table.columns = table.columns.astype(str)
    obs_cols = [c for c in table.columns if c in targets]
    genes = [c for c in table.columns if c not in targets]
    bad = [c for c in genes if not pd.api.types.is_numeric_dtype(table[c])]
    if bad:
        raise CLIError(
            f"column {bad[0]!r} of {path.name} is not numeric: name it with --target "
            "if it is a label, or remove it"
        )
    if not genes:
        raise CLIError(f"{path} has no gene (numeric) column")
    adata = anndata.AnnData(
        X=table[genes].to_numpy(dtype=np.float32),
        obs=table[obs_cols].copy(),
        var=pd.DataFrame(index=pd.Index(genes)),
    )
    return adata


def read_data(
    path: str | os.PathLike[str],
    targets: Sequence[str] = (),
    *,
    backed: bool = False,
) -> anndata.AnnData:
    """Read cells x genes data for the command line.

    Parameters
    ----------
    path : str or path-like
        ``.h5ad``; ``.csv``/``.tsv`` (optionally ``.gz``) with a header row,
        one row per cell, one column per gene (a first non-numeric column
        gives the cell names); or a 10x ``matrix.mtx`` folder.
    targets : sequence of str, default=()
        Columns of a CSV/TSV file that are labels (they go to ``obs``).
    backed : bool, default=False
        Open ``.h5ad`` files in backed read-only mode (``X`` stays on disk).

    Returns
    -------
    adata : anndata.AnnData

    Raises
    ------
    FileNotFoundError
        If ``path`` does not exist.
    ValueError
        If the format is not supported or the file is malformed.
    """
    import anndata

    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"no such file or folder: {path}")
    if path.is_dir():
        return _read_10x_mtx(path)
    suffix = _suffix(path)
    if suffix == ".h5ad":
        try:
            with warnings.catch_warnings():
                # legacy files: anndata moves .uns graphs to .obsp and says so
                warnings.filterwarnings("ignore", message="Moving element from")
                return anndata.read_h5ad(path, backed="r" if backed else None)
        except OSError as exc:
            raise CLIError(f"cannot read {path} as .h5ad: {exc}") from None
    if suffix in _TABLE_SUFFIXES:
        return _read_table(path, targets)
    raise CLIError(
        f"unsupported data file {path.name!r}: use .h5ad, .csv, .tsv or a 10x "
        "matrix folder"
    )


# ------------------------------------------------------------------ model files
def _save_model(selector: Any, out: Path) -> Path:
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


def _resolve_model(path: Path) -> tuple[Path, dict[str, Any]]:
    """Return the model file and the run record found next to it (if any)."""
    if not path.exists():
        raise FileNotFoundError(f"no such model: {path}")
    folder = path if path.is_dir() else path.parent
    if path.is_dir():
        for name in (MODEL_FILE, JOBLIB_MODEL_FILE):
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


def _load_model(path: Path) -> Any:
    if path.suffix == ".joblib":
        import joblib

        return joblib.load(path)
    from yoto_sklearn import YOTOSelector

    return YOTOSelector.load(path)


# ------------------------------------------------------------------- metrics
def _task_metrics(kind: str, y_true: np.ndarray, y_pred: np.ndarray) -> dict[str, Any]:
    """Masked metrics of one task (cells without a label are left out)."""
    from sklearn.metrics import (
        accuracy_score,
        f1_score,
        mean_absolute_error,
        r2_score,
    )

    y_true = np.asarray(y_true, dtype=object)
    observed = ~pd.isna(y_true)
    n = int(observed.sum())
    if n == 0:
        return {"n": 0}
    t, p = y_true[observed], np.asarray(y_pred, dtype=object)[observed]
    if kind == "classification":
        from .plotting import label_strings

        t, p = label_strings(t), label_strings(p)
        return {
            "n": n,
            "f1_macro": float(f1_score(t, p, average="macro", labels=np.unique(t))),
            "accuracy": float(accuracy_score(t, p)),
        }
    t, p = t.astype(float), p.astype(float)
    return {
        "n": n,
        "r2": float(r2_score(t, p)) if n > 1 else float("nan"),
        "mae": float(mean_absolute_error(t, p)),
    }


def _predict_table(selector: Any, X: Any) -> np.ndarray:
    """Predictions as an (n_cells, n_tasks) object array."""
    pred = np.asarray(selector.predict(X), dtype=object)
    return pred.reshape(pred.shape[0], -1)


def _evaluate(
    selector: Any, X: Any, y: pd.DataFrame, task_types: Sequence[str]
) -> dict[str, dict[str, Any]]:
    pred = _predict_table(selector, X)
    return {
        str(name): _task_metrics(kind, y[name].to_numpy(dtype=object), pred[:, j])
        for j, (name, kind) in enumerate(zip(y.columns, task_types, strict=True))
    }


def _json_default(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, (tuple, set)):
        return list(value)
    return str(value)


def _write_json(path: Path, record: dict[str, Any]) -> None:
    path.write_text(json.dumps(record, indent=2, default=_json_default) + "\n")


# ------------------------------------------------------------------- helpers
def _say(args: argparse.Namespace, message: str) -> None:
    if not args.quiet:
        print(message, file=sys.stderr, flush=True)


def _parse_set(items: Sequence[str] | None) -> dict[str, Any]:
    params: dict[str, Any] = {}
    for item in items or ():
        key, sep, raw = item.partition("=")
        if not sep or not key.strip():
            raise CLIError(f"--set expects NAME=VALUE, got {item!r}")
        try:
            value: Any = ast.literal_eval(raw)
        except (ValueError, SyntaxError):
            value = raw
        params[key.strip()] = value
    return params


def _selector_params(args: argparse.Namespace) -> dict[str, Any]:
    params = _parse_set(getattr(args, "set", None))
    params.setdefault("random_state", args.seed)
    params.setdefault("device", args.device)
    params.setdefault("verbose", 0 if args.quiet else 1)
    if getattr(args, "max_iter", None) is not None:
        params["max_iter"] = args.max_iter
    if getattr(args, "temperature", None) is not None:
        params["temperature"] = args.temperature
    return params


def _n_genes(adata: anndata.AnnData, layer: str | None, use_raw: bool) -> int:
    if use_raw:
        if adata.raw is None:
            raise CLIError("--use-raw given but the data has no .raw")
        return int(adata.raw.n_vars)
    if layer is not None and layer not in adata.layers:
        raise CLIError(
            f"unknown layer {layer!r}; the data has layers: {list(adata.layers)}"
        )
    return int(adata.n_vars)


def _check_targets(adata: anndata.AnnData, targets: Sequence[str]) -> None:
    missing = [t for t in targets if t not in adata.obs.columns]
    if missing:
        raise CLIError(
            f"unknown obs column {missing[0]!r}; available: {list(adata.obs.columns)}"
        )


def _split(
    obs: pd.DataFrame,
    targets: Sequence[str],
    task_types: Sequence[str],
    test_size: float,
    seed: int | None,
) -> tuple[np.ndarray, np.ndarray, str | None]:
    """Train/test cell indices, stratified on the first classification task."""
    from sklearn.model_selection import train_test_split

    index = np.arange(obs.shape[0])
    strat_name = next(
        (t for t, k in zip(targets, task_types, strict=True) if k == "classification"),
        None,
    )
    stratify = None
    if strat_name is not None:
        labels = obs[strat_name].astype(object).where(obs[strat_name].notna())
        labels = labels.fillna("<missing>").astype(str).to_numpy()
        if pd.Series(labels).value_counts().min() >= 2:
            stratify = labels
        else:
            strat_name = None
    train, test = train_test_split(
        index, test_size=test_size, random_state=seed, stratify=stratify
    )
    return np.sort(train), np.sort(test), strat_name


def _fit_matrix(adata: anndata.AnnData, layer: str | None, use_raw: bool) -> Any:
    from .anndata import _fit_matrix as fit_matrix

    return fit_matrix(adata, layer, use_raw)


def _as_anndata(matrix: Any, obs_names: Any, var_names: Any) -> anndata.AnnData:
    import anndata

    return anndata.AnnData(
        X=matrix,
        obs=pd.DataFrame(index=pd.Index(obs_names).astype(str)),
        var=pd.DataFrame(index=pd.Index(var_names).astype(str)),
    )


def _write_panel(selector: Any, gene_names: Sequence[str], out: Path) -> list[str]:
    scores = np.asarray(selector.scores_, dtype=float)
    ranking = np.asarray(selector.ranking_, dtype=int)
    support = np.asarray(selector.support_, dtype=int)
    names = np.asarray(gene_names, dtype=object)
    panel = pd.DataFrame(
        {"gene": names[support], "score": scores[support], "rank": ranking[support]}
    )
    panel.to_csv(out / "panel.csv", index=False)
    every = pd.DataFrame(
        {
            "gene": names,
            "score": scores,
            "rank": ranking,
            "selected": np.isin(np.arange(names.size), support),
        }
    ).sort_values("rank", kind="stable")
    every.to_csv(out / "gene_scores.csv", index=False)
    return [str(g) for g in names[support]]


def _write_plots(
    args: argparse.Namespace,
    selector: Any,
    gene_names: Sequence[str],
    out: Path,
    X_eval: Any,
    y_eval: pd.DataFrame,
    which: str,
) -> list[str]:
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        _say(
            args,
            "plots skipped: matplotlib is not installed "
            '(pip install "yoto-sklearn[plot]")',
        )
        return []
    from . import plotting

    written = []
    plotting.plot_training_curves(selector, path=out / "training_curves.png")
    written.append("training_curves.png")
    plotting.plot_gene_scores(
        selector, feature_names=list(gene_names), path=out / "gene_scores.png"
    )
    written.append("gene_scores.png")
    figures = plotting.plot_confusion_matrices(
        selector, X_eval, y_eval, directory=out, prefix=f"confusion_{which}_"
    )
    for name in figures:
        safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in name)
        written.append(f"confusion_{which}_{safe}.png")
    return written


def _format_table(rows: list[list[str]]) -> str:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = [
        "  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip()
        for r in rows
    ]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def _wrap(words: Sequence[str], width: int = 88, indent: str = "  ") -> str:
    lines, line = [], indent
    for word in words:
        if len(line) + len(word) + 1 > width and line.strip():
            lines.append(line.rstrip())
            line = indent
        line += word + " "
    lines.append(line.rstrip())
    return "\n".join(lines)


# ------------------------------------------------------------------- commands
def _fit_and_report(
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
) -> dict[str, Any]:
    """Shared body of ``fit`` and ``demo``: split, fit, evaluate, write."""
    from .anndata import obs_targets, select_genes

    started = time.perf_counter()
    if out.exists() and not out.is_dir():
        raise CLIError(f"--out {out} exists and is not a folder")
    n_genes = _n_genes(adata, layer, use_raw)
    _check_targets(adata, targets)
    if k > n_genes:
        raise CLIError(f"--k {k} is larger than the number of genes ({n_genes})")
    params = _selector_params(args)
    user_types = params.pop("task_types", None)
    categorical = list(getattr(args, "categorical", None) or [])
    unknown = [c for c in categorical if c not in targets]
    if unknown:
        raise CLIError(
            f"--categorical {unknown[0]!r} is not one of the --target columns"
        )
    if categorical and user_types is None:
        user_types = {c: "classification" for c in categorical}
    y_all, task_types = obs_targets(adata.obs, targets, user_types)

    if test_size > 0:
        train_idx, test_idx, strat = _split(
            adata.obs, targets, task_types, test_size, args.seed
        )
        train = adata[train_idx].copy()
        test = adata[test_idx].copy()
    else:
        train, test, strat = adata, None, None
        train_idx, test_idx = np.arange(adata.n_obs), np.arange(0)

    _say(
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
            **params,
        )
    fit_seconds = time.perf_counter() - fit_started

    matrix, gene_names = _fit_matrix(train, layer, use_raw)
    out.mkdir(parents=True, exist_ok=True)
    panel = _write_panel(selector, list(gene_names), out)
    model_path = _save_model(selector, out)

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
        "k": k,
        "targets": list(targets),
        "task_types": list(task_types),
        "params": selector.get_params(deep=False),
        "panel": panel,
        "model": model_path.name,
        "n_iter": getattr(selector, "n_iter_", None),
        "device": str(getattr(selector, "device_", args.device)),
        "fit_seconds": round(fit_seconds, 2),
        "train_metrics": _evaluate(
            selector,
            _as_anndata(matrix, train.obs_names, gene_names),
            y_all.iloc[train_idx],
            task_types,
        ),
        "loss_curve": getattr(selector, "loss_curve_", None),
        "validation_loss_curve": getattr(selector, "validation_loss_curve_", None),
        "validation_scores": getattr(selector, "validation_scores_", None),
    }

    X_eval = _as_anndata(matrix, train.obs_names, gene_names)
    y_eval, which = y_all.iloc[train_idx], "train"
    if test is not None:
        test_matrix, _ = _fit_matrix(test, layer, use_raw)
        X_eval = _as_anndata(test_matrix, test.obs_names, gene_names)
        y_eval, which = y_all.iloc[test_idx], "test"
        record["test_metrics"] = _evaluate(selector, X_eval, y_eval, task_types)
        if baseline:
            record["baseline"] = _baseline(
                matrix, y_all.iloc[train_idx], test_matrix, y_eval, task_types, k
            )
    record["plots"] = _write_plots(
        args, selector, gene_names, out, X_eval, y_eval, which
    )
    record["wall_seconds"] = round(time.perf_counter() - started, 2)
    _write_json(out / RUN_FILE, record)
    return record


def _baseline(
    X_train: Any,
    y_train: pd.DataFrame,
    X_test: Any,
    y_test: pd.DataFrame,
    task_types: Sequence[str],
    k: int,
) -> dict[str, dict[str, Any]]:
    """SelectKBest + linear model per task, at the same k (one panel per task)."""
    import scipy.sparse as sp
    from sklearn.feature_selection import SelectKBest, f_classif, f_regression
    from sklearn.linear_model import LogisticRegression, Ridge
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from .plotting import label_strings

    X_train = X_train.toarray() if sp.issparse(X_train) else np.asarray(X_train)
    X_test = X_test.toarray() if sp.issparse(X_test) else np.asarray(X_test)
    results: dict[str, dict[str, Any]] = {}
    for name, kind in zip(y_train.columns, task_types, strict=True):
        labels = y_train[name].to_numpy(dtype=object)
        observed = ~pd.isna(labels)
        if kind == "classification":
            model = make_pipeline(
                SelectKBest(f_classif, k=k),
                StandardScaler(),
                LogisticRegression(max_iter=2000),
            )
            target = label_strings(labels[observed])
        else:
            model = make_pipeline(
                SelectKBest(f_regression, k=k), StandardScaler(), Ridge(alpha=1.0)
            )
            target = labels[observed].astype(float)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # constant genes in f_classif
            model.fit(X_train[observed], target)
            pred = model.predict(X_test)
        results[str(name)] = _task_metrics(
            kind, y_test[name].to_numpy(dtype=object), pred
        )
    return results


def _metric_rows(record: dict[str, Any], with_baseline: bool) -> list[list[str]]:
    head = ["task", "type", "metric", "YOTO (shared panel)"]
    if with_baseline:
        head.append("SelectKBest+linear (panel per task)")
    rows = [head]
    metrics = record.get("test_metrics") or record["train_metrics"]
    for name, kind in zip(record["targets"], record["task_types"], strict=True):
        keys = ["f1_macro", "accuracy"] if kind == "classification" else ["r2", "mae"]
        for i, key in enumerate(keys):
            row = [name if i == 0 else "", kind if i == 0 else "", key]
            row.append(f"{metrics[name].get(key, float('nan')):.3f}")
            if with_baseline:
                row.append(f"{record['baseline'][name].get(key, float('nan')):.3f}")
            rows.append(row)
    return rows


def _cmd_fit(args: argparse.Namespace) -> int:
    targets = list(dict.fromkeys(args.target))
    if args.layer is not None and args.use_raw:
        raise CLIError("use either --layer or --use-raw, not both")
    adata = read_data(args.data, targets)
    if args.obs is not None:
        extra = read_data_obs(Path(args.obs), adata.obs_names)
        adata.obs = adata.obs.join(extra, rsuffix="_obs")
    record = _fit_and_report(
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
    )
    if not args.quiet:
        which = "test" if "test_metrics" in record else "training"
        print(f"Per-task {which} metrics:")
        print(_format_table(_metric_rows(record, with_baseline=False)))
        print(f"Panel ({len(record['panel'])} genes, best first):")
        print(_wrap(record["panel"]))
        print(f"Wrote {args.out}/ (panel.csv, {record['model']}, {RUN_FILE}, PNGs)")
    return 0


def read_data_obs(path: Path, obs_names: pd.Index) -> pd.DataFrame:
    """Read a per-cell label table (first column: cell names) for ``--obs``.

    Parameters
    ----------
    path : pathlib.Path
        CSV/TSV with a header; first column = cell names matching the data.
    obs_names : pandas.Index
        Cell names of the data.

    Returns
    -------
    obs : pandas.DataFrame
        The table, reindexed on ``obs_names`` (cells absent from it get
        missing labels).
    """
    if not path.is_file():
        raise FileNotFoundError(f"no such file: {path}")
    suffix = _suffix(path)
    if suffix not in _TABLE_SUFFIXES:
        raise CLIError(f"--obs must be a .csv or .tsv file, got {path.name!r}")
    table = pd.read_csv(path, sep=_TABLE_SUFFIXES[suffix], index_col=0)
    table.index = table.index.astype(str)
    if not table.index.isin(obs_names).any():
        raise CLIError(f"no cell name of {path.name} matches the data's cell names")
    return table.reindex(obs_names)


def _cmd_demo(args: argparse.Namespace) -> int:
    from .datasets import load_pbmc68k_reduced

    started = time.perf_counter()
    adata = load_pbmc68k_reduced()
    targets = list(args.target or DEMO_TARGETS)
    _say(
        args,
        f"pbmc68k_reduced: {adata.n_obs} cells x {adata.raw.n_vars} genes "
        "(adata.raw, log-normalised); "
        f"{int(round(args.test_size * 100))}% test cells, stratified on bulk_labels",
    )
    record = _fit_and_report(
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
    )
    record["wall_seconds"] = round(time.perf_counter() - started, 2)
    _write_json(Path(args.out) / RUN_FILE, record)
    if not args.quiet:
        n_test = record["data"]["n_test"]
        print(f"\nTest metrics on {n_test} held-out cells, k={args.k} genes:")
        print(_format_table(_metric_rows(record, with_baseline=True)))
        print(
            "YOTO: one model, one shared panel for all tasks, trained once. "
            "Baseline: SelectKBest(f_classif)+LogisticRegression "
            "(f_regression+Ridge for regression), its own k genes per task."
        )
        print(f"\nYOTO panel ({len(record['panel'])} genes, best first):")
        print(_wrap(record["panel"]))
        print(
            f"\nWrote {args.out}/: panel.csv, gene_scores.csv, {record['model']}, "
            f"{RUN_FILE}, {', '.join(record['plots']) or 'no plots'}"
        )
        print(
            f"Wall time {record['wall_seconds']:.1f} s "
            f"(YOTO fit {record['fit_seconds']:.1f} s, {record['n_iter']} epochs)"
        )
    return 0


def _read_panel_columns(
    data: Path,
    gene_names: Sequence[str] | None,
    n_features: int,
    support: np.ndarray,
    layer: str | None,
    use_raw: bool,
) -> tuple[Any, pd.Index]:
    """Read only the panel genes of DATA; return (cells x panel matrix, cells).

    Without gene names (a model fitted on a plain array) the panel is taken by
    column position, and DATA must have exactly the fitted number of genes.
    """
    panel = None if gene_names is None else [str(gene_names[i]) for i in support]
    suffix = _suffix(data) if data.is_file() else ""
    if data.is_file() and suffix in _TABLE_SUFFIXES and panel is not None:
        sep = _TABLE_SUFFIXES[suffix]
        header = pd.read_csv(data, sep=sep, nrows=0).columns.astype(str)
        _require_genes(panel, header, data)
        adata = _read_table(data, (), usecols=panel)
        return adata[:, panel].X, adata.obs_names
    adata = read_data(data, backed=suffix == ".h5ad")
    try:
        if use_raw:
            if adata.raw is None:
                raise CLIError(f"the model was fitted on .raw but {data} has no .raw")
            names, matrix = pd.Index(adata.raw.var_names), adata.raw.X
        elif layer is not None:
            if layer not in adata.layers:
                raise CLIError(
                    f"the model was fitted on layer {layer!r}, which {data} lacks "
                    "(pass --layer NAME, or --layer '' for X)"
                )
            names, matrix = pd.Index(adata.var_names), adata.layers[layer]
        else:
            names, matrix = pd.Index(adata.var_names), adata.X
        if panel is None:
            positions = np.asarray(support, dtype=int)
            if matrix.shape[1] != n_features:
                raise CLIError(
                    f"the model has no gene names, so {data} must have its "
                    f"{n_features} genes in the fitted order; it has {matrix.shape[1]}"
                )
        else:
            _require_genes(panel, names.astype(str), data)
            positions = names.astype(str).get_indexer(panel)
        order = np.argsort(positions, kind="stable")
        block = matrix[:, positions[order]]  # backed files need increasing order
        inverse = np.empty_like(order)
        inverse[order] = np.arange(order.size)
        block = block[:, inverse]
        return block, pd.Index(adata.obs_names.astype(str))
    finally:
        if getattr(adata, "isbacked", False):
            adata.file.close()


def _require_genes(panel: Sequence[str], available: pd.Index, data: Path) -> None:
    present = set(available)
    missing = [g for g in panel if g not in present]
    if missing:
        more = f" (and {len(missing) - 1} more)" if len(missing) > 1 else ""
        raise CLIError(f"panel gene {missing[0]!r}{more} is missing from {data}")


def _cmd_predict(args: argparse.Namespace) -> int:
    import scipy.sparse as sp

    out = Path(args.out)
    out_sep = _TABLE_SUFFIXES.get(_suffix(out))
    if out_sep is None or out.suffix.lower() == ".gz":
        raise CLIError(f"--out must end in .csv or .tsv, got {out.name!r}")
    model_path, record = _resolve_model(Path(args.model))
    data = Path(args.data)
    if not data.exists():
        raise FileNotFoundError(f"no such file or folder: {data}")
    fitted = record.get("data", {})
    use_raw = args.use_raw if args.use_raw is not None else fitted.get("use_raw", False)
    layer = args.layer if args.layer is not None else fitted.get("layer")
    if args.layer == "":
        layer = None

    selector = _load_model(model_path)
    support = np.asarray(selector.support_, dtype=int)
    n_features = int(selector.n_features_in_)
    fitted_names = getattr(selector, "feature_names_in_", None)
    names = None if fitted_names is None else [str(n) for n in fitted_names]
    block, cells = _read_panel_columns(data, names, n_features, support, layer, use_raw)
    if names is None:
        names = [f"x{i}" for i in range(n_features)]

    # Only the panel columns are read; the others are zeros (the prediction
    # never looks at them: YOTO masks every non-panel gene).
    block = sp.csr_matrix(block, dtype=np.float32)
    coo = block.tocoo()
    full = sp.csr_matrix(
        (coo.data, (coo.row, support[coo.col])),
        shape=(block.shape[0], n_features),
        dtype=np.float32,
    )
    X = _as_anndata(full, cells, names)
    pred = _predict_table(selector, X)
    task_names = list(getattr(selector, "task_names_", [])) or [
        f"task_{j}" for j in range(pred.shape[1])
    ]
    task_types = list(getattr(selector, "task_types_", []))
    table = pd.DataFrame(index=pd.Index(cells, name="cell"))
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
    _say(
        args,
        f"predicted {len(task_names)} task(s) for {table.shape[0]} cells from "
        f"{support.size} panel genes -> {out}",
    )
    return 0


# ------------------------------------------------------------------- parser
def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected an integer >= 1, got {value}")
    return value


def _fraction(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not 0.0 <= value < 1.0:
        raise argparse.ArgumentTypeError(f"expected 0 <= value < 1, got {value}")
    return value


def _quiet(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--quiet",
        "-q",
        action="store_true",
        help="print nothing but errors (no progress bar, no tables)",
    )


def _common(parser: argparse.ArgumentParser, seed_default: int | None = 0) -> None:
    _quiet(parser)
    parser.add_argument(
        "--seed",
        type=int,
        default=seed_default,
        help="random seed for the split and the training (default: %(default)s)",
    )
    parser.add_argument(
        "--device",
        default="auto",
        help="torch device to train on: auto (GPU if available), cpu, cuda, "
        "cuda:1, mps... (default: %(default)s)",
    )


def _training_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--max-iter",
        type=_positive_int,
        metavar="N",
        default=None,
        help="maximum number of training epochs (default: the selector's)",
    )
    parser.add_argument(
        "--temperature",
        type=float,
        metavar="TAU",
        default=None,
        help="final temperature of the relaxed top-k (default: the selector's)",
    )
    parser.add_argument(
        "--set",
        action="append",
        metavar="NAME=VALUE",
        help="any other YOTOSelector parameter, e.g. --set hidden_layer_sizes=(128,) "
        "--set dropout=0.2 (repeatable; VALUE is a Python literal)",
    )


def build_parser() -> argparse.ArgumentParser:
    """Return the argument parser of the ``yoto-sklearn`` command.

    Returns
    -------
    parser : argparse.ArgumentParser
    """
    from yoto_sklearn import __version__

    parser = argparse.ArgumentParser(
        prog=PROG,
        description="YOTO (You Only Train Once): pick a panel of k genes that "
        "predicts cell labels, with one multi-task model trained once.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="examples:\n"
        "  yoto-sklearn demo\n"
        "  yoto-sklearn fit cells.h5ad --target cell_type --target phase --k 50 "
        "--out run/\n"
        "  yoto-sklearn predict run/ new_cells.h5ad --out predictions.csv\n\n"
        "Run 'yoto-sklearn COMMAND --help' for the options of a command.",
    )
    parser.add_argument(
        "--version", action="version", version=f"%(prog)s {__version__}"
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    demo = commands.add_parser(
        "demo",
        help="train on real PBMC data (ships with scanpy) and compare to a baseline",
        description="Train one multi-task YOTO model on pbmc68k_reduced (700 PBMCs "
        "x 765 genes, log-normalised adata.raw; needs scanpy: pip install "
        '"yoto-sklearn[demo]"), print per-task test metrics next to '
        "SelectKBest(f_classif)+LogisticRegression at the same k, print the panel "
        "and write panel.csv, the model, metrics.json and PNGs to --out.",
    )
    demo.add_argument(
        "--out",
        default="yoto-demo",
        metavar="DIR",
        help="output folder (default: %(default)s)",
    )
    demo.add_argument(
        "--k", type=_positive_int, default=30, help="panel size (default: %(default)s)"
    )
    demo.add_argument(
        "--target",
        action="append",
        metavar="COL",
        help="obs column to predict (repeatable; default: "
        + " ".join(DEMO_TARGETS)
        + ")",
    )
    demo.add_argument(
        "--test-size",
        type=_fraction,
        metavar="FRACTION",
        default=0.25,
        help="fraction of cells held out for testing (default: %(default)s)",
    )
    _training_options(demo)
    _common(demo)

    fit = commands.add_parser(
        "fit",
        help="select a gene panel from your data",
        description="Fit YOTO on DATA and write panel.csv (gene, score, rank), "
        "gene_scores.csv (every gene), the model, metrics.json and PNGs to --out.",
    )
    fit.add_argument(
        "data",
        metavar="DATA",
        help=".h5ad file; .csv/.tsv (header row, one row per cell, one column per "
        "gene, optional first column of cell names; label columns named with "
        "--target); or a 10x folder (matrix.mtx, features.tsv, barcodes.tsv)",
    )
    fit.add_argument(
        "--target",
        "-t",
        action="append",
        required=True,
        metavar="COL",
        help="obs column (or CSV column) to predict, one task each; repeat for "
        "several tasks. Categorical/string -> classification, numeric -> "
        "regression, empty/NaN -> missing label",
    )
    fit.add_argument(
        "--k", type=_positive_int, required=True, help="number of genes in the panel"
    )
    fit.add_argument("--layer", help="fit on this .layers entry instead of X")
    fit.add_argument(
        "--use-raw", action="store_true", help="fit on .raw (X and gene names)"
    )
    fit.add_argument(
        "--categorical",
        action="append",
        metavar="COL",
        help="treat this numeric --target as classification (e.g. integer cluster "
        "ids); repeatable",
    )
    fit.add_argument(
        "--obs",
        metavar="FILE",
        help="CSV/TSV of cell labels (first column: cell names) joined to the "
        "data's obs, e.g. for a 10x folder",
    )
    fit.add_argument(
        "--test-size",
        type=_fraction,
        metavar="FRACTION",
        default=0.0,
        help="hold out this fraction of cells (stratified on the first "
        "classification target) and report metrics on them (default: 0, "
        "metrics on the training cells)",
    )
    fit.add_argument("--out", required=True, metavar="DIR", help="output folder")
    _training_options(fit)
    _common(fit)

    predict = commands.add_parser(
        "predict",
        help="predict labels of new cells with a fitted model",
        description="Apply a model written by 'fit' or 'demo' to DATA. Only the "
        "panel genes are read; a panel gene missing from DATA is an error.",
    )
    predict.add_argument(
        "model",
        metavar="MODEL",
        help="output folder of 'fit'/'demo', or the model file in it",
    )
    predict.add_argument("data", metavar="DATA", help="cells to predict (as for fit)")
    predict.add_argument(
        "--out",
        required=True,
        metavar="FILE",
        help="predictions file, .csv or .tsv: one row per cell, one column per "
        "task (+ <task>_probability for classification tasks)",
    )
    predict.add_argument(
        "--layer",
        default=None,
        metavar="LAYER",
        help="read this layer (default: as recorded at fit; '' for X)",
    )
    predict.add_argument(
        "--use-raw",
        dest="use_raw",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="read .raw (default: as recorded at fit)",
    )
    _quiet(predict)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``yoto-sklearn`` command line.

    Parameters
    ----------
    argv : sequence of str, optional
        Arguments without the program name; defaults to ``sys.argv[1:]``.

    Returns
    -------
    status : int
        0 on success, 1 for bad input (a one-line message on stderr), 2 for
        bad command-line syntax.
    """
    parser = build_parser()
    args = parser.parse_args(argv)
    handlers = {"demo": _cmd_demo, "fit": _cmd_fit, "predict": _cmd_predict}
    try:
        return handlers[args.command](args)
    except (CLIError, ValueError, TypeError, OSError, ImportError) as exc:
        message = " ".join(str(exc).split()) or type(exc).__name__
        print(f"{PROG}: error: {message}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
