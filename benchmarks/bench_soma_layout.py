"""How the tiling of a SOMA X array trades row reads against panel-column reads.

TileDB decompresses whole tiles. With tiledbsoma's default tiling (2,048 x 2,048
space tiles, 100,000 values per data tile) a read of 50 panel columns touches
almost every tile of its rows, so it costs nearly as much as a read of every gene.
Narrow column tiles (or a column-major X, whose tiles each hold one gene) let a
panel read skip most tiles, at a price for the row reads that training makes. This
script writes the same cells (``bench_scale.blocks``, the data of ``bench_soma.py``)
as one SOMA experiment per X layout, block by block
(``bench_soma.write_soma_chunked``), and as a backed h5ad (``bench_scale.generate``,
the reference of issue 18's prediction target), and times reads through
``SomaSource`` / ``BackedSource`` (median of 3, in one process, storages
interleaved):

- ``row chunk``: one training chunk of every gene (``chunk_rows`` cells);
- ``panel chunk``: the same cells, 50 columns (the 20 marker genes and 30 others);
- ``panel, all cells``: 50 columns of every cell as prediction reads them
  (``panel_chunks``: blocks of ``panel_rows`` cells, longer for narrow gene tiles).

    python benchmarks/bench_soma_layout.py --cells 100000

Writes ``benchmarks/results/bench_soma_layout.{csv,md}``.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from bench_atlas import CACHE, RESULTS  # noqa: E402

from yoto_sklearn.soma import PANEL_TILING  # noqa: E402

# name -> X's tiling (space tile rows, genes, values per data tile, cell and tile
# order) as tiledbsoma platform_config (None: tiledbsoma's defaults)
LAYOUTS = {
    "default (2048 x 2048, capacity 100,000)": None,
    "8192 x 16, capacity 2,048": (8192, 16, 2048, "row-major"),
    "column-major, 131072 x 16, capacity 2,048": (131072, 16, 2048, "col-major"),
    "panel layer (`write_panel_layer`: 32768 x 4, capacity 2,048)": (
        PANEL_TILING["cells_per_tile"],
        PANEL_TILING["genes_per_tile"],
        PANEL_TILING["capacity"],
        "row-major",
    ),
}
H5AD = "h5ad (backed CSR, page-cached)"


def _config(layout: tuple[int, int, int, str] | None) -> dict | None:
    if layout is None:
        return None
    rows, cols, capacity, order = layout
    dims = {"soma_dim_0": {"tile": rows}, "soma_dim_1": {"tile": cols}}
    create = {"capacity": capacity, "dims": dims}
    if order != "row-major":
        create.update(cell_order=order, tile_order=order)
    return {"tiledb": {"create": create}}


def _size_mb(path: Path) -> float:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file()) / 2**20


def main() -> None:
    import anndata
    from bench_scale import generate
    from bench_soma import write_soma_chunked

    from yoto_sklearn.soma import SomaSource
    from yoto_sklearn.sources import BackedSource

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--cells", type=int, default=100_000)
    p.add_argument("--genes", type=int, default=20_000)
    p.add_argument("--density", type=float, default=0.02)
    p.add_argument("--repeats", type=int, default=3)
    a = p.parse_args()
    CACHE.mkdir(exist_ok=True)
    n, g = a.cells, a.genes
    rng = np.random.default_rng(0)
    cols = np.sort(np.r_[np.arange(20), rng.choice(np.arange(20, g), 30, False)])
    sources, rec = {}, {}
    for i, (name, layout) in enumerate(LAYOUTS.items()):
        uri = CACHE / f"layout{i}_{n}x{g}_{a.density}.soma"
        shutil.rmtree(uri, ignore_errors=True)
        t0 = time.perf_counter()
        write_soma_chunked(uri, n, g, a.density, 0, _config(layout))
        rec[name] = {"layout": name, "write_s": time.perf_counter() - t0}
        rec[name]["size_mb"] = _size_mb(uri)
        sources[name] = (uri, SomaSource(str(uri)))
    path = CACHE / f"layout_{n}x{g}_{a.density}.h5ad"
    t0 = time.perf_counter()
    generate(path, n, g, a.density, 0)
    rec[H5AD] = {"layout": H5AD, "write_s": time.perf_counter() - t0}
    rec[H5AD]["size_mb"] = path.stat().st_size / 2**20
    sources[H5AD] = (path, BackedSource(anndata.read_h5ad(path, backed="r").X))
    rows = next(iter(sources.values()))[1].chunk_rows(1)
    reads = {  # the second row chunk; then every cell's panel, as predict reads it
        "row_chunk_s": lambda s: s.read_chunk(rows, min(2 * rows, n)),
        "panel_chunk_s": lambda s: s.read_panel(cols, rows, min(2 * rows, n)),
        "panel_all_s": lambda s: list(s.panel_chunks(cols)),
    }
    times = {name: {k: [] for k in reads} for name in sources}
    for _ in range(a.repeats):
        for name, (_, source) in sources.items():
            for key, read in reads.items():
                t0 = time.perf_counter()
                read(source)
                times[name][key].append(time.perf_counter() - t0)
    for name, (uri, source) in sources.items():
        rec[name]["panel_rows"] = source.panel_rows(cols)
        if uri.is_dir():
            shutil.rmtree(uri, ignore_errors=True)
        else:
            uri.unlink()
        rec[name].update({k: float(np.median(v)) for k, v in times[name].items()})
    table = pd.DataFrame(list(rec.values()))
    RESULTS.mkdir(exist_ok=True)
    table.to_csv(RESULTS / "bench_soma_layout.csv", index=False)
    base = table.iloc[0]
    h5ad = table.set_index("layout").loc[H5AD]
    lines = [
        "# SOMA tiling: row reads vs panel reads "
        "(generated by `benchmarks/bench_soma_layout.py`)",
        "",
        f"{n:,} cells x {g:,} genes, {a.density:.0%} non-zero, one experiment per "
        f"X layout (space tile rows x genes, values per data tile), read through "
        f"`SomaSource`; a row chunk is {rows:,} cells; 50 panel columns; "
        f"`panel, all cells` is every cell's panel as prediction reads it (blocks of "
        f"`panel rows` cells); `x h5ad`: against the same reads from the backed "
        f"h5ad of the same cells, issue 18's reference for prediction (target: "
        f"0.5); medians of {a.repeats}; {os.cpu_count()} cores "
        "shared with other jobs (see NOTE.md).",
        "",
        "| layout | MB | write s | row chunk s | x default | panel chunk s | "
        "x default | panel rows | panel, all cells s | x default | x h5ad |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for _, r in table.iterrows():
        lines.append(
            f"| {r.layout} | {r.size_mb:.0f} | {r.write_s:.0f} | "
            f"{r.row_chunk_s:.3f} | {r.row_chunk_s / base.row_chunk_s:.2f} | "
            f"{r.panel_chunk_s:.3f} | {r.panel_chunk_s / base.panel_chunk_s:.2f} | "
            f"{r.panel_rows:,} | {r.panel_all_s:.2f} | "
            f"{r.panel_all_s / base.panel_all_s:.2f} | "
            f"{r.panel_all_s / h5ad.panel_all_s:.2f} |"
        )
    text = "\n".join(lines) + "\n"
    (RESULTS / "bench_soma_layout.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
