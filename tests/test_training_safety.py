"""Training never goes silently wrong: non-finite losses, early stopping, Ctrl-C."""

from __future__ import annotations

import copy
import warnings

import numpy as np
import pytest
import torch
from sklearn.exceptions import ConvergenceWarning, NotFittedError

from yoto_sklearn import YOTOSelector
from yoto_sklearn._network import export_panel_network
from yoto_sklearn._training import evaluate, multitask_loss

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


class Seamed(YOTOSelector):
    """A YOTOSelector whose training loss and validation go through test hooks.

    Uses the estimator's seam for this (``_training_seams``: keyword arguments of
    the training loop) instead of patching the package.
    """

    loss_hook = None  # (phase, n-th step of the phase, loss) -> loss
    evaluate_hook = None  # (net, *args) -> (loss, score)
    select_steps = 12  # FAST: 3 selection epochs x 4 mini-batches of 16 of 64 cells

    def _training_seams(self):
        seams = {}
        if self.loss_hook is not None:
            calls = [0]

            def loss_fn(outputs, yb, losses):
                calls[0] += 1
                n = calls[0]
                phase = "select" if n <= self.select_steps else "refine"
                n = n if phase == "select" else n - self.select_steps
                return self.loss_hook(phase, n, multitask_loss(outputs, yb, losses))

            seams["loss_fn"] = loss_fn
        if self.evaluate_hook is not None:
            seams["evaluate_fn"] = self.evaluate_hook
        return seams


def _seamed(params, loss_hook=None, evaluate_hook=None, select_steps=12):
    sel = Seamed(**params)
    sel.loss_hook, sel.evaluate_hook = loss_hook, evaluate_hook
    sel.select_steps = select_steps
    return sel


# ------------------------------------------------------------ non-finite loss
def test_non_finite_loss_in_selection_raises_and_leaves_unfitted():
    X, y = _data()
    hook = lambda p, n, v: v * float("inf") if (p, n) == ("select", 3) else v  # noqa: E731
    sel = _seamed(FAST, hook)
    with pytest.raises(FloatingPointError, match="non-finite"):
        sel.fit(X, y)
    assert _fitted_attrs(sel) == []


def test_non_finite_loss_after_best_weights_warns_and_restores():
    X, y = _data()
    # refinement epoch 1 is fine (best weights recorded), epoch 2 blows up
    hook = lambda p, n, v: v * float("inf") if (p == "refine" and n > 4) else v  # noqa: E731
    params = {**FAST, "early_stopping": True, "max_iter": 6, "n_iter_no_change": 5}
    with pytest.warns(ConvergenceWarning, match="non-finite .* restored the best"):
        # 4 selection epochs of 4 mini-batches (58 training cells)
        sel = _seamed(params, hook, select_steps=16).fit(X, y)
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


def test_non_finite_weights_after_last_step_are_caught():
    X, y = _data()

    def corrupt(info):  # a public callback sees the network after every epoch
        if info.epoch == info.max_iter:
            with torch.no_grad():
                info.network.heads[0].weight[0, 0] = float("nan")

    sel = YOTOSelector(**FAST, callbacks=[corrupt])
    with pytest.raises(FloatingPointError, match="non-finite weights .*heads.0.weight"):
        sel.fit(X, y)
    assert _fitted_attrs(sel) == []


# ------------------------------------------------------------- early stopping
def test_early_stopping_restores_best_weights():
    X, y = _data(n=80)
    snapshots = []
    # max_iter=10: 6 selection epochs, then refinement 1.0 (best), worse after
    val_losses = iter([5.0] * 6 + [1.0, 2.0, 2.5, 3.0])

    def fake_evaluate(net, *args, **kwargs):
        snapshots.append(copy.deepcopy(net))
        return next(val_losses), 0.5

    params = {
        **FAST,
        "early_stopping": True,
        "max_iter": 10,
        "n_iter_no_change": 2,
        "standardize": False,  # the exported network is then the network itself
    }
    sel = _seamed(params, evaluate_hook=fake_evaluate).fit(X, y)
    assert sel.history_.selection_epochs == 6
    assert sel.history_.best_epoch == 7
    assert sel.history_.stopped_early
    assert sel.n_iter_ == 9  # best at 7, then two epochs without improvement
    best, last = snapshots[6].state_dict(), snapshots[-1].state_dict()
    assert any(not torch.equal(best[k], last[k]) for k in best)
    support = torch.as_tensor(sel.support_)
    want = export_panel_network(snapshots[6], support, None, None).state_dict()
    got = sel.module_.state_dict()
    assert want.keys() == got.keys()
    for name, tensor in got.items():
        assert torch.equal(tensor, want[name]), name


# --------------------------------------------------------------------- Ctrl-C
def _interrupt_at(phase_name, call):
    def hook(p, n, value):
        if (p, n) == (phase_name, call):
            raise KeyboardInterrupt
        return value

    return hook


def test_ctrl_c_during_selection_leaves_unfitted():
    X, y = _data()
    sel = _seamed(FAST).fit(X, y)  # a previous fit must not survive either
    sel.loss_hook = _interrupt_at("select", 2)
    with pytest.raises(KeyboardInterrupt):
        sel.fit(X, y)
    assert _fitted_attrs(sel) == []
    with pytest.raises(NotFittedError):
        sel.predict(X)


@pytest.mark.parametrize("early_stopping", [False, True])
def test_ctrl_c_after_selection_gives_usable_model_with_warning(early_stopping):
    X, y = _data()
    hook = _interrupt_at("refine", 6)  # second refinement epoch
    params = {**FAST, "early_stopping": early_stopping, "n_iter_no_change": 5}
    with pytest.warns(ConvergenceWarning, match="interrupted .*KeyboardInterrupt"):
        sel = _seamed(params, hook).fit(X, y)
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


def test_ctrl_c_during_validation_pads_curves():
    X, y = _data()
    calls = {"n": 0}

    def interrupted_evaluate(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 5:  # evaluation of the second refinement epoch
            raise KeyboardInterrupt
        return evaluate(*args, **kwargs)

    params = {**FAST, "early_stopping": True, "n_iter_no_change": 5}
    with pytest.warns(ConvergenceWarning, match="interrupted"):
        sel = _seamed(params, evaluate_hook=interrupted_evaluate).fit(X, y)
    assert sel.n_iter_ == 5
    assert len(sel.validation_loss_curve_) == 5
    assert np.isnan(sel.validation_loss_curve_[-1])
    assert sel.history_.best_epoch == 4
    assert np.isfinite(sel.predict_proba(X)).all()
