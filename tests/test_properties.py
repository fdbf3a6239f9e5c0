"""Property-based tests: any small problem either fits or raises a documented error.

Profile ``yoto-ci`` (default) runs 25 derandomised examples; set
``YOTO_HYPOTHESIS_PROFILE=yoto-thorough`` for 300 random ones.
"""

from __future__ import annotations

import os
import re
import warnings

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from yoto_sklearn import YOTOSelector

settings.register_profile(
    "yoto-ci",
    max_examples=25,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
settings.register_profile(
    "yoto-thorough",
    max_examples=300,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
PROFILE = settings.get_profile(os.environ.get("YOTO_HYPOTHESIS_PROFILE", "yoto-ci"))

# The errors a valid call may still meet on such data (all in docs/reliability.md).
DOCUMENTED = re.compile(
    r"has only one class|has no observed label|training sample\(s\) left|"
    r"minimum of 2 is required"
)
ALPHABETS = {
    "int": lambda c: np.arange(c) * 7 - 3,
    "str": lambda c: np.array(["B cell", "T", "NK", "mono", "DC"][:c], dtype=object),
    "unicode": lambda c: np.array(["α", "β", "γ", "δ", "ε"][:c]),
    "bool": lambda c: np.array([False, True])[: min(c, 2)],
    "float_codes": lambda c: np.arange(c, dtype=np.float64),
}


@st.composite
def problems(draw):
    n = draw(st.integers(2, 48))
    g = draw(st.integers(1, 12))
    seed = draw(st.integers(0, 2**31 - 1))
    rng = np.random.default_rng(seed)
    density = draw(st.sampled_from([1.0, 0.5, 0.1, 0.0]))
    X = rng.normal(size=(n, g)) * (rng.random((n, g)) < density)
    container = draw(st.sampled_from(["dense", "csr", "csc", "float32"]))
    n_tasks = draw(st.integers(1, 3))
    columns, kinds = {}, []
    for t in range(n_tasks):
        kind = draw(st.sampled_from(["regression", *ALPHABETS]))
        missing = draw(st.sampled_from([0.0, 0.3, 0.8]))
        if kind == "regression":
            col = pd.Series(rng.normal(3, 2, size=n))
        else:
            classes = ALPHABETS[kind](draw(st.integers(2, 4)))
            col = pd.Series(classes[rng.integers(0, len(classes), n)])
        miss = rng.random(n) < missing
        if miss.any():
            col = col.astype(object) if col.dtype.kind in "biuU" else col
            col[miss] = None if col.dtype == object else np.nan
        columns[f"t{t}"] = col
        kinds.append("regression" if kind == "regression" else "classification")
    y = pd.DataFrame(columns)
    if container == "csr":
        X = sp.csr_matrix(X)
    elif container == "csc":
        X = sp.csc_matrix(X)
    elif container == "float32":
        X = X.astype(np.float32)
    params = dict(
        k=draw(st.integers(1, 15)),
        early_stopping=draw(st.booleans()),
        batch_norm=draw(st.booleans()),
        relaxation=draw(st.sampled_from(["sigmoid", "softmax"])),
        batch_size=draw(st.sampled_from([2, 8, 64])),
        # explicit types, or the per-column auto-detection
        task_types=kinds if draw(st.booleans()) else None,
    )
    return X, y, params


@pytest.mark.filterwarnings("ignore::UserWarning")
@settings(PROFILE)
@given(problems())
def test_any_problem_fits_or_raises_a_documented_error(problem):
    X, y, params = problem
    n, g = X.shape
    sel = YOTOSelector(
        max_iter=2,
        hidden_layer_sizes=(8,),
        random_state=0,
        device="cpu",
        n_threads=1,
        **params,
    )
    target = y.iloc[:, 0] if y.shape[1] == 1 else y
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            sel.fit(X, target)
    except ValueError as exc:
        assert DOCUMENTED.search(str(exc)), str(exc)
        event(f"documented error: {DOCUMENTED.search(str(exc)).group(0)}")
        assert not [a for a in vars(sel) if a.endswith("_")]
        return
    event("fitted")
    k = min(params["k"], g)
    assert sel.k_ == k
    assert len(sel.support_) == k and len(np.unique(sel.support_)) == k
    assert sel.get_support().sum() == k
    assert sel.transform(X).shape == (n, k)
    pred = sel.predict(X)
    assert pred.shape == ((n,) if y.shape[1] == 1 else (n, y.shape[1]))
    pred = pred.reshape(n, -1)
    probas = sel.predict_proba(X) if "classification" in sel.task_types_ else None
    if probas is not None and y.shape[1] == 1:
        probas = [probas]
    for j, task in enumerate(sel.tasks_):
        column = pred[:, j]
        if task.kind == "classification":
            assert set(column.tolist()) <= set(task.classes.tolist())
            proba = probas[j]
            assert proba.shape == (n, len(task.classes))
            assert np.isfinite(proba).all()
            np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-12)
        else:
            assert np.isfinite(column.astype(np.float64)).all()
