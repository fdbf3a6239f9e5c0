"""Panel-level budgets (issue 19): a total-expression budget and per-gene penalties."""

from __future__ import annotations

import json

import anndata
import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
import torch

from tests._scverse_data import make_adata
from yoto_sklearn import YOTOSelector
from yoto_sklearn._network import budgeted_choice
from yoto_sklearn.anndata import select_genes
from yoto_sklearn.cli import main

FAST = dict(max_iter=6, hidden_layer_sizes=(16,), batch_size=32, verbose=0)


def make_data(n=240, g=30, seed=0):
    """Markers of three classes with very different expression levels.

    Genes 0-2 are strong, highly expressed markers (mean ~6), genes 3-5 are weaker,
    lowly expressed markers of the same classes (mean ~1.2): a free panel takes the
    heavy ones, a tight budget has to use the light ones.
    """
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 3, n)
    X = rng.gamma(0.3, 0.3, size=(n, g))
    for c in range(3):
        X[:, c] += 4 + 5 * (y == c)
        X[:, 3 + c] += 0.5 + 2.0 * (y == c)
    return X, y


def panel_load(X, panel):
    return float(np.asarray(X, dtype=np.float64)[:, panel].mean(axis=0).sum())


@pytest.mark.parametrize("kind", ["dense", "sparse", "backed", "required", "binarize"])
def test_budget_holds_on_every_returned_panel(kind, tmp_path):
    X, y = make_data()
    params = dict(k=4, expression_budget=9.0, random_state=0, **FAST)
    Xfit = X
    if kind == "sparse":
        Xfit = sp.csr_matrix(X)
    elif kind == "backed":
        path = tmp_path / "cells.h5ad"
        anndata.AnnData(X.astype(np.float32)).write_h5ad(path)
        Xfit = anndata.read_h5ad(path, backed="r")
    elif kind == "required":
        params["required_genes"] = [5]
    elif kind == "binarize":
        params["binarize"] = True
    values = np.asarray(X, dtype=np.float64)
    free = YOTOSelector(**{**params, "expression_budget": None}).fit(Xfit, y)
    required = params.get("required_genes", [])
    means = values.mean(axis=0)
    others = np.delete(means, required)
    lightest = means[required].sum() + np.sort(others)[: 4 - len(required)].sum()
    budget = (lightest + panel_load(values, free.support_)) / 2  # binds, feasible
    assert budget < panel_load(values, free.support_)
    params["expression_budget"] = budget
    est = YOTOSelector(**params).fit(Xfit, y)
    assert panel_load(values, est.support_) <= budget
    assert est.panel_load_ == pytest.approx(panel_load(values, est.support_))
    np.testing.assert_allclose(est.gene_loads_, values.mean(axis=0), rtol=1e-5)
    assert len(est.support_) == 4
    if kind == "required":
        assert 5 in est.support_
    # the ranking starts with the budgeted panel
    assert set(np.argsort(est.ranking_)[:4]) == set(est.support_)


def test_impossible_budget_is_one_clear_error_before_training():
    X, y = make_data()
    calls = []
    est = YOTOSelector(
        k=4, expression_budget=0.05, callbacks=[lambda info: calls.append(1)], **FAST
    )
    with pytest.raises(ValueError, match=r"expression_budget=0.05 cannot be met"):
        est.fit(X, y)
    assert calls == []  # not one epoch ran
    with pytest.raises(ValueError, match="required genes take"):
        YOTOSelector(k=4, expression_budget=10.0, required_genes=[0, 1], **FAST).fit(
            X, y
        )


def test_tight_budget_swaps_heavy_markers_for_light_ones():
    """The free panel takes the heavy markers; under a budget that fits none of
    them with two more genes, light markers take their places and the panel still
    predicts."""
    X, y = make_data()
    free = YOTOSelector(k=3, random_state=0, verbose=0).fit(X, y)
    assert panel_load(X, free.support_) > 6.0  # the free panel takes heavy markers
    est = YOTOSelector(k=3, expression_budget=6.0, random_state=0, verbose=0)
    est.fit(X, y)  # default settings: small networks need more data to learn
    assert panel_load(X, est.support_) <= 6.0
    assert len(set(est.support_.tolist()) & {3, 4, 5}) >= 2
    assert est.score(X, y) > 0.95


def test_large_penalty_lowers_a_twins_selection_frequency():
    rng = np.random.default_rng(1)
    n = 200
    y = rng.integers(0, 2, n)
    X = rng.normal(size=(n, 12))
    X[:, 0] += 2.5 * y
    X[:, 1] = X[:, 0]  # gene 1 is gene 0's twin
    penalties = np.zeros(12)
    penalties[1] = 5.0
    picked = {0: 0, 1: 0}
    plain = {0: 0, 1: 0}
    for seed in range(4):
        est = YOTOSelector(k=1, gene_penalties=penalties, random_state=seed, verbose=0)
        free = YOTOSelector(k=1, random_state=seed, verbose=0)
        for counts, model in ((picked, est), (plain, free)):
            gene = int(model.fit(X, y).support_[0])
            if gene in counts:
                counts[gene] += 1
    assert picked == {0: 4, 1: 0}
    assert plain[0] + plain[1] == 4 and plain[1] > 0  # without: either twin serves


def test_zero_penalties_give_the_same_panel_bit_for_bit():
    X, y = make_data()
    base = YOTOSelector(k=4, random_state=0, **FAST).fit(X, y)
    zero = YOTOSelector(k=4, random_state=0, gene_penalties=np.zeros(X.shape[1]),
                        **FAST).fit(X, y)  # fmt: skip
    assert np.array_equal(base.support_, zero.support_)
    assert np.array_equal(base.scores_, zero.scores_)
    np.testing.assert_array_equal(base.predict_proba(X), zero.predict_proba(X))


def test_penalties_by_name_and_series():
    adata = make_adata(n_cells=120)
    y = adata.obs["cell_type"]
    by_name = {"G0": 2.0, "G3": 1.0}
    a = YOTOSelector(k=3, gene_penalties=by_name, random_state=0, **FAST).fit(adata, y)
    b = YOTOSelector(k=3, gene_penalties=pd.Series(by_name), random_state=0,
                     **FAST).fit(adata, y)  # fmt: skip
    assert np.array_equal(a.support_, b.support_)
    w = np.zeros(adata.n_vars)
    w[0], w[3] = 2.0, 1.0
    np.testing.assert_array_equal(a.gene_penalties_, w)


@pytest.mark.parametrize(
    "params, error, match",
    [
        (dict(expression_budget=-1.0), ValueError, "positive finite"),
        (dict(expression_budget=float("nan")), ValueError, "positive finite"),
        (dict(expression_budget="5"), TypeError, "must be a number"),
        (dict(gene_penalties={"nope": 1.0}), ValueError, "not in X"),
        (dict(gene_penalties=[1.0, 2.0]), ValueError, "one weight per gene"),
        (dict(gene_penalties=np.full(30, np.nan)), ValueError, "finite and >= 0"),
        (dict(gene_penalties=np.full(30, -1.0)), ValueError, "finite and >= 0"),
        (dict(gene_penalties={3: "x"}), TypeError, "must be a number"),
        (dict(gene_penalties="G1"), TypeError, "mapping gene -> weight"),
    ],
)
def test_bad_budget_input_is_one_clear_error(params, error, match):
    X, y = make_data()
    Xc, yc = X.copy(), y.copy()
    with pytest.raises(error, match=match):
        YOTOSelector(k=4, **params, **FAST).fit(X, y)
    assert np.array_equal(X, Xc) and np.array_equal(y, yc)


def test_save_load_keeps_budget_and_penalties(tmp_path):
    X, y = make_data()
    w = np.zeros(X.shape[1])
    w[2] = 0.5
    est = YOTOSelector(k=4, expression_budget=9.0, gene_penalties=w,
                       random_state=0, **FAST).fit(X, y)  # fmt: skip
    path = tmp_path / "m.safetensors"
    est.save(path)
    back = YOTOSelector.load(path)
    assert back.expression_budget == 9.0
    np.testing.assert_array_equal(back.gene_penalties_, w)
    np.testing.assert_array_equal(back.gene_loads_, est.gene_loads_)
    assert back.panel_load_ == est.panel_load_
    np.testing.assert_array_equal(back.support_, est.support_)
    np.testing.assert_array_equal(back.predict(X), est.predict(X))


def budgeted_panel(order, loads, required, k_free, budget):
    return budgeted_choice(
        torch.as_tensor(order), torch.as_tensor(loads), torch.as_tensor(required),
        k_free, budget,
    ).numpy()  # fmt: skip


def test_budgeted_positions_keep_the_best_genes_that_fit():
    from yoto_sklearn._budget import budgeted_positions

    loads = np.array([5.0, 1.0, 4.0, 1.0, 1.0, 3.0])
    order = np.array([0, 2, 5, 1, 3, 4])  # best first
    # budget 7 for 3 genes: 0 (5) leaves 2 for two genes: 1 + 1 possible -> take 0;
    # 2 (4) no; 5 (3) no; 1 yes; 3 yes
    assert order[budgeted_positions(loads[order], 3, 7.0)].tolist() == [0, 1, 3]


def test_trimmed_choice_drops_the_heaviest_and_refills_by_rank():
    loads = np.array([5.0, 1.0, 4.0, 1.0, 1.0, 3.0])
    order = np.array([0, 2, 5, 1, 3, 4])  # best first
    none = np.array([], dtype=np.int64)
    # top 3 {0, 2, 5} = 12 > 7: drop 0 (5); nothing fits the room of 0, so the
    # lightest (1) joins; 8 > 7: drop 2 (4); room 3: 3 (the best left) fits
    assert budgeted_panel(order, loads, none, 3, 7.0).tolist() == [5, 1, 3]
    assert budgeted_panel(order, loads, none, 3, 12.0).tolist() == [0, 2, 5]  # fits
    # the required gene's load counts: 4 left for 2 genes
    assert budgeted_panel(order[1:], loads, np.array([0]), 2, 9.0).tolist() == [5, 1]
    rng = np.random.default_rng(0)
    for _ in range(300):  # never over budget, always k genes when feasible
        loads = rng.gamma(1.0, 1.0, 20) if rng.random() < 0.7 else (
            rng.integers(0, 3, 20).astype(float))  # fmt: skip
        k = int(rng.integers(1, 8))
        budget = float(np.sort(loads)[:k].sum() * rng.choice([1.0, rng.uniform(1, 3)]))
        order = rng.permutation(20)
        panel = budgeted_panel(order, loads, none, k, budget)
        assert len(set(panel.tolist())) == k
        assert loads[panel].sum() <= budget * (1 + 1e-9)
        if loads[order[:k]].sum() <= budget:  # the best k fit: nothing changes
            assert panel.tolist() == order[:k].tolist()


def test_select_genes_and_cli_show_the_budget(tmp_path):
    adata = make_adata(n_cells=150)
    sel = select_genes(adata, "cell_type", k=4, expression_budget=6.0, **FAST)
    info = adata.uns["yoto"]["budget"]
    assert info["expression_budget"] == 6.0
    assert info["panel_total"] == pytest.approx(sel.panel_load_)
    assert info["panel_total"] <= 6.0
    np.testing.assert_allclose(
        adata.var["yoto_mean_expression"], np.asarray(adata.X).mean(axis=0), rtol=1e-5
    )
    path = tmp_path / "cells.h5ad"
    make_adata(n_cells=150).write_h5ad(path)
    weights = tmp_path / "probes.csv"
    pd.DataFrame({"gene": ["G0", "G1"], "weight": [3.0, 1.0]}).to_csv(
        weights, index=False
    )
    out = tmp_path / "run"
    argv = ["fit", str(path), "-t", "cell_type", "--k", "4", "--out", str(out),
            "--expression-budget", "6", "--gene-penalties", str(weights),
            "--max-iter", "6", "--set", "hidden_layer_sizes=(16,)",
            "--report", "--quiet"]  # fmt: skip
    assert main(argv) == 0
    panel = pd.read_csv(out / "panel.csv")
    assert "mean_expression" in panel.columns
    assert panel["mean_expression"].sum() <= 6.0
    record = json.loads((out / "metrics.json").read_text())
    assert record["budget"]["expression_budget"] == 6.0
    total = panel["mean_expression"].sum()
    assert record["budget"]["panel_total"] == pytest.approx(total)
    model = YOTOSelector.load(out / "model.safetensors")
    assert model.gene_penalties_[0] == 3.0
    assert (out / "budget.png").stat().st_size > 0
    from yoto_sklearn.report import read_report

    report = read_report(out / "report.html")
    assert report["budget"]["panel_total"] == pytest.approx(total)
    assert sum(report["budget"]["cells"]["histogram"]["counts"]) == 150
    assert 'id="budget"' in (out / "report.html").read_text()


@pytest.mark.parametrize(
    "table, message",
    [
        (None, "no such file"),
        ("gene,w\nG0,1\n", "needs columns 'gene' and 'weight'"),
        ("gene,weight\nG0,abc\n", "weights are numbers >= 0"),
        ("gene,weight\nG0,-1\n", "weights are numbers >= 0"),
        ("gene,weight\nNOPE,1\n", "'NOPE' is not in the data"),
        ("gene,weight\nG0,1\nG0,2\n", "more than once"),
    ],
)
def test_cli_penalty_file_errors_are_one_line(tmp_path, capsys, table, message):
    path = tmp_path / "cells.h5ad"
    make_adata(n_cells=60).write_h5ad(path)
    probes = tmp_path / "probes.csv"
    if table is not None:
        probes.write_text(table)
    out = str(tmp_path / "run")
    argv = ["fit", str(path), "-t", "cell_type", "--k", "3", "--out", out,
            "--gene-penalties", str(probes), "--quiet"]  # fmt: skip
    assert main(argv) == 1
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and message in err, err


def test_cli_impossible_budget_is_one_line(tmp_path, capsys):
    path = tmp_path / "cells.h5ad"
    make_adata(n_cells=60).write_h5ad(path)
    out = str(tmp_path / "run")
    argv = ["fit", str(path), "-t", "cell_type", "--k", "3", "--out", out,
            "--expression-budget", "0.01", "--quiet"]  # fmt: skip
    assert main(argv) == 1
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "cannot be met" in err, err


def _greedy_by_definition(cand, k_free, left):
    """The rule of budgeted_choice written plainly: one full sum per candidate."""
    chosen, unvisited = [], np.ones(len(cand), dtype=bool)
    for pos in range(len(cand)):
        unvisited[pos] = False
        need = k_free - len(chosen) - 1
        reserve = np.sort(cand[unvisited])[:need].sum() if need else 0.0
        if cand[pos] + reserve <= left:
            chosen.append(pos)
            left -= cand[pos]
            if len(chosen) == k_free:
                return chosen
    return None


def test_budgeted_positions_equal_the_plain_rule():
    from yoto_sklearn._budget import budgeted_positions

    rng = np.random.default_rng(1)
    for _ in range(500):
        n = int(rng.integers(2, 40))
        k = int(rng.integers(1, n + 1))
        # ties (integer loads) and budgets exactly at the lightest panel included
        cand = rng.integers(0, 4, n).astype(float) if rng.random() < 0.5 else (
            rng.exponential(1.0, n))  # fmt: skip
        budget = np.sort(cand)[:k].sum() * rng.choice([1.0, 1.0001, 1.2, 2.0])
        assert budgeted_positions(cand, k, budget) == _greedy_by_definition(
            cand, k, budget
        )
