"""Thread policy (issue 22): fit time with 1, 2 and all torch threads, idle and busy.

Workloads, each run as a fresh process (what a user runs):

- ``demo``: ``yoto-sklearn demo`` (pbmc68k_reduced, 4 tasks, k = 30);
- ``cli_fit``: ``yoto-sklearn fit pbmc68k.h5ad --target bulk_labels --k 25
  --use-raw`` on the same data written to h5ad;
- ``atlas``: ``YOTOSelector(k=50, max_iter=3).fit`` on 30,000 cells x 20,000 genes
  (sparse, 5 % non-zero; a 20,000 x 256 first layer, above the one-thread limit of
  ``n_threads="auto"``); its time is the fit alone (the data build is excluded).

Conditions: ``idle`` (nothing else started by this script) and ``busy``: one
competing CPU-bound process (a pure-Python busy loop) per ``--competitors``
started before the run and stopped after it. Thread settings: ``--set
n_threads=1``, ``n_threads=2``, ``all`` (``n_threads=None``, torch's default:
the number of cores, the library's default before ``"auto"``) and ``auto`` (the
default). Runs are interleaved (repeat by repeat, every setting and condition in
turn); the table gives medians and the busy / idle ratio.

    python benchmarks/bench_threads.py [--repeats 3] [--workloads demo,cli_fit,atlas]

Writes ``benchmarks/results/bench_threads.{csv,md}``. Say what else ran on the
machine next to the numbers: "idle" means idle apart from that.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd

RESULTS = Path(__file__).resolve().parent / "results"
# "auto" is the default (no --set); "all" is torch's setting (its default: the
# number of cores), which was the default before "auto".
SETTINGS = {
    "auto": None,
    "1": "n_threads=1",
    "2": "n_threads=2",
    "all": "n_threads=None",
}
ATLAS = """
import sys, time
import numpy as np, scipy.sparse as sp
from yoto_sklearn import YOTOSelector
arg = sys.argv[1]
threads = int(arg) if arg.isdigit() else {"all": None, "auto": "auto"}[arg]
rng = np.random.default_rng(0)
n, g = 30_000, 20_000
per_row = g // 20  # 5 % non-zero, built row-wise (scipy.sparse.random needs GBs)
cols = rng.integers(0, g, n * per_row)
vals = np.log1p(rng.random(n * per_row, dtype=np.float32) * 10)
X = sp.csr_matrix((vals, cols, np.arange(n + 1) * per_row), shape=(n, g))
y = rng.integers(0, 20, n)
X = X + sp.csr_matrix((np.full(n, 3.0, np.float32), (np.arange(n), y)), shape=(n, g))
t = time.perf_counter()
YOTOSelector(k=50, max_iter=3, early_stopping=False, random_state=0, verbose=0,
             n_threads=threads).fit(X.tocsr(), y)
print(time.perf_counter() - t)
"""


def _pbmc_h5ad(folder: Path) -> Path:
    from yoto_sklearn.datasets import load_pbmc68k_reduced

    path = folder / "pbmc68k.h5ad"
    if not path.exists():
        load_pbmc68k_reduced().write_h5ad(path)
    return path


def command(workload: str, setting: str, folder: Path) -> list[str]:
    extra = [] if SETTINGS[setting] is None else ["--set", SETTINGS[setting]]
    out = str(folder / f"out_{workload}_{setting}")
    if workload == "demo":
        return ["yoto-sklearn", "demo", "--out", out, "--quiet", *extra]
    if workload == "cli_fit":
        return ["yoto-sklearn", "fit", str(_pbmc_h5ad(folder)), "--target",
                "bulk_labels", "--k", "25", "--use-raw", "--out", out, "--quiet",
                *extra]  # fmt: skip
    if workload == "atlas":
        return [sys.executable, "-c", ATLAS, setting]
    raise ValueError(workload)


def competitors(n: int) -> list[subprocess.Popen]:
    return [
        subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(n)
    ]


def run(workloads, repeats, n_competitors, folder: Path, log) -> pd.DataFrame:
    rows = []
    for rep in range(repeats):
        for workload in workloads:
            for setting in SETTINGS:
                for condition in ("idle", "busy"):
                    procs = competitors(n_competitors) if condition == "busy" else []
                    try:
                        time.sleep(0.5 if procs else 0)
                        t0 = time.perf_counter()
                        done = subprocess.run(
                            command(workload, setting, folder),
                            check=True,
                            stdout=subprocess.PIPE,
                            text=True,
                        )
                        seconds = time.perf_counter() - t0
                        if workload == "atlas":  # the fit alone, not the data build
                            seconds = float(done.stdout.strip().splitlines()[-1])
                    finally:
                        for p in procs:
                            p.kill()
                            p.wait()
                    rows.append(
                        dict(
                            repeat=rep,
                            workload=workload,
                            threads=setting,
                            condition=condition,
                            seconds=seconds,
                        )
                    )
                    log(f"{workload} threads={setting} {condition}: {seconds:.1f}s")
    return pd.DataFrame(rows)


def report(df: pd.DataFrame, n_competitors: int) -> str:
    med = df.groupby(["workload", "threads", "condition"])["seconds"].median()
    table = med.unstack("condition")
    idle_best = table["idle"].groupby(level=0).min()
    lines = [
        "# Thread policy: fit time by torch threads, idle and busy "
        "(generated by `benchmarks/bench_threads.py`)",
        "",
        f"{os.cpu_count()} cores; busy = {n_competitors} competing CPU-bound "
        f"process(es); medians of {df['repeat'].nunique()} interleaved repeats "
        "(demo, cli_fit: wall seconds of the whole command, start-up included; "
        "atlas: the fit alone).",
        "",
        "| workload | threads | idle s | busy s | busy / idle (same threads) | "
        "busy / best idle |",
        "|---|---|---|---|---|---|",
    ]
    for (workload, threads), r in table.iterrows():
        lines.append(
            f"| {workload} | {threads} | {r['idle']:.1f} | {r['busy']:.1f} | "
            f"{r['busy'] / r['idle']:.2f} | {r['busy'] / idle_best[workload]:.2f} |"
        )
    return "\n".join(lines) + "\n"


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--workloads", default="demo,cli_fit,atlas")
    p.add_argument("--competitors", type=int, default=1)
    a = p.parse_args(argv)
    t_start = time.perf_counter()

    def log(msg):
        print(f"[{time.perf_counter() - t_start:7.1f}s] {msg}", flush=True)

    with tempfile.TemporaryDirectory() as tmp:
        df = run(a.workloads.split(","), a.repeats, a.competitors, Path(tmp), log)
    RESULTS.mkdir(exist_ok=True)
    df.to_csv(RESULTS / "bench_threads.csv", index=False)
    text = report(df, a.competitors)
    (RESULTS / "bench_threads.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
