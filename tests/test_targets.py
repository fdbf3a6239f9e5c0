"""The target side: the type rule, encoding, per-task options, the task-kind table."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from yoto_sklearn._targets import (
    TASK_KINDS,
    TaskSpec,
    class_weights,
    detect_task_type,
    encode_targets,
    match_task_columns,
    per_task,
    resolve_task_types,
    resolve_task_weights,
    strata,
)


@pytest.mark.parametrize(
    ("values", "kind"),
    [
        (["a", "b", None], "classification"),
        (pd.Categorical(["x", "y"]), "classification"),
        ([True, False], "classification"),
        ([0.0, 1.0, np.nan], "classification"),
        (np.arange(10) % 3, "classification"),
        ([0.5, 1.5], "regression"),
        (np.arange(200), "regression"),  # whole numbers, > 100 values (warns)
    ],
)
def test_detect_task_type(values, kind, recwarn):
    assert detect_task_type(pd.Series(values, name="c")) == kind
    many_whole_numbers = len(values) > 100
    assert bool([w for w in recwarn if "whole numbers" in str(w.message)]) == (
        many_whole_numbers
    )


def test_detect_task_type_refuses_dates():
    with pytest.raises(TypeError, match="neither labels"):
        detect_task_type(pd.Series(pd.to_datetime(["2024-01-01"]), name="d"))


def test_encode_targets_codes_classes_and_standardises_values():
    y = pd.DataFrame({"t": ["b", None, "a", "b"], "v": [1.0, 2.5, np.nan, 5.5]})
    tasks, Y = encode_targets(y, 4, None)
    assert [t.kind for t in tasks] == ["classification", "regression"]
    assert list(tasks[0].classes) == ["a", "b"]
    np.testing.assert_array_equal(Y[:, 0], [1, np.nan, 0, 1])
    assert tasks[1].mean == pytest.approx(3.0)
    observed = Y[~np.isnan(Y[:, 1]), 1]
    assert observed.mean() == pytest.approx(0.0, abs=1e-6)
    assert observed.std() == pytest.approx(1.0, abs=1e-6)


def test_per_task_option_resolver():
    names = ["a", "b"]
    assert per_task(None, names, "w", 1.0) == [1.0, 1.0]
    assert per_task({"b": 2.0}, names, "w", 1.0) == [1.0, 2.0]
    assert per_task("x", names, "w", None, broadcast=str) == ["x", "x"]
    with pytest.raises(ValueError, match="w names unknown tasks \\['c'\\]"):
        per_task({"c": 1}, names, "w", 1.0)
    with pytest.raises(ValueError, match="w has 3 entries but y has 2"):
        per_task([1, 2, 3], names, "w", 1.0)
    assert resolve_task_types("auto", names) == [None, None]
    assert resolve_task_types({"a": "regression"}, names) == ["regression", None]
    with pytest.raises(ValueError, match="Unknown task type 'x'"):
        resolve_task_types(["x", None], names)
    assert resolve_task_weights(np.array([1, 3]), names) == [1.0, 3.0]
    with pytest.raises(ValueError, match="not all zero"):
        resolve_task_weights([0, 0], names)


def test_match_task_columns_by_name_or_position():
    frame = pd.DataFrame({"b": [1], "a": [2]})
    assert list(match_task_columns(frame, frame, ["a", "b"]).columns) == ["a", "b"]
    array = np.array([[1, 2]])
    same = match_task_columns(array, frame, ["x", "y"])
    assert same is frame
    with pytest.raises(ValueError, match="are not the tasks seen at fit"):
        match_task_columns(frame, frame, ["a", "c"])


def test_class_weights_and_strata():
    spec = TaskSpec("t", "classification", np.array(["a", "b", "c"]))
    codes = np.r_[np.zeros(6), np.ones(3), np.nan]
    np.testing.assert_allclose(class_weights(spec, codes, "balanced"), [0.75, 1.5, 4.5])
    assert class_weights(spec, codes, None) is None
    Y = np.c_[np.r_[np.zeros(5), np.ones(5)], [0, 1, 2, 0, 1, 2, 0, 1, 2, np.nan]]
    tasks = [TaskSpec("two", "classification", np.array([0, 1]))]
    tasks.append(TaskSpec("three", "classification", np.array([0, 1, 2])))
    np.testing.assert_array_equal(strata(tasks, Y), [0, 1, 2, 0, 1, 2, 0, 1, 2, -1])


def test_task_kind_table():
    spec = TaskSpec("t", "classification", np.array(["a", "b"]))
    rule = TASK_KINDS["classification"]
    out = np.array([[2.0, 0.0], [0.0, 1.0]])
    assert list(rule.predict(spec, out)) == ["a", "b"]
    np.testing.assert_allclose(rule.proba(out).sum(axis=1), 1.0)
    assert rule.score(np.array(["a", "a"], dtype=object), np.array(["a", "b"])) == 0.5
    reg = TaskSpec("v", "regression", mean=10.0, std=2.0)
    rule = TASK_KINDS["regression"]
    np.testing.assert_allclose(rule.predict(reg, np.array([[1.0], [-1.0]])), [12, 8])
    assert rule.proba(out) is None and reg.n_outputs == 1 and spec.n_outputs == 2
    assert np.isnan(rule.score(np.array([1.0]), np.array([1.0])))
