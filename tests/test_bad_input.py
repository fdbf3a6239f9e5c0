"""Every bad input gets one clear error: the exact exception type and a message that
names the problem. The same table is in docs/reliability.md (regenerate it with
``python -m tests.test_bad_input``)."""

from __future__ import annotations

import tempfile
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import anndata as ad
import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
import torch
from sklearn.exceptions import NotFittedError
from sklearn.utils._param_validation import InvalidParameterError

from yoto_sklearn import YOTOSelector

from .conftest import FAST as BASE_FAST

FAST = dict(BASE_FAST, max_iter=2, device="cpu", n_threads=1)
N, G = 40, 6
_rng = np.random.default_rng(0)
X0 = _rng.normal(size=(N, G))
Y0 = np.arange(N) % 2
NAMES = [f"g{i}" for i in range(G)]


def _with(arr: np.ndarray, idx: tuple, value: Any) -> np.ndarray:
    out = arr.astype(np.float64 if isinstance(value, float) else arr.dtype, copy=True)
    out[idx] = value
    return out


def _adata(var_names: list[str] | None = None) -> ad.AnnData:
    obs = pd.DataFrame(
        {"ct": np.where(Y0 == 0, "B", "T")}, index=[f"c{i}" for i in range(N)]
    )
    a = ad.AnnData(X0.astype(np.float32), obs=obs)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        a.var_names = NAMES if var_names is None else var_names
    return a


def fit(X: Any = None, y: Any = None, **params: Any) -> Callable[[], Any]:
    """An action that fits YOTOSelector(**FAST, **params) on (X, y)."""
    X = X0 if X is None else X
    y = Y0 if y is None else y
    return lambda: YOTOSelector(**{**FAST, **params}).fit(X, y)


_FITTED: dict[str, YOTOSelector] = {}


def fitted(kind: str) -> YOTOSelector:
    """A fitted model, cached: 'array', 'frame', 'adata' or 'regression'."""
    if kind not in _FITTED:
        if kind == "array":
            model = YOTOSelector(**FAST).fit(X0, Y0)
        elif kind == "frame":
            model = YOTOSelector(**FAST).fit(pd.DataFrame(X0, columns=NAMES), Y0)
        elif kind == "adata":
            model = YOTOSelector(**FAST).fit(_adata(), "ct")
        elif kind == "named":
            model = YOTOSelector(**FAST).fit(
                X0, pd.DataFrame({"ct": Y0, "sick": Y0 == 1})
            )
        else:
            model = YOTOSelector(**FAST).fit(X0, X0[:, 0] * 1.5 + 0.1)
        _FITTED[kind] = model
    return _FITTED[kind]


def on_fitted(kind: str, method: str, X: Any, *args: Any) -> Callable[[], Any]:
    return lambda: getattr(fitted(kind), method)(X, *args)


FRAME = pd.DataFrame(X0, columns=NAMES)
_TMP = tempfile.gettempdir()
GPU = torch.cuda.is_available()
MPS = hasattr(torch.backends, "mps") and torch.backends.mps.is_available()


@dataclass
class Case:
    id: str
    what: str
    action: Callable[[], Any]
    exc: type[BaseException]
    match: str
    skip: str | None = None


# fmt: off
CASES = [
    # ---- parameters (checked by sklearn's _parameter_constraints at fit)
    Case("k_zero", "`k=0`", fit(k=0), InvalidParameterError,
         r"'k' parameter .* int in the range \[1, inf\)\. Got 0"),
    Case("k_float", "`k=2.5`", fit(k=2.5), InvalidParameterError,
         r"'k' parameter .* an int .*Got 2\.5"),
    Case("k_str", "`k='5'`", fit(k="5"), InvalidParameterError,
         r"'k' parameter .* an int .*Got '5'"),
    Case("k_bool", "`k=True`", fit(k=True), InvalidParameterError,
         r"'k' parameter .* an int .*Got True"),
    Case("temperature_zero", "`temperature=0`", fit(temperature=0),
         InvalidParameterError, r"'temperature' parameter .* range \(0\.0, inf\)"),
    Case("temperature_negative", "`temperature=-1`", fit(temperature=-1.0),
         InvalidParameterError, r"'temperature' parameter .*Got -1\.0"),
    Case("temperature_str", "`temperature='cold'`", fit(temperature="cold"),
         InvalidParameterError, r"'temperature' parameter .* a float"),
    Case("temperature_nan", "`temperature=nan`", fit(temperature=float("nan")),
         InvalidParameterError, r"'temperature' parameter .*Got nan"),
    Case("temperature_start_zero", "`temperature_start=0`",
         fit(temperature_start=0.0), InvalidParameterError,
         r"'temperature_start' parameter"),
    Case("hidden_empty", "`hidden_layer_sizes=()`", fit(hidden_layer_sizes=()),
         InvalidParameterError, r"'hidden_layer_sizes' .* non-empty sequence"),
    Case("hidden_zero", "`hidden_layer_sizes=(8, 0)`",
         fit(hidden_layer_sizes=(8, 0)), InvalidParameterError,
         r"'hidden_layer_sizes' .* positive ints\. Got \(8, 0\)"),
    Case("hidden_float", "`hidden_layer_sizes=(8.5,)`",
         fit(hidden_layer_sizes=(8.5,)), InvalidParameterError,
         r"'hidden_layer_sizes' .*Got \(8\.5,\)"),
    Case("hidden_str", "`hidden_layer_sizes='wide'`",
         fit(hidden_layer_sizes="wide"), InvalidParameterError,
         r"'hidden_layer_sizes' parameter"),
    Case("batch_size_one_batchnorm", "`batch_size=1` with BatchNorm",
         fit(batch_size=1), InvalidParameterError,
         r"'batch_size' .* at least 2 when batch_norm=True"),
    Case("dropout_one", "`dropout=1.0`", fit(dropout=1.0), InvalidParameterError,
         r"'dropout' parameter .* range \[0\.0, 1\.0\)"),
    Case("validation_fraction_one", "`validation_fraction=1.0`",
         fit(validation_fraction=1.0), InvalidParameterError,
         r"'validation_fraction' parameter"),
    Case("relaxation_unknown", "`relaxation='gumbel'`", fit(relaxation="gumbel"),
         InvalidParameterError, r"'relaxation' parameter .* among"),
    Case("class_weight_unknown", "`class_weight='bal'`", fit(class_weight="bal"),
         InvalidParameterError, r"'class_weight' parameter"),
    Case("task_types_unknown", "`task_types='clf'` (unknown task type)",
         fit(task_types="clf"), ValueError, r"Unknown task type 'clf'"),
    Case("task_types_not_container", "`task_types=3`", fit(task_types=3),
         InvalidParameterError, r"'task_types' parameter"),
    Case("task_types_length", "`task_types` list longer than the tasks",
         fit(task_types=["classification", "regression"]), ValueError,
         r"task_types has 2 entries but y has 1 task column"),
    Case("task_weights_negative", "`task_weights=[-1]`", fit(task_weights=[-1.0]),
         ValueError, r"task_weights must be finite, non-negative"),
    Case("task_weights_nan", "`task_weights=[nan]`",
         fit(task_weights=[float("nan")]), ValueError,
         r"task_weights must be finite"),
    Case("task_weights_zero", "`task_weights=[0]` (all zero)",
         fit(task_weights=[0.0]), ValueError, r"not all zero"),
    Case("task_weights_length", "`task_weights` with 2 entries for 1 task",
         fit(task_weights=[1.0, 2.0]), ValueError,
         r"task_weights has 2 entries but y has 1 task column"),
    Case("task_weights_unknown_name", "`task_weights={'nope': 1}`",
         fit(task_weights={"nope": 1.0}), ValueError,
         r"task_weights names unknown tasks \['nope'\]"),
    Case("task_weights_str", "`task_weights='heavy'`", fit(task_weights="heavy"),
         InvalidParameterError, r"'task_weights' parameter"),
    Case("device_unknown", "`device='gpu'`", fit(device="gpu"), ValueError,
         r"Unknown device 'gpu'"),
    Case("device_not_str", "`device=0`", fit(device=0), InvalidParameterError,
         r"'device' parameter"),
    Case("device_cuda_without_gpu", "`device='cuda'` on a machine without CUDA",
         fit(device="cuda"), ValueError, r"CUDA is not available",
         skip="a CUDA GPU is present" if GPU else None),
    Case("device_cuda_index", "`device='cuda:99'` (no such GPU)",
         fit(device="cuda:99"), ValueError,
         r"CUDA is not available|only \d+ CUDA device\(s\) are visible"),
    Case("device_mps_absent", "`device='mps'` where MPS is absent",
         fit(device="mps"), ValueError, r"MPS is not available",
         skip="MPS is available" if MPS else None),
    # ---- panel design (issue 10)
    Case("required_unknown_name", "`required_genes` naming a gene not in `X`",
         fit(X=FRAME, required_genes=["CD3E"]), ValueError,
         r"required_genes names 1 gene\(s\) not in X: \['CD3E'\]"),
    Case("required_names_without_names", "`required_genes` names, `X` without names",
         fit(required_genes=["g1"]), ValueError, r"X has no gene names"),
    Case("required_index_range", "`required_genes=[99]` (no such column)",
         fit(required_genes=[99]), ValueError, r"indices outside \[0, 6\)"),
    Case("required_duplicate", "`required_genes` listing a gene twice",
         fit(X=FRAME, required_genes=["g1", "g1"]), ValueError,
         r"required_genes lists \['g1'\] more than once"),
    Case("required_more_than_k", "more `required_genes` than `k`",
         fit(required_genes=[0, 1, 2, 3]), ValueError,
         r"required_genes lists 4 genes, more than k=3"),
    Case("required_mixed_types", "`required_genes` mixing names and indices",
         fit(X=FRAME, required_genes=["g1", 2]), TypeError,
         r"must hold only gene names \(str\) or only column indices"),
    Case("required_and_excluded", "a gene both required and excluded",
         fit(X=FRAME, required_genes=["g1"], excluded_genes=["g1"]), ValueError,
         r"Genes \['g1'\] are both required and excluded"),
    Case("excluded_leaves_fewer_than_k", "`excluded_genes` leaving fewer than `k`",
         fit(excluded_genes=[0, 1, 2, 3]), ValueError,
         r"k=3 but only 2 genes can be selected"),
    Case("expression_window_not_pair", "`expression_window=(1.0,)`",
         fit(expression_window=(1.0,)), ValueError, r"must be a pair \(low, high\)"),
    Case("expression_window_inverted", "`expression_window=(2, 1)`",
         fit(expression_window=(2.0, 1.0)), ValueError, r"low \(2.0\) is above high"),
    Case("binarize_negative", "`binarize=-1`", fit(binarize=-1.0),
         InvalidParameterError, r"'binarize' parameter"),
    # ---- X at fit
    Case("X_nan", "NaN in `X`", fit(X=_with(X0, (0, 0), np.nan)), ValueError,
         r"Input X contains NaN"),
    Case("X_inf", "inf in `X`", fit(X=_with(X0, (3, 2), np.inf)), ValueError,
         r"Input X contains infinity"),
    Case("X_inf_sparse", "inf in sparse `X`",
         fit(X=sp.csr_matrix(_with(X0, (3, 2), np.inf))), ValueError,
         r"Input X contains infinity"),
    Case("X_empty", "`X` with 0 rows", fit(X=np.empty((0, G)), y=np.empty(0)),
         ValueError, r"0 sample\(s\)"),
    Case("X_one_row", "`X` with 1 row", fit(X=X0[:1], y=Y0[:1]), ValueError,
         r"1 sample\(s\) .* minimum of 2"),
    Case("X_no_columns", "`X` with 0 columns", fit(X=np.empty((N, 0))),
         ValueError, r"0 feature\(s\)"),
    Case("X_1d", "1-D `X`", fit(X=X0[:, 0]), ValueError,
         r"Expected 2D array, got 1D array"),
    Case("X_3d", "3-D `X`", fit(X=X0[:, :, None]), ValueError, r"dim 3"),
    Case("X_ragged", "ragged nested lists as `X`",
         fit(X=[[1.0, 2.0]] * 39 + [[1.0]]), ValueError, r"inhomogeneous"),
    Case("X_strings", "string `X` (`dtype='<U...'`)", fit(X=X0.astype(str)),
         ValueError, r"X holds strings"),
    Case("X_object_strings", "object `X` holding strings",
         fit(X=np.where(X0 > 0, "hi", "lo").astype(object)), ValueError,
         r"X holds strings"),
    Case("X_frame_string_column", "DataFrame `X` with a text column",
         fit(X=FRAME.assign(g5=np.where(Y0 == 0, "B", "T"))), ValueError,
         r"non-numeric column\(s\) \['g5'\]"),
    Case("X_complex", "complex `X`", fit(X=X0.astype(complex)), ValueError,
         r"Complex data not supported"),
    Case("X_frame_duplicate_names", "DataFrame `X` with duplicate column names",
         fit(X=FRAME.set_axis(["g0", "g0", "g1", "g2", "g3", "g4"], axis=1)),
         ValueError, r"Duplicate feature names in the DataFrame columns: 'g0'"),
    Case("X_frame_mixed_names", "DataFrame `X` with non-string (mixed) names",
         fit(X=FRAME.set_axis(["g0", 1, "g2", "g3", "g4", "g5"], axis=1)),
         TypeError, r"Feature names are only supported if all input features "
         r"have string names"),
    Case("X_adata_duplicate_var_names", "AnnData with duplicate `var_names`",
         fit(X=_adata(["g0", "g0", "g1", "g2", "g3", "g4"]), y="ct"), ValueError,
         r"Duplicate feature names in AnnData var_names: 'g0'.*var_names_make_uniq"),
    Case("X_adata_missing_obs_column", "AnnData `y` naming a missing obs column",
         fit(X=_adata(), y="cell_type"), ValueError,
         r"\['cell_type'\] not found in adata\.obs"),
    Case("X_adata_unknown_obs_columns_list",
         "AnnData `y` as a list of names, not all obs columns, not one per cell",
         fit(X=_adata(), y=["ct", "phase"]), ValueError,
         r"\['phase'\] not found in adata\.obs .*one label per cell \(40\)"),
    Case("X_adata_y_other_cell_names",
         "AnnData with a `y` Series indexed by other cell names",
         fit(X=_adata(), y=pd.Series(Y0, index=[f"x{i}" for i in range(N)])),
         ValueError, r"y is indexed by cell names that are not adata\.obs_names"),
    Case("X_beyond_float32", "a float64 value beyond the float32 range in `X`",
         fit(X=_with(X0, (0, 0), 1e39)), ValueError,
         r"values up to 1e\+39, beyond the float32 range"),
    # ---- y at fit
    Case("y_none", "`y=None`", lambda: YOTOSelector(**FAST).fit(X0, None),
         ValueError, r"requires y to be passed"),
    Case("y_length", "`y` shorter than `X`", fit(y=Y0[:-1]), ValueError,
         r"inconsistent numbers of samples: X has 40, y has 39"),
    Case("y_inf_class", "inf in a float label column", fit(y=_with(Y0, 0, np.inf)),
         ValueError, r"'task0' contains infinity"),
    Case("y_inf_regression", "inf in a regression target",
         fit(y=_with(X0[:, 0], 0, np.inf)), ValueError,
         r"'task0' contains infinity"),
    Case("y_all_missing", "a task with no observed label",
         fit(y=np.column_stack([Y0, np.full(N, np.nan)])), ValueError,
         r"'task1' has no observed label"),
    Case("y_one_class", "a classification task with one class",
         fit(y=np.where(np.arange(N) < 5, np.nan, 1.0)), ValueError,
         r"'task0' has only one class"),
    Case("y_mixed_types", "one column with str and int labels",
         fit(y=pd.DataFrame({"ct": ["B", 1] * (N // 2)})), TypeError,
         r"'ct' mixes label types \['number', 'str'\]"),
    Case("y_regression_strings", "`task_types='regression'` on text labels",
         fit(y=np.where(Y0 == 0, "B", "T"), task_types="regression"), ValueError,
         r"'task0' is a regression task but holds non-numeric values"),
    Case("y_sparse", "sparse `y`", fit(y=sp.csr_matrix(Y0[:, None])), TypeError,
         r"Sparse y is not supported"),
    Case("y_3d", "3-D `y`", fit(y=Y0[:, None, None]), ValueError,
         r"y must be 1-D or 2-D"),
    Case("y_duplicate_task_names", "DataFrame `y` with duplicate column names",
         fit(y=pd.DataFrame(np.column_stack([Y0, Y0]), columns=["t", "t"])),
         ValueError, r"Duplicate target column names"),
    # ---- after fit
    Case("predict_unfitted", "`predict` before `fit`",
         lambda: YOTOSelector().predict(X0), NotFittedError, r"not fitted yet"),
    Case("predict_fewer_features", "`predict` with 5 of 6 columns",
         on_fitted("array", "predict", X0[:, :5]), ValueError,
         r"X has 5 features, but YOTOSelector is expecting 6"),
    Case("transform_more_features", "`transform` with an extra column",
         on_fitted("array", "transform", np.hstack([X0, X0[:, :1]])), ValueError,
         r"X has 7 features, but YOTOSelector is expecting 6"),
    Case("predict_frame_missing_column", "`predict` on a DataFrame missing a gene",
         on_fitted("frame", "predict", FRAME.drop(columns="g3")), ValueError,
         r"Feature names seen at fit time, yet now missing:\n- g3"),
    Case("predict_frame_reordered", "`predict` on reordered DataFrame columns",
         on_fitted("frame", "predict", FRAME[NAMES[::-1]]), ValueError,
         r"Feature names must be in the same order as they were in fit"),
    Case("predict_frame_renamed", "`predict` on a DataFrame with a renamed gene",
         on_fitted("frame", "predict", FRAME.rename(columns={"g1": "CD3E"})),
         ValueError, r"Feature names unseen at fit time:\n- CD3E"),
    Case("predict_adata_other_genes", "`predict` on AnnData with other var_names",
         on_fitted("adata", "predict", _adata(NAMES[::-1])), ValueError,
         r"var_names differ from the feature names seen during fit"),
    Case("predict_nan", "NaN in `X` at predict",
         on_fitted("array", "predict", _with(X0, (1, 1), np.nan)), ValueError,
         r"Input X contains NaN"),
    Case("predict_proba_regression", "`predict_proba` of a regression-only model",
         on_fitted("regression", "predict_proba", X0), ValueError,
         r"predict_proba needs a classification task"),
    Case("score_task_count", "`score` with 2 task columns for a 1-task model",
         on_fitted("array", "score", X0, np.column_stack([Y0, Y0])), ValueError,
         r"y has 2 task column\(s\) but the model was fitted on 1"),
    Case("score_renamed_task_columns", "`score` with a renamed task column",
         on_fitted("named", "score", X0, pd.DataFrame({"cell_type": Y0,
                                                        "sick": Y0 == 1})),
         ValueError, r"y's columns \['cell_type', 'sick'\] are not the tasks"),
    Case("save_unfitted", "`save` before `fit`",
         lambda: YOTOSelector().save("never-written.pt"), NotFittedError,
         r"not fitted yet"),
]
# fmt: on


@pytest.mark.parametrize("case", [pytest.param(c, id=c.id) for c in CASES])
def test_bad_input_raises_clear_error(case):
    if case.skip:
        pytest.skip(case.skip)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        with pytest.raises(case.exc, match=case.match) as info:
            case.action()
    assert type(info.value) is case.exc, (type(info.value), case.exc)


def test_table_is_large_and_ids_unique():
    ids = [c.id for c in CASES]
    assert len(ids) == len(set(ids))
    assert len(CASES) >= 25


def test_failed_fit_leaves_estimator_unfitted():
    model = YOTOSelector(**FAST).fit(X0, Y0)
    with pytest.raises(ValueError, match="contains NaN"):
        model.fit(_with(X0, (0, 0), np.nan), Y0)
    assert not [a for a in vars(model) if a.endswith("_")]
    with pytest.raises(NotFittedError):
        model.predict(X0)
    # validate_data had already set n_features_in_ when y failed: removed too
    with pytest.raises(ValueError, match="no observed label"):
        model.fit(X0, np.full(N, np.nan))
    assert not hasattr(model, "n_features_in_")


def markdown_table() -> str:
    """The table of docs/reliability.md, with the message each case really gives."""
    rows = ["| Bad input | Exception | Message (first line) |", "|---|---|---|"]
    for c in CASES:
        if c.skip:
            message = "(skipped here: " + c.skip + ")"
        else:
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    c.action()
                message = "NO ERROR"
            except BaseException as exc:  # noqa: BLE001 - reporting only
                message = str(exc).replace(str(_TMP), "...")
        first = " ".join(message.split("\n")[:2]).strip()
        first = first if len(first) <= 120 else first[:117] + "..."
        first = first.replace("|", "\\|").replace("`", "'")
        rows.append(f"| {c.what} | `{c.exc.__name__}` | {first} |")
    return "\n".join(rows)


def test_docs_list_every_case():
    from pathlib import Path

    doc = Path(__file__).resolve().parents[1] / "docs" / "reliability.md"
    text = doc.read_text(encoding="utf-8")
    missing = [c.what for c in CASES if f"| {c.what} |" not in text]
    assert not missing, f"docs/reliability.md lacks rows for {missing}"


if __name__ == "__main__":
    print(markdown_table())
