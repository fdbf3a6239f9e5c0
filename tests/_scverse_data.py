"""Small generated single-cell data for the AnnData, CLI and plotting tests."""

from __future__ import annotations

import anndata
import numpy as np
import pandas as pd
import scipy.sparse as sp

# Fast settings: a few epochs of a tiny network.
FAST = {"max_iter": 4, "hidden_layer_sizes": (16,), "random_state": 0, "verbose": 0}


def make_adata(
    n_cells: int = 120, n_genes: int = 40, *, sparse: bool = False, seed: int = 0
) -> anndata.AnnData:
    """Count-like log data with marker genes for two labels and one score.

    obs: ``cell_type`` (categorical, 3 classes, genes 0-5 are markers),
    ``batch`` (str, 2 classes), ``score`` (float, depends on genes 6-7, a few
    NaN), ``flag`` (bool). layers: ``counts``. Gene names ``G0..G{n-1}``.
    """
    rng = np.random.default_rng(seed)
    cell_type = rng.integers(0, 3, n_cells)
    counts = rng.negative_binomial(2, 0.6, size=(n_cells, n_genes)).astype(np.float32)
    for c in range(3):
        counts[cell_type == c, 2 * c : 2 * c + 2] += 6
    counts[:, 6] += rng.poisson(4, n_cells)
    logged = np.log1p(counts)
    score = logged[:, 6] - logged[:, 7] + 0.1 * rng.normal(size=n_cells)
    score[rng.choice(n_cells, 10, replace=False)] = np.nan
    batch = np.where(rng.random(n_cells) < 0.5, "a", "b").astype(object)
    obs = pd.DataFrame(
        {
            "cell_type": pd.Categorical(np.array(["T", "B", "NK"])[cell_type]),
            "batch": batch,
            "score": score,
            "flag": cell_type == 0,
        },
        index=[f"cell{i}" for i in range(n_cells)],
    )
    var = pd.DataFrame(index=[f"G{j}" for j in range(n_genes)])
    X = sp.csr_matrix(logged) if sparse else logged
    adata = anndata.AnnData(X=X, obs=obs, var=var)
    adata.layers["counts"] = sp.csr_matrix(counts) if sparse else counts
    return adata


def write_10x_folder(adata: anndata.AnnData, folder, *, v3: bool = True) -> None:
    """Write ``adata.layers['counts']`` as a Cell Ranger matrix folder.

    v3: gzipped ``matrix.mtx.gz``, ``features.tsv.gz`` (id, name, type),
    ``barcodes.tsv.gz``; v2: plain ``matrix.mtx``, ``genes.tsv`` (id, name),
    ``barcodes.tsv``.
    """
    import gzip

    import scipy.io

    folder.mkdir(parents=True, exist_ok=True)
    counts = sp.csr_matrix(adata.layers["counts"]).T.tocoo()  # genes x cells
    ids = [f"ENSG{i:05d}" for i in range(adata.n_vars)]
    if v3:
        features = pd.DataFrame(
            {"id": ids, "name": adata.var_names, "type": "Gene Expression"}
        )
        with gzip.open(folder / "matrix.mtx.gz", "wb") as fh:
            scipy.io.mmwrite(fh, counts)
        features.to_csv(folder / "features.tsv.gz", sep="\t", header=False, index=False)
        pd.Series(adata.obs_names).to_csv(
            folder / "barcodes.tsv.gz", sep="\t", header=False, index=False
        )
    else:
        scipy.io.mmwrite(folder / "matrix.mtx", counts)
        pd.DataFrame({"id": ids, "name": adata.var_names}).to_csv(
            folder / "genes.tsv", sep="\t", header=False, index=False
        )
        pd.Series(adata.obs_names).to_csv(
            folder / "barcodes.tsv", sep="\t", header=False, index=False
        )


def write_10x_h5(adata: anndata.AnnData, path) -> None:
    """Write ``adata.layers['counts']`` as a Cell Ranger v3 ``.h5`` file."""
    import h5py

    counts = sp.csr_matrix(adata.layers["counts"]).astype(np.int32)  # cells x genes
    with h5py.File(path, "w") as f:
        m = f.create_group("matrix")
        m["barcodes"] = np.asarray(adata.obs_names, dtype="S")
        m["data"] = counts.data
        m["indices"] = counts.indices.astype(np.int64)
        m["indptr"] = counts.indptr.astype(np.int64)
        m["shape"] = np.array([adata.n_vars, adata.n_obs], dtype=np.int32)
        feats = m.create_group("features")
        feats["id"] = np.array([f"ENSG{i:05d}" for i in range(adata.n_vars)], "S")
        feats["name"] = np.asarray(adata.var_names, dtype="S")
        feats["feature_type"] = np.array([b"Gene Expression"] * adata.n_vars)
        feats["genome"] = np.array([b"GRCh38"] * adata.n_vars)
