"""Scale benchmark: in-memory CSR vs backed h5ad, fit and predict, time and memory.

Generates seeded count-like sparse data (negative binomial counts, ~5 % density,
a few marker genes per class, log1p), writes it as an h5ad file under /tmp, and runs
every configuration in its own subprocess so that its peak RSS (``VmHWM``) is its
own. For each (n_cells, n_genes, mode) it records the load time, the time of one
selection epoch and one refinement epoch (``max_iter=2``), cells/s, and the time of
``predict`` (panel-only: k columns read, k x H first layer) next to a dense forward
pass of the same network over all genes (every column read, G x H first layer).

Usage::

    python benchmarks/bench_scale.py            # full run (~20 min on 2 cores)
    python benchmarks/bench_scale.py --quick    # smoke run (~2 min)

Writes ``benchmarks/results/bench_scale.{csv,md,png}``. Generated h5ad files stay in
``--tmpdir`` (default /tmp/yoto_bench_scale) and are never committed.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"
N_CLASSES = 5
MARKERS_PER_CLASS = 4


def blocks(n: int, g: int, density: float, seed: int, step: int = 20000):
    """Yield ``(labels, csr block)`` of seeded count-like log1p data, ``step`` rows
    at a time: NB counts with per-gene detection rates, and ``MARKERS_PER_CLASS``
    marker genes per class (class c: genes c*M .. c*M+M-1) with higher counts."""
    import scipy.sparse as sp

    rng = np.random.default_rng(seed)
    y = rng.integers(0, N_CLASSES, n)
    gene_rate = rng.gamma(0.6, 1.0 / 0.6, g)  # per-gene detection propensity
    gene_p = gene_rate / gene_rate.sum()
    mean_nnz = density * g
    for start in range(0, n, step):
        m = min(step, n - start)
        per_row = rng.poisson(mean_nnz, m)
        rows = np.repeat(np.arange(m), per_row)
        cols = rng.choice(g, size=len(rows), p=gene_p)
        vals = rng.negative_binomial(2, 2 / 3, len(rows)) + 1.0  # counts >= 1
        yc = y[start : start + m]
        mrows = np.repeat(np.arange(m), MARKERS_PER_CLASS)
        mcols = (yc[:, None] * MARKERS_PER_CLASS + np.arange(MARKERS_PER_CLASS)).ravel()
        mvals = rng.negative_binomial(4, 0.4, len(mrows)) + 3.0
        block = sp.csr_matrix(
            (
                np.concatenate([vals, mvals]),
                (np.concatenate([rows, mrows]), np.concatenate([cols, mcols])),
            ),
            shape=(m, g),
        )
        block.sum_duplicates()
        block.data = np.log1p(block.data).astype(np.float32)
        block.indices = block.indices.astype(np.int32)
        yield yc, block


def generate(path: Path, n: int, g: int, density: float, seed: int) -> dict:
    """Write a seeded count-like CSR h5ad file; return a few facts about it."""
    import anndata
    import pandas as pd
    import scipy.sparse as sp

    parts = list(blocks(n, g, density, seed))
    y = np.concatenate([p[0] for p in parts])
    X = sp.vstack([p[1] for p in parts], format="csr").astype(np.float32)
    obs = pd.DataFrame(
        {"label": pd.Categorical([f"type{c}" for c in y])},
        index=[f"c{i}" for i in range(n)],
    )
    var = pd.DataFrame(index=[f"g{j}" for j in range(g)])
    anndata.AnnData(X=X, obs=obs, var=var).write_h5ad(path)
    return {"nnz": int(X.nnz), "density": X.nnz / (n * g)}


def _dense_forward(sel, source, hidden_w, threads: int) -> float:
    """Seconds for a dense forward pass over every gene of every cell."""
    import scipy.sparse as sp
    import torch

    w = torch.as_tensor(hidden_w, dtype=torch.float32)  # H x G: the full layer
    b = torch.zeros(w.shape[0])
    heads = [
        (h.weight.float(), h.bias.float()) for h in sel.module_.heads
    ]  # same head shapes
    t0 = time.perf_counter()
    with torch.no_grad():
        for _, block in source.chunks(4096):
            if sp.issparse(block):
                block = block.toarray()
            xb = torch.from_numpy(np.asarray(block, dtype=np.float32))
            z = torch.relu(torch.addmm(b, xb, w.t()))
            for hw, hb in heads:
                torch.addmm(hb, z, hw.t())
    return time.perf_counter() - t0


def peak_rss_mb() -> float:
    """Peak RSS of this process's address space (``VmHWM``), in MiB.

    Unlike ``ru_maxrss``, it does not inherit the parent's peak across fork + exec.
    """
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run_one(args: argparse.Namespace) -> None:
    """Child process: one (file, mode) configuration; prints one JSON line."""
    import torch

    torch.set_num_threads(args.threads)
    import anndata

    from yoto_sklearn import YOTOSelector, sources

    rss0 = peak_rss_mb()
    t0 = time.perf_counter()
    if args.mode == "memory":
        adata = anndata.read_h5ad(args.path)
    else:
        adata = anndata.read_h5ad(args.path, backed="r")
    t_load = time.perf_counter() - t0
    sel = YOTOSelector(
        k=args.k,
        hidden_layer_sizes=(args.hidden,),
        batch_size=args.batch_size,
        max_iter=2,
        max_cells_per_epoch=None,  # full passes: this benchmark times whole epochs
        early_stopping=False,
        device=args.device,
        random_state=0,
    )
    t0 = time.perf_counter()
    sel.fit(adata, "label")
    t_fit = time.perf_counter() - t0
    rss_fit = peak_rss_mb()
    epochs = sel.history_.epoch_times
    t0 = time.perf_counter()
    pred = sel.predict(adata)
    t_pred = time.perf_counter() - t0
    acc = float(np.mean(pred == adata.obs["label"].to_numpy()))
    source = (
        sources.ArraySource(adata.X)
        if args.mode == "memory"
        else sources.BackedSource(adata.X)
    )
    rng = np.random.default_rng(0)
    hidden_w = rng.normal(size=(args.hidden, source.n_vars)).astype(np.float32)
    t_dense = _dense_forward(sel, source, hidden_w, args.threads)
    rss = peak_rss_mb()
    print(
        json.dumps(
            {
                "load_s": t_load,
                "fit_s": t_fit,
                "selection_epoch_s": epochs[0],
                "refinement_epoch_s": epochs[1] if len(epochs) > 1 else float("nan"),
                "predict_panel_s": t_pred,
                "predict_dense_s": t_dense,
                "train_accuracy": acc,
                "rss_after_imports_mb": rss0,
                "peak_rss_fit_mb": rss_fit,
                "peak_rss_mb": rss,
            }
        )
    )


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="small sizes, smoke run")
    p.add_argument("--cells", type=int, nargs="*", default=None)
    p.add_argument("--genes", type=int, nargs="*", default=None)
    p.add_argument("--max-nnz", type=float, default=3e8, help="skip bigger configs")
    p.add_argument("--density", type=float, default=0.05)
    p.add_argument("--k", type=int, default=50)
    p.add_argument("--hidden", type=int, default=64)
    p.add_argument("--batch-size", type=int, default=256)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--device", default="cpu", help="training device, e.g. cuda")
    p.add_argument("--tmpdir", default="/tmp/yoto_bench_scale")
    p.add_argument("--out", default=str(RESULTS / "bench_scale"))
    # internal: child mode
    p.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--path", help=argparse.SUPPRESS)
    p.add_argument("--mode", help=argparse.SUPPRESS)
    p.add_argument("--generate", type=int, nargs=2, help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.child:
        run_one(args)
        return
    if args.generate:
        n, g = args.generate
        facts = generate(Path(args.path), n, g, args.density, seed=n + g)
        print(json.dumps(facts))
        return

    full_cells = [10_000, 100_000, 1_000_000]
    cells = args.cells or ([2000, 10000] if args.quick else full_cells)
    genes = args.genes or ([2000] if args.quick else [5000, 20000])
    tmp = Path(args.tmpdir)
    tmp.mkdir(parents=True, exist_ok=True)
    rows = []
    env = dict(os.environ, PYTHONPATH=str(HERE.parent))
    env["OMP_NUM_THREADS"] = str(args.threads)
    for g in genes:
        for n in cells:
            if n * g * args.density > args.max_nnz:
                print(f"skip n={n} g={g}: over --max-nnz", flush=True)
                continue
            path = tmp / f"scale_{n}x{g}.h5ad"
            t0 = time.perf_counter()
            # generate in a subprocess too, so this parent stays small
            gen = subprocess.run(
                [sys.executable, __file__, "--generate", str(n), str(g),
                 "--path", str(path), "--density", str(args.density)],
                capture_output=True, text=True, env=env, check=True,
            )  # fmt: skip
            facts = json.loads(gen.stdout.strip().splitlines()[-1])
            t_gen = time.perf_counter() - t0
            size_mb = path.stat().st_size / 2**20
            print(f"generated {path.name}: {facts} in {t_gen:.1f}s", flush=True)
            for mode in ("memory", "backed"):
                cmd = [
                    sys.executable, __file__, "--child", "--path", str(path),
                    "--mode", mode, "--k", str(args.k),
                    "--hidden", str(args.hidden), "--batch-size", str(args.batch_size),
                    "--threads", str(args.threads), "--device", args.device,
                ]  # fmt: skip
                out = subprocess.run(cmd, capture_output=True, text=True, env=env)
                if out.returncode != 0:
                    print(out.stderr[-3000:], flush=True)
                    continue
                res = json.loads(out.stdout.strip().splitlines()[-1])
                res.update(
                    n_cells=n,
                    n_genes=g,
                    mode=mode,
                    nnz=facts["nnz"],
                    density=round(facts["density"], 4),
                    file_mb=round(size_mb, 1),
                    dense_float32_mb=round(n * g * 4 / 2**20, 1),
                    cells_per_s=n / res["selection_epoch_s"],
                    panel_speedup=res["predict_dense_s"] / res["predict_panel_s"],
                )
                print(json.dumps(res), flush=True)
                rows.append(res)
            path.unlink()
    write_outputs(rows, Path(args.out), args)


def write_outputs(rows: list[dict], out: Path, args: argparse.Namespace) -> None:
    import pandas as pd

    df = pd.DataFrame(rows)
    cols = [
        "n_cells", "n_genes", "mode", "nnz", "file_mb", "dense_float32_mb",
        "load_s", "selection_epoch_s", "refinement_epoch_s", "cells_per_s",
        "peak_rss_fit_mb", "predict_panel_s", "predict_dense_s", "panel_speedup",
        "train_accuracy", "rss_after_imports_mb", "peak_rss_mb", "fit_s",
    ]  # fmt: skip
    df = df[cols]
    out.parent.mkdir(parents=True, exist_ok=True)
    df.to_csv(out.with_suffix(".csv"), index=False)
    machine = (
        f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores "
        f"(shared with other jobs), torch threads={args.threads}, "
        f"training device={args.device}"
    )
    head = (
        f"# bench_scale\n\nSeeded NB counts, log1p, density {args.density:.0%}; "
        f"YOTOSelector(k={args.k}, hidden_layer_sizes=({args.hidden},), "
        f"batch_size={args.batch_size}, max_iter=2, max_cells_per_epoch=None, "
        "early_stopping=False). "
        f"Machine: {machine}. One subprocess per row; peak RSS is that process's "
        "peak resident set (`VmHWM`) after loading and fitting (it includes ~"
        f"{df['rss_after_imports_mb'].median():.0f} MB of Python/torch imports). "
        "`selection_epoch_s` is one epoch of the selection phase (every gene read), "
        "`refinement_epoch_s` one of the refinement phase; `cells_per_s` = n_cells / "
        "selection epoch. `predict_panel_s` is `predict` (k panel columns, k x H first "
        "layer); `predict_dense_s` a dense forward pass over all genes (G x H).\n\n"
    )
    show = df[cols[:-3]]
    table = _markdown(show)
    out.with_suffix(".md").write_text(head + table + "\n")
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return
    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    for (g, mode), part in df.groupby(["n_genes", "mode"]):
        part = part.sort_values("n_cells")
        style = "-o" if mode == "memory" else "--s"
        label = f"{mode}, {g} genes"
        axes[0].plot(part["n_cells"], part["selection_epoch_s"], style, label=label)
        axes[1].plot(part["n_cells"], part["peak_rss_fit_mb"], style, label=label)
    titles = ["seconds per selection epoch", "peak RSS during load + fit (MB)"]
    for ax, title in zip(axes, titles, strict=True):
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("n_cells")
        ax.set_title(title)
        ax.grid(True, alpha=0.3)
    axes[1].legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out.with_suffix(".png"), dpi=110)


def _markdown(df) -> str:
    """A Markdown table without the optional ``tabulate`` dependency."""

    def cell(v) -> str:
        if isinstance(v, float | np.floating):
            return f"{v:.0f}" if abs(v) >= 100 else f"{v:.3g}"
        return str(v)

    lines = ["| " + " | ".join(df.columns) + " |"]
    lines.append("|" + "---|" * len(df.columns))
    for row in df.itertuples(index=False):
        lines.append("| " + " | ".join(cell(v) for v in row) + " |")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
