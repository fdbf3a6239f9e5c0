"""Input checks that turn bad input into one clear error before any torch code runs.

scikit-learn's ``validate_data`` already covers NaN/inf, shapes and feature-name
order; the helpers here add what it lets through or answers unclearly: booleans
passed as numbers, string matrices, duplicate column names (a narwhals error deep in
sklearn), duplicate AnnData ``var_names`` (silently accepted), and a ``batch_size``
that BatchNorm cannot train on (a torch traceback otherwise).
"""

from __future__ import annotations

from collections.abc import Sequence
from numbers import Integral
from typing import Any

import numpy as np
import pandas as pd
from sklearn.utils._param_validation import Interval, InvalidParameterError


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


def _duplicates(names: Sequence[Any]) -> list[Any]:
    counts = pd.Series(list(names), dtype=object).value_counts(sort=False)
    return list(counts.index[counts.to_numpy() > 1])


def check_unique_names(names: Sequence[Any], what: str) -> None:
    """Raise if ``names`` has duplicates, listing a few of them.

    Raises
    ------
    ValueError
        Naming the duplicated feature names.
    """
    dup = _duplicates(names)
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


def resolve_genes(
    genes: Any, what: str, n_features: int, names: Sequence[str] | None
) -> np.ndarray:
    """Gene names or column indices -> sorted-as-given int64 indices.

    Raises
    ------
    ValueError
        Unknown names, indices out of range, duplicates, or names given for data
        without gene names.
    TypeError
        Neither names nor integers.
    """
    if genes is None:
        return np.empty(0, dtype=np.int64)
    if isinstance(genes, str | bytes) or not hasattr(genes, "__iter__"):
        raise TypeError(
            f"{what} must be a list of gene names or column indices, got "
            f"{type(genes).__name__}: {genes!r}."
        )
    items = list(genes)
    if not items:
        return np.empty(0, dtype=np.int64)
    dup = _duplicates(items)
    if dup:
        raise ValueError(f"{what} lists {dup[:5]} more than once.")
    if all(isinstance(g, str) for g in items):
        if names is None:
            raise ValueError(
                f"{what} names genes, but X has no gene names (fit on a DataFrame or "
                "an AnnData, or give column indices)."
            )
        where = {str(n): i for i, n in enumerate(names)}
        unknown = [g for g in items if g not in where]
        if unknown:
            raise ValueError(
                f"{what} names {len(unknown)} gene(s) not in X: {unknown[:5]}"
                + (" ..." if len(unknown) > 5 else "")
            )
        return np.asarray([where[g] for g in items], dtype=np.int64)
    if all(isinstance(g, Integral) and not isinstance(g, bool) for g in items):
        idx = np.asarray(items, dtype=np.int64)
        bad = idx[(idx < 0) | (idx >= n_features)]
        if len(bad):
            raise ValueError(
                f"{what} holds column indices outside [0, {n_features}): "
                f"{bad[:5].tolist()}."
            )
        return idx
    raise TypeError(
        f"{what} must hold only gene names (str) or only column indices (int)."
    )


def check_expression_window(window: Any) -> tuple[float, float] | None:
    """``(low, high)`` with ``None`` for an open side -> two floats (+-inf).

    Raises
    ------
    ValueError
        Not a pair, NaN, or low > high.
    """
    if window is None:
        return None
    if isinstance(window, str) or not hasattr(window, "__len__") or len(window) != 2:
        raise ValueError(
            f"expression_window must be a pair (low, high), None for an open side; "
            f"got {window!r}."
        )
    low, high = window
    bounds = []
    for value, default in ((low, -np.inf), (high, np.inf)):
        if value is None:
            bounds.append(default)
        elif isinstance(value, bool) or not isinstance(value, Integral | float):
            raise ValueError(
                f"expression_window bounds must be numbers, got {value!r}."
            )
        elif np.isnan(value):
            raise ValueError("expression_window bounds must not be NaN.")
        else:
            bounds.append(float(value))
    if bounds[0] > bounds[1]:
        raise ValueError(
            f"expression_window low ({bounds[0]}) is above high ({bounds[1]})."
        )
    return bounds[0], bounds[1]
