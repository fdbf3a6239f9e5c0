"""Input checks that turn bad input into one clear error before any torch code runs.

scikit-learn's ``validate_data`` already covers NaN/inf, shapes and feature-name
order; the helpers here add what it lets through or answers unclearly: booleans
passed as numbers, string matrices, duplicate column names (a narwhals error deep in
sklearn), duplicate AnnData ``var_names`` (silently accepted), and a ``batch_size``
that BatchNorm cannot train on (a torch traceback otherwise).
"""

from __future__ import annotations

from collections.abc import Sequence
from numbers import Integral, Real
from typing import Any

import numpy as np
import pandas as pd
from sklearn.utils._param_validation import (
    Interval,
    InvalidParameterError,
    StrOptions,
)


class Number(Interval):
    """An :class:`~sklearn.utils._param_validation.Interval` that rejects booleans.

    ``True`` is an ``Integral`` and a ``Real`` in Python, so ``k=True`` would pass a
    plain ``Interval(Integral, 1, None)``; for a panel size or a temperature that is
    always a mistake.
    """

    def is_satisfied_by(self, val: Any) -> bool:
        """Whether ``val`` is a non-boolean number inside the interval."""
        if isinstance(val, bool | np.bool_):
            return False
        return super().is_satisfied_by(val)


RELAXATIONS = ("sigmoid", "softmax")

# The parameters of YOTOSelector and how they are validated (``device`` is added by
# the estimator, whose module imports torch). Public functions reuse these entries
# in their ``validate_params`` (e.g. ``k`` of ``select_genes``).
PARAMETER_CONSTRAINTS: dict[str, list] = {
    "k": [Number(Integral, 1, None, closed="left")],
    "temperature": [Number(Real, 0, None, closed="neither")],
    "temperature_start": [Number(Real, 0, None, closed="neither")],
    "hidden_layer_sizes": ["array-like", Number(Integral, 1, None, closed="left")],
    "dropout": [Number(Real, 0, 1, closed="left")],
    "batch_norm": ["boolean"],
    "learning_rate": [Number(Real, 0, None, closed="neither")],
    "score_learning_rate": [Number(Real, 0, None, closed="neither")],
    "weight_decay": [Number(Real, 0, None, closed="left")],
    "max_iter": [Number(Integral, 1, None, closed="left")],
    "max_cells_per_epoch": [None, Number(Integral, 2, None, closed="left")],
    "batch_size": [Number(Integral, 1, None, closed="left")],
    "early_stopping": ["boolean"],
    "validation_fraction": [Number(Real, 0, 1, closed="neither")],
    "n_iter_no_change": [Number(Integral, 1, None, closed="left")],
    "tol": [Number(Real, 0, None, closed="left")],
    "task_types": [None, str, list, tuple, dict],
    "task_weights": [None, "array-like", dict],
    "class_weight": [StrOptions({"balanced", "sqrt"}), None],
    "standardize": ["boolean"],
    "relaxation": [StrOptions(set(RELAXATIONS))],
    "required_genes": [None, "array-like"],
    "excluded_genes": [None, "array-like"],
    "expression_window": [None, tuple, list],
    # checked with their own messages by yoto_sklearn._budget
    "expression_budget": "no_validation",
    "gene_penalties": "no_validation",
    "binarize": ["boolean", Number(Real, 0, None, closed="left")],
    "normalize_counts": ["boolean", Number(Real, 0, None, closed="neither")],
    "layer": [None, str],
    "use_raw": ["boolean"],
    "structure_components": [Number(Integral, 0, None, closed="left")],
    "structure_weight": [Number(Real, 0, None, closed="neither")],
    "marker_coverage": [Number(Real, 0, None, closed="left")],
    "marker_task": [str, Number(Integral, 0, None, closed="left"), None],
    "n_threads": [None, StrOptions({"auto"}), Number(Integral, 1, None, closed="left")],
    "n_jobs": [None, Integral],
    "callbacks": [None, list, tuple],
    "random_state": ["random_state"],
    "verbose": ["verbose"],
}


def check_hidden_layer_sizes(sizes: Any, owner: str) -> list[int]:
    """Return ``hidden_layer_sizes`` as a list of positive ints.

    Raises
    ------
    InvalidParameterError
        If it is empty or holds anything but positive (non-boolean) ints.
    """
    seq = [sizes] if isinstance(sizes, Integral) else sizes
    if isinstance(seq, str) or not isinstance(seq, Sequence | np.ndarray):
        ok = False
    else:
        seq = list(seq)
        ok = len(seq) > 0 and all(
            isinstance(h, Integral) and not isinstance(h, bool | np.bool_) and h >= 1
            for h in seq
        )
    if not ok:
        raise InvalidParameterError(
            f"The 'hidden_layer_sizes' parameter of {owner} must be a positive int or "
            f"a non-empty sequence of positive ints. Got {sizes!r} instead."
        )
    return [int(h) for h in seq]


def check_batch_size(batch_size: int, batch_norm: bool, owner: str) -> None:
    """Reject ``batch_size=1`` with BatchNorm, which cannot train on one row.

    Raises
    ------
    InvalidParameterError
        If ``batch_size < 2`` and ``batch_norm`` is True.
    """
    if batch_norm and batch_size < 2:
        raise InvalidParameterError(
            f"The 'batch_size' parameter of {owner} must be at least 2 when "
            f"batch_norm=True (BatchNorm needs 2 rows per batch). Got {batch_size} "
            "instead; use batch_size >= 2 or batch_norm=False."
        )


def check_min_shape(n_obs: int, n_vars: int) -> None:
    """At least 2 cells and 1 gene, as ``validate_data`` asks of in-memory data.

    Raises
    ------
    ValueError
        Too few cells or genes.
    """
    if n_obs < 2:
        raise ValueError(
            f"Found array with {n_obs} sample(s) (shape=({n_obs}, {n_vars})) while "
            "a minimum of 2 is required."
        )
    if n_vars < 1:
        raise ValueError("Found array with 0 feature(s); a minimum of 1 is required.")


def duplicates(names: Sequence[Any]) -> list[Any]:
    counts = pd.Series(list(names), dtype=object).value_counts(sort=False)
    return list(counts.index[counts.to_numpy() > 1])


def check_unique_names(names: Sequence[Any], what: str) -> None:
    """Raise if ``names`` has duplicates, listing a few of them.

    Raises
    ------
    ValueError
        Naming the duplicated feature names.
    """
    dup = duplicates(names)
    if dup:
        shown = ", ".join(repr(d) for d in dup[:5])
        more = f" and {len(dup) - 5} more" if len(dup) > 5 else ""
        hint = (
            " Call adata.var_names_make_unique() first."
            if what == "AnnData var_names"
            else ""
        )
        raise ValueError(
            f"Duplicate feature names in {what}: {shown}{more}. Every gene must have "
            f"a unique name.{hint}"
        )


def check_X_content(X: Any) -> None:
    """Reject string data and duplicate DataFrame columns with a clear message.

    Numbers stored as ``object`` stay accepted (as in scikit-learn); other objects
    (dicts, ...) are left to :func:`~sklearn.utils.validation.check_array`.

    Raises
    ------
    ValueError
        If ``X`` holds strings, or is a DataFrame with duplicate or non-numeric
        columns.
    """
    if isinstance(X, pd.DataFrame):
        check_unique_names(X.columns, "the DataFrame columns")
        is_obj = pd.api.types.is_object_dtype
        bad = [
            c
            for c, dt in X.dtypes.items()
            if not (pd.api.types.is_numeric_dtype(dt) or is_obj(dt))
            or (is_obj(dt) and _has_str(X[c].to_numpy()))
        ]
        if bad:
            raise ValueError(
                f"X has non-numeric column(s) {bad[:5]!r}; the expression matrix must "
                "be numeric (put cell annotations in y, not in X)."
            )
        return
    if isinstance(X, np.ndarray) and (
        X.dtype.kind in "US" or (X.dtype == object and _has_str(X))
    ):
        raise ValueError(
            f"X holds strings (dtype {X.dtype}); the expression matrix must be numeric."
        )


def _has_str(values: np.ndarray) -> bool:
    return any(isinstance(v, str | bytes) for v in values.ravel())


FLOAT32_MAX = float(np.finfo(np.float32).max)


def check_float32_range(values: Any, where: str = "") -> None:
    """Refuse values that do not fit the float32 arithmetic training uses.

    Mini-batches are trained in float32: a float64 value beyond ~3.4e38 would become
    infinity there, so it is reported here instead of as a ``FloatingPointError``
    deep in training. ``values`` is a dense array or a sparse matrix (its stored
    values are checked); max/min need no copy of the data.

    Raises
    ------
    ValueError
        If a value's magnitude exceeds the float32 range.
    """
    data = values.data if hasattr(values, "tocsr") else values
    data = np.asarray(data)
    if data.dtype.kind != "f" or data.dtype.itemsize <= 4 or data.size == 0:
        return
    biggest = max(float(data.max()), -float(data.min()))
    if biggest > FLOAT32_MAX:
        raise ValueError(
            f"Input X holds values up to {biggest:.3g}{where}, beyond the float32 "
            f"range (+-{FLOAT32_MAX:.3g}) that training uses; rescale X (for "
            "expression data, log1p of normalised counts)."
        )


def check_callbacks(callbacks: Any, owner: str) -> None:
    """Every entry of ``callbacks`` must be callable.

    Raises
    ------
    InvalidParameterError
        Naming the first entry that is not callable.
    """
    for i, callback in enumerate(callbacks or ()):
        if not callable(callback):
            raise InvalidParameterError(
                f"The 'callbacks' parameter of {owner} must be a list of callables "
                f"(functions or yoto_sklearn.callbacks.Callback objects); entry {i} "
                f"is {type(callback).__name__}: {callback!r}."
            )
