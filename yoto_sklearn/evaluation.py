"""Judge any gene panel: held-out task scores, and spapros's yardstick.

:func:`evaluate_panel` takes one or several gene lists (yours, a vendor's, a YOTO
panel) and an AnnData with labels, holds out cells, and returns one table:

- per task, the held-out scores of YOTO's heads trained on the panel (the panel is
  fixed: the network is trained on exactly those genes) and of a
  StandardScaler + LogisticRegression (RidgeCV for regression) refit on it;
- when spapros is installed, the metric families of spapros's
  ``ProbesetEvaluator`` on the held-out cells: cell-type recovery
  (``forest_clfs``, per classification task), variation recovery
  (``knn_overlap``, ``cluster_similarity``) and redundancy (``gene_corr``), plus
  ``marker_corr`` when a marker list is given. They are computed by spapros itself.

Several panels are scored on the same split, side by side (one column each).
"""

from __future__ import annotations

import os
import tempfile
import warnings
from collections.abc import Mapping, Sequence
from numbers import Integral, Real
from typing import Any

import anndata
import numpy as np
import pandas as pd
import scipy.sparse as sp
from sklearn.utils._param_validation import validate_params

from ._docs import shared
from ._targets import has_classes
from ._validation import Number, duplicates
from .anndata import obs_targets
from .metrics import masked_task_scores
from .sources import anndata_matrix

__all__ = ["evaluate_panel", "holdout_split", "spapros_metrics"]

HEADS = "YOTO heads"
REFIT = "LogisticRegression / Ridge refit"
SPAPROS = "spapros ProbesetEvaluator"
ALL_TASKS = "(all genes)"
_SPAPROS_HINT = "pip install spapros"


def holdout_split(
    y: pd.DataFrame,
    task_types: Sequence[str],
    test_size: float,
    random_state: Any,
) -> tuple[np.ndarray, np.ndarray, str | None]:
    """Training and held-out cells, stratified on the first classification task.

    Missing labels form a stratum of their own; stratification is dropped when a
    class has a single cell.

    Returns
    -------
    train, test : ndarray of int
        Sorted row indices.
    stratified_on : str or None
        The column stratified on.
    """
    from sklearn.model_selection import train_test_split

    index = np.arange(y.shape[0])
    strat_name = next(
        (t for t, k in zip(y.columns, task_types, strict=True) if has_classes(k)),
        None,
    )
    stratify = None
    if strat_name is not None:
        column = y[strat_name]
        labels = column.astype(str).where(column.notna(), "<missing>").to_numpy()
        if pd.Series(labels).value_counts().min() >= 2:
            stratify = labels
        else:
            strat_name = None
    train, test = train_test_split(
        index, test_size=test_size, random_state=random_state, stratify=stratify
    )
    return np.sort(train), np.sort(test), strat_name


def _named_panels(
    panels: Sequence[str] | Mapping[str, Sequence[str]], genes: pd.Index
) -> dict[str, list[str]]:
    """``{name: genes}`` checked against the data's genes."""
    if isinstance(panels, Mapping):
        named = {str(name): panel for name, panel in panels.items()}
    else:
        named = {"panel": panels}
    if not named:
        raise ValueError("panels is empty: give a list of genes or a dict of lists")
    present = set(genes)
    out = {}
    for name, panel in named.items():
        if isinstance(panel, str) or not hasattr(panel, "__iter__"):
            raise TypeError(
                f"panel {name!r} must be a list of gene names, got "
                f"{type(panel).__name__}: {panel!r}"
            )
        panel = [str(g) for g in panel]
        if not panel:
            raise ValueError(f"panel {name!r} is empty")
        if len(panel) > len(genes):
            raise ValueError(
                f"panel {name!r} lists {len(panel)} genes but the data has only "
                f"{len(genes)}"
            )
        repeated = duplicates(panel)
        if repeated:
            raise ValueError(f"panel {name!r} lists {repeated[:5]} more than once")
        unknown = [g for g in panel if g not in present]
        if unknown:
            raise ValueError(
                f"panel {name!r}: {len(unknown)} gene(s) not in the data: "
                f"{unknown[:5]}" + (" ..." if len(unknown) > 5 else "")
            )
        out[name] = panel
    return out


def _dense(matrix: Any) -> np.ndarray:
    return matrix.toarray() if sp.issparse(matrix) else np.asarray(matrix)


def _task_rows(
    model: str, y_true: pd.DataFrame, y_pred: Any, task_types: list[str]
) -> list[dict]:
    """Held-out macro-F1, accuracy and balanced accuracy (classification), R^2."""
    pred = np.asarray(y_pred, dtype=object).reshape(len(y_true), -1)
    metrics = ("f1_macro", "accuracy", "balanced_accuracy")
    scores = {
        metric: masked_task_scores(
            y_true, pred, task_types, classification_metric=metric
        )
        for metric in metrics
    }
    rows = []
    for task, kind in zip(y_true.columns, task_types, strict=True):
        for metric in metrics if has_classes(kind) else ("f1_macro",):
            name = metric if has_classes(kind) else "r2"
            value = scores[metric][task]
            rows.append(dict(model=model, task=task, metric=name, value=value))
    return rows


def _refit_predictions(
    X_train: np.ndarray,
    y_train: pd.DataFrame,
    X_test: np.ndarray,
    task_types: list[str],
) -> np.ndarray:
    """A fresh StandardScaler + LogisticRegression (RidgeCV) per task."""
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.linear_model import LogisticRegression, RidgeCV
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    out = np.empty((X_test.shape[0], y_train.shape[1]), dtype=object)
    for j, kind in enumerate(task_types):
        column = y_train.iloc[:, j]
        observed = column.notna().to_numpy()
        if has_classes(kind):
            model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000))
            target = column[observed].to_numpy(dtype=object).astype(str)
        else:
            alphas = np.logspace(-2, 4, 13)
            model = make_pipeline(StandardScaler(), RidgeCV(alphas=alphas))
            target = column[observed].to_numpy(dtype=np.float64)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            model.fit(X_train[observed], target)
        out[:, j] = model.predict(X_test)
    return out


def _labels_as_str(y: pd.DataFrame, task_types: list[str]) -> pd.DataFrame:
    """Class labels as strings (NaN kept), so refit and heads compare alike."""
    out = y.copy()
    for name, kind in zip(y.columns, task_types, strict=True):
        if has_classes(kind):
            col = y[name]
            out[name] = col.astype(object).where(col.isna(), col.astype(str))
    return out


def spapros_module() -> Any:
    """Import spapros (numpy >= 2.4 lacks ``np.in1d``, which spapros 0.1.6 calls).

    Raises
    ------
    ImportError
        If spapros is not installed.
    """
    if not hasattr(np, "in1d"):  # what np.in1d was: a flattened isin
        setattr(np, "in1d", lambda a, b, **kw: np.isin(a, b, **kw).ravel())  # noqa: B010
    try:
        import spapros
    except ImportError as exc:
        raise ImportError(
            f"the spapros metric families need spapros, which is not installed "
            f"({_SPAPROS_HINT})"
        ) from exc
    return spapros


def spapros_metrics(
    adata: anndata.AnnData,
    panels: Mapping[str, Sequence[str]],
    celltype_keys: Sequence[str],
    *,
    forest_min_cells: int = 40,
    marker_list: Mapping[str, Sequence[str]] | None = None,
    n_jobs: int = 1,
) -> pd.DataFrame:
    """Spapros's metric families for several panels on the cells of ``adata``.

    Variation recovery and redundancy come from ``spapros.ev.ProbesetEvaluator``
    (scheme ``"custom"``: ``cluster_similarity``, ``knn_overlap``, ``gene_corr``, and
    ``marker_corr`` with a marker list); cell-type recovery from the evaluator's own
    forest function (``xgboost_forest_classification``, 5-fold CV over 5 seeds) for
    each key of ``celltype_keys``, with ``forest_min_cells`` in place of its
    40-cell minimum per cell type (cell types with fewer held-out cells are left
    out, as spapros does).

    Parameters
    ----------
    adata : anndata.AnnData
        Log-normalised expression of the cells to evaluate on (not scaled).
    panels : dict of str to list of str
        Panels by name (genes of ``adata.var_names``).
    celltype_keys : list of str
        ``adata.obs`` columns of cell types.
    forest_min_cells : int, default=40
        Minimum cells of a type for the forests (spapros's default is 40).
    marker_list : dict of str to list of str, optional
        Marker genes per cell type, for ``marker_corr``.
    n_jobs : int, default=1
        Processes for spapros.

    Returns
    -------
    table : pandas.DataFrame
        Columns ``panel``, ``task`` (the cell-type key, or ``"(all genes)"`` for
        the families that do not use labels), ``metric``, ``value``. Genes that
        are constant on these cells are left out of every family (spapros's
        ``gene_corr`` fails on them); the row ``genes constant here (left out)``
        counts them per panel.
    """
    spapros = spapros_module()
    from spapros.evaluation import metrics as sm

    # genes constant on these cells carry nothing for these metrics, and spapros's
    # gene_corr fails on them (NaN correlations): they are left out, and counted
    X = adata.X
    mean = np.asarray(X.mean(axis=0)).ravel()
    sq = X.multiply(X) if sp.issparse(X) else np.square(X)
    varying = np.asarray(sq.mean(axis=0)).ravel() - mean**2 > 1e-12
    adata = adata[:, varying]
    kept = set(adata.var_names)
    constant = {
        name: [g for g in genes if g not in kept] for name, genes in panels.items()
    }
    panels = {name: [g for g in genes if g in kept] for name, genes in panels.items()}
    structure = ["cluster_similarity", "knn_overlap", "gene_corr"]
    params: dict[str, dict] = {}
    if marker_list:
        structure.append("marker_corr")
        params["marker_corr"] = {"marker_list": dict(marker_list)}
    rows = [
        dict(
            panel=name,
            task=ALL_TASKS,
            metric="genes constant here (left out)",
            value=float(len(genes)),
        )  # fmt: skip
        for name, genes in constant.items()
    ]
    with tempfile.TemporaryDirectory() as tmp, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        evaluator = spapros.ev.ProbesetEvaluator(
            adata,
            celltype_key=celltype_keys[0] if celltype_keys else "celltype",
            results_dir=None,
            scheme="custom",
            metrics=structure,
            metrics_params=params,
            reference_dir=os.path.join(tmp, "reference"),
            verbosity=0,
            n_jobs=n_jobs,
        )
        for name, genes in panels.items():
            evaluator.evaluate_probeset(list(genes), set_id=name)
        summary = evaluator.summary_results
        for name in panels:
            for metric, value in summary.loc[name].items():
                rows.append(
                    dict(panel=name, task=ALL_TASKS, metric=metric, value=value)
                )
        for key in celltype_keys:
            counts = adata.obs[key].value_counts()
            if not (counts >= forest_min_cells).any():
                warnings.warn(
                    f"forest_clfs of {key!r}: no cell type has {forest_min_cells} "
                    "held-out cells; lower forest_min_cells or hold out more cells",
                    UserWarning,
                    stacklevel=2,
                )
                continue
            labelled = adata[adata.obs[key].notna().to_numpy()]
            for name, genes in panels.items():
                conf = sm.xgboost_forest_classification(
                    labelled,
                    list(genes),
                    celltypes="all",
                    ct_key=key,
                    n_cells_min=forest_min_cells,
                    n_jobs=n_jobs,
                )[0]
                rows.append(
                    dict(
                        panel=name,
                        task=key,
                        metric="forest_clfs accuracy",
                        value=float(sm.summary_metric_diagonal_confusion_mean(conf)),
                    )
                )
                rows.append(
                    dict(
                        panel=name,
                        task=key,
                        metric="forest_clfs perct acc > 0.8",
                        value=float(
                            sm.summary_metric_diagonal_confusion_percentage(
                                conf, threshold=0.8
                            )
                        ),
                    )
                )
    return pd.DataFrame(rows, columns=["panel", "task", "metric", "value"])


def _use_spapros(spapros: bool | None) -> bool:
    if spapros is False:
        return False
    try:
        spapros_module()
    except ImportError:
        if spapros:
            raise
        warnings.warn(
            "spapros is not installed: the table has the task scores only, not "
            f"spapros's metric families ({_SPAPROS_HINT}; or pass spapros=False).",
            UserWarning,
            stacklevel=3,
        )
        return False
    return True


@validate_params(
    {
        "adata": [anndata.AnnData],
        "panels": ["array-like", Mapping],
        "targets": [str, list, tuple],
        "layer": [None, str],
        "use_raw": ["boolean"],
        "test_size": [Number(Real, 0, 1, closed="neither")],
        "random_state": ["random_state"],
        "spapros": [None, "boolean"],
        "forest_min_cells": [Number(Integral, 2, None, closed="left")],
        "marker_list": [None, Mapping],
        "key_added": [None, str],
    },
    prefer_skip_nested_validation=True,
)
@shared("layer_use_raw")
def evaluate_panel(
    adata: anndata.AnnData,
    panels: Sequence[str] | Mapping[str, Sequence[str]],
    targets: str | Sequence[str],
    *,
    layer: str | None = None,
    use_raw: bool = False,
    test_size: float = 0.25,
    random_state: Any = 0,
    spapros: bool | None = None,
    forest_min_cells: int = 40,
    marker_list: Mapping[str, Sequence[str]] | None = None,
    key_added: str | None = "yoto_evaluation",
    **params: Any,
) -> pd.DataFrame:
    """Score one or several gene panels on held-out cells, side by side.

    Parameters
    ----------
    adata : anndata.AnnData
        Cells x genes with labels in ``obs`` (log-normalised expression).
    panels : list of str or dict of str to list of str
        A gene list, or several by name (e.g. ``{"vendor": [...], "YOTO":
        sel.get_feature_names_out()}``); genes of the matrix read.
    targets : str or list of str
        ``adata.obs`` columns to predict, one task each (see
        :func:`~yoto_sklearn.anndata.obs_targets`).
    {layer_use_raw}
    test_size : float, default=0.25
        Fraction of cells held out (stratified on the first classification
        target); every score is computed on them.
    random_state : int, RandomState instance or None, default=0
        Seeds the split and YOTO's training.
    spapros : bool, optional
        Add spapros's metric families. ``None``: when spapros is installed (a
        warning says so when it is not); ``True``: required.
    forest_min_cells : int, default=40
        Minimum held-out cells of a cell type for spapros's forests (its default;
        lower it for small data, the types below are left out).
    marker_list : dict, optional
        Marker genes per cell type, for spapros's ``marker_corr``.
    key_added : str or None, default="yoto_evaluation"
        Write the table to ``adata.uns[key_added]`` (None: do not).
    **params
        :class:`~yoto_sklearn.YOTOSelector` parameters of the heads (e.g.
        ``max_iter``, ``n_threads``).

    Returns
    -------
    table : pandas.DataFrame
        One column per panel; rows indexed by (``model``, ``task``, ``metric``):
        ``YOTO heads`` and ``LogisticRegression / Ridge refit`` with held-out
        ``f1_macro``, ``accuracy`` and ``balanced_accuracy`` per classification
        task and ``r2`` per regression task; ``spapros ProbesetEvaluator`` with
        its summary metrics (``forest_clfs`` per classification task; the others
        under ``"(all genes)"``). Higher is better for every row. The number of
        genes is the row (``panel``, ``-``, ``n_genes``).

    Raises
    ------
    ValueError
        An empty panel, duplicated genes, genes not in the data, a panel larger
        than the data, unknown targets.
    ImportError
        ``spapros=True`` without spapros installed.

    Examples
    --------
    >>> table = evaluate_panel(adata, {"vendor": vendor, "YOTO": ours},
    ...                        "cell_type")  # doctest: +SKIP
    """
    from ._selector import YOTOSelector

    fixed = sorted({"k", "required_genes", "excluded_genes"} & set(params))
    if fixed:
        raise ValueError(
            f"{fixed} cannot be set: the heads are trained on each panel as given"
        )
    matrix, genes = anndata_matrix(adata, layer, use_raw)
    y, task_types = obs_targets(adata.obs, targets, params.pop("task_types", None))
    genes = pd.Index(genes).astype(str)
    named = _named_panels(panels, genes)
    with_spapros = _use_spapros(spapros)
    train, test, _ = holdout_split(y, task_types, test_size, random_state)
    y = _labels_as_str(y, task_types)
    y_train = y.iloc[train].reset_index(drop=True)
    y_test = y.iloc[test].reset_index(drop=True)
    rows = []
    for name, panel in named.items():
        cols = genes.get_indexer(panel)
        X_train = _dense(matrix[train][:, cols]).astype(np.float64)
        X_test = _dense(matrix[test][:, cols]).astype(np.float64)
        heads = YOTOSelector(
            k=len(panel), random_state=random_state, task_types=task_types, **params
        )
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            heads.fit(X_train, y_train)
        found = _task_rows(HEADS, y_test, heads.predict(X_test), task_types)
        refit = _refit_predictions(X_train, y_train, X_test, task_types)
        found += _task_rows(REFIT, y_test, refit, task_types)
        rows += [dict(row, panel=name) for row in found]
        rows.append(dict(model="panel", task="-", metric="n_genes", value=len(panel),
                         panel=name))  # fmt: skip
    if with_spapros:
        test_data = anndata.AnnData(
            X=sp.csr_matrix(matrix[test], dtype=np.float32),
            obs=y_test.set_index(pd.Index([f"cell{i}" for i in range(len(test))])),
            var=pd.DataFrame(index=genes),
        )
        keys = [t for t, k in zip(y.columns, task_types, strict=True) if has_classes(k)]
        found = spapros_metrics(
            test_data,
            named,
            keys,
            forest_min_cells=forest_min_cells,
            marker_list=marker_list,
        )
        found["model"] = SPAPROS
        rows += found.to_dict("records")
    long = pd.DataFrame(rows)
    keys = ["model", "task", "metric"]
    order = pd.MultiIndex.from_frame(long[keys].drop_duplicates())
    table = long.pivot(index=keys, columns="panel", values="value")
    table = table.reindex(index=order, columns=list(named))
    table.columns.name = None
    if key_added is not None:
        adata.uns[key_added] = {
            "table": long.to_dict("list"),
            "panels": {name: list(p) for name, p in named.items()},
            "targets": list(y.columns),
            "test_size": float(test_size),
            "n_train": int(len(train)),
            "n_test": int(len(test)),
        }
    return table
