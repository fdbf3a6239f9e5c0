"""Same random_state -> bit-identical panels and predictions, in any process."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
import torch
from sklearn.model_selection import GridSearchCV, cross_validate

from yoto_sklearn import YOTOSelector

from .conftest import FAST as BASE_FAST

FAST = dict(BASE_FAST, max_iter=3, early_stopping=True, device="cpu", n_threads=1)


def _data(n=80, g=20, seed=0):
    rng = np.random.default_rng(seed)
    y = np.arange(n) % 3
    X = rng.normal(size=(n, g))
    X[:, :3] += y[:, None]
    return X, y


def _fingerprint(sel, X):
    return (sel.support_, sel.scores_, sel.predict_proba(X), sel.loss_curve_)


def _assert_identical(a, b):
    for u, v in zip(a, b, strict=True):
        np.testing.assert_array_equal(u, v)


@pytest.mark.parametrize("sparse", [False, True])
@pytest.mark.parametrize("early_stopping", [False, True])
def test_repeated_fits_are_bit_identical(sparse, early_stopping):
    X, y = _data()
    Xin = sp.csr_matrix(X) if sparse else X
    params = {**FAST, "early_stopping": early_stopping}
    a = _fingerprint(YOTOSelector(**params).fit(Xin, y), Xin)
    b = _fingerprint(YOTOSelector(**params).fit(Xin, y), Xin)
    _assert_identical(a, b)


def test_fit_leaves_global_rngs_and_threads_alone():
    X, y = _data()
    np_state = np.random.get_state()[1].copy()  # noqa: NPY002
    torch_state = torch.get_rng_state().clone()
    threads = torch.get_num_threads()
    other = 1 if threads > 1 else 2
    YOTOSelector(**{**FAST, "n_threads": other}).fit(X, y).predict(X)
    np.testing.assert_array_equal(np.random.get_state()[1], np_state)  # noqa: NPY002
    assert torch.equal(torch.get_rng_state(), torch_state)
    assert torch.get_num_threads() == threads


def test_thread_setting_restored_after_failed_fit():
    threads = torch.get_num_threads()
    other = 1 if threads > 1 else 2
    X, y = _data()
    with pytest.raises(ValueError):
        YOTOSelector(**{**FAST, "n_threads": other}).fit(X, np.zeros(len(y)))
    assert torch.get_num_threads() == threads


def test_grid_search_same_result_for_any_n_jobs():
    X, y = _data(n=90)
    results = []
    for n_jobs in (1, 2):
        gs = GridSearchCV(YOTOSelector(**FAST), {"k": [2, 4]}, cv=3, n_jobs=n_jobs).fit(
            X, y
        )
        results.append(gs)
    a, b = results
    for key in [k for k in a.cv_results_ if k.startswith("split")]:
        np.testing.assert_array_equal(a.cv_results_[key], b.cv_results_[key])
    assert a.best_params_ == b.best_params_
    best_a, best_b = a.best_estimator_, b.best_estimator_
    _assert_identical(_fingerprint(best_a, X), _fingerprint(best_b, X))


def test_fold_models_bit_identical_across_processes():
    # Large enough that torch would split reductions over threads: with the
    # default n_threads=None the fold models of n_jobs=1 (main process, all cores)
    # and n_jobs=2 (joblib workers limited to fewer threads) can differ in the last
    # bits; n_threads pins the count, so they do not.
    rng = np.random.default_rng(0)
    X = rng.normal(size=(160, 200))
    y = (X[:, 0] + X[:, 1] > 0).astype(int)
    params = {**FAST, "hidden_layer_sizes": (64,), "batch_size": 64, "max_iter": 2}
    fits = []
    for n_jobs in (1, 2):
        cv = cross_validate(
            YOTOSelector(**params), X, y, cv=2, n_jobs=n_jobs, return_estimator=True
        )
        fits.append(cv["estimator"])
    for a, b in zip(*fits, strict=True):
        _assert_identical(_fingerprint(a, X), _fingerprint(b, X))


def test_auto_threads_runs_small_networks_on_one_thread():
    from yoto_sklearn._training import auto_threads

    assert auto_threads("auto", 1_000, [256]) == 1
    assert auto_threads("auto", 20_000, [256]) is None  # atlas-sized: torch's setting
    assert auto_threads("auto", 20_000, [64]) == 1  # narrow first layer: small
    assert auto_threads(3, 20, [8]) == 3 and auto_threads(None, 20, [8]) is None


def test_auto_threads_trains_on_one_thread_and_restores_setting():
    from yoto_sklearn.callbacks import Callback

    class Threads(Callback):
        seen: list[int] = []

        def on_epoch_end(self, info):
            self.seen.append(torch.get_num_threads())

    X, y = _data()
    threads = torch.get_num_threads()
    torch.set_num_threads(2)  # a setting "auto" must override on a small network
    try:
        spy = Threads()
        auto = YOTOSelector(**{**FAST, "n_threads": "auto"}, callbacks=[spy]).fit(X, y)
        assert spy.seen and set(spy.seen) == {1}
        assert torch.get_num_threads() == 2
        one = YOTOSelector(**FAST).fit(X, y)
        _assert_identical(_fingerprint(auto, X), _fingerprint(one, X))
        spy.seen.clear()
        YOTOSelector(**{**FAST, "n_threads": None}, callbacks=[spy]).fit(X, y)
        assert set(spy.seen) == {2}  # None keeps the caller's setting
        assert YOTOSelector().n_threads == "auto"
    finally:
        torch.set_num_threads(threads)
