"""Cell-type recovery against the number of training cells: YOTO vs spapros (issue 23).

For each seed's 80/20 split of the benchmark (``run_benchmark.split``), the training
part is cut to ``n`` cells (a stratified sample on the finest label, without
replacement) for each ``n`` in ``--sizes`` (``all`` keeps every training cell); the
test part never changes. On each cut:

- ``yoto_heads``: a default ``YOTOSelector(k)`` fit; its own heads predict the
  test cells;
- ``yoto_panel_lr``: the LogisticRegression refit of the benchmark on YOTO's panel;
- ``spapros_lr``: spapros's panel (``peers.peer_panels``, the benchmark's spapros
  settings: one run with n = max(k), smaller panels from the front of its
  ranking, see ``results/spapros_n_check.md``) + the same LogisticRegression.

Scores are the benchmark's (macro-F1 per classification task). Rows go to
``results/training_size.csv`` (resumable); ``--report`` writes
``results/training_size.md`` and ``results/training_size.png``.

    python benchmarks/training_size.py --dataset zeisel --seeds 0,1,2
    python benchmarks/training_size.py --report --benchmark-runs \
        results/run10_yoto,results/run10_spapros_zeisel0,...

With ``--benchmark-runs`` the report takes the points with every training cell from
those ``run_benchmark.py`` runs (``scores.csv``): the benchmark's splits are the
cuts' splits, and its YOTO and spapros settings are this script's, so refitting
them here would repeat the benchmark.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

import numpy as np
import pandas as pd
from sklearn.utils import resample

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

from baselines import evaluate_panel, score_predictions  # noqa: E402
from datasets import load  # noqa: E402
from peers import peer_panels  # noqa: E402
from run_benchmark import fit_yoto, split, yoto_predictions  # noqa: E402

OUT = os.path.join(HERE, "results", "training_size.csv")
METHODS = ["yoto_heads", "yoto_panel_lr", "spapros_lr"]


def cut(Xtr, Ytr, stratify: str, n: int | None, seed: int):
    """A stratified sample of ``n`` training cells (all when ``n`` is None)."""
    if n is None or n >= Xtr.shape[0]:
        return Xtr, Ytr
    idx = resample(
        np.arange(Xtr.shape[0]),
        replace=False,
        n_samples=n,
        stratify=Ytr[stratify].astype(str).to_numpy(),
        random_state=seed,
    )
    idx = np.sort(idx)
    return Xtr[idx], Ytr.iloc[idx].reset_index(drop=True)


def _rows(ds, seed, size, k, method, scores, seconds):
    return [
        dict(
            dataset=ds.name,
            seed=seed,
            n_train=size,
            k=k,
            method=method,
            task=t,
            score=s,
            seconds=seconds,
        )
        for t, s in scores.items()
        if ds.task_types[t] == "classification"
    ]


def stored_panels(run_dir, dataset, seed, ks):
    """``(seconds, {k: panel})`` of spapros in a ``run_benchmark.py`` run, or None.

    With all training cells the cut is the benchmark's own training part, so the
    panels spapros selected there (same data, same seed, same settings) are reused
    instead of another 20-30 minute run.
    """
    path = os.path.join(run_dir, "panels.csv")
    if not os.path.exists(path):
        return None
    p = pd.read_csv(path)
    p = p[(p.dataset == dataset) & (p.seed == seed) & (p.method == "spapros")]
    if not set(ks) <= set(p.k):
        return None
    t = pd.read_csv(os.path.join(run_dir, "times.csv"))
    t = t[(t.dataset == dataset) & (t.seed == seed) & (t.method == "spapros")]
    seconds = float(t["select_s"].dropna().max()) if len(t) else float("nan")
    return seconds, {
        int(r.k): np.array([int(g) for g in r.genes.split()])
        for r in p.itertuples()
        if int(r.k) in ks
    }


def run(dataset, seeds, sizes, ks, out, log, spapros_from=None):
    ds = load(dataset)
    done = pd.read_csv(out) if os.path.exists(out) else pd.DataFrame()
    rows = done.to_dict("records")
    for seed in seeds:
        Xtr_all, Ytr_all, Xte, Yte = split(ds, seed)
        for n in sizes:
            Xtr, Ytr = cut(Xtr_all, Ytr_all, ds.stratify, n, seed)
            size = Xtr.shape[0]
            have = {
                (r["method"], r["k"])
                for r in rows
                if r["dataset"] == ds.name
                and r["seed"] == seed
                and r["n_train"] == size
            }
            new = []
            for k in ks:
                if ("yoto_heads", k) in have:
                    continue
                est, t_fit = fit_yoto(Xtr, Ytr, ds.task_types, k, seed, {})
                tasks = list(ds.task_types)
                heads = score_predictions(
                    Yte, yoto_predictions(est, Xte, tasks), ds.task_types
                )
                lr = evaluate_panel(Xtr, Ytr, Xte, Yte, ds.task_types, est.support_)
                new += _rows(ds, seed, size, k, "yoto_heads", heads, t_fit)
                new += _rows(ds, seed, size, k, "yoto_panel_lr", lr, t_fit)
                log(f"{ds.name} seed={seed} n={size} yoto k={k}: {t_fit:.0f}s {heads}")
            if any(("spapros_lr", k) not in have for k in ks):
                t0 = time.perf_counter()
                stored = (
                    stored_panels(spapros_from, ds.name, seed, ks)
                    if spapros_from and size == Xtr_all.shape[0]
                    else None
                )
                if stored:
                    t_sp, panels = stored
                else:
                    try:
                        panels = peer_panels(
                            "spapros", Xtr, Ytr, ds.task_types, ks, seed
                        )
                    except Exception as err:  # noqa: BLE001 - a failure is a result
                        log(f"{ds.name} seed={seed} n={size} spapros failed: {err!r}")
                        panels = {}
                    t_sp = time.perf_counter() - t0
                for k, panel in panels.items():
                    lr = evaluate_panel(Xtr, Ytr, Xte, Yte, ds.task_types, panel)
                    new += _rows(ds, seed, size, k, "spapros_lr", lr, t_sp)
                log(f"{ds.name} seed={seed} n={size} spapros: {t_sp:.0f}s")
            rows += new
            if new:
                pd.DataFrame(rows).to_csv(out, index=False)


# run_benchmark.py method names -> this script's
BENCHMARK_METHODS = {
    "yoto_heads": "yoto_heads",
    "yoto_panel_lr": "yoto_panel_lr",
    "spapros": "spapros_lr",
}


def benchmark_rows(run_dirs, datasets) -> pd.DataFrame:
    """The all-training-cells points of ``datasets`` from benchmark runs' scores."""
    parts = []
    for run_dir in run_dirs:
        s = pd.read_csv(os.path.join(run_dir, "scores.csv"))
        s = s[s.dataset.isin(datasets) & s.method.isin(list(BENCHMARK_METHODS))]
        parts.append(s)
    if not parts:
        return pd.DataFrame()
    s = pd.concat(parts)
    s = s[s.metric == "macro_f1"]
    s = s.drop_duplicates(["dataset", "seed", "k", "method", "task"], keep="last")
    n_train = {name: split(load(name), 0)[0].shape[0] for name in s.dataset.unique()}
    return pd.DataFrame(
        {
            "dataset": s.dataset,
            "seed": s.seed,
            "n_train": s.dataset.map(n_train),
            "k": s.k,
            "method": s.method.map(BENCHMARK_METHODS),
            "task": s.task,
            "score": s.score,
        }
    )


def report(out: str, run_dirs=()) -> str:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    df = pd.read_csv(out)
    ks = set(df.k)
    extra = benchmark_rows(run_dirs, set(df.dataset))
    if len(extra):
        extra = extra[extra.k.isin(ks)]
        df = pd.concat([df, extra], ignore_index=True)
    g = df.groupby(["dataset", "task", "k", "n_train", "method"])["score"]
    table = g.agg(["mean", "std", "count"]).reset_index()
    lines = [
        "# Cell-type recovery against training cells (generated by "
        "`benchmarks/training_size.py --report`)",
        "",
        "Macro-F1 on the held-out 20 % of each split, mean ± sd over seeds (n seeds "
        "in brackets). `n_train`: training cells kept (stratified sample of the 80 %"
        + (
            "; the largest is every training cell, from the benchmark runs "
            + ", ".join(f"`{os.path.basename(r)}`" for r in run_dirs)
            if run_dirs
            else ""
        )
        + ").",
        "",
    ]
    for (dataset, task), part in table.groupby(["dataset", "task"]):
        lines += [f"## {dataset} / {task}", ""]
        cell = [
            f"{m:.3f} ± {0 if np.isnan(sd) else sd:.3f} ({int(c)})"
            for m, sd, c in zip(part["mean"], part["std"], part["count"], strict=True)
        ]
        wide = part.assign(cell=cell).pivot(
            index=["k", "n_train"], columns="method", values="cell"
        )
        wide = wide[[m for m in METHODS if m in wide.columns]]
        lines.append("| k | n_train | " + " | ".join(wide.columns) + " |")
        lines.append("|---|---|" + "---|" * len(wide.columns))
        for (k, n), r in wide.iterrows():
            lines.append(
                f"| {k} | {n} | " + " | ".join(str(v) for v in r.values) + " |"
            )
        lines.append("")
    text = "\n".join(lines)
    with open(out.replace(".csv", ".md"), "w") as fh:
        fh.write(text)
    # one panel per (dataset, task) and k; one line per method
    panels = list(table.groupby(["dataset", "task"]))
    ks = sorted(table["k"].unique())
    style = {
        "yoto_heads": dict(color="C0", linestyle="-", marker="o"),
        "yoto_panel_lr": dict(color="C0", linestyle="--", marker="s", alpha=0.6),
        "spapros_lr": dict(color="C3", linestyle=":", marker="^"),
    }
    fig, axes = plt.subplots(
        len(panels),
        len(ks),
        figsize=(3.2 * len(ks), 2.8 * len(panels)),
        squeeze=False,
        sharex=True,
    )
    for row, ((dataset, task), part) in enumerate(panels):
        for col, k in enumerate(ks):
            ax = axes[row, col]
            for method in METHODS:
                line = part[(part["method"] == method) & (part["k"] == k)]
                if line.empty:
                    continue
                ax.errorbar(
                    line["n_train"],
                    line["mean"],
                    yerr=line["std"].fillna(0),
                    label=method,
                    capsize=2,
                    **style[method],
                )
            ax.set_xscale("log")
            sizes = sorted(part["n_train"].unique())
            ax.set_xticks(sizes, [str(n) for n in sizes], fontsize=7)
            ax.minorticks_off()
            ax.set_title(f"{dataset} / {task}, k = {k}", fontsize=9)
            if col == 0:
                ax.set_ylabel("macro-F1 (held out)")
            if row == len(panels) - 1:
                ax.set_xlabel("training cells")
    axes[0, 0].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(out.replace(".csv", ".png"), dpi=110)
    return text


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--dataset", default="zeisel")
    p.add_argument("--seeds", default="0,1,2")
    p.add_argument("--sizes", default="500,1000,all")
    p.add_argument("--ks", default="10,25,50")
    p.add_argument("--out", default=OUT)
    p.add_argument(
        "--spapros-from",
        default=None,
        help="a run_benchmark.py output folder whose spapros panels serve n_train=all",
    )
    p.add_argument("--report", action="store_true")
    p.add_argument(
        "--benchmark-runs",
        default="",
        help="run_benchmark.py output folders whose scores give the report's "
        "all-training-cells points",
    )
    a = p.parse_args(argv)
    if a.report:
        runs = [r for r in a.benchmark_runs.split(",") if r]
        print(report(a.out, runs))
        return
    sizes = [None if s == "all" else int(s) for s in a.sizes.split(",")]
    t0 = time.perf_counter()

    def log(msg):
        print(f"[{time.perf_counter() - t0:7.1f}s] {msg}", flush=True)

    run(
        a.dataset,
        [int(s) for s in a.seeds.split(",")],
        sizes,
        [int(k) for k in a.ks.split(",")],
        a.out,
        log,
        spapros_from=a.spapros_from,
    )


if __name__ == "__main__":
    main()
