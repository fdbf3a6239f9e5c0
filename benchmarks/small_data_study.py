"""More optimiser steps for small training sets? (issue 23, training-size gap)

With 500 training cells YOTO's heads trail spapros's panel + LogisticRegression on
Zeisel (``results/training_size.md``). At that size an epoch is 4 mini-batches of
128 cells, so a default fit takes at most 400 optimiser steps where a fit on all
of Zeisel's training cells takes at most 1,700: is the small-data fit simply short
of steps? On the training-size cuts (``training_size.cut``: a stratified sample of
the benchmark's training part, the test part unchanged) this fits YOTO with

- ``default``: the defaults;
- ``iter300``: ``max_iter=300`` (3x the epochs, early stopping as usual);
- ``bs32``: ``batch_size=32`` (4x the steps per epoch);
- ``no_es``: ``early_stopping=False`` (no 10 % of the few cells held out for
  validation; every epoch trains on all of them, the last epoch's weights kept);

and scores its heads on the test cells (macro-F1 per classification task, R^2
per regression task). ``--n`` at or above the training part's size keeps every
training cell (pbmc68k: 560, synthetic: 1,600).

    python benchmarks/small_data_study.py --dataset zeisel --n 500 --seeds 0,1,2

Rows go to ``results/small_data_study.csv`` (resumable); TUNING.md quotes the
paired changes (``tune_defaults.py --report-only``).
"""

from __future__ import annotations

import argparse
import os
import sys

import pandas as pd

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

from baselines import score_predictions  # noqa: E402
from datasets import load  # noqa: E402
from run_benchmark import fit_yoto, split, yoto_predictions  # noqa: E402
from training_size import cut  # noqa: E402

OUT = os.path.join(HERE, "results", "small_data_study.csv")
VARIANTS = {
    "default": {},
    "iter300": {"max_iter": 300},
    "bs32": {"batch_size": 32},
    "no_es": {"early_stopping": False},
}


def main() -> None:
    import torch

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--dataset", default="zeisel")
    p.add_argument("--n", type=int, default=500, help="training cells kept")
    p.add_argument("--seeds", default="0,1,2")
    p.add_argument("--ks", default="10,25,50")
    p.add_argument("--variants", default=",".join(VARIANTS))
    p.add_argument("--out", default=OUT)
    a = p.parse_args()
    variants = {v: VARIANTS[v] for v in a.variants.split(",")}
    torch.set_num_threads(1)
    ds = load(a.dataset)
    rows = pd.read_csv(a.out).to_dict("records") if os.path.exists(a.out) else []
    done = {(r["dataset"], r["n"], r["seed"], r["k"], r["variant"]) for r in rows}
    for seed in (int(s) for s in a.seeds.split(",")):
        Xtr, Ytr, Xte, Yte = split(ds, seed)
        Xtr, Ytr = cut(Xtr, Ytr, ds.stratify, a.n, seed)
        for k in (int(x) for x in a.ks.split(",")):
            for name, params in variants.items():
                if (ds.name, Xtr.shape[0], seed, k, name) in done:
                    continue
                est, t = fit_yoto(Xtr, Ytr, ds.task_types, k, seed, params)
                tasks = list(ds.task_types)
                scores = score_predictions(
                    Yte, yoto_predictions(est, Xte, tasks), ds.task_types
                )
                for task, score in scores.items():
                    rows.append(
                        dict(dataset=ds.name, n=Xtr.shape[0], seed=seed, k=k,
                             variant=name, task=task, score=score, seconds=t,
                             n_iter=est.n_iter_)
                    )  # fmt: skip
                pd.DataFrame(rows).to_csv(a.out, index=False)
                print(f"{ds.name} n={Xtr.shape[0]} seed={seed} k={k} {name}: "
                      f"{t:.1f}s {scores}", flush=True)  # fmt: skip


if __name__ == "__main__":
    main()
