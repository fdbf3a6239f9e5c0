"""Does ``structure_components`` keep the data's structure, and at what cost?

YOTO with and without the structure heads (the top principal components of the
training cells as auxiliary targets) on every benchmark dataset, 5 seeds,
k = 10, 25, 50, on the splits of ``run_benchmark.py``: the heads' test macro-F1
(R^2 for regression) on the label tasks, and spapros's yardstick on the test cells
(``yardstick.score``: forest accuracy, kNN overlap, cluster NMI, gene correlation).
Two marker variants are measured on the same runs: ``markers1``
(``marker_coverage=1``: the selection is pulled towards a marker for every class
of the first classification task) and ``req_markers`` (the best one-vs-rest AUROC
gene of each of those classes on the training cells, passed as
``required_genes``; the rest of the panel is YOTO's choice).

    python benchmarks/structure_study.py [--datasets zeisel] [--seeds 0,1]
    python benchmarks/structure_study.py --report   # results/structure_study.md

Rows go to ``results/structure_study.csv`` (resumable; ``--csv`` writes elsewhere,
for processes side by side, whose rows are then appended to it). TUNING.md quotes
the report.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

import numpy as np
import pandas as pd

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

from baselines import score_predictions  # noqa: E402
from datasets import load  # noqa: E402
from run_benchmark import fit_yoto, split, yoto_predictions  # noqa: E402
from yardstick import FAMILIES, score, test_anndata  # noqa: E402

RESULTS = os.path.join(HERE, "results")
CSV = os.path.join(RESULTS, "structure_study.csv")
VARIANTS = {
    "off": {},
    "pcs10_w0.5": {"structure_components": 10, "structure_weight": 0.5},
    "pcs10_w1": {"structure_components": 10, "structure_weight": 1.0},
    "pcs10_w3": {"structure_components": 10, "structure_weight": 3.0},
    # not a structure option: marker coverage of the first classification task
    "markers1": {"marker_coverage": 1.0},
    # the best marker of each of those classes required (best_markers)
    "req_markers": {},
}


# what the report says of a variant that is not a structure option
NOTES = {
    "markers1": " `markers1` is not a structure option: `marker_coverage=1` "
    "(selection pulled towards a marker for every class of the first "
    "classification task), measured on the same runs.",
    "req_markers": " `req_markers`: that task's best one-vs-rest AUROC gene per "
    "class on the training cells as `required_genes` (`best_markers`); its `off` "
    "rows were run beside it on the same machine (the same code and seeds give "
    "other floats on another CPU, so the `off` rows of `structure_study.csv` are "
    "not paired with it).",
}


def best_markers(X, Y: pd.DataFrame, task_types: dict[str, str]) -> list[int]:
    """The gene with the highest one-vs-rest AUROC for each class of the first
    classification task, on the training cells labelled for it (the statistic of
    ``marker_coverage``), each gene once: a class whose best gene is taken gets its
    next best."""
    from yoto_sklearn._markers import one_vs_rest_auroc

    task = next(t for t, kind in task_types.items() if kind == "classification")
    y = Y[task].to_numpy()
    labelled = np.flatnonzero(pd.notna(y))
    auc = one_vs_rest_auroc(X[labelled], pd.Categorical(y[labelled]).codes)
    picked: list[int] = []
    for c in range(auc.shape[1]):
        picked.append(int(next(g for g in np.argsort(-auc[:, c]) if g not in picked)))
    return picked


def run(datasets, seeds, ks, variants, threads, log, csv=CSV):
    rows = pd.read_csv(csv).to_dict("records") if os.path.exists(csv) else []
    done = {(r["dataset"], r["seed"], r["k"], r["variant"]) for r in rows}
    for name in datasets:
        ds = load(name)
        for seed in seeds:
            Xtr, Ytr, Xte, Yte = split(ds, seed)
            test = test_anndata(ds, Xte, Yte)
            for k in ks:
                for variant in variants:
                    if (name, seed, k, variant) in done:
                        continue
                    params = dict(VARIANTS[variant], n_threads=threads)
                    if variant == "req_markers":
                        params["required_genes"] = best_markers(Xtr, Ytr, ds.task_types)
                    est, fit_s = fit_yoto(Xtr, Ytr, ds.task_types, k, seed, params)
                    pred = yoto_predictions(est, Xte, list(ds.task_types))
                    heads = score_predictions(Yte, pred, ds.task_types)
                    found = score(ds, test, {variant: np.asarray(est.support_)})
                    base = dict(dataset=name, seed=seed, k=k, variant=variant)
                    for task, value in heads.items():
                        rows.append(dict(base, task=task, metric="heads", value=value))
                    for f in found.itertuples():
                        rows.append(dict(base, task=f.task, metric=f.metric,
                                         value=f.value))  # fmt: skip
                    rows.append(dict(base, task="-", metric="fit_s", value=fit_s))
                    pd.DataFrame(rows).to_csv(csv, index=False)
                    shown = ", ".join(f"{t}={v:.3f}" for t, v in heads.items())
                    log(f"{name} seed={seed} k={k} {variant}: {fit_s:.0f}s, {shown}")


def report(path=CSV) -> str:
    """Tables of ``path`` (a CSV of :func:`run`), written next to it as ``.md``."""
    data = pd.read_csv(path)
    data = data[data["metric"].isin(["heads", *FAMILIES])]
    title = "Structure heads" if path == CSV else "Marker variants"
    L = [f"# {title}: gains and costs", ""]
    L.append(
        "Generated by `benchmarks/structure_study.py` from "
        f"`results/{os.path.basename(path)}`. Mean over seeds (n) of the test-cell "
        "values; `Δ` is the paired mean difference to `off` on the same seeds and "
        "splits, ± its standard error. `heads`: YOTO's own test macro-F1 (R² for "
        "regression tasks); the other rows are spapros's yardstick on the test "
        "cells (forest accuracy per classification task; kNN overlap, cluster "
        "NMI and gene correlation over all genes; higher is better everywhere)."
        + "".join(NOTES[v] for v in NOTES if v in set(data["variant"]))
    )
    for name, d in data.groupby("dataset", sort=False):
        L += ["", f"## {name}", ""]
        variants = [v for v in VARIANTS if v in set(d["variant"])]
        L.append("| task | metric | k | off | " + " | ".join(
            f"Δ {v}" for v in variants if v != "off") + " |")  # fmt: skip
        L.append("|---" * (4 + len(variants) - 1) + "|")
        keyed = d.set_index(["task", "metric", "k", "variant", "seed"])["value"]
        keyed = keyed.sort_index()
        for task, metric, k in (
            d[["task", "metric", "k"]].drop_duplicates().itertuples(index=False)
        ):
            if (task, metric, k, "off") not in keyed.index.droplevel("seed"):
                continue
            off = keyed.loc[(task, metric, k, "off")]
            cells = [f"{off.mean():.3f} ({len(off)})"]
            for v in variants:
                if v == "off":
                    continue
                if (task, metric, k, v) not in keyed.index.droplevel("seed"):
                    cells.append("–")
                    continue
                other = keyed.loc[(task, metric, k, v)]
                common = other.index.intersection(off.index)
                diff = other[common] - off[common]
                se = diff.std(ddof=1) / np.sqrt(len(diff)) if len(diff) > 1 else 0
                cells.append(f"{diff.mean():+.3f} ± {se:.3f}")
            label = FAMILIES.get(metric, "heads (labels)")
            L.append(f"| {task} | {label} | {k} | " + " | ".join(cells) + " |")
    text = "\n".join(L) + "\n"
    with open(os.path.splitext(path)[0] + ".md", "w") as fh:
        fh.write(text)
    return text


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--datasets", default="zeisel,pbmc68k,synthetic")
    p.add_argument("--seeds", default="0,1,2,3,4")
    p.add_argument("--ks", default="10,25,50")
    p.add_argument("--variants", default=",".join(VARIANTS))
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--csv", default=CSV, help="where rows go (default: the study's)")
    p.add_argument("--report", action="store_true")
    a = p.parse_args(argv)
    if a.report:
        print(report(a.csv))
        return
    start = time.perf_counter()

    def log(msg):
        print(f"[{time.perf_counter() - start:7.1f}s] {msg}", flush=True)

    run(
        a.datasets.split(","),
        [int(s) for s in a.seeds.split(",")],
        [int(k) for k in a.ks.split(",")],
        a.variants.split(","),
        a.threads,
        log,
        a.csv,
    )
    print(report(a.csv))


if __name__ == "__main__":
    main()
