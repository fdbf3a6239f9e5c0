"""Atlas in TileDB-SOMA vs the same cells as a backed h5ad: fit, predict, passes.

The data are bench_atlas.py's (seeded count-like log1p values, 5 classes with 4
marker genes each), written **in chunks**: the h5ad by ``bench_atlas.write_chunked``,
the SOMA experiment by :func:`write_soma_chunked` (tiledbsoma's API, one block of
rows at a time; ``--writer from_h5ad`` uses ``tiledbsoma.io.from_h5ad`` of the h5ad
instead). ``--write-only`` writes a fresh copy and records only the writer's time and
peak RSS (``results/bench_soma_setup.json``). Each measurement runs in its own
subprocess, so its peak RSS (``VmHWM``) is its own; the storage arms alternate:

- ``fit``: ``YOTOSelector(k=50, random_state=0)``, every other parameter at its
  default, on ``read_h5ad(path, backed="r")`` or ``SomaSource(uri)``, then
  ``predict`` of every cell (the SOMA source reads only the panel columns; the
  backed CSR file is read by rows), then the panel read of ``predict`` alone
  (``panel_chunks``, no forward pass);
- ``predict`` (``--predict-only``): the model the h5ad ``fit`` arm saved predicts
  every cell from each storage (``--repeats`` fresh processes per storage,
  interleaved), so the storages are compared on one model and several runs;
- ``pass``: the statistics pass (``sources.scan_columns``, all cells) with
  ``n_jobs`` = 1 and 2 (joblib's default process backend).

    python benchmarks/bench_soma.py --cells 1000000 --genes 20000 --density 0.02
    python benchmarks/bench_soma.py --write-only --writer chunked
    python benchmarks/bench_soma.py --setup-only --panel-layer  # data, no runs
    python benchmarks/bench_soma.py --predict-only --panel-layer --repeats 5
    python benchmarks/bench_soma.py --report-only

Writes ``benchmarks/results/bench_soma.{csv,md}`` and ``bench_soma_setup.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from bench_atlas import CACHE, RESULTS, write_chunked  # noqa: E402
from bench_scale import peak_rss_mb  # noqa: E402


def write_soma_chunked(
    uri: Path,
    n: int,
    g: int,
    density: float,
    seed: int,
    platform_config: dict | None = None,
) -> None:
    """The same cells as ``write_chunked`` writes, as a SOMA experiment, block by block.

    obs, var and X are written with tiledbsoma's own API, one CSR block of rows
    (``bench_scale.blocks``) at a time: at most one block is in memory.
    ``platform_config`` is X's (its tiling; ``bench_soma_layout.py``).
    """
    import pyarrow as pa
    import tiledbsoma as soma
    from bench_scale import blocks

    with soma.Experiment.create(str(uri)) as exp:
        measurement = exp.add_new_collection("ms").add_new_collection(
            "RNA", soma.Measurement
        )
        var = measurement.add_new_dataframe(
            "var",
            schema=pa.schema([("feature_name", pa.large_string())]),
            domain=[(0, g - 1)],
        )
        var.write(
            pa.table(
                {
                    "soma_joinid": np.arange(g, dtype=np.int64),
                    "feature_name": [f"g{j}" for j in range(g)],
                }
            )
        )
        X = measurement.add_new_collection("X").add_new_sparse_ndarray(
            "data", type=pa.float32(), shape=(n, g), platform_config=platform_config
        )
        labels = []
        start = 0
        for y, block in blocks(n, g, density, seed):
            coo = block.tocoo()
            X.write(
                pa.table(
                    {
                        "soma_dim_0": (coo.row + start).astype(np.int64),
                        "soma_dim_1": coo.col.astype(np.int64),
                        "soma_data": coo.data.astype(np.float32),
                    }
                )
            )
            labels.append(y)
            start += block.shape[0]
        y = np.concatenate(labels)
        obs = exp.add_new_dataframe(
            "obs",
            schema=pa.schema([("label", pa.large_string())]),
            domain=[(0, n - 1)],
        )
        obs.write(
            pa.table(
                {
                    "soma_joinid": np.arange(n, dtype=np.int64),
                    "label": [f"type{c}" for c in y],
                }
            )
        )


def _source(kind: str, path: str, uri: str):
    import anndata

    from yoto_sklearn.soma import SomaSource

    if kind == "soma":
        return SomaSource(uri)
    if kind == "soma_panel":  # the panel columns from write_panel_layer's layer
        return SomaSource(uri, panel_layer=PANEL_LAYER)
    return anndata.read_h5ad(path, backed="r")


def child(
    what: str, kind: str, path: str, uri: str, n_jobs: int, backend: str = "loky"
) -> dict:
    """One measurement in this process; returns its JSON row."""
    import torch
    from joblib import parallel_config

    from yoto_sklearn import YOTOSelector
    from yoto_sklearn.sources import BackedSource, scan_columns

    torch.set_num_threads(1)
    if what == "pass":
        data = _source(kind, path, uri)
        source = data if kind == "soma" else BackedSource(data.X)
        t0 = time.perf_counter()
        with parallel_config(backend=backend):
            scan_columns(source, None, n_jobs=n_jobs)
        return {"pass_s": time.perf_counter() - t0, "peak_rss_mb": peak_rss_mb()}
    row: dict = {}
    if what == "predict":  # the saved model of the h5ad fit, for every storage
        sel = YOTOSelector.load(_model_path(path))
        with torch.no_grad():  # torch's first call costs, not the storage's
            sel.module_(torch.zeros(1024, sel.k, dtype=torch.float64))
    else:
        data = _source(kind, path, uri)
        t0 = time.perf_counter()
        sel = YOTOSelector(k=50, random_state=0).fit(data, "label")
        row = {"fit_s": time.perf_counter() - t0, "n_iter": sel.n_iter_}
        row["fit_rss_mb"] = peak_rss_mb()  # before prediction reads anything
        if kind == "h5ad":
            sel.save(_model_path(path))
    fresh = _source(kind, path, uri)
    t0 = time.perf_counter()
    pred = sel.predict(fresh)
    row["predict_s"] = time.perf_counter() - t0
    # the panel read alone (no forward pass): what the storage costs of predict_s
    reader = fresh if kind != "h5ad" else BackedSource(fresh.X)
    t0 = time.perf_counter()
    for _ in reader.panel_chunks(sel.support_):
        pass
    row["read_s"] = time.perf_counter() - t0
    labels = _source("h5ad", path, uri).obs["label"].to_numpy()
    return row | {
        "accuracy": float((pred == labels).mean()),
        "panel": " ".join(map(str, sel.support_.tolist())),
        "peak_rss_mb": peak_rss_mb(),
    }


def _model_path(path: str) -> Path:
    """Where the h5ad fit arm saves its model (``--predict-only`` loads it)."""
    return Path(path).with_suffix(".h5ad_fit.safetensors")


def _run(*argv: str) -> dict:
    out = subprocess.run(
        [sys.executable, __file__, "--child", *argv],
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


SETUP = RESULTS / "bench_soma_setup.json"
PANEL_LAYER = "panel"  # the layer --panel-layer writes (write_panel_layer)


def write_panel(uri: Path) -> dict:
    """Add the panel layer to the experiment in a subprocess; time and peak RSS."""
    code = (
        "import sys; from yoto_sklearn.soma import write_panel_layer as w; "
        "w(sys.argv[1], sys.argv[2]); "
        "from bench_scale import peak_rss_mb; print(peak_rss_mb())"
    )
    t0 = time.perf_counter()
    out = subprocess.run(
        [sys.executable, "-c", code, str(uri), PANEL_LAYER],
        capture_output=True,
        text=True,
        check=True,
        cwd=HERE,
    )
    return {
        "seconds": time.perf_counter() - t0,
        "peak_rss_mb": float(out.stdout.strip().splitlines()[-1]),
    }


def write_soma(uri: Path, path: Path, a: argparse.Namespace) -> dict:
    """Write the SOMA experiment in a subprocess; its time and peak RSS."""
    if a.writer == "chunked":
        code = (
            "import sys; from pathlib import Path; from bench_soma import "
            "write_soma_chunked as w; w(Path(sys.argv[1]), *map(int, sys.argv[3:5]), "
            "float(sys.argv[5]), 0)"
        )
    else:  # tiledbsoma's ingestor, reading the h5ad backed
        code = (
            "import sys, tiledbsoma.io as io; "
            "io.from_h5ad(sys.argv[1], sys.argv[2], 'RNA')"
        )
    code += "; from bench_scale import peak_rss_mb; print(peak_rss_mb())"
    t0 = time.perf_counter()
    argv = [str(uri), str(path), str(a.cells), str(a.genes), str(a.density)]
    out = subprocess.run(
        [sys.executable, "-c", code, *argv],
        capture_output=True,
        text=True,
        check=True,
        cwd=HERE,
    )
    return {
        "writer": a.writer,
        "seconds": time.perf_counter() - t0,
        "peak_rss_mb": float(out.stdout.strip().splitlines()[-1]),
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--cells", type=int, default=1_000_000)
    p.add_argument("--genes", type=int, default=20_000)
    p.add_argument("--density", type=float, default=0.02)
    p.add_argument("--repeats", type=int, default=1)
    p.add_argument(
        "--writer",
        choices=["chunked", "from_h5ad"],
        default="chunked",
        help="how the SOMA experiment is written: block by block with tiledbsoma's "
        "API, or tiledbsoma.io.from_h5ad of the h5ad",
    )
    p.add_argument(
        "--write-only",
        action="store_true",
        help="only write a fresh SOMA copy with --writer and record its time and RSS",
    )
    p.add_argument(
        "--panel-layer",
        action="store_true",
        help="also fit and predict with the panel columns read from a panel layer "
        "(yoto_sklearn.soma.write_panel_layer, written once into the experiment)",
    )
    p.add_argument("--report-only", action="store_true")
    p.add_argument(
        "--setup-only",
        action="store_true",
        help="only write the h5ad, the SOMA experiment (and with --panel-layer its "
        "panel layer) where missing, record their time and RSS, and stop",
    )
    p.add_argument(
        "--predict-only",
        action="store_true",
        help="measure only prediction: the model the h5ad fit arm saved (fitted "
        "again when absent) predicts every cell from each storage, --repeats fresh "
        "processes per storage, interleaved; the fit rows of the existing CSV stay",
    )
    p.add_argument(
        "--passes-only",
        action="store_true",
        help="measure only the statistics pass (serial, 2 processes, 2 threads) "
        "and keep the fit rows of the existing CSV",
    )
    p.add_argument("--child", nargs=6, help=argparse.SUPPRESS)
    a = p.parse_args()
    if a.child:
        what, kind, path, uri, n_jobs, backend = a.child
        print(json.dumps(child(what, kind, path, uri, int(n_jobs), backend)))
        return
    CACHE.mkdir(exist_ok=True)
    stem = f"atlas_{a.cells}x{a.genes}_{a.density}"
    path, uri = CACHE / f"{stem}.h5ad", CACHE / f"{stem}.soma"
    setup = json.loads(SETUP.read_text()) if SETUP.exists() else {}
    if a.report_only:
        report(pd.read_csv(RESULTS / "bench_soma.csv"), a, setup, path, uri)
        return
    if not path.exists():
        t0 = time.perf_counter()
        setup["h5ad"] = write_chunked(path, a.cells, a.genes, a.density, seed=0)
        setup["h5ad"]["seconds"] = time.perf_counter() - t0
    if a.write_only:
        fresh = CACHE / f"{stem}.{a.writer}.soma"
        shutil.rmtree(fresh, ignore_errors=True)
        setup.setdefault("writers", {})[a.writer] = write_soma(fresh, path, a)
        shutil.rmtree(fresh, ignore_errors=True)
    elif not uri.exists():
        setup["soma"] = write_soma(uri, path, a)
        setup.pop("panel_layer", None)
    if a.panel_layer and not (uri / "ms" / "RNA" / "X" / PANEL_LAYER).exists():
        setup["panel_layer"] = write_panel(uri)
    RESULTS.mkdir(exist_ok=True)
    SETUP.write_text(json.dumps(setup, indent=1) + "\n")
    print(setup, flush=True)
    if a.write_only or a.setup_only:
        return
    rows = []
    kinds = ("h5ad", "soma")
    modes = ((1, "loky"), (2, "loky"), (2, "threading"))
    passes = [("pass", kind, j, backend) for kind in kinds for j, backend in modes]
    fitted = kinds + (("soma_panel",) if a.panel_layer else ())
    arms = [] if a.passes_only else [("fit", kind, 1, "loky") for kind in fitted]
    if a.predict_only:
        if not _model_path(str(path)).exists():
            print(_run("fit", "h5ad", str(path), str(uri), "1", "loky"), flush=True)
        arms, passes = [("predict", kind, 1, "loky") for kind in fitted], []
    for rep in range(a.repeats):
        for what, kind, n_jobs, backend in arms + passes:
            row = dict(what=what, storage=kind, n_jobs=n_jobs, backend=backend,
                       repeat=rep)  # fmt: skip
            row.update(_run(what, kind, str(path), str(uri), str(n_jobs), backend))
            rows.append(row)
            print({k: v for k, v in row.items() if k != "panel"}, flush=True)
    table = pd.DataFrame(rows)
    if a.passes_only or a.predict_only:  # the other rows of the last run stay
        old = pd.read_csv(RESULTS / "bench_soma.csv")
        kept = old.what != ("pass" if a.passes_only else "predict")
        table = pd.concat([old[kept], table], ignore_index=True)
    table.to_csv(RESULTS / "bench_soma.csv", index=False)
    report(table, a, setup, path, uri)


def _setup_text(setup: dict) -> str:
    """How the files were written (``bench_soma_setup.json``)."""
    parts = []
    if "h5ad" in setup:
        h = setup["h5ad"]
        parts.append(f"h5ad written in row blocks in {h['seconds']:.0f} s")
    if "soma" in setup:
        w = setup["soma"]
        parts.append(
            f"the SOMA experiment used here by `{w['writer']}` in {w['seconds']:.0f} s "
            f"at {w['peak_rss_mb'] / 1024:.1f} GB peak RSS"
        )
    if "panel_layer" in setup:
        w = setup["panel_layer"]
        parts.append(
            f"its panel layer (`write_panel_layer`) in {w['seconds']:.0f} s at "
            f"{w['peak_rss_mb'] / 1024:.1f} GB peak RSS"
        )
    for name, w in setup.get("writers", {}).items():
        parts.append(
            f"`{name}` wrote the same cells in {w['seconds']:.0f} s at "
            f"{w['peak_rss_mb'] / 1024:.1f} GB peak RSS"
        )
    return ("Setup: " + "; ".join(parts) + ".") if parts else ""


def _size_mb(path: Path) -> float:
    if path.is_file():
        return path.stat().st_size / 2**20
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file()) / 2**20


def _predict_lines(med: pd.DataFrame, runs: pd.Series) -> list[str]:
    """The ``--predict-only`` table: one model, every storage, medians."""
    h = med.loc[("predict", "h5ad", 1, "loky")]
    lines = [
        "Prediction alone (`--predict-only`): the model of the h5ad fit (saved by "
        "its arm) predicts every cell from each storage, in a fresh process per run "
        "(torch warmed up first), storages interleaved; medians of "
        f"{runs.loc['predict'].min()} runs. `panel read s` is the panel read of "
        "predict without the forward pass.",
        "",
        "| storage | predict s (all cells) | x h5ad | panel read s | x h5ad | "
        "peak RSS GB |",
        "|---|---|---|---|---|---|",
    ]
    names = {"h5ad": "h5ad", "soma": "soma", "soma_panel": "soma, panel layer"}
    for kind, name in names.items():
        if ("predict", kind, 1, "loky") not in med.index:
            continue
        row = med.loc[("predict", kind, 1, "loky")]
        lines.append(
            f"| {name} | {row.predict_s:.2f} | {row.predict_s / h.predict_s:.2f} | "
            f"{row.read_s:.2f} | {row.read_s / h.read_s:.2f} | "
            f"{row.peak_rss_mb / 1024:.2f} |"
        )
    return lines + [""]


def report(table, a, setup, path, uri) -> None:
    if "backend" not in table:  # rows from before the backend column
        table = table.assign(backend="loky")
    table = table.fillna({"backend": "loky"})
    med = table.groupby(["what", "storage", "n_jobs", "backend"]).median(
        numeric_only=True
    )
    runs = table.groupby(["what", "storage", "n_jobs", "backend"]).size()
    n_fit, n_pass = runs.loc["fit"].min(), runs.loc["pass"].min()
    fit_h = med.loc[("fit", "h5ad", 1, "loky")]
    fit_s = med.loc[("fit", "soma", 1, "loky")]
    panels = table[table.what == "fit"].groupby("storage")["panel"].first()
    lines = [
        "# TileDB-SOMA vs backed h5ad (generated by `benchmarks/bench_soma.py`)",
        "",
        f"{a.cells:,} cells x {a.genes:,} genes, {a.density:.0%} non-zero "
        f"(h5ad {_size_mb(path):,.0f} MB, SOMA {_size_mb(uri):,.0f} MB"
        + (" with its panel layer" if "panel_layer" in setup else "")
        + "). "
        + _setup_text(setup)
        + " "
        f"`YOTOSelector(k=50, random_state=0)`, defaults otherwise, 1 torch thread; "
        f"each row a fresh process; medians of {n_fit} fit run(s) per storage "
        f"and {n_pass} run(s) per statistics pass; "
        f"{os.cpu_count()} cores shared with other jobs (see NOTE.md).",
        "",
        "| storage | fit s | x h5ad | predict s (all cells) | x h5ad | "
        "panel read s | x h5ad | fit peak RSS GB | with predict GB | accuracy |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    shown = [("h5ad", fit_h), ("soma", fit_s)]
    if ("fit", "soma_panel", 1, "loky") in med.index:
        shown.append(("soma, panel layer", med.loc[("fit", "soma_panel", 1, "loky")]))
    for kind, row in shown:
        fit_rss = row.get("fit_rss_mb", float("nan")) / 1024  # older rows: absent
        read = row.get("read_s", float("nan"))
        lines.append(
            f"| {kind} | {row.fit_s:.0f} | {row.fit_s / fit_h.fit_s:.2f} | "
            f"{row.predict_s:.1f} | {row.predict_s / fit_h.predict_s:.2f} | "
            f"{read:.1f} | {read / fit_h.get('read_s', float('nan')):.2f} | "
            f"{fit_rss:.2f} | {row.peak_rss_mb / 1024:.2f} | {row.accuracy:.3f} |"
        )
    same = panels.get("h5ad") == panels.get("soma")
    lines += ["", f"Same panel from both storages: {'yes' if same else 'no'}.", ""]
    if "predict" in med.index.get_level_values(0):
        lines += _predict_lines(med, runs)
    lines += [
        "Statistics pass over every cell (`scan_columns`), serial and with "
        "`n_jobs=2` under joblib's process backend (loky, the default) and its "
        'thread backend (`joblib.parallel_config(backend="threading")`); '
        "speed-up = serial / parallel. The serial pass already reads the next "
        "block in a background thread while it summarises this one.",
        "",
        "| statistics pass | n_jobs=1 s | n_jobs=2, processes s | speed-up | "
        "n_jobs=2, threads s | speed-up |",
        "|---|---|---|---|---|---|",
    ]
    for kind in ("h5ad", "soma"):
        one = med.loc[("pass", kind, 1, "loky")].pass_s
        cells = [f"{one:.1f}"]
        for backend in ("loky", "threading"):
            key = ("pass", kind, 2, backend)
            two = med.loc[key].pass_s if key in med.index else float("nan")
            cells += [f"{two:.1f}", f"{one / two:.2f}"]
        lines.append(f"| {kind} | " + " | ".join(cells) + " |")
    text = "\n".join(lines) + "\n"
    (RESULTS / "bench_soma.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
