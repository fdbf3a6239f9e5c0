"""Container adapters: AnnData unwrapping, mini-batch row access, target encoding."""

from __future__ import annotations

import numbers
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp

CLASSIFICATION = "classification"
REGRESSION = "regression"
TASK_TYPES = (CLASSIFICATION, REGRESSION)
# A float column whose observed values are all integers and that has at most this many
# distinct values is read as class labels (e.g. ``[0., 1., nan]``), not as a regression
# target. Override with ``task_types``.
MAX_AUTO_FLOAT_CLASSES = 100


def is_anndata(obj: Any) -> bool:
    """Whether ``obj`` is an AnnData object (without importing anndata)."""
    return type(obj).__name__ in ("AnnData", "Raw") and hasattr(obj, "var_names")


def unwrap_anndata(X: Any, y: Any) -> tuple[Any, np.ndarray | None, Any]:
    """Return ``(matrix, gene_names, y)`` for AnnData ``X``; other inputs pass through.

    For AnnData, ``y`` may be a column name or a list of column names of ``X.obs``.
    """
    if not is_anndata(X):
        return X, None, y
    names = np.asarray(X.var_names, dtype=object)
    if isinstance(y, str) or (
        isinstance(y, list | tuple)
        and len(y) > 0
        and all(isinstance(c, str) for c in y)
    ):
        cols = [y] if isinstance(y, str) else list(y)
        missing = [c for c in cols if c not in X.obs.columns]
        if missing:
            raise ValueError(
                f"Target column(s) {missing} not found in adata.obs; available: "
                f"{list(X.obs.columns)}."
            )
        y = X.obs[cols[0]] if isinstance(y, str) else X.obs[cols]
    matrix = X.X
    if matrix is None:
        raise ValueError("adata.X is None; put the expression matrix in adata.X.")
    return matrix, names, y


class RowSource:
    """Row access to an in-memory matrix, densified one mini-batch at a time.

    CSC input is converted to CSR once (a copy of the non-zeros, never a dense
    matrix), since mini-batches are rows.
    """

    def __init__(self, X: np.ndarray | sp.spmatrix | sp.sparray) -> None:
        if sp.issparse(X) and X.format != "csr":
            X = sp.csr_matrix(X)
        self.X = X
        self.n_obs, self.n_vars = X.shape

    def rows(self, idx: np.ndarray) -> np.ndarray:
        """Dense float32 rows ``idx`` (a 1-D integer array)."""
        block = self.X[idx]
        if sp.issparse(block):
            block = block.toarray()
        return np.asarray(block, dtype=np.float32)


def column_stats(
    X: np.ndarray | sp.spmatrix | sp.sparray,
) -> tuple[np.ndarray, np.ndarray]:
    """Per-column mean and standard deviation (float64) without densifying ``X``.

    Constant columns get a standard deviation of 1 so that standardising is a no-op.
    """
    n = X.shape[0]
    if sp.issparse(X):
        mean = np.asarray(X.sum(axis=0), dtype=np.float64).ravel() / n
        sq = np.asarray(X.multiply(X).sum(axis=0), dtype=np.float64).ravel() / n
        var = np.maximum(sq - mean**2, 0.0)
    else:
        mean = X.mean(axis=0, dtype=np.float64)
        var = X.var(axis=0, dtype=np.float64)
    std = np.sqrt(var)
    std[~(std > 1e-12)] = 1.0
    return mean, std


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
    def n_outputs(self) -> int:
        """Width of this task's head."""
        return len(self.classes) if self.kind == CLASSIFICATION else 1


def _as_frame(y: Any) -> pd.DataFrame:
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


def _detect_kind(col: pd.Series, observed: pd.Series) -> str:
    dtype = col.dtype
    if isinstance(dtype, pd.CategoricalDtype) or pd.api.types.is_bool_dtype(dtype):
        return CLASSIFICATION
    if pd.api.types.is_integer_dtype(dtype):
        return CLASSIFICATION
    if pd.api.types.is_float_dtype(dtype):
        values = observed.to_numpy(dtype=np.float64)
        integral = np.all(np.isfinite(values)) and np.all(values == np.round(values))
        if integral and len(np.unique(values)) <= MAX_AUTO_FLOAT_CLASSES:
            return CLASSIFICATION
        return REGRESSION
    kinds = {type(v) for v in observed}
    if (
        kinds
        and all(issubclass(t, numbers.Real) for t in kinds)
        and not any(issubclass(t, bool | np.bool_) for t in kinds)
    ):
        # object column of plain numbers: decide like the numeric dtypes do
        return _detect_kind(observed.astype(np.float64), observed.astype(np.float64))
    return CLASSIFICATION


def _resolve_types(task_types: Any, names: list[str]) -> list[str | None]:
    if task_types is None or task_types == "auto":
        return [None] * len(names)
    if isinstance(task_types, str):
        out = [task_types] * len(names)
    elif isinstance(task_types, dict):
        unknown = set(map(str, task_types)) - set(names)
        if unknown:
            raise ValueError(
                f"task_types names unknown tasks {sorted(unknown)}; tasks are {names}."
            )
        out = [task_types.get(n) for n in names]
    elif isinstance(task_types, list | tuple):
        if len(task_types) != len(names):
            raise ValueError(
                f"task_types has {len(task_types)} entries but y has {len(names)} "
                "task column(s)."
            )
        out = list(task_types)
    else:
        raise TypeError(
            "task_types must be None, 'auto', a str, a list or a dict; got "
            f"{type(task_types).__name__}."
        )
    for t in out:
        if t is not None and t not in TASK_TYPES + ("auto",):
            raise ValueError(
                f"Unknown task type {t!r}; use 'classification' or 'regression'."
            )
    return [None if t == "auto" else t for t in out]


def targets_frame(y: Any, n_samples: int) -> pd.DataFrame:
    """Validate the shape of ``y`` and return it as a DataFrame of tasks."""
    frame = _as_frame(y)
    if frame.shape[0] != n_samples:
        raise ValueError(
            f"X and y have inconsistent numbers of samples: X has {n_samples}, "
            f"y has {frame.shape[0]}."
        )
    if frame.shape[1] == 0:
        raise ValueError("y has no task column.")
    return frame


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
    kinds = _resolve_types(task_types, names)
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
        if kind is None:
            kind = _detect_kind(col, observed)
        if kind == REGRESSION:
            try:
                values = observed.to_numpy(dtype=np.float64)
            except (TypeError, ValueError) as exc:
                raise ValueError(
                    f"Target column {name!r} is a regression task but holds "
                    "non-numeric values."
                ) from exc
            if not np.all(np.isfinite(values)):
                raise ValueError(
                    f"Target column {name!r} contains infinity; use NaN for a missing "
                    "label."
                )
            mean = float(values.mean())
            std = float(values.std())
            std = std if std > 1e-12 else 1.0
            encoded[~missing, j] = ((values - mean) / std).astype(np.float32)
            specs.append(TaskSpec(name, REGRESSION, mean=mean, std=std))
            continue
        values = observed.to_numpy()
        if values.dtype.kind == "f" and not np.all(np.isfinite(values)):
            raise ValueError(
                f"Target column {name!r} contains infinity; use NaN for a missing "
                "label."
            )
        if values.dtype == object:
            kinds_seen = {
                "number" if isinstance(v, numbers.Number) else type(v).__name__
                for v in values
            }
            if len(kinds_seen) > 1:
                raise TypeError(
                    f"Target column {name!r} mixes label types {sorted(kinds_seen)}; "
                    "use one type per column."
                )
            if kinds_seen == {"number"}:
                values = values.astype(np.float64)
                if not np.all(np.isfinite(values)):
                    raise ValueError(
                        f"Target column {name!r} contains infinity; use NaN for a "
                        "missing label."
                    )
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
                f"Classification task {name!r} has only one class ({classes[0]!r}) "
                "among its observed labels: 1 class is not enough to learn from."
            )
        encoded[~missing, j] = codes.astype(np.float32)
        specs.append(
            TaskSpec(name, CLASSIFICATION, classes=classes, class_counts=counts)
        )
    return specs, encoded
