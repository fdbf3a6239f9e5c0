"""Panel design rules in one place: size, required / excluded genes, window, binarize.

``YOTOSelector.fit``, ``select_genes`` and the command line's design options all go
through these functions, so a rule (an unknown gene name, a gene both required and
excluded, a window that leaves fewer than ``k`` genes) has one wording everywhere.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass, replace
from numbers import Integral, Real
from typing import Any

import numpy as np

from ._budget import check_budget, check_feasible, resolve_penalties
from ._codec import Invalid, as_float
from ._validation import duplicates
from .sources import RowSource, binarized, scan_columns


@dataclass
class PanelDesign:
    """The panel's size and constraints, as gene indices.

    ``budget`` and ``penalties`` are the panel-level options of :mod:`._budget`;
    ``loads`` (each gene's mean over every cell) is filled in by
    :func:`prepare_columns` when a budget is set; ``markers`` (each gene's
    one-vs-rest AUROC per class, :mod:`._markers`) with ``marker_coverage``.
    """

    k: int
    required: np.ndarray
    excluded: np.ndarray
    window: tuple[float, float] | None
    budget: float | None = None
    penalties: np.ndarray | None = None
    loads: np.ndarray | None = None
    markers: np.ndarray | None = None


def gene_labels(idx: np.ndarray, names: Sequence[str] | None) -> list:
    """Up to five genes for a message: their names, else their indices."""
    return [names[i] if names is not None else int(i) for i in idx[:5]]


def resolve_design(
    k: int,
    required_genes: Any,
    excluded_genes: Any,
    expression_window: Any,
    n_features: int,
    names: Sequence[str] | None,
    expression_budget: Any = None,
    gene_penalties: Any = None,
) -> PanelDesign:
    """Check the design parameters against the data's genes.

    ``k`` larger than the number of genes is cut to it, with a warning (as
    ``SelectKBest`` does).

    Raises
    ------
    ValueError, TypeError
        Unknown or duplicated genes, genes both required and excluded, more required
        genes than ``k``, a malformed window, a budget that is not a positive
        number, bad gene penalties.
    """
    required = resolve_genes(required_genes, "required_genes", n_features, names)
    excluded = resolve_genes(excluded_genes, "excluded_genes", n_features, names)
    both = np.intersect1d(required, excluded)
    if len(both):
        raise ValueError(
            f"Genes {gene_labels(both, names)} are both required and excluded."
        )
    window = check_expression_window(expression_window)
    budget = check_budget(expression_budget)
    penalties = resolve_penalties(gene_penalties, n_features, names)
    if len(required) > k:
        raise ValueError(
            f"required_genes lists {len(required)} genes, more than k={k}."
        )
    k = int(k)
    if k > n_features:
        warnings.warn(
            f"k={k} is greater than n_features={n_features}. All the features "
            "will be selected.",
            UserWarning,
            stacklevel=6,
        )
        k = n_features
    return PanelDesign(k, required, excluded, window, budget, penalties)


def apply_window(
    design: PanelDesign,
    mean: np.ndarray | None,
    n_features: int,
    names: Sequence[str] | None,
) -> PanelDesign:
    """Exclude the genes whose mean lies outside the window; check ``k`` still fits.

    Required genes outside the window stay (with a warning).

    Raises
    ------
    ValueError
        If fewer than ``k`` genes can be selected.
    """
    excluded, window = design.excluded, design.window
    if window is not None:
        outside = np.flatnonzero((mean < window[0]) | (mean > window[1]))
        kept = np.intersect1d(outside, design.required)
        if len(kept):
            warnings.warn(
                f"{len(kept)} required gene(s) lie outside expression_window and "
                f"stay in the panel: {gene_labels(kept, names)}",
                UserWarning,
                stacklevel=6,
            )
        excluded = np.union1d(excluded, np.setdiff1d(outside, design.required))
    n_selectable = n_features - len(excluded)
    if design.k > n_selectable:
        raise ValueError(
            f"k={design.k} but only {n_selectable} genes can be selected ("
            f"{len(excluded)} of {n_features} are excluded by excluded_genes / "
            "expression_window)."
        )
    return replace(design, excluded=excluded)


SCALED_HINT = (
    "use the log-normalised expression instead: use_raw=True or layer=... "
    "(yoto-sklearn: --use-raw or --layer NAME)"
)


def warn_if_scaled(mean: np.ndarray, what: str) -> None:
    """Warn when X looks scaled: genes with a negative mean, or centred genes.

    Expression (counts, log-normalised values) has non-negative gene means that
    are not all zero; z-scores have means of zero (or negative after clipping).
    Expression-based options (``binarize``, ``expression_window``) and pictures
    (fraction of cells expressing a gene) mean something else on scaled values.
    """
    mean = np.asarray(mean)
    negative = int((mean < 0).sum())
    centred = float(np.mean(np.abs(mean) < 1e-6))
    if negative or centred > 0.5:
        seen = (
            f"{negative} gene(s) have a negative mean"
            if negative
            else f"{centred:.0%} of the genes have a mean of 0"
        )
        warnings.warn(
            f"X looks scaled ({seen}, as z-scores do): {what} compares "
            f"expression values, which scaled data are not; {SCALED_HINT}.",
            UserWarning,
            stacklevel=7,
        )


def check_detection(rate: np.ndarray, threshold: float, n_obs: int) -> None:
    """Refuse a threshold that detects nothing; warn when it detects almost nothing.

    ``rate`` is each gene's fraction of cells above ``threshold``. Fewer detected
    values than cells (less than one detected gene per cell on average) leaves the
    network almost nothing to learn from.

    Raises
    ------
    ValueError
        If no value of X is above the threshold.
    """
    detected = int(round(float(np.sum(rate)) * n_obs))
    if detected == 0:
        raise ValueError(
            f"binarize threshold {threshold:g}: nothing is detected (no value of X "
            "is above it), so every cell looks the same; use a lower threshold "
            "(binarize=True means > 0)."
        )
    if detected < n_obs:
        warnings.warn(
            f"binarize threshold {threshold:g} detects {detected} value"
            f"{'s' if detected > 1 else ''} of X in {n_obs} cells (less than one "
            "detected gene per cell): the model has almost nothing to learn from; "
            "a lower threshold may be meant.",
            UserWarning,
            stacklevel=6,
        )


def prepare_columns(
    source: RowSource,
    design: PanelDesign,
    stats_rows: np.ndarray | None,
    *,
    standardize: bool,
    scan: bool,
    threshold: float | None,
    names: Sequence[str] | None,
    n_jobs: Any = None,
) -> tuple[RowSource, np.ndarray | None, np.ndarray | None, PanelDesign]:
    """Column statistics, the expression window and binarisation, in streamed passes.

    Standardisation uses ``stats_rows`` (the training cells; None: all); the window
    means the mean over every cell of the X given (the same pass computes both).
    With a ``threshold`` the source becomes its detection and the statistics are
    those of what the network sees; a threshold that detects nothing is refused.
    ``scan`` forces the pass (a backed source is checked for NaN while streaming).

    Returns
    -------
    source, mean, scale, design
        The source to train on, float32 standardisation (None without
        ``standardize``), and the design with the window's genes excluded.
    """
    window, budget = design.window, design.budget
    mean = scale = window_mean = None
    on_values = window is not None or threshold is not None or budget is not None
    if standardize or scan or on_values:
        mean, scale, *rest = scan_columns(
            source,
            stats_rows,
            standardize or on_values,
            all_rows_mean=(window is not None or budget is not None)
            and stats_rows is not None,
            n_jobs=n_jobs,
        )
        window_mean = rest[0] if rest else mean
        if on_values:
            what = (
                "binarize"
                if threshold is not None
                else "expression_window"
                if window is not None
                else "expression_budget"
            )
            warn_if_scaled(mean, what)
    design = apply_window(design, window_mean, source.n_vars, names)
    if budget is not None:
        loads = np.asarray(window_mean, dtype=np.float64).copy()
        check_feasible(loads, design.required, design.excluded, design.k, budget, names)
        design = replace(design, loads=loads)
    if threshold is not None:
        source = binarized(source, threshold)
        # statistics of what the network sees, and how much it detects
        mean, scale, rate = scan_columns(
            source, stats_rows, True, all_rows_mean=True, n_jobs=n_jobs
        )
        check_detection(rate, threshold, source.n_obs)
    if not standardize:
        return source, None, None, design
    return source, mean.astype(np.float32), scale.astype(np.float32), design


def binarize_threshold(binarize: bool | float) -> float | None:
    """The detection threshold of ``binarize``, or None when it is off."""
    if isinstance(binarize, bool | np.bool_):
        return 0.0 if binarize else None
    return float(binarize)


def stored_input_transform(
    values: dict, params: dict
) -> tuple[float | None, float | None]:
    """A model file's binarize threshold and count target sum, checked.

    Files written before the fitted threshold was stored take it from ``binarize``;
    before ``normalize_counts`` there was no count transform.
    """
    threshold = values.get(
        "binarize_threshold_", binarize_threshold(params.get("binarize", False))
    )
    if threshold is not None:
        threshold = as_float(threshold, "fitted.binarize_threshold_", finite=True)
    target_sum = values.get("count_target_sum_")
    if target_sum is not None:
        target_sum = as_float(target_sum, "fitted.count_target_sum_", finite=True)
        if not target_sum > 0:
            raise Invalid("fitted.count_target_sum_ must be a positive number")
    return threshold, target_sum


def resolve_genes(
    genes: Any, what: str, n_features: int, names: Sequence[str] | None
) -> np.ndarray:
    """Gene names, column indices or a boolean mask -> int64 indices, as given.

    A set is taken in sorted order (a set has none, and the order of required
    genes is their rank). A boolean mask (``var_names.str.startswith("MT-")``)
    must have one entry per gene.

    Raises
    ------
    ValueError
        Unknown names, indices out of range, duplicates, names given for data
        without gene names, or a mask of the wrong length.
    TypeError
        Neither names nor integers nor booleans.
    """
    if genes is None:
        return np.empty(0, dtype=np.int64)
    if isinstance(genes, str | bytes) or not hasattr(genes, "__iter__"):
        raise TypeError(
            f"{what} must be a list of gene names or column indices, got "
            f"{type(genes).__name__}: {genes!r}."
        )
    if isinstance(genes, set | frozenset):
        try:
            genes = sorted(genes)
        except TypeError:
            pass  # mixed types: refused below
    items = list(genes)
    if not items:
        return np.empty(0, dtype=np.int64)
    if all(isinstance(g, bool | np.bool_) for g in items):
        if len(items) != n_features:
            raise ValueError(
                f"{what} is a boolean mask of {len(items)} entries for "
                f"{n_features} genes; a mask needs one entry per gene."
            )
        return np.flatnonzero(np.asarray(items, dtype=bool)).astype(np.int64)
    dup = duplicates(items)
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
        elif isinstance(value, bool | np.bool_) or not isinstance(value, Real):
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
