"""The target (y) side: task specs, the one task-type rule, encoding, matching.

Everything that depends on what kind of task a target column is lives in the table
:data:`TASK_KINDS` (:class:`TaskKind`: how many outputs a head has, how outputs become
predictions and probabilities, how predictions are scored); the rest of the package
asks the table instead of branching on ``"classification"``. Per-task options
(``task_types``, ``task_weights``, ``obs_targets``' types) go through the one
resolver :func:`per_task`.
"""

from __future__ import annotations

import numbers
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp

CLASSIFICATION = "classification"
REGRESSION = "regression"
TASK_TYPES = (CLASSIFICATION, REGRESSION)
# A numeric column whose observed values are all whole numbers and that has at most
# this many distinct values is read as class labels (e.g. ``[0., 1., nan]``); with more,
# as a regression target (see :func:`detect_task_type`). Override with ``task_types``.
MAX_AUTO_FLOAT_CLASSES = 100


def short_list(items: Sequence[Any], limit: int = 10) -> str:
    """``items`` for an error message: at most ``limit`` entries, then a count."""
    items = list(items)
    shown = ", ".join(repr(i) for i in items[:limit])
    more = len(items) - limit
    return f"[{shown}{f', ... ({more} more)' if more > 0 else ''}]"


# --------------------------------------------------------------------- task kinds
class TaskKind:
    """What a kind of task means for heads, predictions and scores.

    Attributes
    ----------
    name : str
        ``"classification"`` or ``"regression"``.
    has_classes : bool
        Whether the task predicts class labels (confusion matrices, dot plots,
        probabilities, class weights and stratification apply).
    metric : str
        Name of the score :meth:`score` computes (``"accuracy"`` or ``"r2"``).
    """

    name: str
    has_classes: bool
    metric: str

    def n_outputs(self, spec: TaskSpec) -> int:
        """Width of the task's head."""
        raise NotImplementedError

    def predict(self, spec: TaskSpec, output: np.ndarray) -> np.ndarray:
        """Predictions (labels or values) from the head's raw outputs."""
        raise NotImplementedError

    def proba(self, output: np.ndarray) -> np.ndarray | None:
        """Class probabilities from the raw outputs (None without classes)."""
        return None

    def score(self, true: np.ndarray, pred: np.ndarray) -> float:
        """The task's score on observed labels (accuracy or R^2)."""
        raise NotImplementedError


class _Classification(TaskKind):
    name, has_classes, metric = CLASSIFICATION, True, "accuracy"

    def n_outputs(self, spec: TaskSpec) -> int:  # noqa: D102
        return len(spec.classes)

    def predict(self, spec: TaskSpec, output: np.ndarray) -> np.ndarray:  # noqa: D102
        return spec.classes[np.argmax(output, axis=1)]

    def proba(self, output: np.ndarray) -> np.ndarray:  # noqa: D102
        z = output - output.max(axis=1, keepdims=True)
        e = np.exp(z)
        return e / e.sum(axis=1, keepdims=True)

    def score(self, true: np.ndarray, pred: np.ndarray) -> float:  # noqa: D102
        from sklearn.metrics import accuracy_score

        return float(accuracy_score(_align(true, pred), pred))


class _Regression(TaskKind):
    name, has_classes, metric = REGRESSION, False, "r2"

    def n_outputs(self, spec: TaskSpec) -> int:  # noqa: D102
        return 1

    def predict(self, spec: TaskSpec, output: np.ndarray) -> np.ndarray:  # noqa: D102
        return output[:, 0] * spec.std + spec.mean

    def score(self, true: np.ndarray, pred: np.ndarray) -> float:  # noqa: D102
        if len(true) < 2:
            return float("nan")
        return scaled_r2(true.astype(np.float64), pred)


def scaled_r2(y_true: Any, y_pred: Any) -> float:
    """R^2 that does not overflow on targets near the float64 limit.

    Both sides are divided by the power of two nearest below the largest true
    magnitude (exact in floating point), so ordinary targets give bit-identical
    results to :func:`sklearn.metrics.r2_score` and targets of 1e200 no NaN.
    """
    y_true = np.asarray(y_true, dtype=np.float64)
    y_pred = np.asarray(y_pred, dtype=np.float64)
    top = float(np.max(np.abs(y_true))) if y_true.size else 0.0
    if top > 0.0 and np.isfinite(top):
        scale = 2.0 ** np.floor(np.log2(top))
        y_true, y_pred = y_true / scale, y_pred / scale
    from sklearn.metrics import r2_score

    return float(r2_score(y_true, y_pred))


TASK_KINDS: dict[str, TaskKind] = {
    CLASSIFICATION: _Classification(),
    REGRESSION: _Regression(),
}


def has_classes(kind: str) -> bool:
    """Whether a task type (``"classification"``/``"regression"``) has classes."""
    return TASK_KINDS[kind].has_classes


def _align(true: np.ndarray, pred: np.ndarray) -> np.ndarray:
    """Cast true labels to the predictions' dtype when that is lossless."""
    if true.dtype == object and pred.dtype != object:
        try:
            cast = true.astype(pred.dtype)
            if np.all(cast == true):
                return cast
        except (TypeError, ValueError):
            pass
    return true


@dataclass
class TaskSpec:
    """What one target column is and how it is encoded."""

    name: str
    kind: str
    classes: np.ndarray | None = None
    mean: float = 0.0
    std: float = 1.0
    class_counts: np.ndarray | None = field(default=None, repr=False)

    @property
    def rule(self) -> TaskKind:
        """The :class:`TaskKind` of this task."""
        return TASK_KINDS[self.kind]

    @property
    def n_outputs(self) -> int:
        """Width of this task's head."""
        return self.rule.n_outputs(self)


# ------------------------------------------------------------- per-task options
def per_task(
    value: Any,
    names: Sequence[str],
    what: str,
    default: Any,
    broadcast: type | tuple[type, ...] = (),
) -> list[Any]:
    """One entry per task from a per-task option.

    ``None`` gives ``default`` for every task; a mapping names tasks (unknown
    names are an error, absent tasks get ``default``); a value of a ``broadcast``
    type applies to every task; anything else is a sequence with one entry per
    task, in order.

    Raises
    ------
    ValueError
        Unknown task names, or the wrong number of entries.
    """
    names = list(names)
    if value is None:
        return [default] * len(names)
    if isinstance(value, Mapping):
        unknown = set(map(str, value)) - set(names)
        if unknown:
            raise ValueError(
                f"{what} names unknown tasks {sorted(unknown)}; tasks are {names}."
            )
        return [value.get(n, default) for n in names]
    if broadcast and isinstance(value, broadcast):
        return [value] * len(names)
    items = list(value) if isinstance(value, list | tuple) else list(np.ravel(value))
    if len(items) != len(names):
        raise ValueError(
            f"{what} has {len(items)} entries but y has {len(names)} task column(s)."
        )
    return items


def resolve_task_types(task_types: Any, names: Sequence[str]) -> list[str | None]:
    """``task_types`` as one entry per task; None means "apply the rule".

    Raises
    ------
    ValueError
        Unknown task names or types, or the wrong number of entries.
    TypeError
        A ``task_types`` that is neither None, a str, a list/tuple nor a dict.
    """
    if isinstance(task_types, str) and task_types == "auto":
        task_types = None
    if not (task_types is None or isinstance(task_types, str | list | tuple | Mapping)):
        raise TypeError(
            "task_types must be None, 'auto', a str, a list or a dict; got "
            f"{type(task_types).__name__}."
        )
    out = per_task(task_types, names, "task_types", None, broadcast=str)
    for t in out:
        if t is not None and t not in TASK_TYPES + ("auto",):
            raise ValueError(
                f"Unknown task type {t!r}; use 'classification' or 'regression'."
            )
    return [None if t == "auto" else t for t in out]


def resolve_task_weights(task_weights: Any, names: Sequence[str]) -> list[float]:
    """``task_weights`` as one float per task (default 1).

    Raises
    ------
    ValueError
        Unknown task names, the wrong number of entries, or weights that are not
        finite, are negative or are all zero.
    """
    raw = per_task(task_weights, names, "task_weights", 1.0)
    weights = [float(w) for w in np.asarray(raw, dtype=np.float64).ravel()]
    if not all(np.isfinite(w) and w >= 0 for w in weights) or sum(weights) == 0:
        raise ValueError(
            "task_weights must be finite, non-negative and not all zero, got "
            f"{weights}."
        )
    return weights


# ------------------------------------------------------------ the type rule
def detect_task_type(column: pd.Series) -> str:
    """The task type of one target column: the one rule of every door.

    ``YOTOSelector.fit`` (``task_types=None``), :func:`yoto_sklearn.anndata.
    select_genes` and the ``yoto-sklearn fit`` command all use this rule; pass
    ``task_types`` (``--categorical`` / ``--regression`` on the command line) to
    override it. Missing labels are ignored.

    - text, categories and booleans: ``"classification"``;
    - numbers (integer or float dtype, or an object column holding only numbers):
      ``"classification"`` when every observed value is a whole number and there
      are at most ``MAX_AUTO_FLOAT_CLASSES`` (100) distinct values (``0/1``, cluster
      ids, stages), else ``"regression"`` (scores, ages, counts with many values;
      whole numbers with more values also warn, in case they are labels);
    - dates, time spans and complex numbers: a ``TypeError``.

    Parameters
    ----------
    column : pandas.Series
        The target column.

    Returns
    -------
    task_type : {"classification", "regression"}
        The task type.

    Raises
    ------
    TypeError
        For a dtype that is neither labels nor numbers.
    """
    dtype = column.dtype
    observed = column[~pd.isna(column).to_numpy()]
    if isinstance(dtype, pd.CategoricalDtype) or pd.api.types.is_bool_dtype(dtype):
        return CLASSIFICATION
    if (
        pd.api.types.is_complex_dtype(dtype)
        or pd.api.types.is_datetime64_any_dtype(dtype)
        or pd.api.types.is_timedelta64_dtype(dtype)
    ):
        raise TypeError(
            f"Target column {column.name!r} has dtype {dtype}, which is neither "
            "labels (text, categories, booleans) nor numbers."
        )
    if pd.api.types.is_numeric_dtype(dtype):
        return _numbers_kind(observed.to_numpy(dtype=np.float64), column.name)
    kinds = {type(v) for v in observed}
    if (
        kinds
        and all(issubclass(t, numbers.Real) for t in kinds)
        and not any(issubclass(t, bool | np.bool_) for t in kinds)
    ):
        # object column of plain numbers: decide like the numeric dtypes do
        return _numbers_kind(observed.to_numpy(dtype=np.float64), column.name)
    return CLASSIFICATION


def _whole(values: np.ndarray) -> bool:
    return bool(np.all(np.isfinite(values)) and np.all(values == np.round(values)))


def _numbers_kind(values: np.ndarray, name: Any) -> str:
    if not _whole(values):
        return REGRESSION
    if len(np.unique(values)) <= MAX_AUTO_FLOAT_CLASSES:
        return CLASSIFICATION
    warnings.warn(
        f"Target column {name!r} holds whole numbers with more than "
        f"{MAX_AUTO_FLOAT_CLASSES} distinct values: it is treated as a regression "
        "target. If they are class labels (e.g. patient ids), pass "
        f"task_types={{{name!r}: 'classification'}}.",
        UserWarning,
        stacklevel=4,
    )
    return REGRESSION


# ------------------------------------------------------------------ tables
def as_frame(y: Any) -> pd.DataFrame:
    """Targets as a DataFrame with string column names (one column per task)."""
    if isinstance(y, pd.DataFrame):
        frame = y.copy(deep=False)
        frame.columns = [str(c) for c in frame.columns]
    elif isinstance(y, pd.Series):
        frame = y.to_frame(name=str(y.name) if y.name is not None else "task0")
    else:
        if sp.issparse(y):
            raise TypeError(
                "Sparse y is not supported; pass a dense array or DataFrame."
            )
        arr = np.asarray(y)
        if arr.ndim == 0:
            raise ValueError(f"y must be 1-D or 2-D, got a scalar: {y!r}.")
        if arr.ndim > 2:
            raise ValueError(
                f"y must be 1-D or 2-D, got an array of shape {arr.shape}."
            )
        if arr.ndim == 1:
            arr = arr[:, None]
        frame = pd.DataFrame(
            {f"task{j}": arr[:, j] for j in range(arr.shape[1])}, index=None
        )
    if len(set(frame.columns)) != frame.shape[1]:
        raise ValueError(f"Duplicate target column names: {list(frame.columns)}.")
    return frame


def targets_frame(y: Any, n_samples: int) -> pd.DataFrame:
    """Validate the shape of ``y`` and return it as a DataFrame of tasks."""
    frame = as_frame(y)
    if frame.shape[0] != n_samples:
        raise ValueError(
            f"X and y have inconsistent numbers of samples: X has {n_samples}, "
            f"y has {frame.shape[0]}."
        )
    if frame.shape[1] == 0:
        raise ValueError("y has no task column.")
    return frame


def match_task_columns(
    y: Any, frame: pd.DataFrame, task_names: list[str]
) -> pd.DataFrame:
    """Order the target columns of ``frame`` like the fitted tasks.

    A DataFrame ``y`` with string column names is matched by name (reordered when
    its columns are the fitted tasks in another order); other ``y`` (arrays,
    Series, integer column names) are matched by position, as is any ``y`` for a
    model fitted without task names (``task0``, ``task1``, ...).

    Raises
    ------
    ValueError
        If the number of columns differs, or named columns are not the fitted tasks.
    """
    if frame.shape[1] != len(task_names):
        raise ValueError(
            f"y has {frame.shape[1]} task column(s) but the model was fitted on "
            f"{len(task_names)}."
        )
    if not (isinstance(y, pd.DataFrame) and all(isinstance(c, str) for c in y.columns)):
        return frame
    names = list(frame.columns)
    if names == list(task_names):
        return frame
    if set(names) == set(task_names):
        return frame[list(task_names)]
    if list(task_names) == [f"task{j}" for j in range(len(task_names))]:
        return frame  # fitted on unnamed targets: nothing to match names against
    raise ValueError(
        f"y's columns {names} are not the tasks seen at fit {list(task_names)}; "
        "name the columns like the fitted tasks, or pass an array to match them by "
        "position."
    )


def align_on_obs_names(y: Any, obs_names: pd.Index) -> Any:
    """Align a pandas ``y`` indexed by cell names on ``obs_names``.

    ``y`` with a string index is matched to the cells by name (reordered when it
    lists the same cells in another order); a different set of names is an error,
    since matching by position would pair labels with the wrong cells. Any other
    ``y`` (arrays, lists, pandas objects with an integer index) is positional.

    Raises
    ------
    ValueError
        If ``y``'s string index is not a reordering of ``obs_names``.
    """
    if not isinstance(y, pd.Series | pd.DataFrame):
        return y
    index = y.index
    if not (pd.api.types.is_object_dtype(index) or pd.api.types.is_string_dtype(index)):
        return y
    if not all(isinstance(i, str) for i in index):
        return y
    if index.equals(obs_names):
        return y
    if (
        len(index) == len(obs_names)
        and index.is_unique
        and obs_names.is_unique
        and set(index) == set(obs_names)
    ):
        return y.reindex(obs_names)
    unknown = [i for i in index[: len(obs_names) + 1] if i not in set(obs_names)]
    raise ValueError(
        "y is indexed by cell names that are not adata.obs_names"
        + (f" (e.g. {short_list(unknown, 3)})" if unknown else "")
        + f"; y has {len(index)} entries, adata {len(obs_names)} cells. Pass "
        "y.to_numpy() to match labels to cells by position."
    )


def obs_columns(adata: Any, y: Any) -> Any:
    """``y`` for an AnnData ``X``: obs column name(s) read from ``adata.obs``.

    ``y`` may be a column name or a list (or tuple) of column names of
    ``adata.obs``. A list of strings that are not all obs columns is read as one
    label per cell when it has ``n_obs`` entries; a list that could be both is an
    error (a tuple is always names, an array always labels). A pandas ``y``
    indexed by cell names is aligned on ``adata.obs_names`` (see
    :func:`align_on_obs_names`).

    Raises
    ------
    ValueError
        Unknown column names.
    """
    columns = list(adata.obs.columns)
    if isinstance(y, str) or (
        isinstance(y, list | tuple)
        and len(y) > 0
        and all(isinstance(c, str) for c in y)
    ):
        cols = [y] if isinstance(y, str) else list(y)
        missing = [c for c in cols if c not in adata.obs.columns]
        if not missing and isinstance(y, list) and len(cols) == adata.n_obs:
            raise ValueError(
                f"y lists {len(cols)} strings that are both obs column names and "
                f"one label per cell ({adata.n_obs} cells); pass a tuple for column "
                "names, or np.asarray(y) for labels."
            )
        if not missing:  # a lazy AnnData's obs (read_lazy) is read into memory
            frame = adata.obs[cols]
            frame = frame if isinstance(frame, pd.DataFrame) else frame.to_memory()
            return frame[cols[0]] if isinstance(y, str) else frame
        if not isinstance(y, str) and len(cols) == adata.n_obs:
            return np.asarray(cols, dtype=object)  # one label per cell, not names
        raise ValueError(
            f"Target column(s) {short_list(missing, 5)} not found in adata.obs "
            f"(columns: {short_list(columns)}). To pass labels instead of "
            f"column names, give one label per cell ({adata.n_obs})."
        )
    return align_on_obs_names(y, adata.obs_names)


# ---------------------------------------------------------------- encoding
def _mean_std(values: np.ndarray) -> tuple[float, float, np.ndarray]:
    """Mean, standard deviation and standardised values, without overflow.

    The values are divided by their largest magnitude first, so targets near the
    float64 limit (where ``values.std()`` overflows to inf) are standardised
    correctly. A constant target gets a standard deviation of 1.
    """
    scale = float(np.max(np.abs(values)))
    if scale == 0.0:
        return 0.0, 1.0, np.zeros_like(values)
    unit = values / scale
    mean_u, std_u = float(unit.mean()), float(unit.std())
    if not std_u > 1e-12:
        return mean_u * scale, 1.0, unit - mean_u  # ~0 after centring
    return mean_u * scale, std_u * scale, (unit - mean_u) / std_u


def _label_kind(value: Any) -> str:
    if isinstance(value, bool | np.bool_):
        return "bool"
    if isinstance(value, numbers.Number):
        return "number"
    return type(value).__name__


def _check_finite(values: np.ndarray, name: str) -> None:
    if values.dtype.kind == "f" and not np.all(np.isfinite(values)):
        raise ValueError(
            f"Target column {name!r} contains infinity; use NaN for a missing label."
        )


def _encode_regression(name: str, observed: pd.Series) -> tuple[TaskSpec, np.ndarray]:
    try:
        values = observed.to_numpy(dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ValueError(
            f"Target column {name!r} is a regression task but holds non-numeric values."
        ) from exc
    _check_finite(values, name)
    mean, std, standardised = _mean_std(values)
    return TaskSpec(name, REGRESSION, mean=mean, std=std), standardised


def _encode_classification(
    name: str, observed: pd.Series
) -> tuple[TaskSpec, np.ndarray]:
    values = observed.to_numpy()
    _check_finite(values, name)
    if values.dtype == object:
        kinds_seen = {_label_kind(v) for v in values}
        if len(kinds_seen) > 1:
            raise TypeError(
                f"Target column {name!r} mixes label types {sorted(kinds_seen)}; "
                "use one type per column."
            )
        if kinds_seen == {"bool"}:
            # Python bools (what a bool obs column becomes once missing labels
            # are None): keep them booleans, not 0.0 / 1.0
            values = values.astype(bool)
        elif kinds_seen == {"number"}:
            whole = all(isinstance(v, numbers.Integral) for v in values)
            # integers (e.g. an int obs column with missing labels) stay ints
            values = values.astype(np.int64 if whole else np.float64)
            _check_finite(values, name)
    try:
        classes, codes, counts = np.unique(
            values, return_inverse=True, return_counts=True
        )
    except TypeError as exc:
        raise TypeError(
            f"Target column {name!r} holds labels that cannot be compared "
            f"({exc}); use one label type per column."
        ) from exc
    if len(classes) < 2:
        raise ValueError(
            f"Classification task {name!r} has only one class "
            f"({np.asarray(classes[0]).item()!r}) "
            "among its observed labels: 1 class is not enough to learn from."
        )
    spec = TaskSpec(name, CLASSIFICATION, classes=classes, class_counts=counts)
    return spec, codes


_ENCODERS = {CLASSIFICATION: _encode_classification, REGRESSION: _encode_regression}


def encode_targets(
    y: Any, n_samples: int, task_types: Any
) -> tuple[list[TaskSpec], np.ndarray]:
    """Encode every task column.

    Returns the task specifications and a float32 array of shape
    ``(n_samples, n_tasks)``: class codes for classification, standardised values for
    regression, NaN where the label is missing.
    """
    frame = targets_frame(y, n_samples)
    names = list(frame.columns)
    kinds = resolve_task_types(task_types, names)
    specs: list[TaskSpec] = []
    encoded = np.full((n_samples, len(names)), np.nan, dtype=np.float32)
    for j, (name, kind) in enumerate(zip(names, kinds, strict=True)):
        col = frame.iloc[:, j]
        missing = pd.isna(col).to_numpy()
        observed = col[~missing]
        if len(observed) == 0:
            raise ValueError(
                f"Target column {name!r} has no observed label (all values missing)."
            )
        spec, values = _ENCODERS[kind or detect_task_type(col)](name, observed)
        encoded[~missing, j] = values.astype(np.float32)
        specs.append(spec)
    return specs, encoded


# ------------------------------------------------------- weights and strata
CLASS_WEIGHTS = ("balanced", "sqrt", "none")


def class_weights(
    spec: TaskSpec, codes: np.ndarray, scheme: str | None
) -> np.ndarray | None:
    """Per-class loss weights of one task from its training labels.

    ``codes`` are the task's encoded labels of the training cells (NaN: missing).
    ``"balanced"`` is ``n / (C n_c)`` (``C`` classes present), ``"sqrt"`` its square
    root; ``None`` / ``"none"`` and regression tasks get no weights.
    """
    if not spec.rule.has_classes or scheme not in ("balanced", "sqrt"):
        return None
    labelled = codes[~np.isnan(codes)].astype(np.int64)
    counts = np.bincount(labelled, minlength=len(spec.classes)).astype(float)
    n_present = max(int((counts > 0).sum()), 1)
    weights = len(labelled) / (n_present * np.maximum(counts, 1.0))
    return np.sqrt(weights) if scheme == "sqrt" else weights


def strata(tasks: Sequence[TaskSpec], Y: np.ndarray) -> np.ndarray:
    """Groups to stratify a split on: the task with the most classes (-1: missing)."""
    cls = [j for j, t in enumerate(tasks) if t.rule.has_classes]
    if not cls:
        return np.zeros(len(Y), dtype=np.int64)
    j = max(cls, key=lambda i: len(tasks[i].classes))
    col = Y[:, j]
    return np.where(np.isnan(col), -1, col).astype(np.int64)
