"""Panel stability: how often each gene is selected over refits.

:func:`panel_stability` refits a selector over several seeds and random subsamples of
the cells (in parallel through joblib) and reports each gene's selection frequency,
the consensus panel and the mean pairwise Jaccard index of the panels. A panel whose
genes come back in every refit can be ordered as probes with more confidence than one
that changes with the seed (lassonet and spapros users ask for exactly this).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from numbers import Integral, Real
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp
from joblib import Parallel, delayed
from sklearn.base import clone
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import HasMethods, validate_params

from ._targets import obs_columns
from ._validation import Number
from .sources import is_anndata, num_samples

__all__ = ["PanelStability", "panel_stability"]


@dataclass
class PanelStability:
    """Selection frequencies over refits (see :func:`panel_stability`).

    Attributes
    ----------
    frequency : ndarray of shape (n_features,)
        Fraction of the runs whose panel holds each gene, in ``[0, 1]``. Every run
        selects exactly ``k`` genes, so the frequencies sum to ``k``.
    panels : ndarray of shape (n_runs, k)
        The panel of each run (gene indices, best first).
    consensus : ndarray of shape (k,)
        The ``k`` most frequently selected genes (ties: better mean rank first).
    mean_rank : ndarray of shape (n_features,)
        Mean rank of each gene over the runs (1 = best).
    mean_jaccard : float
        Mean Jaccard index over all pairs of run panels (1: identical panels).
    feature_names : ndarray or None
        Gene names, when the data had them.
    seeds : list of int
        The ``random_state`` of each run.
    """

    frequency: np.ndarray
    panels: np.ndarray
    consensus: np.ndarray
    mean_rank: np.ndarray
    mean_jaccard: float
    feature_names: np.ndarray | None = None
    seeds: list[int] = field(default_factory=list)

    def to_frame(self) -> pd.DataFrame:
        """One row per gene: ``frequency``, ``mean_rank``, ``consensus``.

        Returns
        -------
        table : pandas.DataFrame
            Sorted by frequency (descending), then mean rank.
        """
        index = (
            pd.Index(self.feature_names, name="gene")
            if self.feature_names is not None
            else pd.RangeIndex(len(self.frequency), name="gene")
        )
        consensus = np.zeros(len(self.frequency), dtype=bool)
        consensus[self.consensus] = True
        table = pd.DataFrame(
            {
                "frequency": self.frequency,
                "mean_rank": self.mean_rank,
                "consensus": consensus,
            },
            index=index,
        )
        return table.iloc[_order(self.frequency, self.mean_rank)]


def _order(frequency: np.ndarray, mean_rank: np.ndarray) -> np.ndarray:
    return np.lexsort((mean_rank, -frequency))


def _take(values: Any, rows: np.ndarray) -> Any:
    """Rows ``rows`` of an array, sparse matrix, DataFrame, Series or list."""
    if isinstance(values, pd.DataFrame | pd.Series):
        return values.iloc[rows]
    if isinstance(values, np.ndarray) or sp.issparse(values):
        return values[rows]
    return [values[i] for i in rows]


def _subsample(X: Any, y: Any, rows: np.ndarray) -> tuple[Any, Any]:
    return (X[rows] if is_anndata(X) else _take(X, rows)), _take(y, rows)


def _fit_one(
    estimator: Any, X: Any, y: Any, seed: int, run: str
) -> tuple[np.ndarray, Any]:
    try:
        with warnings.catch_warnings():
            # the refits repeat the warnings of the data (e.g. required genes
            # outside the expression window) once per run: said once, in the fit
            warnings.simplefilter("ignore", UserWarning)
            fitted = clone(estimator).set_params(random_state=seed).fit(X, y)
    except (ValueError, TypeError, FloatingPointError) as exc:
        raise type(exc)(
            f"stability {run} failed: {exc} (a subsample can lose a rare class or "
            "leave too few cells; use more cells per class, or subsample=1.0)"
        ) from exc
    return np.asarray(fitted.ranking_), getattr(fitted, "feature_names_in_", None)


def _fixed_window(estimator: Any, X: Any, y: Any) -> Any:
    """The estimator for the refits: the full fit's window, as excluded genes.

    An expression window computed on each subsample would exclude other genes in
    every refit; the refits must keep out exactly the genes the fit on all cells
    keeps out. An unfitted estimator with a window is fitted once on all cells.
    """
    if estimator.get_params()["expression_window"] is None:
        return estimator
    fitted = estimator if hasattr(estimator, "excluded_") else clone(estimator).fit(
        X, y
    )  # fmt: skip
    excluded = [int(i) for i in fitted.excluded_]
    return clone(estimator).set_params(
        expression_window=None, excluded_genes=excluded or None
    )


@validate_params(
    {
        "estimator": [HasMethods(["fit", "get_params", "set_params"])],
        "X": "no_validation",
        "y": "no_validation",
        "n_runs": [Number(Integral, 2, None, closed="left")],
        "subsample": [Number(Real, 0, 1, closed="right")],
        "n_jobs": [None, Integral],
        "random_state": ["random_state"],
    },
    prefer_skip_nested_validation=True,
)
def panel_stability(
    estimator: Any,
    X: Any,
    y: Any,
    *,
    n_runs: int = 10,
    subsample: float = 0.8,
    n_jobs: int | None = None,
    random_state: Any = None,
) -> PanelStability:
    """Refit ``estimator`` over seeds and cell subsamples; count gene selections.

    Parameters
    ----------
    estimator : YOTOSelector
        An unfitted (or fitted: it is cloned) selector; its parameters are kept and
        only ``random_state`` changes between runs. With ``expression_window``,
        every refit keeps out the genes the fit on all cells keeps out (its
        ``excluded_``; an unfitted estimator is fitted once on all cells first),
        not the genes outside the window on its own subsample.
    X : {array-like, sparse matrix, AnnData} of shape (n_samples, n_features)
        The data, as for ``fit``.
    y : array-like, str or list
        The targets, as for ``fit`` (obs column names with AnnData ``X``).
    n_runs : int, default=10
        Number of refits (at least 2).
    subsample : float, default=0.8
        Fraction of the cells each run trains on, drawn without replacement; ``1.0``
        varies the seed only.
    n_jobs : int, optional
        Parallel runs through joblib (``-1``: all cores). Set the estimator's
        ``n_threads=1`` when running several jobs on a small machine. The runs'
        warnings of type ``UserWarning`` (about the data, the same in every run) are
        not repeated.
    random_state : int, RandomState instance or None, default=None
        Seeds the subsamples and the runs' ``random_state``.

    Returns
    -------
    stability : PanelStability
        Frequencies, panels, consensus panel and mean Jaccard index.

    Raises
    ------
    ValueError
        If ``n_runs < 2`` (one run has nothing to compare with) or ``subsample``
        is not in ``(0, 1]``; a refit that fails names its run.
    """
    if is_anndata(X):  # names or a y indexed by cell names: as fit reads them
        y = obs_columns(X, y)
    refit = _fixed_window(estimator, X, y)
    rng = check_random_state(random_state)
    n_samples = num_samples(X)
    size = max(2, int(round(subsample * n_samples)))
    jobs = []
    seeds = []
    for i in range(n_runs):
        seed = int(rng.randint(np.iinfo(np.int32).max))
        rows = np.sort(rng.choice(n_samples, size=size, replace=False))
        X_run, y_run = _subsample(X, y, rows) if size < n_samples else (X, y)
        run = f"refit {i + 1} of {n_runs} (random_state={seed}, {size} cells)"
        jobs.append(delayed(_fit_one)(refit, X_run, y_run, seed, run))
        seeds.append(seed)
    results = Parallel(n_jobs=n_jobs)(jobs)
    rankings = np.vstack([r for r, _ in results])
    names = results[0][1]
    k = min(int(estimator.get_params()["k"]), rankings.shape[1])  # the fitted k_
    panels = np.vstack([np.argsort(r, kind="stable")[:k] for r in rankings])
    counts = np.zeros(rankings.shape[1])
    for panel in panels:
        counts[panel] += 1
    frequency = counts / n_runs
    mean_rank = rankings.mean(axis=0)
    consensus = _order(frequency, mean_rank)[:k]
    sets = [set(p.tolist()) for p in panels]
    pairs = [len(a & b) / len(a | b) for i, a in enumerate(sets) for b in sets[i + 1 :]]
    return PanelStability(
        frequency=frequency,
        panels=panels,
        consensus=consensus,
        mean_rank=mean_rank,
        mean_jaccard=float(np.mean(pairs)) if pairs else 1.0,
        feature_names=None if names is None else np.asarray(names, dtype=object),
        seeds=seeds,
    )
