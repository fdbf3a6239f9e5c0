"""spapros's yardstick on the benchmark's held-out cells (issue 23).

Every panel a method selected on the training part of a split (``panels.csv`` of a
``run_benchmark.py`` run) is scored by spapros's own ``ProbesetEvaluator`` on the
test part of the same split, through ``yoto_sklearn.evaluation.spapros_metrics``
(which calls spapros: nothing is re-implemented):

- cell-type recovery: ``forest_clfs`` accuracy (mean over cell types of the
  recall of spapros's XGBoost forests, 5-fold CV x 5 seeds) per classification
  task;
- variation recovery: ``knn_overlap`` mean overlap AUC and ``cluster_similarity``
  NMI AUCs (5-20 and 21-60 clusters) against the all-gene structure;
- redundancy: ``gene_corr`` 1 - mean correlation (higher: less redundant).

Setting changed from spapros's defaults, for the held-out cells: the forests keep
cell types with at least ``FOREST_MIN_CELLS`` (10) held-out cells instead of 40.
On the seed-0 split, 40 would keep 1 of 10 ``bulk_labels`` types and 1 of 3 phases
of pbmc68k's 140 test cells, and 6 of 7 ``level1`` / 3 of 48 ``level2`` types of
Zeisel's 601; 10 keeps 5, 2, 7 and 15. ``marker_corr`` is not computed: it needs a
curated marker list, which neither dataset has.

    python benchmarks/yardstick.py --runs results/run10_peers,results/run10_spapros
    python benchmarks/yardstick.py --report       # tables from yardstick.csv

Rows go to ``results/yardstick.csv`` (resumable: a scored panel is not scored
again).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import warnings

import numpy as np
import pandas as pd

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

from datasets import load  # noqa: E402

FOREST_MIN_CELLS = 10
OUT = os.path.join(HERE, "results", "yardstick.csv")
FAMILIES = {
    "forest_clfs accuracy": "cell-type recovery (forest accuracy)",
    "knn_overlap mean_overlap_AUC": "variation: kNN overlap AUC",
    "cluster_similarity nmi_5_20": "variation: cluster NMI 5-20",
    "cluster_similarity nmi_21_60": "variation: cluster NMI 21-60",
    "gene_corr 1 - mean": "redundancy: 1 - mean correlation",
}


def test_anndata(ds, Xte, Yte):
    """The held-out cells as spapros wants them: log expression, labels in obs."""
    import anndata
    import scipy.sparse as sp

    classes = [t for t, kind in ds.task_types.items() if kind == "classification"]
    obs = pd.DataFrame(
        {t: pd.Categorical(Yte[t].astype(str)) for t in classes},
        index=[f"c{i}" for i in range(Xte.shape[0])],
    )
    var = pd.DataFrame(index=[str(g) for g in ds.gene_names])
    return anndata.AnnData(X=sp.csr_matrix(Xte, dtype=np.float32), obs=obs, var=var)


def score(ds, test, panels: dict[str, np.ndarray]) -> pd.DataFrame:
    """spapros's metric families of ``{name: gene indices}`` on ``test``."""
    from yoto_sklearn.evaluation import spapros_metrics

    names = np.asarray([str(g) for g in ds.gene_names])
    classes = [t for t, kind in ds.task_types.items() if kind == "classification"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return spapros_metrics(
            test,
            {name: list(names[np.asarray(genes)]) for name, genes in panels.items()},
            classes,
            forest_min_cells=FOREST_MIN_CELLS,
        )


def panels_of(runs: list[str]) -> pd.DataFrame:
    frames = [
        pd.read_csv(os.path.join(run, "panels.csv"))
        for run in runs
        if os.path.exists(os.path.join(run, "panels.csv"))
    ]
    return pd.concat(frames, ignore_index=True).drop_duplicates(
        ["dataset", "seed", "method", "k"], keep="last"
    )


def run(runs: list[str], out: str, log) -> None:
    from run_benchmark import split

    todo = panels_of(runs)
    rows = pd.read_csv(out).to_dict("records") if os.path.exists(out) else []
    done = {(r["dataset"], r["seed"], r["method"], r["k"]) for r in rows}
    for (dname, seed), group in todo.groupby(["dataset", "seed"], sort=False):
        group = group[
            [
                (dname, seed, m, k) not in done
                for m, k in zip(group["method"], group["k"], strict=True)
            ]
        ]
        if group.empty:
            continue
        ds = load(dname)
        _, _, Xte, Yte = split(ds, int(seed))
        test = test_anndata(ds, Xte, Yte)
        for r in group.itertuples():
            t0 = time.perf_counter()
            genes = np.asarray([int(g) for g in str(r.genes).split()])
            found = score(ds, test, {"panel": genes})
            for f in found.itertuples():
                rows.append(
                    dict(
                        dataset=dname,
                        seed=int(seed),
                        method=r.method,
                        k=int(r.k),
                        task=f.task,
                        metric=f.metric,
                        value=f.value,
                    )
                )
            pd.DataFrame(rows).to_csv(out, index=False)
            seconds = time.perf_counter() - t0
            log(f"{dname} seed={seed} {r.method} k={r.k}: {seconds:.1f}s")


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--runs", default="", help="comma list of run_benchmark folders")
    p.add_argument("--out", default=OUT)
    a = p.parse_args(argv)
    start = time.perf_counter()

    def log(msg):
        print(f"[{time.perf_counter() - start:7.1f}s] {msg}", flush=True)

    runs = [r if os.path.isabs(r) else os.path.join(HERE, r) for r in a.runs.split(",")]
    run(runs, a.out, log)


if __name__ == "__main__":
    main()
