"""Atlas in TileDB-SOMA vs the same cells as a backed h5ad: fit, predict, passes.

The data are bench_atlas.py's (seeded count-like log1p values, 5 classes with 4
marker genes each), written **in chunks**: the h5ad by ``bench_atlas.write_chunked``,
the SOMA experiment from it by ``tiledbsoma.io.from_h5ad`` (which reads the file
backed and writes X in nnz-bounded chunks). Each measurement runs in its own
subprocess, so its peak RSS (``VmHWM``) is its own; the storage arms alternate:

- ``fit``: ``YOTOSelector(k=50, random_state=0)``, every other parameter at its
  default, on ``read_h5ad(path, backed="r")`` or ``SomaSource(uri)``, then
  ``predict`` of every cell (the SOMA source reads only the panel columns; the
  backed CSR file is read by rows);
- ``pass``: the statistics pass (``sources.scan_columns``, all cells) with
  ``n_jobs`` = 1 and 2 (joblib's default process backend).

    python benchmarks/bench_soma.py --cells 1000000 --genes 20000 --density 0.02

Writes ``benchmarks/results/bench_soma.{csv,md}``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from bench_atlas import CACHE, RESULTS, write_chunked  # noqa: E402
from bench_scale import peak_rss_mb  # noqa: E402


def _source(kind: str, path: str, uri: str):
    import anndata

    from yoto_sklearn.soma import SomaSource

    if kind == "soma":
        return SomaSource(uri)
    return anndata.read_h5ad(path, backed="r")


def child(what: str, kind: str, path: str, uri: str, n_jobs: int) -> dict:
    """One measurement in this process; returns its JSON row."""
    import torch

    from yoto_sklearn import YOTOSelector
    from yoto_sklearn.sources import BackedSource, scan_columns

    torch.set_num_threads(1)
    data = _source(kind, path, uri)
    if what == "pass":
        source = data if kind == "soma" else BackedSource(data.X)
        t0 = time.perf_counter()
        scan_columns(source, None, n_jobs=n_jobs)
        return {"pass_s": time.perf_counter() - t0, "peak_rss_mb": peak_rss_mb()}
    t0 = time.perf_counter()
    sel = YOTOSelector(k=50, random_state=0).fit(data, "label")
    fit_s = time.perf_counter() - t0
    fresh = _source(kind, path, uri)
    t0 = time.perf_counter()
    pred = sel.predict(fresh)
    predict_s = time.perf_counter() - t0
    labels = _source("h5ad", path, uri).obs["label"].to_numpy()
    return {
        "fit_s": fit_s,
        "n_iter": sel.n_iter_,
        "predict_s": predict_s,
        "accuracy": float((pred == labels).mean()),
        "panel": " ".join(map(str, sel.support_.tolist())),
        "peak_rss_mb": peak_rss_mb(),
    }


def _run(*argv: str) -> dict:
    out = subprocess.run(
        [sys.executable, __file__, "--child", *argv],
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--cells", type=int, default=1_000_000)
    p.add_argument("--genes", type=int, default=20_000)
    p.add_argument("--density", type=float, default=0.02)
    p.add_argument("--repeats", type=int, default=1)
    p.add_argument("--child", nargs=5, help=argparse.SUPPRESS)
    a = p.parse_args()
    if a.child:
        what, kind, path, uri, n_jobs = a.child
        print(json.dumps(child(what, kind, path, uri, int(n_jobs))))
        return
    CACHE.mkdir(exist_ok=True)
    stem = f"atlas_{a.cells}x{a.genes}_{a.density}"
    path, uri = CACHE / f"{stem}.h5ad", CACHE / f"{stem}.soma"
    setup = {}
    if not path.exists():
        t0 = time.perf_counter()
        setup.update(write_chunked(path, a.cells, a.genes, a.density, seed=0))
        setup["h5ad_write_s"] = time.perf_counter() - t0
    if not uri.exists():
        t0 = time.perf_counter()
        code = (
            "import sys, tiledbsoma.io as io; "
            "io.from_h5ad(sys.argv[1], sys.argv[2], 'RNA'); "
            "from bench_scale import peak_rss_mb; print(peak_rss_mb())"
        )
        out = subprocess.run(
            [sys.executable, "-c", code, str(uri), str(path)],
            capture_output=True,
            text=True,
            check=True,
            cwd=HERE,
        )
        setup["soma_write_s"] = time.perf_counter() - t0
        setup["soma_write_rss_mb"] = float(out.stdout.strip().splitlines()[-1])
    print(setup, flush=True)
    rows = []
    arms = [("fit", kind, 1) for kind in ("h5ad", "soma")]
    arms += [("pass", kind, j) for kind in ("h5ad", "soma") for j in (1, 2)]
    for rep in range(a.repeats):
        for what, kind, n_jobs in arms:
            row = dict(what=what, storage=kind, n_jobs=n_jobs, repeat=rep)
            row.update(_run(what, kind, str(path), str(uri), str(n_jobs)))
            rows.append(row)
            print({k: v for k, v in row.items() if k != "panel"}, flush=True)
    table = pd.DataFrame(rows)
    RESULTS.mkdir(exist_ok=True)
    table.to_csv(RESULTS / "bench_soma.csv", index=False)
    report(table, a, setup, path, uri)


def _size_mb(path: Path) -> float:
    if path.is_file():
        return path.stat().st_size / 2**20
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file()) / 2**20


def report(table, a, setup, path, uri) -> None:
    med = table.groupby(["what", "storage", "n_jobs"]).median(numeric_only=True)
    fit_h, fit_s = med.loc[("fit", "h5ad", 1)], med.loc[("fit", "soma", 1)]
    panels = table[table.what == "fit"].groupby("storage")["panel"].first()
    lines = [
        "# TileDB-SOMA vs backed h5ad (generated by `benchmarks/bench_soma.py`)",
        "",
        f"{a.cells:,} cells x {a.genes:,} genes, {a.density:.0%} non-zero "
        f"(h5ad {_size_mb(path):,.0f} MB, SOMA {_size_mb(uri):,.0f} MB), written in "
        f"chunks{' (this run: ' + json.dumps(setup) + ')' if setup else ''}. "
        f"`YOTOSelector(k=50, random_state=0)`, defaults otherwise, 1 torch thread; "
        f"each row a fresh process; medians of {a.repeats} repeat(s); "
        f"{os.cpu_count()} cores shared with other jobs (see NOTE.md).",
        "",
        "| storage | fit s | x h5ad | predict s (all cells) | x h5ad | "
        "peak RSS GB | accuracy |",
        "|---|---|---|---|---|---|---|",
    ]
    for kind, row in (("h5ad", fit_h), ("soma", fit_s)):
        lines.append(
            f"| {kind} | {row.fit_s:.0f} | {row.fit_s / fit_h.fit_s:.2f} | "
            f"{row.predict_s:.1f} | {row.predict_s / fit_h.predict_s:.2f} | "
            f"{row.peak_rss_mb / 1024:.2f} | {row.accuracy:.3f} |"
        )
    same = panels.get("h5ad") == panels.get("soma")
    lines += [
        "",
        f"Same panel from both storages: {'yes' if same else 'no'}.",
        "",
        "| statistics pass | n_jobs=1 s | n_jobs=2 s | speed-up |",
        "|---|---|---|---|",
    ]
    for kind in ("h5ad", "soma"):
        one = med.loc[("pass", kind, 1)].pass_s
        two = med.loc[("pass", kind, 2)].pass_s
        lines.append(f"| {kind} | {one:.1f} | {two:.1f} | {one / two:.2f} |")
    text = "\n".join(lines) + "\n"
    (RESULTS / "bench_soma.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
