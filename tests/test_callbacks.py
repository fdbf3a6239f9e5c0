"""Per-epoch callbacks: they see every epoch, can stop training, can prune a search."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.exceptions import NotFittedError
from sklearn.model_selection import GridSearchCV
from sklearn.utils._param_validation import InvalidParameterError

from yoto_sklearn import YOTOSelector
from yoto_sklearn.callbacks import Callback, EpochInfo, EpochLogger

from .conftest import FAST, make_data

PARAMS = dict(FAST, max_iter=10, n_threads=1, early_stopping=True, n_iter_no_change=50)


def test_logger_records_every_epoch_as_the_fitted_curves_do():
    X, y = make_data()
    logger = EpochLogger()
    sel = YOTOSelector(**PARAMS, callbacks=[logger]).fit(X, y)
    records = logger.records
    assert [r["epoch"] for r in records] == list(range(1, sel.n_iter_ + 1))
    assert [r["loss"] for r in records] == sel.loss_curve_
    assert [r["validation_loss"] for r in records] == sel.validation_loss_curve_
    assert [r["validation_score"] for r in records] == sel.validation_scores_
    phases = [r["phase"] for r in records]
    n_sel = sel.history_.selection_epochs
    assert phases == ["selection"] * n_sel + ["refinement"] * (sel.n_iter_ - n_sel)
    assert all(r["n_cells"] == len(X) - round(0.1 * len(X)) for r in records)
    # a second fit starts a new record
    YOTOSelector(**dict(PARAMS, max_iter=3), callbacks=[logger]).fit(X, y)
    assert len(logger.records) == 3


def test_epoch_info_shows_the_panel_and_the_network():
    X, y = make_data()
    seen: list[EpochInfo] = []
    sel = YOTOSelector(**PARAMS, callbacks=[seen.append]).fit(X, y)
    last = seen[-1]
    assert last.max_iter == 10 and last.phase == "refinement"
    assert sorted(last.panel) == sorted(sel.support_.tolist())
    assert last.network.k == sel.k_
    assert last.best_epoch == sel.history_.best_epoch
    assert all(info.seconds >= 0 for info in seen)
    assert [info.temperature for info in seen] == sel.history_.temperature_curve


def test_returning_true_stops_training_and_keeps_a_usable_model():
    X, y = make_data()
    stop_at = 8  # a refinement epoch (6 selection epochs)

    def stop(info):
        return info.epoch == stop_at

    sel = YOTOSelector(**PARAMS, callbacks=[stop]).fit(X, y)
    assert sel.n_iter_ == stop_at
    assert sel.history_.stopped_by_callback and sel.history_.stopped_early
    assert len(sel.loss_curve_) == stop_at
    proba = sel.predict_proba(X)
    assert np.isfinite(proba).all()
    assert sel.score(X, y) > 0.5


def test_stopping_during_selection_keeps_the_panel_of_the_scores():
    X, y = make_data()

    class StopEarly(Callback):
        def on_epoch_end(self, info):
            return info.epoch == 2

    sel = YOTOSelector(**PARAMS, callbacks=[StopEarly()]).fit(X, y)
    assert sel.n_iter_ == 2 and sel.history_.stopped_by_callback
    assert len(np.unique(sel.support_)) == sel.k_
    assert sel.predict(X).shape == (len(X),)


def test_raising_aborts_the_fit_and_leaves_the_estimator_unfitted():
    X, y = make_data()

    class Pruned(Exception):
        pass

    def prune(info):
        if info.epoch == 3:
            raise Pruned

    sel = YOTOSelector(**PARAMS).fit(X, y)  # a previous fit must not survive
    sel.set_params(callbacks=[prune])
    with pytest.raises(Pruned):
        sel.fit(X, y)
    with pytest.raises(NotFittedError):
        sel.predict(X)


def test_callbacks_leave_the_fit_unchanged():
    X, y = make_data()
    plain = YOTOSelector(**PARAMS).fit(X, y)
    logged = YOTOSelector(**PARAMS, callbacks=[EpochLogger()]).fit(X, y)
    np.testing.assert_array_equal(plain.support_, logged.support_)
    np.testing.assert_array_equal(plain.predict_proba(X), logged.predict_proba(X))


def test_non_callable_callback_is_refused():
    X, y = make_data()
    with pytest.raises(InvalidParameterError, match="entry 1 is str"):
        YOTOSelector(**PARAMS, callbacks=[EpochLogger(), "log"]).fit(X, y)
    with pytest.raises(InvalidParameterError, match="'callbacks' parameter"):
        YOTOSelector(**PARAMS, callbacks=print).fit(X, y)


def test_callbacks_clone_into_searches_and_are_not_saved(tmp_path):
    X, y = make_data()
    seen = []
    est = YOTOSelector(**dict(PARAMS, max_iter=3), callbacks=[seen.append])
    assert clone(est).get_params()["callbacks"][0] == seen.append
    search = GridSearchCV(est, {"k": [2, 3]}, cv=2).fit(X, y)
    assert search.best_estimator_.k_ in (2, 3)
    assert len(seen) == 3 * (2 * 2 + 1)  # 3 epochs x (4 folds + the refit)
    path = tmp_path / "m.safetensors"
    search.best_estimator_.save(path)
    assert YOTOSelector.load(path).get_params()["callbacks"] is None


def test_optuna_study_prunes_bad_trials():
    """An in-process Optuna study: trials report the validation score every epoch
    and the pruner stops the hopeless ones (the way Optuna integrations work)."""
    optuna = pytest.importorskip("optuna")
    X, y = make_data(n=240)
    X_val, y_val = make_data(n=120, seed=1)
    optuna.logging.set_verbosity(optuna.logging.WARNING)

    def objective(trial):
        def report(info):
            trial.report(info.validation_score, info.epoch)
            if trial.should_prune():
                raise optuna.TrialPruned()

        # a learning rate of 1e-6 barely moves the heads: chance-level scores
        lr = trial.suggest_categorical("learning_rate", [1e-6, 1e-2])
        sel = YOTOSelector(
            **dict(PARAMS, max_iter=20, learning_rate=lr, score_learning_rate=0.05),
            callbacks=[report],
        )
        return sel.fit(X, y).score(X_val, y_val)

    sampler = optuna.samplers.GridSampler({"learning_rate": [1e-6, 1e-2]}, seed=0)
    pruner = optuna.pruners.ThresholdPruner(lower=0.6, n_warmup_steps=5)
    study = optuna.create_study(direction="maximize", sampler=sampler, pruner=pruner)
    study.optimize(objective, n_trials=2)
    states = {t.params["learning_rate"]: t.state for t in study.trials}
    assert states[1e-6] == optuna.trial.TrialState.PRUNED
    assert states[1e-2] == optuna.trial.TrialState.COMPLETE
    assert study.best_params == {"learning_rate": 1e-2}
    assert study.best_value > 0.8
    pruned = next(t for t in study.trials if t.state.name == "PRUNED")
    assert max(pruned.intermediate_values) < 20  # it stopped long before max_iter
