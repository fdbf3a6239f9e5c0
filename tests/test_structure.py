"""structure_components: the top principal components as auxiliary targets."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from yoto_sklearn import YOTOSelector
from yoto_sklearn._structure import principal_components
from yoto_sklearn.sources import ArraySource

from .conftest import FAST


@pytest.mark.parametrize("sparse", [False, True])
def test_streamed_pcs_equal_numpy_when_the_sketch_spans_every_gene(sparse):
    rng = np.random.default_rng(0)
    X = np.abs(rng.normal(size=(90, 12)) @ np.diag(np.linspace(3, 0.2, 12)))
    X = np.where(X > 0.5, X, 0.0)
    data = sp.csr_matrix(X) if sparse else X
    rows = np.arange(0, 90, 2)
    pcs = principal_components(ArraySource(data, chunk_rows=7), rows, 3, rng)
    centred = X[rows] - X[rows].mean(axis=0)
    _, s, vt = np.linalg.svd(centred, full_matrices=False)
    np.testing.assert_allclose(np.abs((pcs.components * vt[:3]).sum(1)), 1, atol=1e-8)
    np.testing.assert_allclose(pcs.explained_variance, s[:3] ** 2 / 44, rtol=1e-8)
    every = (X - X[rows].mean(axis=0)) @ pcs.components.T
    np.testing.assert_allclose(pcs.scores, every, atol=1e-8)  # held-out cells too


def _structured(seed=0, n=300):
    """Labels from genes 0-1; a strong unlabelled gradient in genes 10-15."""
    rng = np.random.default_rng(seed)
    X = np.abs(rng.normal(scale=0.3, size=(n, 30)))
    y = rng.integers(0, 2, n)
    X[:, :2] += 2.0 * y[:, None]
    gradient = rng.uniform(0, 4, n)
    X[:, 10:16] += gradient[:, None] * rng.uniform(0.8, 1.2, 6)
    return X, y


def test_structure_heads_bring_the_unlabelled_structure_into_the_panel():
    gradient_genes = set(range(10, 16))
    counts = {0: 0, 3.0: 0}
    for seed in range(3):
        X, y = _structured(seed)
        params = dict(FAST, k=3, max_iter=40, n_threads=1, early_stopping=True)
        params["random_state"] = seed
        for weight in counts:
            structure = dict(structure_components=2, structure_weight=weight)
            sel = YOTOSelector(**params, **(structure if weight else {})).fit(X, y)
            counts[weight] += len(set(sel.support_) & gradient_genes)
            if seed == 0:  # the labels are still predicted, and only they are
                assert sel.score(X, y) > 0.9
                assert len(sel.module_.heads) == 1 and sel.task_names_ == ["task0"]
    # measured: 2 of 9 places without the structure heads, 6 of 9 with them
    assert counts[3.0] >= counts[0] + 3


def test_structure_heads_do_not_change_saved_models(tmp_path):
    X, y = _structured(n=120)
    sel = YOTOSelector(**FAST, structure_components=3).fit(X, y)
    path = tmp_path / "m.safetensors"
    sel.save(path)
    back = YOTOSelector.load(path)
    np.testing.assert_array_equal(back.predict_proba(X), sel.predict_proba(X))
    assert back.get_params()["structure_components"] == 3
