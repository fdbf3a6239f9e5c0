"""Real-data benchmark: YOTO against common gene selectors (issue 3) and the
learned selectors people use instead (PERSIST, STG, MarkerMap, scGeneFit, a
supervised Concrete selector; issue 9, ``peers.py``).

    PYTHONPATH=. python benchmarks/run_benchmark.py            # full run
    PYTHONPATH=. python benchmarks/run_benchmark.py --quick    # < 10 min on 2 cores
    PYTHONPATH=. python benchmarks/run_benchmark.py --report-only   # tables/plots only
    # seeds in parallel processes, then one report:
    python benchmarks/run_benchmark.py --seed-list 0,1 --out results/run_a &
    python benchmarks/run_benchmark.py --seed-list 2,3,4 --out results/run_b
    python benchmarks/run_benchmark.py --report-only --merge results/run_a,results/run_b

Peers run on Zeisel and pbmc68k at k = 10, 25, 50; they are slow (PERSIST's
``eliminate`` alone took over 40 minutes per Zeisel seed on one core), so pass
``--methods`` to leave some out. Peers that are not installed are left out with a
message. ``--quick`` runs no peer.

Protocol: for each dataset and seed, a stratified 80/20 train/test split on the finest
label; every selector picks k genes on the training part (k in 10, 25, 50, 100); a fresh
StandardScaler + LogisticRegression (Ridge for regression) per task is fitted on the
panel and scored on the test part (macro-F1 / R^2). YOTO is trained once on all tasks
of a dataset with its defaults and scored two ways: its own heads, and its panel fed
to the same LogisticRegression. Fit wall time of every method is recorded.

Outputs: ``benchmarks/results/*.csv`` (raw rows), ``benchmarks/RESULTS.md`` and
``benchmarks/results/<dataset>.png``, all generated from the CSVs by ``report()``.
The quick variant writes to ``benchmarks/results/quick/`` instead.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import warnings

import numpy as np
import pandas as pd
from sklearn.model_selection import train_test_split

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

from baselines import (  # noqa: E402
    LABELS,
    LASSONET_BUDGET_S,
    METHODS,
    evaluate_panel,
    panels,
    score_predictions,
)
from datasets import load  # noqa: E402
from peers import LABELS as PEER_LABELS  # noqa: E402
from peers import (  # noqa: E402
    PEER_SETTINGS,
    PEERS,
    last_notes,
    last_times,
    peer_installed,
    peer_panels,
)

LABELS = {**LABELS, **PEER_LABELS}

try:  # the core estimator; the harness runs with baselines only until it lands
    from yoto_sklearn import YOTOSelector
except ImportError:  # pragma: no cover
    YOTOSelector = None

KS = [10, 25, 50, 100]
DATASETS = ["zeisel", "pbmc68k", "synthetic"]
CLASSIFICATION_METRIC = "macro_f1"
TARGET_TASKS = [("zeisel", "level1"), ("zeisel", "level2"), ("pbmc68k", "bulk_labels")]
TARGET_KS = [10, 25]
BASELINES = [m for m in METHODS] + ["all_genes"]
# issue 9: YOTO's heads against every method in the table, and against a refit
ISSUE9_TASKS = TARGET_TASKS + [("pbmc68k", "phase")]
ISSUE9_KS = [10, 25, 50]
PEER_KS = [10, 25, 50]  # peers are slow: the k of the targets only
PEER_DATASETS = ["zeisel", "pbmc68k"]


# --------------------------------------------------------------------------- helpers


def split(ds, seed: int):
    idx = np.arange(ds.X.shape[0])
    tr, te = train_test_split(
        idx, test_size=0.2, stratify=ds.tasks[ds.stratify], random_state=seed
    )
    Ytr = ds.tasks.iloc[tr].reset_index(drop=True)
    Yte = ds.tasks.iloc[te].reset_index(drop=True)
    return ds.X[tr], Ytr, ds.X[te], Yte


def metric_of(kind: str) -> str:
    return CLASSIFICATION_METRIC if kind == "classification" else "r2"


def fit_yoto(Xtr, Ytr, task_types, k, seed, params, cls=None):
    cls = YOTOSelector if cls is None else cls
    est = cls(k=k, random_state=seed, task_types=task_types, **params)
    t0 = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        est.fit(Xtr, Ytr)
    return est, time.perf_counter() - t0


def yoto_predictions(est, Xte, tasks: list[str]) -> pd.DataFrame:
    pred = np.asarray(est.predict(Xte), dtype=object)
    if pred.ndim == 1:
        pred = pred[:, None]
    names = list(getattr(est, "task_names_", tasks))
    return pd.DataFrame(pred, columns=names)[tasks]


def timed_eval(Xtr, Ytr, Xte, Yte, task_types, panel):
    t0 = time.perf_counter()
    scores = evaluate_panel(Xtr, Ytr, Xte, Yte, task_types, panel)
    return scores, time.perf_counter() - t0


class Store:
    """Rows appended per unit of work and flushed to CSV at once (resumable)."""

    def __init__(self, out: str, resume: bool):
        self.out = out
        os.makedirs(out, exist_ok=True)
        self.tables: dict[str, list[dict]] = {}
        if resume:
            for name in ("scores", "times", "markers", "partial", "failures", "panels"):
                path = os.path.join(out, f"{name}.csv")
                if os.path.exists(path):
                    self.tables[name] = pd.read_csv(path).to_dict("records")

    def done(self, dataset, seed, method) -> bool:
        return any(
            r["dataset"] == dataset and r["seed"] == seed and r["method"] == method
            for r in self.tables.get("times", [])
        )

    def peer_event(self, dataset, seed, method, seconds, text) -> None:
        """A peer's failure or stated fallback (a row of failures.csv)."""
        row = dict(dataset=dataset, seed=seed, method=method, seconds=seconds)
        self.add("failures", [dict(row, error=text[:300])])

    def add_panels(self, dataset, seed, method, panels_by_k) -> None:
        """Keep every panel (gene indices, best first) for the evaluator pass."""
        rows = [
            dict(
                dataset=dataset,
                seed=seed,
                method=method,
                k=k,
                genes=" ".join(str(int(g)) for g in genes),
            )
            for k, genes in panels_by_k.items()
        ]
        self.add("panels", rows)

    def add(self, name: str, rows: list[dict]):
        self.tables.setdefault(name, []).extend(rows)
        pd.DataFrame(self.tables[name]).to_csv(
            os.path.join(self.out, f"{name}.csv"), index=False
        )


# --------------------------------------------------------------------------- runs


def run_dataset(name, seeds, ks, methods, yoto_params, store, log):
    ds = load(name)
    for seed in seeds:
        Xtr, Ytr, Xte, Yte = split(ds, seed)
        for method in methods:
            if store.done(name, seed, method):
                continue
            if method == "yoto":
                run_yoto(ds, Xtr, Ytr, Xte, Yte, seed, ks, yoto_params, store, log)
                continue
            is_peer = method in PEERS
            if is_peer and name not in PEER_DATASETS:
                continue
            mks = [k for k in ks if k in PEER_KS] if is_peer else ks
            t0 = time.perf_counter()
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    if is_peer:
                        P = peer_panels(method, Xtr, Ytr, ds.task_types, mks, seed)
                    else:
                        P = panels(method, Xtr, Ytr, ds.task_types, mks, seed)
            except Exception as exc:  # a peer that fails is a result too
                if not is_peer:
                    raise
                t_fail = time.perf_counter() - t0
                log(f"{name} seed={seed} {method}: FAILED after {t_fail:.0f}s: {exc!r}")
                store.peer_event(
                    name, seed, method, t_fail, f"{type(exc).__name__}: {exc}"
                )
                store.add(
                    "times",
                    [dict(dataset=name, seed=seed, k=k, method=method) for k in mks],
                )
                continue
            t_sel = time.perf_counter() - t0
            # a peer's per-k time: its shared fit plus that k's own model
            per_k = last_times(mks) if is_peer else dict.fromkeys(mks, t_sel)
            for note in last_notes() if is_peer else []:
                log(f"{name} seed={seed} {method}: {note}")
                store.peer_event(name, seed, method, t_sel, f"fallback: {note}")
            score_rows, time_rows, marker_rows = [], [], []
            for k in mks if method != "all_genes" else mks[:1]:
                scores, t_fit = timed_eval(Xtr, Ytr, Xte, Yte, ds.task_types, P[k])
                kk = mks if method == "all_genes" else [k]
                for k_ in kk:
                    for t, s in scores.items():
                        score_rows.append(
                            dict(
                                dataset=name,
                                seed=seed,
                                k=k_,
                                method=method,
                                task=t,
                                metric=metric_of(ds.task_types[t]),
                                score=s,
                            )
                        )
                    time_rows.append(
                        dict(
                            dataset=name,
                            seed=seed,
                            k=k_,
                            method=method,
                            select_s=per_k[k],
                            downstream_s=t_fit,
                            fit_s=per_k[k] + t_fit,
                        )
                    )
                    if ds.markers is not None and method != "all_genes":
                        marker_rows.append(
                            dict(
                                dataset=name,
                                seed=seed,
                                k=k_,
                                method=method,
                                recovered=int(np.isin(P[k_], ds.markers).sum()),
                                n_markers=len(ds.markers),
                            )
                        )
            log(
                f"{name} seed={seed} {method}: select {t_sel:.1f}s; "
                + ", ".join(
                    f"k={r['k']} {r['task']}={r['score']:.3f}" for r in score_rows
                )
            )
            store.add("scores", score_rows)
            if marker_rows:
                store.add("markers", marker_rows)
            if method != "all_genes":
                store.add_panels(name, seed, method, {k: P[k] for k in mks})
            store.add("times", time_rows)  # last: marks (dataset, seed, method) done


def run_yoto(ds, Xtr, Ytr, Xte, Yte, seed, ks, params, store, log):
    tasks = list(ds.task_types)
    score_rows, time_rows, marker_rows = [], [], []
    yoto_panels = {}
    for k in ks:
        est, t_fit = fit_yoto(Xtr, Ytr, ds.task_types, k, seed, params)
        own = score_predictions(Yte, yoto_predictions(est, Xte, tasks), ds.task_types)
        panel = np.asarray(est.support_)
        yoto_panels[k] = panel
        lr, t_lr = timed_eval(Xtr, Ytr, Xte, Yte, ds.task_types, panel)
        for method, scores, t in (
            ("yoto_heads", own, t_fit),
            ("yoto_panel_lr", lr, t_fit + t_lr),
        ):
            for task, s in scores.items():
                score_rows.append(
                    dict(
                        dataset=ds.name,
                        seed=seed,
                        k=k,
                        method=method,
                        task=task,
                        metric=metric_of(ds.task_types[task]),
                        score=s,
                    )
                )
            time_rows.append(
                dict(
                    dataset=ds.name,
                    seed=seed,
                    k=k,
                    method=method,
                    select_s=t_fit,
                    downstream_s=t - t_fit,
                    fit_s=t,
                    n_iter=getattr(est, "n_iter_", np.nan),
                )
            )
        if ds.markers is not None:
            marker_rows.append(
                dict(
                    dataset=ds.name,
                    seed=seed,
                    k=k,
                    method="yoto",
                    recovered=int(np.isin(panel, ds.markers).sum()),
                    n_markers=len(ds.markers),
                )
            )
        log(
            f"{ds.name} seed={seed} yoto k={k}: fit {t_fit:.1f}s "
            f"n_iter={getattr(est, 'n_iter_', '?')}; heads "
            + ", ".join(f"{t}={s:.3f}" for t, s in own.items())
            + "; panel+LR "
            + ", ".join(f"{t}={s:.3f}" for t, s in lr.items())
        )
    store.add("scores", score_rows)
    if marker_rows:
        store.add("markers", marker_rows)
    store.add_panels(ds.name, seed, "yoto", yoto_panels)
    # one row per (seed, k) for each YOTO variant; "yoto" marks the unit done
    store.add(
        "times",
        time_rows
        + [
            dict(dataset=ds.name, seed=seed, k=np.nan, method="yoto", fit_s=np.nan),
        ],
    )


def run_partial(seeds, ks, fractions, params, store, log):
    """Zeisel: hide level2 for a fraction of training cells, keep level1."""
    ds = load("zeisel")
    done = {
        (r["seed"], r["k"], r["hidden"])
        for r in store.tables.get("partial", [])
        if r["variant"] == "level2_only"
    }
    for seed in seeds:
        Xtr, Ytr, Xte, Yte = split(ds, seed)
        for frac in fractions:
            rng = np.random.default_rng(1000 + seed)
            hide = rng.random(len(Ytr)) < frac
            Yp = Ytr.copy()
            Yp["level2"] = Yp["level2"].astype(object)
            Yp.loc[hide, "level2"] = np.nan
            for k in ks:
                if (seed, k, frac) in done:
                    continue
                rows = []
                for variant, cols in (
                    ("multitask", ["level1", "level2"]),
                    ("level2_only", ["level2"]),
                ):
                    tt = {c: "classification" for c in cols}
                    est, t_fit = fit_yoto(Xtr, Yp[cols], tt, k, seed, params)
                    pred = yoto_predictions(est, Xte, cols)
                    own = score_predictions(Yte, pred, tt)["level2"]
                    lr, _ = timed_eval(
                        Xtr,
                        Yp[["level2"]],
                        Xte,
                        Yte,
                        {"level2": "classification"},
                        np.asarray(est.support_),
                    )
                    rows.append(
                        dict(
                            seed=seed,
                            k=k,
                            hidden=frac,
                            variant=variant,
                            n_level2_labels=int((~hide).sum()),
                            level2_heads=own,
                            level2_panel_lr=lr["level2"],
                            fit_s=t_fit,
                        )
                    )
                    log(
                        f"partial seed={seed} k={k} hidden={frac} {variant}: "
                        f"heads {own:.3f}, panel+LR {lr['level2']:.3f}, {t_fit:.1f}s"
                    )
                store.add("partial", rows)


# --------------------------------------------------------------------------- report

_KEYS = {
    "scores": ["dataset", "seed", "method"],
    "panels": ["dataset", "seed", "method"],
    "times": ["dataset", "seed", "method"],
    "markers": ["dataset", "seed", "method"],
    "failures": ["dataset", "seed", "method"],
    "partial": ["seed", "k", "hidden"],
}


def merge(out: str, sources: list[str]) -> None:
    """Rows of ``sources`` replace the rows of ``out`` with the same key."""
    for name, key in _KEYS.items():
        new = [
            pd.read_csv(os.path.join(src, f"{name}.csv"))
            for src in sources
            if os.path.exists(os.path.join(src, f"{name}.csv"))
        ]
        if not new:
            continue
        new = pd.concat(new, ignore_index=True)
        path = os.path.join(out, f"{name}.csv")
        if os.path.exists(path):
            old = pd.read_csv(path)
            drop = pd.MultiIndex.from_frame(old[key]).isin(
                pd.MultiIndex.from_frame(new[key].drop_duplicates())
            )
            new = pd.concat([old[~drop], new], ignore_index=True)
        new.to_csv(path, index=False)


def record_yoto_defaults(out: str) -> None:
    """Write the YOTOSelector defaults (and the code's git commit) the run used."""
    import subprocess

    if YOTOSelector is None:
        return
    params = {
        k: (list(v) if isinstance(v, tuple) else v)
        for k, v in YOTOSelector().get_params().items()
    }
    try:
        commit = subprocess.run(
            ["git", "-C", HERE, "log", "-1", "--format=%h", "--", "../yoto_sklearn"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        commit = "unknown"
    with open(os.path.join(out, "yoto_defaults.json"), "w") as fh:
        json.dump({"yoto_sklearn_commit": commit, "defaults": params}, fh, indent=1)


def _ms(x: pd.Series, digits=3) -> str:
    if len(x) == 0 or x.isna().all():
        return "–"
    if len(x) == 1:
        return f"{x.mean():.{digits}f}"
    return f"{x.mean():.{digits}f} ± {x.std(ddof=1):.{digits}f}"


def _order(methods):
    pref = [
        "yoto_heads",
        "yoto_panel_lr",
        *PEERS,
        "f_test",
        "l1",
        "random_forest",
        "lassonet",
        "variance",
        "random",
        "all_genes",
    ]
    return [m for m in pref if m in set(methods)]


def plot(scores: pd.DataFrame, out: str):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    paths = []
    for name, d in scores.groupby("dataset"):
        tasks = list(dict.fromkeys(d["task"]))
        fig, axes = plt.subplots(
            1, len(tasks), figsize=(4.2 * len(tasks), 3.6), squeeze=False
        )
        for ax, task in zip(axes[0], tasks, strict=True):
            dt = d[d["task"] == task]
            for m in _order(dt["method"].unique()):
                g = dt[dt["method"] == m].groupby("k")["score"]
                mean, sd = g.mean(), g.std(ddof=1).fillna(0)
                style = dict(
                    lw=2.4 if m.startswith("yoto") else 1.3,
                    ls="--" if m in ("all_genes", "yoto_panel_lr") else "-",
                    marker="o" if m.startswith("yoto") else ".",
                )
                ax.errorbar(
                    mean.index, mean, yerr=sd, label=LABELS[m], capsize=2, **style
                )
            ax.set_xscale("log")
            ax.set_xticks(sorted(dt["k"].unique()))
            ax.set_xticklabels([str(int(x)) for x in sorted(dt["k"].unique())])
            ax.set_xlabel("panel size k")
            ax.set_ylabel("macro-F1" if dt["metric"].iloc[0] == "macro_f1" else "R²")
            ax.set_title(f"{name}: {task}")
            ax.grid(alpha=0.3)
        axes[0][-1].legend(fontsize=7, loc="lower right")
        fig.tight_layout()
        path = os.path.join(out, f"{name}.png")
        fig.savefig(path, dpi=110)
        plt.close(fig)
        paths.append(path)
    return paths


def report(out: str, md_path: str, quick: bool):
    scores = pd.read_csv(os.path.join(out, "scores.csv"))
    times = pd.read_csv(os.path.join(out, "times.csv"))
    times = times[times["method"] != "yoto"]
    # keep, per dataset, only the seeds every method finished (a cut-off run
    # must not compare means over different seeds)
    keep = []
    for dname, d in scores.groupby("dataset"):
        d = d[~d["method"].isin(PEERS)]  # peers may fail: shown with their n
        n_methods = d["method"].nunique()
        per_seed = d.groupby("seed")["method"].nunique()
        keep += [(dname, s) for s in per_seed[per_seed == n_methods].index]
    keep = pd.MultiIndex.from_tuples(keep, names=["dataset", "seed"])
    scores = scores[pd.MultiIndex.from_frame(scores[["dataset", "seed"]]).isin(keep)]
    times = times[pd.MultiIndex.from_frame(times[["dataset", "seed"]]).isin(keep)]
    pngs = plot(scores, out)
    rel = os.path.relpath(out, os.path.dirname(md_path))
    L = ["# Benchmark results", ""]
    L.append(
        "Generated by `benchmarks/run_benchmark.py"
        + (" --quick" if quick else "")
        + "` from the CSVs in `"
        + os.path.relpath(out, os.path.dirname(HERE))
        + "/`; do not edit by hand."
    )
    seeds = ", ".join(
        f"{d}: {g.nunique()} ({', '.join(map(str, sorted(g.unique())))})"
        for d, g in scores.groupby("dataset")["seed"]
    )
    L += [
        "",
        f"Seeds per dataset: {seeds}; "
        "stratified 80/20 split on the finest label; mean ± sd over seeds. "
        "Classification: macro-F1; regression: R². Baselines and `YOTO panel + "
        "LogReg` use a fresh StandardScaler + LogisticRegression(max_iter=2000) "
        "(RidgeCV for regression) per task on the panel. `YOTO (own heads)` is the "
        "estimator's own predictions, nothing retrained. Single-task baselines on "
        "multi-task data use the round-robin union of per-task rankings capped at k "
        "(one shared panel, like YOTO). L1: liblinear one-vs-rest L1 logistic "
        "(Lasso path for regression) on a C grid, the weakest penalty with at least "
        "k non-zero genes, top-k by |coef|. Random forest: 200 trees, impurity "
        "importance. LassoNet: hidden (32,), path multiplier 1.3, its cost bounded "
        f"to {LASSONET_BUDGET_S:.0f} s of path per task (path point with at most k "
        "genes, else the genes that stay longest). YOTO uses the estimator's "
        "defaults; only `k`, `random_state` and `task_types` are passed. Fit "
        "times are wall-clock on the machine that ran the benchmark (a shared "
        "2-core CPU; other jobs may have been running), so compare ratios within "
        "a seed rather than absolute seconds. The LassoNet budget is checked after "
        "each path step, so one step may overrun it.",
    ]
    dpath = os.path.join(out, "yoto_defaults.json")
    if os.path.exists(dpath):
        with open(dpath) as fh:
            rec = json.load(fh)
        shown = ", ".join(f"{k}={v!r}" for k, v in rec["defaults"].items())
        L += [
            "",
            f"YOTOSelector defaults in this run (yoto_sklearn code at commit "
            f"`{rec['yoto_sklearn_commit']}`): {shown}.",
        ]
    note = os.path.join(out, "NOTE.md")
    if os.path.exists(note):  # provenance written by whoever assembled the run
        with open(note) as fh:
            L += ["", fh.read().strip()]
    if "yoto_heads" not in set(scores["method"]):
        L += ["", "**YOTO not run** (the core estimator was not importable)."]
    # target check
    has_yoto = "yoto_heads" in set(scores["method"])
    if has_yoto:
        L += ["", "## Target check (issue 3)", ""]
        L += [
            "YOTO's own heads (defaults) against the best baseline (all-genes "
            "ceiling excluded) and against SelectKBest(f_classif).",
            "",
            "| dataset | task | k | YOTO heads | best baseline | best "
            "| f_classif | ≥ best? | > f_classif? |",
            "|---|---|---|---|---|---|---|---|---|",
        ]
        mean = scores.groupby(["dataset", "task", "k", "method"])["score"].mean()
        base = [m for m in METHODS if m in set(scores["method"])]
        for (dname, task), g in scores[scores["metric"] == "macro_f1"].groupby(
            ["dataset", "task"], sort=False
        ):
            for k in sorted(g["k"].unique()):
                try:
                    y = mean[(dname, task, k, "yoto_heads")]
                except KeyError:
                    continue
                bs = {m: mean.get((dname, task, k, m), np.nan) for m in base}
                bs = {m: v for m, v in bs.items() if not np.isnan(v)}
                if not bs:  # a run with no classical baseline
                    continue
                bm = max(bs, key=bs.get)
                f = bs.get("f_test", np.nan)
                target = (dname, task) in TARGET_TASKS and k in TARGET_KS
                L.append(
                    f"| {dname} | {task} | {k} | {y:.3f} | {bs[bm]:.3f} | "
                    f"{LABELS[bm]} | {f:.3f} | "
                    + (("yes" if y >= bs[bm] else "**no**") if target else "(n/a)")
                    + f" | {'yes' if y > f else '**no**'} |"
                )
    # issue 9: heads against every method in the table and against a refit
    if has_yoto:
        per_seed = scores.set_index(["dataset", "task", "k", "method", "seed"])[
            "score"
        ].sort_index()
        mean = scores.groupby(["dataset", "task", "k", "method"])["score"].mean()
        others = [
            m
            for m in _order(scores["method"].unique())
            if m not in ("yoto_heads", "yoto_panel_lr", "all_genes")
        ]
        L += [
            "",
            "## Issue 9 targets: own heads against every method, and against a refit",
            "",
            "YOTO's own heads (defaults) against every other method in the table at "
            "the same k (classical baselines and learned peers; the all-genes "
            "ceiling excluded) and against StandardScaler + LogisticRegression "
            "refitted on YOTO's own panel (target: heads at most 0.01 below). "
            "`strongest other`: the method with the largest mean advantage over the "
            "heads on the seeds it has (`n`; a peer that failed or was not run on "
            "a seed is compared on its other seeds, against the heads on the same "
            "seeds).",
            "",
            "| dataset | task | k | YOTO heads | strongest other | its mean (n) | "
            "heads, same seeds | ≥? | refit on YOTO panel | heads − refit | "
            "within 0.01? |",
            "|---|---|---|---|---|---|---|---|---|---|---|",
        ]
        met_best = met_refit = total = 0
        for dname, task in ISSUE9_TASKS:
            for k in ISSUE9_KS:
                key = (dname, task, k)
                if key + ("yoto_heads",) not in mean.index:
                    continue
                heads = per_seed.loc[key + ("yoto_heads",)]
                y = heads.mean()
                r = mean[key + ("yoto_panel_lr",)]
                adv = {}
                for m in others:
                    if key + (m,) not in mean.index:
                        continue
                    ms = per_seed.loc[key + (m,)]
                    common = ms.index.intersection(heads.index)
                    if len(common):
                        adv[m] = (
                            ms[common].mean(),
                            heads[common].mean(),
                            len(common),
                        )
                if not adv:
                    continue
                bm = max(adv, key=lambda m: adv[m][0] - adv[m][1])
                m_mean, y_same, n = adv[bm]
                total += 1
                ok_best, ok_refit = y_same >= m_mean, y - r >= -0.01
                met_best += ok_best
                met_refit += ok_refit
                L.append(
                    f"| {dname} | {task} | {k} | {y:.3f} | {LABELS[bm]} | "
                    f"{m_mean:.3f} ({n}) | {y_same:.3f} | "
                    f"{'yes' if ok_best else '**no**'} | {r:.3f} | {y - r:+.3f} | "
                    f"{'yes' if ok_refit else '**no**'} |"
                )
        L += [
            "",
            f"Met: at least as good as every other method in {met_best} of "
            f"{total}; within 0.01 of the refit in {met_refit} of {total}.",
        ]
    # learned peers: settings and failures
    if set(PEERS) & set(scores["method"]):
        L += ["", "## Learned peers: how they were run", ""]
        from peers import PEER_BUDGET_S

        L += [
            "Each peer is installed as its users get it and run through its own API "
            "on the training part of each split, once per classification task "
            "(Zeisel `level1` and `level2`; pbmc68k `bulk_labels` and `phase`) with "
            "the per-task panels merged round-robin, as for the classical "
            "baselines (tasks whose classes nest would use the finest only; none "
            "of these do: some Zeisel `level2` labels occur in several `level1` "
            "classes). "
            f"k = {', '.join(map(str, PEER_KS))} only (cost). Time: wall seconds of "
            "the peer's selection for that k (a fit shared by every k, such as "
            "PERSIST's `eliminate`, counted in each) plus the LogReg refit. "
            f"Budget: {PEER_BUDGET_S:.0f} s per task (STG) or per task and k "
            "(Concrete) where the API allows stopping between epochs.",
            "",
        ]
        L += [f"- **{LABELS[m]}**: {PEER_SETTINGS[m]}" for m in PEERS]
        fpath = os.path.join(out, "failures.csv")
        if os.path.exists(fpath):
            fl = pd.read_csv(fpath)
            if len(fl):
                L += [
                    "",
                    "Peer runs that failed (no panel; not in the means above) or "
                    "took a stated fallback (`fallback:`, one row per task that "
                    "needed it; in the means):",
                    "",
                    "| dataset | seed | method | after s | error |",
                    "|---|---|---|---|---|",
                ]
                for r in fl.itertuples():
                    err = str(r.error).replace("|", "/").replace("\n", " ")
                    L.append(
                        f"| {r.dataset} | {r.seed} | {LABELS[r.method]} | "
                        f"{r.seconds:.0f} | {err} |"
                    )
    # per dataset tables
    for dname in [d for d in DATASETS if d in set(scores["dataset"])]:
        d = scores[scores["dataset"] == dname]
        L += ["", f"## {dname}", ""]
        png = [p for p in pngs if os.path.basename(p) == f"{dname}.png"]
        if png:
            L += [f"![{dname}]({os.path.join(rel, os.path.basename(png[0]))})", ""]
        ks = sorted(d["k"].unique())
        for task in dict.fromkeys(d["task"]):
            dt = d[d["task"] == task]
            metric = "macro-F1" if dt["metric"].iloc[0] == "macro_f1" else "R²"
            L += [f"### {task} ({metric})", ""]
            L.append("| method | " + " | ".join(f"k={k}" for k in ks) + " |")
            L.append("|---|" + "---|" * len(ks))
            for m in _order(dt["method"].unique()):
                cells = [
                    _ms(dt[(dt["method"] == m) & (dt["k"] == k)]["score"]) for k in ks
                ]
                L.append(f"| {LABELS[m]} | " + " | ".join(cells) + " |")
            L.append("")
        # fit time
        tt = times[times["dataset"] == dname]
        L += [
            "### Fit wall time (s; selection + downstream fit) and ratio to YOTO",
            "",
        ]
        L.append("| method | " + " | ".join(f"k={k}" for k in ks) + " |")
        L.append("|---|" + "---|" * len(ks))
        yt = tt[tt["method"] == "yoto_heads"].groupby("k")["fit_s"].mean()
        for m in _order(tt["method"].unique()):
            cells = []
            for k in ks:
                v = tt[(tt["method"] == m) & (tt["k"] == k)]["fit_s"]
                if len(v) == 0:
                    cells.append("–")
                    continue
                r = f" (×{v.mean() / yt[k]:.2f})" if k in yt.index else ""
                cells.append(f"{v.mean():.1f}{r}")
            L.append(f"| {LABELS[m]} | " + " | ".join(cells) + " |")
        L.append("")
    # spapros's yardstick and the training-size curve (issue 23), generated by
    # yardstick.py --report and training_size.py --report
    for name, title in (
        ("yardstick.md", "spapros's yardstick on held-out cells (issue 23)"),
        ("training_size.md", "Fewer training cells: YOTO vs spapros (issue 23)"),
        ("bench_budget.md", "Panel-level budget: one fit vs trim + retrain (issue 19)"),
        ("bench_addon.md", "A 5,000-gene base + 100 to choose (issue 19)"),
    ):
        ypath = os.path.join(out, name)
        if not os.path.exists(ypath):
            continue
        with open(ypath) as fh:
            body = fh.read().strip().splitlines()
        L += [f"## {title}", ""]
        body = body[1:]
        while body and not body[0].strip():  # the title line is replaced above
            body = body[1:]
        L += [("#" + line) if line.startswith("## ") else line for line in body]
        L.append("")
    # markers
    mpath = os.path.join(out, "markers.csv")
    if os.path.exists(mpath):
        mk = pd.read_csv(mpath)
        ks = sorted(mk["k"].unique())
        n = int(mk["n_markers"].iloc[0])
        L += [
            "## Synthetic marker recovery",
            "",
            f"True marker genes in the panel (out of {n}; at most min(k, {n})).",
            "",
            "| method | " + " | ".join(f"k={k}" for k in ks) + " |",
            "|---|" + "---|" * len(ks),
        ]
        lab = dict(LABELS, yoto="YOTO")
        for m in dict.fromkeys(["yoto"] + list(mk["method"].unique())):
            if m not in set(mk["method"]):
                continue
            cells = [
                _ms(mk[(mk["method"] == m) & (mk["k"] == k)]["recovered"], 1)
                for k in ks
            ]
            L.append(f"| {lab[m]} | " + " | ".join(cells) + " |")
        L.append("")
    # partial labels
    ppath = os.path.join(out, "partial.csv")
    if os.path.exists(ppath):
        pt = pd.read_csv(ppath)
        L += [
            "## Partial labels (Zeisel)",
            "",
            "`level2` hidden (uniformly at random) for a fraction of the training "
            "cells, `level1` kept. `multitask`: YOTO on level1 + partial level2; "
            "`level2_only`: YOTO on the remaining level2 labels alone (hidden cells "
            "passed as missing). Test macro-F1 on level2.",
            "",
            "| hidden | k | variant | level2 labels | heads | panel + LogReg | fit s |",
            "|---|---|---|---|---|---|---|",
        ]
        for (h, k, v), g in pt.groupby(["hidden", "k", "variant"]):
            L.append(
                f"| {h:.0%} | {k} | {v} | {g['n_level2_labels'].mean():.0f} | "
                f"{_ms(g['level2_heads'])} | {_ms(g['level2_panel_lr'])} | "
                f"{g['fit_s'].mean():.1f} |"
            )
        L.append("")
    with open(md_path, "w") as fh:
        fh.write("\n".join(L))
    return md_path


# --------------------------------------------------------------------------- main


def score_yardstick(out: str, ks: list[int], log) -> None:
    """Every panel of the run in ``out`` scored by spapros's ``ProbesetEvaluator``.

    ``yardstick.py`` on this run's ``panels.csv`` (held-out cells of each split;
    resumable: panels scored before are skipped); its tables go to
    ``out/yardstick.md``, which the report embeds. Left out, with a message, when
    spapros is not installed: the evaluator is spapros's own.
    """
    if not peer_installed("spapros"):
        log("spapros not installed: the yardstick (its ProbesetEvaluator) is left out")
        return
    if not os.path.exists(os.path.join(out, "panels.csv")):
        return
    import yardstick

    csv = os.path.join(out, "yardstick.csv")
    yardstick.run([out], csv, log, ks)
    yardstick.report(csv, ks=tuple(ks), runs=[out])


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true")
    p.add_argument("--datasets", default=None)
    p.add_argument("--methods", default=None, help="comma list; 'yoto' for YOTO")
    p.add_argument("--seeds", type=int, default=None)
    p.add_argument(
        "--seed-list", default=None, help="comma list of seeds (overrides --seeds)"
    )
    p.add_argument(
        "--merge",
        default=None,
        help="comma list of result folders whose rows replace those of --out "
        "(same dataset, seed and method) before the report; run seeds in "
        "parallel processes with --out, then merge",
    )
    p.add_argument("--ks", default=None)
    p.add_argument("--partial-ks", default=None)
    p.add_argument("--no-partial", action="store_true")
    p.add_argument(
        "--partial-only", action="store_true", help="only the partial-label runs"
    )
    p.add_argument("--yoto-params", default="{}", help="JSON overrides (tuning)")
    p.add_argument("--out", default=None)
    p.add_argument("--md", default=None)
    p.add_argument("--resume", action="store_true")
    p.add_argument("--report-only", action="store_true")
    p.add_argument("--threads", type=int, default=None, help="torch threads")
    p.add_argument(
        "--yardstick-ks",
        default=None,
        help="panel sizes scored by spapros's ProbesetEvaluator after the run "
        "(yardstick.py; default 25,50, none with --quick; '' skips it)",
    )
    a = p.parse_args(argv)

    if a.quick:
        seeds = list(range(a.seeds or 1))
        ks = [int(x) for x in (a.ks or "10,25").split(",")]
        methods = (a.methods or "yoto,f_test,variance,random,random_forest,l1").split(
            ","
        )
        partial_ks = [int(x) for x in (a.partial_ks or "25").split(",")]
        fractions = [0.9]
        out = a.out or os.path.join(HERE, "results", "quick")
        md = a.md or os.path.join(out, "RESULTS.md")
    else:
        seeds = list(range(a.seeds or 5))
        ks = [int(x) for x in (a.ks or ",".join(map(str, KS))).split(",")]
        methods = (a.methods or ",".join(["yoto"] + BASELINES + PEERS)).split(",")
        partial_ks = [int(x) for x in (a.partial_ks or "25").split(",")]
        fractions = [0.5, 0.9]
        out = a.out or os.path.join(HERE, "results")
        # a run into its own folder reports there: only the default run (or an
        # explicit --md) rewrites the tracked benchmarks/RESULTS.md
        md = a.md or (
            os.path.join(out, "RESULTS.md")
            if a.out
            else os.path.join(HERE, "RESULTS.md")
        )
    if a.seed_list:
        seeds = [int(x) for x in a.seed_list.split(",")]
    datasets = (a.datasets or ",".join(DATASETS)).split(",")
    params = json.loads(a.yoto_params)
    missing = [m for m in methods if m in PEERS and not peer_installed(m)]
    if missing:
        print(
            f"peers not installed, left out: {', '.join(missing)} (see README, "
            "Benchmarks: pip install -e '.[peers]' plus the PERSIST wheel and "
            "scGeneFit --no-deps)",
            flush=True,
        )
        methods = [m for m in methods if m not in missing]
    if YOTOSelector is None:
        methods = [m for m in methods if m != "yoto"]
        print("yoto_sklearn.YOTOSelector not importable: baselines only", flush=True)

    t_start = time.perf_counter()

    def log(msg):
        print(f"[{time.perf_counter() - t_start:7.1f}s] {msg}", flush=True)

    if not a.report_only:
        import torch

        torch.set_num_threads(a.threads or max(1, os.cpu_count() or 1))
        store = Store(out, resume=a.resume)
        if "yoto" in methods:
            record_yoto_defaults(out)
        for name in [] if a.partial_only else datasets:
            run_dataset(name, seeds, ks, methods, params, store, log)
        if "yoto" in methods and "zeisel" in datasets and not a.no_partial:
            run_partial(seeds, partial_ks, fractions, params, store, log)
        yardstick_ks = a.yardstick_ks
        if yardstick_ks is None:
            yardstick_ks = "" if a.quick else "25,50"
        if yardstick_ks:
            score_yardstick(out, [int(k) for k in yardstick_ks.split(",")], log)
    if a.merge:
        merge(out, a.merge.split(","))
    if not os.path.exists(os.path.join(out, "scores.csv")):
        log(f"no scores in {out} (partial-label rows only): no report")
        return
    path = report(out, md, a.quick)
    log(f"wrote {path}")


if __name__ == "__main__":
    main()
