"""Training never goes silently wrong: non-finite losses, early stopping, Ctrl-C."""

from __future__ import annotations

import copy
import warnings

import numpy as np
import pytest
import torch
from sklearn.exceptions import ConvergenceWarning, NotFittedError

import yoto_sklearn._selector as selector_mod
import yoto_sklearn._training as training_mod
from yoto_sklearn import YOTOSelector
from yoto_sklearn._network import YOTONetwork

from .conftest import FAST as BASE_FAST

# max_iter=5 -> 3 selection epochs, then 2 refinement epochs
FAST = dict(BASE_FAST, max_iter=5, device="cpu", n_threads=1)


def _data(n=64, g=12, seed=0):
    rng = np.random.default_rng(seed)
    y = np.arange(n) % 2
    X = rng.normal(size=(n, g))
    X[:, 0] += 2.0 * y
    return X, y


def _fitted_attrs(est):
    return [a for a in vars(est) if a.endswith("_") and not a.startswith("_")]


class _Phase:
    """Patches that know whether a training step is in the selection phase."""

    def __init__(self, monkeypatch):
        self.selecting = False
        self.calls = {"select": 0, "refine": 0}
        original_select = YOTONetwork.select
        original_loss = training_mod.multitask_loss

        def select(net, *args, **kwargs):
            self.selecting = True
            return original_select(net, *args, **kwargs)

        def loss(outputs, yb, losses):
            phase = "select" if self.selecting else "refine"
            self.selecting = False
            self.calls[phase] += 1
            value = original_loss(outputs, yb, losses)
            return self.hook(phase, self.calls[phase], value)

        monkeypatch.setattr(YOTONetwork, "select", select)
        monkeypatch.setattr(training_mod, "multitask_loss", loss)

    def hook(self, phase, n, value):
        return value


# ------------------------------------------------------------ non-finite loss
def test_non_finite_loss_in_selection_raises_and_leaves_unfitted(monkeypatch):
    X, y = _data()
    phase = _Phase(monkeypatch)
    phase.hook = lambda p, n, v: v * float("inf") if (p, n) == ("select", 3) else v
    sel = YOTOSelector(**FAST)
    with pytest.raises(FloatingPointError, match="non-finite"):
        sel.fit(X, y)
    assert _fitted_attrs(sel) == []


def test_non_finite_loss_after_best_weights_warns_and_restores(monkeypatch):
    X, y = _data()
    phase = _Phase(monkeypatch)
    # refinement epoch 1 is fine (best weights recorded), epoch 2 blows up
    phase.hook = lambda p, n, v: v * float("inf") if (p == "refine" and n > 4) else v
    params = {**FAST, "early_stopping": True, "max_iter": 6, "n_iter_no_change": 5}
    with pytest.warns(ConvergenceWarning, match="non-finite .* restored the best"):
        sel = YOTOSelector(**params).fit(X, y)
    proba = sel.predict_proba(X)
    assert np.isfinite(proba).all()
    assert np.isfinite(sel.scores_).all()
    # max_iter=6: 4 selection epochs; refinement epoch 5 is the best, 6 blew up
    assert sel.history_.best_epoch == 5
    assert sel.n_iter_ == 6 and sel.history_.stopped_early


def test_huge_learning_rate_never_gives_a_nan_model():
    X, y = _data()
    sel = YOTOSelector(**{**FAST, "learning_rate": 1e38, "score_learning_rate": 1e38})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        try:
            sel.fit(X * 1e30, y)
        except FloatingPointError as exc:
            assert "non-finite" in str(exc)
            assert _fitted_attrs(sel) == []
            return
    assert np.isfinite(sel.predict_proba(X)).all()


def test_non_finite_weights_after_last_step_are_caught(monkeypatch):
    X, y = _data()
    original = selector_mod.train

    def corrupting_train(net, *args, **kwargs):
        history = original(net, *args, **kwargs)
        with torch.no_grad():
            net.heads[0].weight[0, 0] = float("nan")
        return history

    monkeypatch.setattr(selector_mod, "train", corrupting_train)
    sel = YOTOSelector(**FAST)
    with pytest.raises(FloatingPointError, match="non-finite weights .*heads.0.weight"):
        sel.fit(X, y)
    assert _fitted_attrs(sel) == []


# ------------------------------------------------------------- early stopping
def test_early_stopping_restores_best_weights(monkeypatch):
    X, y = _data(n=80)
    snapshots = []
    # max_iter=10: 6 selection epochs, then refinement 1.0 (best), worse after
    val_losses = iter([5.0] * 6 + [1.0, 2.0, 2.5, 3.0])

    def fake_evaluate(net, *args, **kwargs):
        snapshots.append(copy.deepcopy(net.state_dict()))
        return next(val_losses), 0.5

    exported = {}
    original_export = selector_mod.export_panel_network

    def spy_export(net, *args, **kwargs):
        exported["state"] = copy.deepcopy(net.state_dict())
        return original_export(net, *args, **kwargs)

    monkeypatch.setattr(training_mod, "evaluate", fake_evaluate)
    monkeypatch.setattr(selector_mod, "export_panel_network", spy_export)
    params = {**FAST, "early_stopping": True, "max_iter": 10, "n_iter_no_change": 2}
    sel = YOTOSelector(**params).fit(X, y)
    assert sel.history_.selection_epochs == 6
    assert sel.history_.best_epoch == 7
    assert sel.history_.stopped_early
    assert sel.n_iter_ == 9  # best at 7, then two epochs without improvement
    best = snapshots[6]
    last = snapshots[-1]
    assert any(not torch.equal(best[k], last[k]) for k in best)
    for name, tensor in exported["state"].items():
        assert torch.equal(tensor, best[name]), name


# --------------------------------------------------------------------- Ctrl-C
def _interrupt_at(phase_name, call):
    def hook(p, n, value):
        if (p, n) == (phase_name, call):
            raise KeyboardInterrupt
        return value

    return hook


def test_ctrl_c_during_selection_leaves_unfitted(monkeypatch):
    X, y = _data()
    sel = YOTOSelector(**FAST).fit(X, y)  # a previous fit must not survive either
    phase = _Phase(monkeypatch)
    phase.hook = _interrupt_at("select", 2)
    with pytest.raises(KeyboardInterrupt):
        sel.fit(X, y)
    assert _fitted_attrs(sel) == []
    with pytest.raises(NotFittedError):
        sel.predict(X)


@pytest.mark.parametrize("early_stopping", [False, True])
def test_ctrl_c_after_selection_gives_usable_model_with_warning(
    monkeypatch, early_stopping
):
    X, y = _data()
    phase = _Phase(monkeypatch)
    phase.hook = _interrupt_at("refine", 6)  # second refinement epoch
    params = {**FAST, "early_stopping": early_stopping, "n_iter_no_change": 5}
    with pytest.warns(ConvergenceWarning, match="interrupted .*KeyboardInterrupt"):
        sel = YOTOSelector(**params).fit(X, y)
    assert sel.history_.interrupted
    assert sel.n_iter_ == 4
    assert len(sel.loss_curve_) == sel.n_iter_
    if early_stopping:
        assert len(sel.validation_loss_curve_) == sel.n_iter_
    assert len(np.unique(sel.support_)) == 3
    proba = sel.predict_proba(X)
    assert np.isfinite(proba).all()
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)
    assert set(sel.predict(X)) <= set(sel.classes_)
    assert sel.history_.best_state is None


def test_ctrl_c_during_validation_pads_curves(monkeypatch):
    X, y = _data()
    original = training_mod.evaluate
    calls = {"n": 0}

    def evaluate(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 5:  # evaluation of the second refinement epoch
            raise KeyboardInterrupt
        return original(*args, **kwargs)

    monkeypatch.setattr(training_mod, "evaluate", evaluate)
    params = {**FAST, "early_stopping": True, "n_iter_no_change": 5}
    with pytest.warns(ConvergenceWarning, match="interrupted"):
        sel = YOTOSelector(**params).fit(X, y)
    assert sel.n_iter_ == 5
    assert len(sel.validation_loss_curve_) == 5
    assert np.isnan(sel.validation_loss_curve_[-1])
    assert sel.history_.best_epoch == 4
    assert np.isfinite(sel.predict_proba(X)).all()
