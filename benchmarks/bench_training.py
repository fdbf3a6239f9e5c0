"""Training throughput: one YOTO epoch next to the same encoder's dense matrix products.

On 3,000 x 4,000 dense data (the Zeisel size), fits ``YOTOSelector(k=50,
hidden_layer_sizes=(256,), batch_size=128)`` and reads the per-epoch wall and CPU
times it records (``history_.epoch_times`` / ``epoch_cpu_times``) for the selection
phase (Gumbel top-k mask, straight-through backward over all genes) and the
refinement phase (fixed panel). In the same run, interleaved repeat by repeat, it
times the reference: the same encoder as a plain dense network (Linear(G, 256) ->
BatchNorm -> ReLU -> Dropout -> head) doing forward + backward, and forward +
backward + fused AdamW step, over the same number of batches of the same size. It
also times the parts of a selection step alone (batch fetch + standardise, mask
sampling). Medians over repeats; ratios = YOTO epoch / reference epoch.

Usage::

    python benchmarks/bench_training.py [--repeats 5] [--threads 1]

Writes ``benchmarks/results/bench_training.{csv,md}``.
"""

from __future__ import annotations

import argparse
import os
import platform
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from torch import nn

from yoto_sklearn import YOTOSelector, sources
from yoto_sklearn._network import YOTONetwork

RESULTS = Path(__file__).resolve().parent / "results"


def make_data(n: int, g: int, n_classes: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, n_classes, n)
    X = rng.gamma(0.5, 1.0, size=(n, g))
    X[rng.random((n, g)) < 0.43] = 0.0
    X[:, :20] += (y[:, None] == (np.arange(20) % n_classes)) * 2.0
    return np.log1p(X), y


def timed(fn) -> tuple[float, float]:
    w, c = time.perf_counter(), time.process_time()
    fn()
    return time.perf_counter() - w, time.process_time() - c


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n", type=int, default=3000)
    p.add_argument("--genes", type=int, default=4000)
    p.add_argument("--k", type=int, default=50)
    p.add_argument("--hidden", type=int, default=256)
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--classes", type=int, default=7)
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--out", default=str(RESULTS / "bench_training"))
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    X, y = make_data(args.n, args.genes, args.classes)
    Xf = X.astype(np.float32)
    bs = args.batch_size
    n_steps = int(np.ceil(args.n / bs))
    rng = np.random.default_rng(0)
    mean, std = sources.scan_columns(sources.ArraySource(Xf), None)
    Xt = torch.from_numpy((Xf - mean.astype(np.float32)) / std.astype(np.float32))
    yt = torch.from_numpy(y)
    torch.manual_seed(0)
    dense = nn.Sequential(
        nn.Linear(args.genes, args.hidden),
        nn.BatchNorm1d(args.hidden),
        nn.ReLU(),
        nn.Dropout(0.2),
        nn.Linear(args.hidden, args.classes),
    )
    opt = torch.optim.AdamW(dense.parameters(), lr=1e-3, fused=True)
    net = YOTONetwork(args.genes, args.k, [args.hidden], [args.classes], 0.2)
    gen = torch.Generator().manual_seed(0)

    def dense_epoch(step: bool) -> None:
        perm = torch.from_numpy(rng.permutation(args.n))
        for s in range(n_steps):
            idx = perm[s * bs : (s + 1) * bs]
            loss = F.cross_entropy(dense(Xt[idx]), yt[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            if step:
                opt.step()

    def fetch_epoch() -> None:
        src = sources.ArraySource(X)
        m, sd = (
            torch.from_numpy(mean.astype(np.float32)),
            torch.from_numpy(std.astype(np.float32)),
        )
        for _, block in src.batches(np.arange(args.n), bs, rng):
            (torch.from_numpy(block) - m) / sd

    def mask_epoch() -> None:
        for _ in range(n_steps):
            net.select(0.5, 0.5, gen)

    rows = []
    for r in range(args.repeats):
        sel = YOTOSelector(
            k=args.k,
            hidden_layer_sizes=(args.hidden,),
            batch_size=bs,
            max_iter=4,
            early_stopping=False,
            device="cpu",
            random_state=r,
        )
        sel.fit(X, y)
        h = sel.history_
        nsel = h.selection_epochs
        rec = {
            "repeat": r,
            "yoto_selection_wall": float(np.mean(h.epoch_times[:nsel])),
            "yoto_selection_cpu": float(np.mean(h.epoch_cpu_times[:nsel])),
            "yoto_refinement_wall": float(np.mean(h.epoch_times[nsel:])),
            "yoto_refinement_cpu": float(np.mean(h.epoch_cpu_times[nsel:])),
        }
        dense.train()
        rec["dense_fwd_bwd_wall"], rec["dense_fwd_bwd_cpu"] = timed(
            lambda: dense_epoch(False)
        )
        rec["dense_fwd_bwd_step_wall"], rec["dense_fwd_bwd_step_cpu"] = timed(
            lambda: dense_epoch(True)
        )
        rec["fetch_wall"], rec["fetch_cpu"] = timed(fetch_epoch)
        rec["mask_wall"], rec["mask_cpu"] = timed(mask_epoch)
        print(rec, flush=True)
        rows.append(rec)
    df = pd.DataFrame(rows)
    med = df.median(numeric_only=True)
    summary = []
    for name, key in [
        ("YOTO selection epoch", "yoto_selection"),
        ("YOTO refinement epoch", "yoto_refinement"),
        ("dense encoder forward+backward", "dense_fwd_bwd"),
        ("dense encoder forward+backward+AdamW step", "dense_fwd_bwd_step"),
        ("batch fetch + standardise alone", "fetch"),
        ("mask sampling (select) alone", "mask"),
    ]:
        summary.append(
            {
                "what (per epoch)": name,
                "median wall s": med[f"{key}_wall"],
                "median CPU s": med[f"{key}_cpu"],
                "wall / dense fwd+bwd": med[f"{key}_wall"] / med["dense_fwd_bwd_wall"],
                "wall / dense fwd+bwd+step": med[f"{key}_wall"]
                / med["dense_fwd_bwd_step_wall"],
            }
        )
    # ratios per repeat (paired, same moment of the run), then the median
    paired = {
        "selection / dense fwd+bwd (paired median)": float(
            (df["yoto_selection_wall"] / df["dense_fwd_bwd_wall"]).median()
        ),
        "selection / dense fwd+bwd+step (paired median)": float(
            (df["yoto_selection_wall"] / df["dense_fwd_bwd_step_wall"]).median()
        ),
        "selection CPU / dense fwd+bwd+step CPU (paired median)": float(
            (df["yoto_selection_cpu"] / df["dense_fwd_bwd_step_cpu"]).median()
        ),
    }
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    df.to_csv(out.with_suffix(".csv"), index=False)
    sm = pd.DataFrame(summary)
    lines = [
        "# bench_training",
        "",
        f"{args.n} cells x {args.genes} genes (dense), k={args.k}, hidden "
        f"({args.hidden},), batch_size={bs}, {n_steps} steps per epoch, "
        f"{args.repeats} interleaved repeats. Machine: "
        f"{platform.machine()}, {os.cpu_count()} cores shared with other jobs, "
        f"torch {torch.__version__}, torch threads={args.threads}. Wall times are "
        "noisy on the shared machine; CPU (process) time is steadier.",
        "",
        "| what (per epoch) | median wall s | median CPU s | wall / dense fwd+bwd "
        "| wall / dense fwd+bwd+step |",
        "|---|---|---|---|---|",
    ]
    for row in sm.itertuples(index=False):
        lines.append(
            f"| {row[0]} | {row[1]:.3f} | {row[2]:.3f} | {row[3]:.2f} | {row[4]:.2f} |"
        )
    lines.append("")
    for k, v in paired.items():
        lines.append(f"- {k}: **{v:.2f}**")
    out.with_suffix(".md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
