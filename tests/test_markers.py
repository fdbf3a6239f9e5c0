"""marker_coverage: the one-vs-rest AUROC table, the selection term, the option."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
import torch
from sklearn.metrics import roc_auc_score

from yoto_sklearn import YOTOSelector
from yoto_sklearn._markers import (
    MAX_CELLS,
    marker_table,
    one_vs_rest_auroc,
    sample_cells,
)
from yoto_sklearn._network import YOTONetwork, marker_gain
from yoto_sklearn.sources import ArraySource


def _counts_like(rng, n, g):
    """Integer-valued, zero-inflated columns: many ties, as in scRNA-seq."""
    return rng.poisson(0.7, size=(n, g)).astype(float)


@pytest.mark.parametrize("sparse", [False, True])
def test_auroc_table_equals_sklearn(sparse):
    rng = np.random.default_rng(0)
    X = _counts_like(rng, 90, 7)
    labels = rng.integers(0, 3, size=90)
    X[labels == 1, 2] += 3  # a marker of class 1
    table = one_vs_rest_auroc(sp.csr_matrix(X) if sparse else X, labels)
    for g in range(7):
        for c in range(3):
            expected = roc_auc_score(labels == c, X[:, g])
            assert table[g, c] == pytest.approx(expected, abs=1e-12)
    assert table[2, 1] > 0.9


def test_auroc_of_an_absent_class_is_neutral():
    X = np.arange(12.0).reshape(6, 2)
    labels = np.array([0, 0, 0, 2, 2, 2])  # class 1 has no cell
    table = one_vs_rest_auroc(X, labels)
    assert table.shape == (2, 3)
    assert np.all(table[:, 1] == 0.5)
    assert np.all(table[:, 2] == 1.0)  # class 2 holds the larger values


@pytest.mark.parametrize("sparse", [False, True])
def test_marker_table_reads_the_training_rows_chunk_by_chunk(sparse):
    """The table from a source read in chunks of 7 rows: the AUROC of the
    labelled training rows only, one column per class of the task."""
    rng = np.random.default_rng(1)
    X = _counts_like(rng, 60, 5)
    codes = rng.integers(0, 4, size=60).astype(float)
    codes[::9] = np.nan  # unlabelled cells are left out
    train = np.arange(60)[np.arange(60) % 5 != 0]  # validation rows are left out
    source = ArraySource(sp.csr_matrix(X) if sparse else X, chunk_rows=7)
    table = marker_table(source, codes, train, 5, rng)  # a 5th class never seen
    used = train[~np.isnan(codes[train])]
    expected = one_vs_rest_auroc(X[used], codes[used].astype(int))
    assert table.dtype == np.float32 and table.shape == (5, 5)
    np.testing.assert_allclose(table[:, :4], expected, atol=1e-6)
    assert np.all(table[:, 4] == 0.5)


def test_sample_cells_caps_each_class():
    rng = np.random.default_rng(0)
    codes = np.concatenate([np.zeros(25_000), np.ones(300), np.full(200, np.nan)])
    rows = np.arange(len(codes))
    cells = sample_cells(codes, rows, rng)
    assert np.all(np.diff(cells) > 0)
    assert not np.isnan(codes[cells]).any()
    assert len(cells) <= MAX_CELLS
    assert (codes[cells] == 1).sum() == 300  # the small class is kept whole
    assert (codes[cells] == 0).sum() == MAX_CELLS // 2
    few = sample_cells(codes, rows[24_900:], rng)  # under the cap: every labelled
    assert len(few) == 400


def _net(markers, k=3, **kw):
    torch.manual_seed(0)
    return YOTONetwork(
        markers.shape[0], k, [8], [markers.shape[1]], markers=markers,
        marker_weight=1.0, **kw,
    )  # fmt: skip


def test_marker_term_pulls_each_class_best_marker_into_the_panel():
    markers = np.full((20, 2), 0.5, dtype=np.float32)
    markers[7, 0] = 0.95  # the only marker of class 0
    markers[12, 1] = 0.9  # the only marker of class 1
    net = _net(markers)
    opt = torch.optim.Adam([net.scores], lr=0.05)
    gen = torch.Generator().manual_seed(0)
    for _ in range(200):
        soft, idx = net.select(0.5, 0.2, gen)
        loss = net.design_loss(soft, idx)
        assert loss.detach().item() == 0.0  # the value is 0: only its gradient acts
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert {7, 12} <= set(net.panel().tolist())


def test_marker_term_never_pulls_an_excluded_gene():
    markers = np.full((20, 1), 0.5, dtype=np.float32)
    markers[7, 0] = 0.95
    markers[3, 0] = 0.8
    net = _net(markers, excluded=[7])
    soft, idx = net.select(0.5, 0.0, None)
    soft.retain_grad()
    scores_grad = torch.autograd.grad(net.design_loss(soft, idx), net.scores)[0]
    assert scores_grad[7] == 0
    assert scores_grad[3] < 0  # the best allowed marker is pulled up


def test_marker_gain_counts_required_genes_as_the_panels_markers():
    markers = np.full((10, 1), 0.5, dtype=np.float32)
    markers[4, 0] = 0.99
    net = _net(markers, required=[4])
    assert net.markers[4, 0] == pytest.approx(0.99)
    soft, idx = net.select(0.5, 0.0, None)
    grad = torch.autograd.grad(marker_gain(net.markers, soft, idx), net.scores)[0]
    assert torch.all(grad == 0)  # the class already has its best marker


def _data(n=160, g=30, seed=0):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 4, size=n)
    X = rng.normal(size=(n, g))
    for c in range(4):
        X[y == c, c] += 2.5
    return X, y


def test_marker_coverage_fits_and_off_means_unchanged():
    X, y = _data()
    Y = np.column_stack([X[:, 5] * 2, y])  # a regression task first
    base = YOTOSelector(k=4, max_iter=15, random_state=0).fit(X, Y)
    off = YOTOSelector(k=4, max_iter=15, random_state=0, marker_task=1).fit(X, Y)
    assert np.array_equal(base.scores_, off.scores_)
    on = YOTOSelector(k=4, max_iter=15, random_state=0, marker_coverage=1.0).fit(
        sp.csr_matrix(X), Y
    )  # the first classification task: column 1
    assert on.k_ == 4 and on.predict(X).shape == (160, 2)
    assert not np.array_equal(base.scores_, on.scores_)
