"""Panel-level budgets: a total-expression (crowding) budget and per-gene penalties.

An imaging assay resolves only so many spots per cell, so the panel's genes
together must stay under a total: ``expression_budget=B`` bounds the sum over the
panel of each gene's **mean expression per cell** (the mean over every cell of the
matrix the model is fitted on, the statistic ``expression_window`` uses). The mean
is used, not a high quantile of the per-cell total, because it is additive: the
mean total expression of a cell is exactly the sum of the panel genes' means, so
"the panel stays within B" is a property of the gene set alone and can be
guaranteed by the selection itself (a quantile of a sum is not a sum of
quantiles). The report and ``panel.csv`` also show each gene's mean.

How the budget acts:

1. before training, :func:`check_feasible` refuses a budget no ``k``-gene panel can
   meet (the required genes plus the lightest allowed genes already exceed it);
2. the selection phase samples panels as without a budget, so every gene's score,
   heavy genes' included, is learned against the genes it competes with;
3. the panel kept for refinement (and returned) is the learned ranking trimmed to
   fit, :func:`trimmed_positions` via ``_network.budgeted_choice``: from the best
   ``k`` genes, the most expressed one is dropped and the best-ranked gene that
   fits the room left takes its place, until the panel fits (greedy fallback
   :func:`budgeted_positions`); the panel never exceeds ``B``. Refinement then
   trains the heads on that panel, so they predict from the genes the assay
   will measure.

Measured against the earlier rule (budget-feasible sampled panels plus a Lagrangian
term, then the greedy choice) and against trimming a free panel and retraining
(``benchmarks/bench_budget.py``, ``results/bench_budget.md``): restricting the
sampled panels cost up to 0.14 macro-F1 at tight budgets (Zeisel level2), because
the scores of the genes a tight budget keeps out were never learned against the
ones kept in.

Per-gene penalties (``gene_penalties``): the selection loss gains ``sum_g m_g w_g``
over the relaxed mask ``m``, so a gene with weight ``w`` must lower the training
loss by about ``w`` to be chosen. It is never excluded. All-zero weights are the
same as none (bit-identical panels).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from numbers import Real
from typing import Any

import numpy as np

from ._codec import Invalid, as_float

# Sums of the same loads in another order differ in the last bits: a panel within
# BUDGET_RTOL of the budget (relative) counts as within it, everywhere.
BUDGET_RTOL = 1e-9


def within(budget: float) -> float:
    """The largest total that counts as within ``budget`` (float rounding)."""
    return float(budget) + BUDGET_RTOL * max(abs(float(budget)), 1.0)


# Fitted attributes of a budget (model files store them; absent from older files)
BUDGET_ATTRS = ("gene_loads_", "panel_load_", "gene_penalties_")


def check_budget(budget: Any) -> float | None:
    """``expression_budget`` -> a positive finite float, or None.

    Raises
    ------
    ValueError
        Zero, negative, NaN or infinite.
    TypeError
        Not a number.
    """
    if budget is None:
        return None
    if isinstance(budget, bool) or not isinstance(budget, Real):
        raise TypeError(
            f"expression_budget must be a number (the panel's summed mean "
            f"expression per cell), got {type(budget).__name__}: {budget!r}."
        )
    value = float(budget)
    if not np.isfinite(value) or value <= 0:
        raise ValueError(
            f"expression_budget must be a positive finite number, got {budget!r}."
        )
    return value


def resolve_penalties(
    penalties: Any, n_features: int, names: Sequence[str] | None
) -> np.ndarray | None:
    """``gene_penalties`` -> one float64 weight per gene, or None (all zero: None).

    Accepts a mapping gene name (or column index) -> weight, with the genes not
    listed at 0, or an array of one weight per gene (a pandas Series indexed by
    gene name is a mapping).

    Raises
    ------
    ValueError
        Unknown genes, a wrong length, negative / NaN / infinite weights.
    TypeError
        Weights that are not numbers, or neither a mapping nor an array.
    """
    if penalties is None:
        return None
    if hasattr(penalties, "to_dict") and hasattr(penalties, "index"):
        penalties = penalties.to_dict()  # a Series: gene -> weight
    weights = np.zeros(n_features, dtype=np.float64)
    if isinstance(penalties, Mapping):
        where = {str(n): i for i, n in enumerate(names)} if names is not None else {}
        unknown = []
        for gene, value in penalties.items():
            if isinstance(gene, str):
                if gene not in where:
                    unknown.append(gene)
                    continue
                weights[where[gene]] = _weight(value, gene)
            elif isinstance(gene, int | np.integer) and 0 <= gene < n_features:
                weights[int(gene)] = _weight(value, gene)
            else:
                unknown.append(gene)
        if unknown:
            hint = "" if names is not None else " (X has no gene names)"
            raise ValueError(
                f"gene_penalties names {len(unknown)} gene(s) not in X{hint}: "
                f"{unknown[:5]}"
            )
    else:
        if isinstance(penalties, str | bytes) or not hasattr(penalties, "__len__"):
            raise TypeError(
                "gene_penalties must be a mapping gene -> weight or one weight per "
                f"gene, got {type(penalties).__name__}."
            )
        try:
            values = np.asarray(penalties, dtype=np.float64)
        except (TypeError, ValueError):
            raise TypeError("gene_penalties must hold numbers.") from None
        if values.shape != (n_features,):
            raise ValueError(
                f"gene_penalties has shape {values.shape}; one weight per gene "
                f"({n_features}) is needed, or a mapping gene -> weight."
            )
        weights = values.copy()
    bad = ~np.isfinite(weights) | (weights < 0)
    if bad.any():
        first = int(np.flatnonzero(bad)[0])
        label = names[first] if names is not None else first
        raise ValueError(
            f"gene_penalties must be finite and >= 0; gene {label!r} has "
            f"{weights[first]!r} ({int(bad.sum())} bad weight(s))."
        )
    return weights if weights.any() else None


def _weight(value: Any, gene: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, Real):
        raise TypeError(f"gene_penalties[{gene!r}] must be a number, got {value!r}.")
    return float(value)


def check_feasible(
    loads: np.ndarray,
    required: np.ndarray,
    excluded: np.ndarray,
    k: int,
    budget: float,
    names: Sequence[str] | None,
) -> None:
    """Refuse a budget that no ``k``-gene panel can meet.

    Raises
    ------
    ValueError
        If the required genes plus the ``k - len(required)`` lightest allowed
        genes sum to more than ``budget``.
    """
    blocked = np.zeros(len(loads), dtype=bool)
    blocked[required] = True
    blocked[excluded] = True
    free = np.sort(loads[~blocked])[: k - len(required)]
    base = float(loads[required].sum())
    lightest = base + float(free.sum())
    if lightest > within(budget):
        req = (
            f"the {len(required)} required genes take {base:.4g}; "
            if len(required)
            else ""
        )
        raise ValueError(
            f"expression_budget={budget:g} cannot be met: {req}the lightest possible "
            f"{k}-gene panel sums to {lightest:.4g} (mean expression per cell, summed "
            "over the panel). Raise the budget, lower k, or require fewer genes."
        )


def budget_use(selector: Any) -> dict[str, Any] | None:
    """How much of its expression budget a fitted selector's panel uses (or None).

    ``expression_budget``, ``panel_total`` (the sum of the panel genes' mean
    expression per cell), ``fraction_used`` and ``largest`` (the panel gene with the
    highest mean, and that mean).
    """
    loads = getattr(selector, "gene_loads_", None)
    if loads is None:
        return None
    budget = float(selector.get_params()["expression_budget"])
    support = np.asarray(selector.support_)
    top = int(support[np.argmax(loads[support])])
    names = getattr(selector, "feature_names_in_", None)
    return {
        "expression_budget": budget,
        "panel_total": float(selector.panel_load_),
        "fraction_used": float(selector.panel_load_) / budget,
        "largest": {
            "gene": str(names[top]) if names is not None else top,
            "mean_expression": float(loads[top]),
        },
        "measure": "sum over the panel of each gene's mean expression per cell",
    }


def stored_budget(
    values: dict, params: dict, support: np.ndarray, n_features: int
) -> tuple[np.ndarray | None, float | None, np.ndarray | None]:
    """A model file's budget values (gene loads, panel total, penalties), checked.

    A file whose panel exceeds its own ``expression_budget``, or whose total does
    not match its loads, is refused like any other inconsistent design.
    """

    def array(name: str, non_negative: bool) -> np.ndarray | None:
        value = values.get(name)
        if value is None:
            return None
        arr = np.asarray(value, dtype=np.float64) if isinstance(
            value, np.ndarray | list) else None  # fmt: skip
        if arr is None or arr.shape != (n_features,) or not np.isfinite(arr).all():
            raise Invalid(f"fitted.{name} must be {n_features} finite numbers")
        if non_negative and (arr < 0).any():
            raise Invalid(f"fitted.{name} holds negative weights")
        return arr

    loads = array("gene_loads_", False)
    penalties = array("gene_penalties_", True)
    total = values.get("panel_load_")
    budget = params.get("expression_budget")
    if (loads is None) != (total is None):
        raise Invalid("fitted.gene_loads_ and fitted.panel_load_ go together")
    if total is not None:
        total = as_float(total, "fitted.panel_load_", finite=True)
        if not np.isclose(total, loads[support].sum(), rtol=1e-9, atol=0):
            raise Invalid("fitted.panel_load_ is not the panel's total of gene_loads_")
    if budget is not None:
        if total is None:
            raise Invalid("expression_budget is set but fitted.panel_load_ is missing")
        budget = as_float(budget, "params.expression_budget", finite=True)
        if total > within(budget):
            raise Invalid(
                f"the panel's total {total:.6g} exceeds its expression_budget "
                f"{budget:g}"
            )
    return loads, total, penalties


def budgeted_positions(cand: np.ndarray, k_free: int, left: float) -> list | None:
    """Positions taken by ``_network.budgeted_choice`` (None: cannot fill the panel).

    The reserve (the loads of the ``need`` lightest candidates not yet considered)
    is a sliding window over the candidates sorted by load: considering a gene
    removes it from the window, taking one shrinks the window by one. Each step
    moves the window's edge past visited genes only, so a choice costs about one
    pass over the candidates instead of one sum over them per candidate. The
    window's running sum is recomputed exactly when a decision is within rounding
    of the budget.
    """
    n = len(cand)
    by_load = np.argsort(cand, kind="stable")
    rank = np.empty(n, dtype=np.int64)
    rank[by_load] = np.arange(n)
    light = cand[by_load]
    visited = np.zeros(n, dtype=bool)  # by load rank
    total = 0.0  # window: the first ``size`` unvisited genes by load
    size = 0
    edge = 0  # load ranks below ``edge`` are in the window or visited
    chosen: list[int] = []
    for pos in range(n):
        r = rank[pos]
        visited[r] = True
        if r < edge:  # it leaves the window
            total -= light[r]
            size -= 1
        need = k_free - len(chosen) - 1
        while size < need and edge < n:
            if not visited[edge]:
                total += light[edge]
                size += 1
            edge += 1
        while size > need:
            edge -= 1
            if not visited[edge]:
                total -= light[edge]
                size -= 1
        if size < need:  # too few genes left to fill the panel
            return None
        value = cand[pos] + total
        if abs(value - left) <= 1e-9 * max(abs(left), 1.0):  # exact at the edge
            window = light[:edge][~visited[:edge]]
            total = float(window.sum())
            value = cand[pos] + total
        if value <= left:
            chosen.append(pos)
            left -= cand[pos]
            if len(chosen) == k_free:
                return chosen
    return None


def trimmed_positions(cand: np.ndarray, k_free: int, left: float) -> list | None:
    """The best ``k_free`` positions, trimmed to fit: drop the heaviest, refill.

    Start from the first ``k_free`` candidates (best first). While their total
    exceeds ``left``: drop the heaviest panel gene, and add the best candidate not
    yet considered whose load fits the room left (or, when none fits, the lightest
    one left). Returns positions best first, or None when the candidates run out.
    """
    n = len(cand)
    if k_free > n:
        return None
    panel = list(range(k_free))
    used = np.zeros(n, dtype=bool)
    used[:k_free] = True
    total = float(cand[:k_free].sum())
    while total > left:
        heavy = max(panel, key=lambda p: (cand[p], p))
        panel.remove(heavy)
        total = float(cand[panel].sum())
        avail = ~used
        if not avail.any():
            return None
        fits = avail & (cand <= left - total)
        if fits.any():
            pick = int(np.argmax(fits))
        else:
            pick = int(np.flatnonzero(avail)[np.argmin(cand[avail])])
        used[pick] = True
        panel.append(pick)
        total = float(cand[panel].sum())
    return sorted(panel)
