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
