"""Behaviour tests of YOTOSelector (issue 2): one test per promised behaviour."""

import pickle
import warnings

import joblib
import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
import torch
from sklearn.base import clone
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import Pipeline

from yoto_sklearn import YOTOSelector, make_masked_scorer, masked_f1_macro_scorer

from .conftest import FAST, make_data

# Enough training for the informative genes to win on the small generated data.
TRAINED = dict(FAST, k=4, max_iter=40, hidden_layer_sizes=(16,))


def test_panel_has_exactly_k_genes(data):
    X, y = data
    sel = YOTOSelector(**FAST).fit(X, y)
    assert sel.get_support().sum() == 3
    assert len(set(sel.support_)) == 3
    assert sel.transform(X).shape == (X.shape[0], 3)
    np.testing.assert_array_equal(sel.get_support(indices=True), np.sort(sel.support_))
    assert sel.ranking_[sel.support_].tolist() == [1, 2, 3]
    # support_ is the stable-tie-broken top-k of scores_
    np.testing.assert_array_equal(
        sel.support_, np.argsort(-sel.scores_, kind="stable")[:3]
    )


def test_selects_the_informative_genes():
    # 4 marker genes among 40: a random panel of 4 holds 0.4 of them on average.
    X, y = make_data(n=300, n_features=40, n_informative=4, seed=1)
    found, scores = [], []
    for seed in range(3):
        sel = YOTOSelector(**dict(TRAINED, random_state=seed)).fit(X, y)
        found.append(len(set(sel.support_) & {0, 1, 2, 3}))
        scores.append(sel.score(X, y))
    assert np.mean(found) >= 3
    assert np.mean(scores) > 0.8


def test_predictions_ignore_non_selected_columns(data):
    X, y = data
    sel = YOTOSelector(**FAST).fit(X, y)
    X2 = X.copy()
    others = np.setdiff1d(np.arange(X.shape[1]), sel.support_)
    X2[:, others] = (
        np.random.default_rng(5).normal(size=(X.shape[0], len(others))) * 1e3
    )
    np.testing.assert_array_equal(sel.predict(X), sel.predict(X2))
    np.testing.assert_array_equal(sel.predict_proba(X), sel.predict_proba(X2))
    # the fitted predictor's first layer has only k inputs: O(k * hidden) per cell
    first = sel.module_.linears[0]
    assert first.weight.shape == (8, 3)


def test_pipeline_with_logistic_regression(data):
    X, y = data
    pipe = Pipeline(
        [("yoto", YOTOSelector(**FAST)), ("clf", LogisticRegression(max_iter=500))]
    ).fit(X, y)
    assert pipe.named_steps["clf"].n_features_in_ == 3
    assert pipe.predict(X).shape == y.shape


def test_grid_search_over_k_and_temperature(data):
    X, y = data
    grid = GridSearchCV(
        YOTOSelector(**FAST), {"k": [2, 5], "temperature": [0.1, 0.5]}, cv=3
    ).fit(X, y)
    assert grid.best_params_["k"] in (2, 5)
    assert np.all(np.isfinite(grid.cv_results_["mean_test_score"]))
    assert grid.best_estimator_.k_ == grid.best_params_["k"]


def test_grid_search_with_nan_labels_and_masked_scorer(data):
    X, y = data
    rng = np.random.default_rng(0)
    Y = np.column_stack([y, (X[:, 0] > 0).astype(float)]).astype(float)
    Y[rng.random(len(Y)) < 0.3, 1] = np.nan
    grid = GridSearchCV(
        YOTOSelector(**FAST),
        {"temperature": [0.1, 0.5]},
        cv=3,
        scoring=masked_f1_macro_scorer,
    ).fit(X, Y)
    assert np.all(np.isfinite(grid.cv_results_["mean_test_score"]))


def test_clone_keeps_parameters_unchanged():
    sel = YOTOSelector(k=7, hidden_layer_sizes=[32, 16], task_weights=[1.0, 2.0])
    cloned = clone(sel)
    assert cloned.get_params() == sel.get_params()
    assert cloned.hidden_layer_sizes == [32, 16]
    assert isinstance(cloned.hidden_layer_sizes, list)


def test_pickle_and_joblib_round_trip(data, tmp_path):
    X, y = data
    sel = YOTOSelector(**FAST).fit(X, y)
    again = pickle.loads(pickle.dumps(sel))
    np.testing.assert_array_equal(again.predict_proba(X), sel.predict_proba(X))
    path = tmp_path / "sel.joblib"
    joblib.dump(sel, path)
    loaded = joblib.load(path)
    np.testing.assert_array_equal(loaded.predict(X), sel.predict(X))
    np.testing.assert_array_equal(loaded.support_, sel.support_)


def test_multi_output_with_nan_labels(data):
    X, y = data
    rng = np.random.default_rng(1)
    Y = pd.DataFrame(
        {
            "type": pd.Series(np.array(["a", "b", "c"])[y], dtype=object),
            "flag": (X[:, 1] > 0).astype(float),
        }
    )
    Y.loc[rng.random(len(Y)) < 0.4, "type"] = None
    Y.loc[rng.random(len(Y)) < 0.4, "flag"] = np.nan
    sel = YOTOSelector(**FAST).fit(X, Y)
    assert sel.task_names_ == ["type", "flag"]
    assert sel.task_types_ == ["classification", "classification"]
    assert all(np.isfinite(sel.loss_curve_))
    pred = sel.predict(X)
    assert pred.shape == (len(X), 2)
    assert set(pred[:, 0]) <= {"a", "b", "c"}
    scores = sel.score_tasks(X, Y)
    assert set(scores) == {"type", "flag"} and all(np.isfinite(list(scores.values())))


def test_batch_without_labels_contributes_zero_loss():
    from yoto_sklearn._training import TaskLoss, multitask_loss

    logits = torch.randn(4, 3, requires_grad=True)
    reg = torch.randn(4, 1, requires_grad=True)
    yb = torch.tensor([[np.nan, 0.5]] * 4, dtype=torch.float32)
    loss = multitask_loss(
        [logits, reg],
        yb,
        [
            TaskLoss("classification", 1.0, torch.ones(3)),
            TaskLoss("regression", 1.0),
        ],
    )
    assert torch.isfinite(loss)
    loss.backward()
    assert torch.all(logits.grad == 0)
    assert torch.isfinite(reg.grad).all() and reg.grad.abs().sum() > 0
    yb_all_missing = torch.full((4, 2), float("nan"))
    zero = multitask_loss(
        [logits, reg],
        yb_all_missing,
        [TaskLoss("classification", 1.0), TaskLoss("regression", 1.0)],
    )
    assert float(zero.detach()) == 0.0


@pytest.mark.parametrize(
    "scheme, expected",
    [
        # 90 cells of class 0 and 10 of class 1 among 100 labelled training cells
        ("balanced", [100 / (2 * 90), 100 / (2 * 10)]),
        ("sqrt", [np.sqrt(100 / (2 * 90)), np.sqrt(100 / (2 * 10))]),
        (None, None),
    ],
)
def test_class_weight_schemes(scheme, expected):
    from yoto_sklearn._targets import TaskSpec, class_weights

    codes = np.r_[np.zeros(90), np.ones(10), np.full(5, np.nan)]
    task = TaskSpec("t", "classification", np.array([0, 1]))
    cw = class_weights(task, codes, scheme)
    if expected is None:
        assert cw is None
    else:
        np.testing.assert_allclose(cw, expected, rtol=1e-12)
    assert class_weights(TaskSpec("r", "regression"), codes, scheme) is None
    # the default is the square-root weighting (issue 9)
    assert YOTOSelector().class_weight == "sqrt"


def test_mixed_classification_and_regression(data):
    X, y = data
    Y = pd.DataFrame(
        {"cell_type": np.array(["T cell", "B cell", "NK"])[y], "score": X[:, 0] * 2.5}
    )
    sel = YOTOSelector(**dict(TRAINED, k=5)).fit(X, Y)
    assert sel.task_types_ == ["classification", "regression"]
    assert list(sel.classes_[0]) == ["B cell", "NK", "T cell"]
    assert sel.classes_[1] is None
    pred = sel.predict(X)
    assert pred.dtype == object and pred.shape == (len(X), 2)
    proba = sel.predict_proba(X)
    assert proba[1] is None
    np.testing.assert_allclose(proba[0].sum(axis=1), 1.0)
    r2 = sel.score_tasks(X, Y)["score"]
    assert r2 > 0.3


def test_task_type_detection_and_override(data):
    X, y = data
    integral_float = y.astype(float)
    sel = YOTOSelector(**FAST).fit(X, integral_float)
    assert sel.task_types_ == ["classification"]
    sel = YOTOSelector(**dict(FAST, task_types="regression")).fit(X, integral_float)
    assert sel.task_types_ == ["regression"] and sel.classes_ is None
    Y = pd.DataFrame({"a": y, "b": integral_float})
    sel = YOTOSelector(**dict(FAST, task_types={"b": "regression"})).fit(X, Y)
    assert sel.task_types_ == ["classification", "regression"]


def test_labels_are_not_assumed_zero_to_k(data):
    X, y = data
    labels = np.array([10, -3, 7])[y]
    sel = YOTOSelector(**FAST).fit(X, labels)
    np.testing.assert_array_equal(sel.classes_, [-3, 7, 10])
    assert set(sel.predict(X)) <= {-3, 7, 10}
    bools = y == 0
    sel = YOTOSelector(**FAST).fit(X, bools)
    assert sel.predict(X).dtype == bool


@pytest.mark.parametrize("fmt", ["csr", "csc"])
def test_sparse_input_matches_dense(data, fmt):
    X, y = data
    X = np.where(np.abs(X) > 0.8, X, 0.0)
    Xs = sp.csr_matrix(X) if fmt == "csr" else sp.csc_matrix(X)
    dense = YOTOSelector(**FAST).fit(X, y)
    sparse = YOTOSelector(**FAST).fit(Xs, y)
    np.testing.assert_array_equal(dense.support_, sparse.support_)
    np.testing.assert_allclose(sparse.predict_proba(Xs), dense.predict_proba(X))
    out = sparse.transform(Xs)
    assert sp.issparse(out) and out.shape == (len(X), 3)


def test_dataframe_feature_names_flow_through(data):
    X, y = data
    cols = [f"gene{i}" for i in range(X.shape[1])]
    df = pd.DataFrame(X, columns=cols)
    sel = YOTOSelector(**FAST).fit(df, y)
    names = sel.get_feature_names_out()
    assert list(names) == [cols[i] for i in np.sort(sel.support_)]
    sel.set_output(transform="pandas")
    out = sel.transform(df)
    assert isinstance(out, pd.DataFrame) and list(out.columns) == list(names)


def test_anndata_input_with_obs_targets(data):
    anndata = pytest.importorskip("anndata")
    X, y = data
    adata = anndata.AnnData(
        X=sp.csr_matrix(X.astype(np.float32)),
        obs=pd.DataFrame(
            {"cell_type": pd.Categorical(np.array(["x", "y", "z"])[y])},
            index=[f"c{i}" for i in range(len(X))],
        ),
        var=pd.DataFrame(index=[f"g{i}" for i in range(X.shape[1])]),
    )
    sel = YOTOSelector(**FAST).fit(adata, "cell_type")
    assert set(sel.get_feature_names_out()) <= set(adata.var_names)
    assert sel.predict(adata).shape == (len(X),)
    assert 0.0 <= sel.score(adata, "cell_type") <= 1.0
    with pytest.raises(ValueError, match="not found in adata.obs"):
        YOTOSelector(**FAST).fit(adata, "nope")
    # in a Pipeline, targets are arrays (scikit-learn splits y, not adata.obs)
    pipe = Pipeline(
        [("yoto", YOTOSelector(**FAST)), ("clf", LogisticRegression(max_iter=500))]
    ).fit(adata, y)
    assert pipe.predict(adata).shape == (len(X),)
    assert sp.issparse(pipe.named_steps["yoto"].transform(adata))


def test_fit_leaves_global_rng_untouched(data):
    X, y = data
    # the legacy global RNG is exactly what must stay untouched
    np.random.seed(123)  # noqa: NPY002
    torch.manual_seed(123)
    np_state = np.random.get_state()[1].copy()  # noqa: NPY002
    torch_state = torch.get_rng_state().clone()
    for seed in (0, None):
        YOTOSelector(**dict(FAST, random_state=seed)).fit(X, y)
    np.testing.assert_array_equal(np.random.get_state()[1], np_state)  # noqa: NPY002
    assert torch.equal(torch.get_rng_state(), torch_state)


def test_same_random_state_same_panel_and_predictions(data):
    X, y = data
    a = YOTOSelector(**FAST).fit(X, y)
    b = YOTOSelector(**FAST).fit(X, y)
    np.testing.assert_array_equal(a.support_, b.support_)
    np.testing.assert_array_equal(a.scores_, b.scores_)
    np.testing.assert_array_equal(a.predict_proba(X), b.predict_proba(X))
    c = YOTOSelector(**dict(FAST, random_state=1)).fit(X, y)
    assert not np.array_equal(a.scores_, c.scores_)


def test_k_larger_than_n_features_keeps_all_with_warning(data):
    X, y = data
    with pytest.warns(UserWarning, match="k=50 is greater than n_features=30"):
        sel = YOTOSelector(**dict(FAST, k=50)).fit(X, y)
    assert sel.k_ == 30 and sel.get_support().all()
    assert sel.transform(X).shape == X.shape


@pytest.mark.parametrize(
    "params, X_fn, y_fn, err, match",
    [
        ({"k": 0}, None, None, ValueError, "'k' parameter"),
        ({"temperature": 0.0}, None, None, ValueError, "'temperature' parameter"),
        ({"temperature": -1}, None, None, ValueError, "'temperature' parameter"),
        ({}, lambda X: np.where(X > 2, np.nan, X), None, ValueError, "NaN"),
        ({}, lambda X: np.where(X > 2, np.inf, X), None, ValueError, "infinity"),
        ({}, None, lambda y: np.where(y == 0, np.inf, y), ValueError, "infinity"),
        ({}, None, lambda y: np.full(len(y), np.nan), ValueError, "no observed"),
        ({}, None, lambda y: np.zeros(len(y)), ValueError, "only one class"),
        ({}, None, lambda y: y[:-5], ValueError, "inconsistent numbers"),
        ({}, lambda X: X[:0], lambda y: y[:0], ValueError, "0 sample"),
    ],
)
def test_bad_input_gets_clear_error(data, params, X_fn, y_fn, err, match):
    X, y = data
    X_in = X_fn(X) if X_fn else X
    y_in = y_fn(y) if y_fn else y
    with pytest.raises(err, match=match):
        YOTOSelector(**dict(FAST, **params)).fit(X_in, y_in)


def test_inputs_are_not_modified(data):
    X, y = data
    Xc, yc = X.copy(), y.copy()
    sel = YOTOSelector(**FAST).fit(X, y)
    sel.predict(X)
    sel.score(X, y)
    sel.transform(X)
    np.testing.assert_array_equal(X, Xc)
    np.testing.assert_array_equal(y, yc)


def test_early_stopping_records_curves_and_restores_best(data):
    X, y = data
    sel = YOTOSelector(
        **dict(FAST, early_stopping=True, max_iter=40, n_iter_no_change=3)
    ).fit(X, y)
    h = sel.history_
    assert len(sel.loss_curve_) == sel.n_iter_ == len(sel.validation_loss_curve_)
    assert len(sel.validation_scores_) == sel.n_iter_
    if h.best_epoch is not None:
        best = h.best_epoch - 1
        refine = sel.validation_loss_curve_[h.selection_epochs :]
        assert sel.validation_loss_curve_[best] == pytest.approx(min(refine))
        assert sel.best_validation_score_ == sel.validation_scores_[best]


def test_verbose_shows_a_progress_bar(data, capsys):
    X, y = data
    YOTOSelector(**dict(FAST, verbose=1)).fit(X, y)
    assert "YOTO" in capsys.readouterr().err


def test_device_is_resolved_in_fit(data):
    X, y = data
    sel = YOTOSelector(**dict(FAST, device="auto"))
    assert sel.device == "auto"
    sel.fit(X, y)
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert sel.device_.startswith(expected)
    assert next(sel.module_.parameters()).device.type == "cpu"


def test_masked_scorer_where_builtin_scorer_gives_nan(data):
    X, y = data
    sel = YOTOSelector(**FAST).fit(X, y)
    y_nan = y.astype(float)
    y_nan[::4] = np.nan
    score = make_masked_scorer("accuracy")(sel, X, y_nan)
    assert np.isfinite(score)
    assert score == pytest.approx(
        np.mean(sel.predict(X)[~np.isnan(y_nan)] == y_nan[~np.isnan(y_nan)])
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert sel.score(X, y_nan) == pytest.approx(score)


def test_predict_proba_needs_a_classification_task(data):
    X, _ = data
    sel = YOTOSelector(**FAST).fit(X, X[:, 0] * 0.5 + 0.1)
    assert sel.task_types_ == ["regression"]
    with pytest.raises(ValueError, match="only regression tasks"):
        sel.predict_proba(X)
