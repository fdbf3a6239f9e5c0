"""The scverse door: select a gene panel from an AnnData in one call.

The functions take ``adata, *, layer=None, key_added=..., copy=False`` and write
their results to ``adata.var`` / ``adata.uns``, as scanpy tools do; their arguments
are validated declaratively (scikit-learn's ``validate_params``), with the
estimator's own constraints for the parameters they share (``k``). scanpy is never
needed.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from numbers import Integral
from typing import TYPE_CHECKING, Any

import anndata
import numpy as np
import pandas as pd
from sklearn.utils._param_validation import Options, validate_params

from ._budget import budget_use
from ._docs import shared
from ._targets import TASK_KINDS, detect_task_type, resolve_task_types
from ._validation import PARAMETER_CONSTRAINTS, Number
from .sources import anndata_matrix

if TYPE_CHECKING:  # pragma: no cover
    from ._selector import YOTOSelector

__all__ = ["infer_task_type", "obs_targets", "select_genes"]


def infer_task_type(column: pd.Series) -> str:
    """Return the YOTO task type of one ``adata.obs`` column.

    The same rule as ``YOTOSelector`` and the command line:
    :func:`yoto_sklearn._targets.detect_task_type` (text, categories, booleans and
    whole numbers with at most 100 distinct values are classification; other
    numbers are regression).

    Parameters
    ----------
    column : pandas.Series
        An ``adata.obs`` column.

    Returns
    -------
    task_type : {"classification", "regression"}
        The task type.

    Raises
    ------
    TypeError
        For any other dtype (dates, complex numbers...).
    """
    return detect_task_type(column)


def obs_targets(
    obs: pd.DataFrame,
    targets: str | Sequence[str],
    task_types: Mapping[str, str] | Sequence[str] | str | None = None,
) -> tuple[pd.DataFrame, list[str]]:
    """Turn ``adata.obs`` columns into a YOTO target table with missing labels.

    Parameters
    ----------
    obs : pandas.DataFrame
        The ``adata.obs`` table.
    targets : str or sequence of str
        Names of the obs columns, one task each.
    task_types : dict, list, str or None, default=None
        Task type per target (``"classification"``, ``"regression"`` or
        ``"auto"``). ``None`` (or ``"auto"``, or a target missing from a dict) uses
        the rule of :func:`infer_task_type`, the same as ``YOTOSelector``'s.

    Returns
    -------
    y : pandas.DataFrame
        One column per target, indexed like ``obs``. Classification columns
        have object dtype with ``None`` for a missing label; regression
        columns are float64 with ``NaN`` for a missing value.
    task_types : list of str
        The task type of each column of ``y``.

    Raises
    ------
    ValueError
        If a target is not an obs column, is given twice, has no labelled
        cell, or a task type (or a task named in a ``task_types`` dict) is
        unknown.
    TypeError
        If a column's dtype cannot be a target.
    """
    names = [targets] if isinstance(targets, str) else list(targets)
    if not names:
        raise ValueError("targets is empty: give at least one adata.obs column name")
    for name in names:
        if not isinstance(name, str):
            raise TypeError(f"targets must be obs column names (str), got {name!r}")
    duplicated = sorted({n for n in names if names.count(n) > 1})
    if duplicated:
        raise ValueError(f"target column(s) given more than once: {duplicated}")
    missing = [n for n in names if n not in obs.columns]
    if missing:
        raise ValueError(
            f"unknown obs column(s) {missing}; adata.obs has: {list(obs.columns)}"
        )

    resolved = resolve_task_types(task_types, names)
    types = [t or infer_task_type(obs[n]) for n, t in zip(names, resolved, strict=True)]

    columns: dict[str, Any] = {}
    for name, kind in zip(names, types, strict=True):
        col = obs[name]
        missing_mask = np.asarray(col.isna())
        if missing_mask.all():
            raise ValueError(f"target column {name!r} has no labelled cell")
        if TASK_KINDS[kind].has_classes:
            values = col.astype(object).to_numpy(dtype=object, copy=True)
            values[missing_mask] = None
        else:
            try:
                values = pd.to_numeric(col).to_numpy(dtype=np.float64, na_value=np.nan)
            except (TypeError, ValueError) as exc:
                raise TypeError(
                    f"target column {name!r} is treated as regression but its values "
                    f"are not numbers ({exc})"
                ) from None
            if np.isinf(values).any():
                raise ValueError(f"target column {name!r} contains infinite values")
        columns[name] = values
    return pd.DataFrame(columns, index=obs.index), types


def _to_uns(value: Any) -> Any:
    """Make a value writable to ``.h5ad`` (tuples -> arrays, objects -> str)."""
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, (np.bool_,)):
        return bool(value)
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        return float(value)
    if isinstance(value, Mapping):
        return {str(k): _to_uns(v) for k, v in value.items()}
    if isinstance(value, np.ndarray) and value.dtype.kind in "biuf":
        return value
    if isinstance(value, (list, tuple, np.ndarray)):
        items = [_to_uns(v) for v in value]
        if not items:
            return np.zeros(0)
        if all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in items):
            return np.asarray(items)
        if all(isinstance(v, str) for v in items):
            return np.asarray(items, dtype=object)
        if all(isinstance(v, bool) for v in items):
            return np.asarray(items, dtype=bool)
        return {str(i): v for i, v in enumerate(items)}
    return str(value)


def _curve(selector: Any, name: str) -> np.ndarray:
    """Return a fitted history attribute as a float array (empty if absent)."""
    value = getattr(selector, name, None)
    if value is None:
        return np.zeros(0)
    return np.asarray(value, dtype=np.float64)


def _write_var(var: pd.DataFrame, key: str, result: pd.DataFrame) -> None:
    """Write the ``_selected``/``_score``/``_rank`` columns aligned on var."""
    aligned = result.reindex(var.index)
    var[f"{key}_selected"] = aligned["selected"].fillna(False).astype(bool).to_numpy()
    var[f"{key}_score"] = aligned["score"].astype(np.float64).to_numpy()
    rank = aligned["rank"]
    if rank.isna().any():
        var[f"{key}_rank"] = pd.array(rank, dtype="Int64")
    else:
        var[f"{key}_rank"] = rank.astype(np.int64).to_numpy()
    if "mean_expression" in result:
        var[f"{key}_mean_expression"] = aligned["mean_expression"].to_numpy()
    if "frequency" in result:
        var[f"{key}_frequency"] = aligned["frequency"].astype(np.float64).to_numpy()
        var[f"{key}_consensus"] = (
            aligned["consensus"].fillna(False).astype(bool).to_numpy()
        )


@validate_params(
    {
        "adata": [anndata.AnnData],
        "targets": [str, list, tuple],
        "k": PARAMETER_CONSTRAINTS["k"],
        "layer": [None, str],
        "use_raw": ["boolean"],
        "key_added": [str],
        "copy": ["boolean"],
        "stability_runs": [
            Options(Integral, {0}),
            Number(Integral, 2, None, closed="left"),
        ],
    },
    prefer_skip_nested_validation=True,
)
@shared("layer_use_raw")
def select_genes(
    adata: anndata.AnnData,
    targets: str | Sequence[str],
    *,
    k: int = 50,
    layer: str | None = None,
    use_raw: bool = False,
    key_added: str = "yoto",
    copy: bool = False,
    stability_runs: int = 0,
    **params: Any,
) -> YOTOSelector | tuple[anndata.AnnData, YOTOSelector]:
    """Select a panel of ``k`` genes that predicts ``adata.obs`` columns.

    Trains one multi-task :class:`~yoto_sklearn.YOTOSelector` (one task per
    target column, one shared gene panel) and writes the panel into ``adata``,
    the way scanpy tools do.

    Parameters
    ----------
    adata : anndata.AnnData
        Cells x genes. Sparse matrices stay sparse (they are passed to the
        selector as they are).
    targets : str or list of str
        Names of ``adata.obs`` columns, one task per column. Categorical,
        string, object and boolean columns, and whole numbers with at most 100
        distinct values, become classification tasks; other numbers become
        regression tasks (the rule of ``YOTOSelector``; pass ``task_types=`` to
        override). Missing values (``NaN``, ``None``,
        ``pd.NA``) are missing labels: those cells still train the other
        tasks and the shared panel.
    k : int, default=50
        Panel size. Larger than the number of genes: the selector warns and
        keeps every gene.
    {layer_use_raw}
        With ``use_raw=True`` the complete results (every raw gene) are written
        to ``adata.raw.var``; ``adata.var`` receives them for the genes it
        shares with raw (genes of ``adata`` absent from raw get
        ``selected=False``, ``score=NaN``, ``rank=<NA>``). When raw holds more
        genes than ``adata`` (e.g. after highly-variable-gene filtering), panel
        genes may be absent from ``adata.var``: a ``UserWarning`` names them, and
        ``adata.uns[key_added]["genes"]`` always lists the whole panel.
    key_added : str, default="yoto"
        Prefix of the ``var`` columns and key of the ``uns`` entry.
    copy : bool, default=False
        Work on a copy of ``adata`` and return it with the selector, instead
        of writing into ``adata``.
    stability_runs : int, default=0
        0, or at least 2: also refit this many times on 80 % subsamples of the
        cells with other seeds (:func:`yoto_sklearn.stability.panel_stability`)
        and write each gene's selection frequency and the consensus panel.
    **params
        Passed to :class:`~yoto_sklearn.YOTOSelector` (``temperature``,
        ``max_iter``, ``random_state``, ``device``, ``verbose``, and the panel
        design options ``required_genes``, ``excluded_genes``,
        ``expression_window``, ``binarize``, ``normalize_counts``; gene names
        refer to the genes of the matrix used: ``adata.raw.var_names`` with
        ``use_raw=True``). A ``task_types`` given here (str, list aligned with
        ``targets`` or dict by name) replaces the dtype-based choice.

    Returns
    -------
    selector : YOTOSelector
        The fitted selector, returned when ``copy=False`` (``adata`` is
        modified in place). With ``copy=True`` the pair
        ``(adata_copy, selector)`` is returned and ``adata`` is untouched.

        Written to the AnnData (``var`` is ``adata.raw.var`` as well with
        ``use_raw=True``):

        ``var[f"{key_added}_selected"]`` : bool
            ``True`` for the ``k`` panel genes.
        ``var[f"{key_added}_score"]`` : float
            Learned gene score (higher is better).
        ``var[f"{key_added}_rank"]`` : int
            1 for the best gene, ``k`` for the last panel gene.
        ``var[f"{key_added}_mean_expression"]`` : float
            With ``expression_budget``: each gene's mean expression per cell, the
            quantity the budget sums.
        ``var[f"{key_added}_frequency"]``, ``var[f"{key_added}_consensus"]``
            With ``stability_runs > 0``: selection frequency over the refits
            and membership of the consensus panel.
        ``uns[key_added]`` : dict
            ``params`` (selector parameters), ``targets``, ``task_types``,
            ``layer``, ``use_raw``, ``genes`` (the panel, best first),
            ``metrics`` (per task: ``metric`` name, ``train`` score on the
            labelled cells (accuracy or R^2) and ``n_labelled``), ``n_iter``,
            ``best_validation_score``, ``loss_curve``,
            ``validation_loss_curve``, ``validation_scores``; with
            ``stability_runs > 0`` also ``stability`` (``n_runs``, ``subsample``,
            ``mean_jaccard``, ``consensus`` genes); with ``expression_budget`` also
            ``budget`` (``expression_budget``, ``panel_total``, ``fraction_used``,
            ``largest``).

    Raises
    ------
    ValueError
        Unknown obs column or layer, ``adata.raw`` missing, a target with no
        labelled cell, ``layer`` together with ``use_raw``.
    TypeError
        ``adata`` is not an AnnData, or a target column has an unusable dtype.

    Examples
    --------
    >>> from yoto_sklearn.anndata import select_genes
    >>> sel = select_genes(adata, ["bulk_labels", "phase"], k=30, use_raw=True)
    ... # doctest: +SKIP
    >>> adata.var_names[adata.var["yoto_selected"]].size  # doctest: +SKIP
    30
    """
    import yoto_sklearn

    if not key_added:
        raise ValueError("key_added must be a non-empty str")
    if copy:
        adata = adata.copy()
    gene_names = pd.Index(anndata_matrix(adata, layer, use_raw)[1])
    y, task_types = obs_targets(adata.obs, targets, params.pop("task_types", None))

    selector = yoto_sklearn.YOTOSelector(
        k=k, task_types=task_types, layer=layer, use_raw=use_raw, **params
    )
    selector.fit(adata, y)

    scores = np.asarray(selector.scores_, dtype=np.float64)
    ranking = np.asarray(selector.ranking_, dtype=np.int64)
    support = np.asarray(selector.support_, dtype=np.int64)
    selected = np.zeros(scores.shape[0], dtype=bool)
    selected[support] = True
    result = pd.DataFrame(
        {"selected": selected, "score": scores, "rank": ranking}, index=gene_names
    )
    if getattr(selector, "gene_loads_", None) is not None:
        result["mean_expression"] = selector.gene_loads_
    stability = None
    if stability_runs > 0:
        from .stability import panel_stability

        stability = panel_stability(
            selector,
            adata,
            y,
            n_runs=stability_runs,
            random_state=params.get("random_state"),
        )
        result["frequency"] = stability.frequency
        result["consensus"] = np.isin(np.arange(len(result)), stability.consensus)
    panel = [str(g) for g in gene_names[support]]

    if use_raw:
        _write_var(adata.raw.var, key_added, result)
        absent = [g for g in panel if g not in adata.var_names]
        if absent:
            warnings.warn(
                f"{len(absent)} of the {len(panel)} panel genes are in adata.raw "
                f"but not in adata.var_names: {absent[:10]}"
                f"{' ...' if len(absent) > 10 else ''}; adata.raw.var and "
                f"adata.uns[{key_added!r}]['genes'] hold the complete panel",
                UserWarning,
                stacklevel=2,
            )
    _write_var(adata.var, key_added, result)

    train_scores = selector.score_tasks(adata, y)
    metrics: dict[str, dict[str, Any]] = {}
    by_position = list(train_scores.values())
    for i, (name, kind) in enumerate(zip(y.columns, task_types, strict=True)):
        metrics[str(name)] = {
            "metric": TASK_KINDS[kind].metric,
            "train": float(train_scores.get(name, by_position[i])),
            "n_labelled": int(y[name].notna().sum()),
        }
    adata.uns[key_added] = _to_uns(
        {
            "params": selector.get_params(deep=False),
            "targets": list(y.columns),
            "task_types": task_types,
            "layer": layer,
            "use_raw": use_raw,
            "genes": panel,
            "metrics": metrics,
            "n_iter": getattr(selector, "n_iter_", None),
            "best_validation_score": getattr(selector, "best_validation_score_", None),
            "loss_curve": _curve(selector, "loss_curve_"),
            "validation_loss_curve": _curve(selector, "validation_loss_curve_"),
            "validation_scores": _curve(selector, "validation_scores_"),
        }
    )
    budget = budget_use(selector)
    if budget is not None:
        adata.uns[key_added]["budget"] = _to_uns(budget)
    if stability is not None:
        adata.uns[key_added]["stability"] = _to_uns(
            {
                "n_runs": stability_runs,
                "subsample": 0.8,
                "mean_jaccard": stability.mean_jaccard,
                "consensus": [str(g) for g in gene_names[stability.consensus]],
            }
        )
    if copy:
        return adata, selector
    return selector
