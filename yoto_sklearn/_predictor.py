"""The prediction side of :class:`~yoto_sklearn.YOTOSelector` (a mixin).

Everything a fitted selector does with new cells: keep the panel columns
(``transform``), predict every task from them (``predict``, ``predict_proba``) and
score the predictions (``score_tasks``, ``score``). Only the ``k`` panel columns of
``X`` are read: in memory they are sliced, from a row source (a backed AnnData, or
any :class:`~yoto_sklearn.sources.RowSource`) they are streamed in row blocks.
Task-kind specifics come from the task table (:data:`~yoto_sklearn._targets.
TASK_KINDS`).
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp
import torch
from sklearn import get_config
from sklearn.utils.validation import check_array, check_is_fitted, validate_data

from . import counts, sources
from ._docs import shared
from ._targets import match_task_columns, obs_columns, targets_frame
from ._training import torch_threads
from ._validation import check_X_content
from .sources import RowSource, num_samples, panel_blocks

ACCEPT_SPARSE = ("csr", "csc")
FLOAT_DTYPES = (np.float64, np.float32)


class PanelPredictorMixin:
    """Prediction from the panel genes only (needs the fitted attributes)."""

    @shared("X_predict")
    def transform(self, X: Any) -> Any:
        """Keep only the panel columns of ``X``.

        Parameters
        ----------
        {X_predict}

        Returns
        -------
        X_panel : {ndarray, sparse matrix, DataFrame} of shape (n_samples, k)
            The panel columns in their original order. Containers are kept (sparse
            stays sparse, ``set_output(transform="pandas")`` gives a DataFrame); for
            AnnData input the panel columns of ``adata.X`` are returned as a matrix,
            so that the next step of a ``Pipeline`` can use them (a dense array
            for a backed AnnData or a row source, read in row chunks, panel columns
            only); with ``set_output(transform="pandas")`` a DataFrame indexed by
            ``obs_names``.
        """
        if not (sources.is_anndata(X) or isinstance(X, RowSource)):
            return super().transform(X)
        matrix = self._check_X_predict(X)
        cols = self.get_support(indices=True)
        if isinstance(matrix, RowSource):
            panel = np.concatenate(list(self._panel_blocks(matrix, cols)), axis=0)
        else:
            panel = matrix[:, cols]
        config = getattr(self, "_sklearn_output_config", {})
        output = config.get("transform", get_config()["transform_output"])
        if sources.is_anndata(X) and output == "pandas" and not sp.issparse(panel):
            # keep the cell names: the output wrapper only knows DataFrame input
            return pd.DataFrame(
                panel,
                index=pd.Index(X.obs_names),
                columns=self.get_feature_names_out(),
            )
        return panel

    def _get_support_mask(self) -> np.ndarray:
        check_is_fitted(self)
        mask = np.zeros(self.n_features_in_, dtype=bool)
        mask[self.support_] = True
        return mask

    # --------------------------------------------------------------- prediction
    def _anndata_input(self) -> dict:
        """The AnnData matrix read at fit (X, a layer, or raw): read it again."""
        choice = getattr(self, "anndata_input_", None)
        return dict(choice) if choice else {"layer": None, "use_raw": False}

    def _check_X_predict(self, X: Any) -> Any:
        """Validate X at predict time; return a row source or a matrix."""
        check_is_fitted(self)
        if isinstance(X, RowSource):
            fitted = getattr(self, "feature_names_in_", None)
            names = getattr(X, "var_names", None)
            if (
                fitted is not None
                and hasattr(X, "with_genes")
                and (names is None or list(names) != list(fitted))
            ):  # a SOMA query: take the fitted genes, by name, in their order
                X = X.with_genes(list(fitted))
            return self._check_n_features(X, X.n_vars)
        if not sources.is_anndata(X):
            check_X_content(X)
            return validate_data(
                self,
                X,
                accept_sparse=ACCEPT_SPARSE,
                dtype=FLOAT_DTYPES,
                ensure_all_finite=True,
                reset=False,
            )
        matrix, names = sources.anndata_matrix(X, **self._anndata_input())
        fitted = getattr(self, "feature_names_in_", None)
        if fitted is not None and (
            len(names) != len(fitted) or np.any(names != fitted)
        ):
            raise ValueError(
                "The AnnData var_names differ from the feature names seen during "
                "fit (same genes in the same order are required)."
            )
        default = np.arange(len(names)).astype(str)
        if fitted is None and not np.array_equal(names.astype(str), default):
            warnings.warn(
                f"X is an AnnData with var_names, but {type(self).__name__} was "
                "fitted without feature names: its genes are taken by column "
                "position, and their names cannot be checked. Fit on an AnnData "
                "or a DataFrame to have genes matched by name.",
                UserWarning,
                stacklevel=4,
            )
        if sources.is_backed_matrix(matrix):
            source = sources.BackedSource(matrix)
            return self._check_n_features(source, source.n_vars)
        matrix = check_array(
            matrix,
            accept_sparse=ACCEPT_SPARSE,
            dtype=FLOAT_DTYPES,
            ensure_all_finite=True,
        )
        return self._check_n_features(matrix, matrix.shape[1])

    def _check_n_features(self, X: Any, n_features: int) -> Any:
        if n_features != self.n_features_in_:
            raise ValueError(
                f"X has {n_features} features, but {type(self).__name__} is "
                f"expecting {self.n_features_in_} features as input."
            )
        return X

    def _panel_blocks(self, source: RowSource, cols: np.ndarray) -> Any:
        """The source's panel-column blocks, read by ``n_jobs`` workers if set."""
        return panel_blocks(source, cols, getattr(self, "n_jobs", None))

    def _panel_outputs(self, X: Any) -> list[np.ndarray]:
        """Raw head outputs, computed from the panel columns only."""
        X = self._check_X_predict(X)
        # the fitted threshold, not the live parameter (set_params cannot change it)
        threshold = getattr(self, "binarize_threshold_", None)
        target_sum = getattr(self, "count_target_sum_", None)
        if target_sum is not None:  # counts: normalised by the whole cell first
            X = counts.normalized(
                X if isinstance(X, RowSource) else sources.ArraySource(X), target_sum
            )
        if isinstance(X, RowSource):
            if threshold is not None:
                X = sources.binarized(X, threshold)
            blocks = self._panel_blocks(X, self.support_)  # the panel columns only
        else:
            panel = X[:, self.support_]
            if threshold is not None:  # detection on the values as stored
                panel = sources.detected(panel, threshold)
            step = sources.PREDICT_CHUNK
            blocks = (panel[i : i + step] for i in range(0, panel.shape[0], step))
        outs: list[list[np.ndarray]] = [[] for _ in self.tasks_]
        threads = getattr(self, "n_threads", None)
        if threads == "auto":  # prediction reads only the k panel columns: small
            threads = 1
        with torch.no_grad(), torch_threads(threads):
            for block in blocks:
                if sp.issparse(block):
                    block = block.toarray()
                block = np.asarray(block, dtype=np.float64)
                for t, out in enumerate(self.module_(torch.as_tensor(block))):
                    outs[t].append(out.numpy())
        return [np.concatenate(o, axis=0) for o in outs]

    def _task_predictions(self, X: Any) -> list[np.ndarray]:
        outputs = self._panel_outputs(X)
        return [
            task.rule.predict(task, out)
            for task, out in zip(self.tasks_, outputs, strict=True)
        ]

    @shared("X_predict")
    def predict(self, X: Any) -> np.ndarray:
        """Predict every task with the fitted heads, from the panel genes only.

        Parameters
        ----------
        {X_predict}

        Returns
        -------
        y_pred : ndarray of shape (n_samples,) or (n_samples, n_tasks)
            Class labels (classification) or values (regression). With several
            tasks, one column per task; the array is ``object`` when the tasks'
            types differ.
        """
        preds = self._task_predictions(X)
        if len(preds) == 1:
            return preds[0]
        dtypes = {p.dtype for p in preds}
        if len(dtypes) == 1 and next(iter(dtypes)).kind != "O":
            return np.column_stack(preds)
        out = np.empty((len(preds[0]), len(preds)), dtype=object)
        for j, p in enumerate(preds):
            out[:, j] = p
        return out

    @shared("X_predict")
    def predict_frame(self, X: Any) -> pd.DataFrame:
        """Predictions of every task as a table, one column per task name.

        :meth:`predict` returns a bare array (an ``object`` array when the tasks'
        types differ); this names the columns and keeps the cells' names.

        Parameters
        ----------
        {X_predict}

        Returns
        -------
        y_pred : pandas.DataFrame of shape (n_samples, n_tasks)
            Class labels or values per task (columns ``task_names_``), indexed by
            ``obs_names`` for an AnnData and by the index of a DataFrame ``X``.
        """
        preds = self._task_predictions(X)
        index = None
        if sources.is_anndata(X):
            index = pd.Index(X.obs_names)
        elif isinstance(X, pd.DataFrame):
            index = X.index
        columns = dict(zip(self.task_names_, preds, strict=True))
        return pd.DataFrame(columns, index=index)

    @shared("X_predict")
    def predict_proba(self, X: Any) -> np.ndarray | list[np.ndarray | None]:
        """Class probabilities of the classification task(s).

        Parameters
        ----------
        {X_predict}

        Returns
        -------
        proba : ndarray of shape (n_samples, n_classes) or list
            For a single classification task, its probabilities (columns ordered as
            ``classes_``). For several tasks, a list with one array per task and
            ``None`` for regression tasks.
        """
        outs = self._panel_outputs(X)
        if not any(t.rule.has_classes for t in self.tasks_):
            raise ValueError(
                "predict_proba needs a classification task; this model has only "
                "regression tasks."
            )
        probas = [t.rule.proba(o) for t, o in zip(self.tasks_, outs, strict=True)]
        return probas[0] if len(probas) == 1 else probas

    @shared("X_test")
    def score_tasks(self, X: Any, y: Any) -> dict[str, float]:
        """Per-task score on the observed labels: accuracy or R^2.

        Parameters
        ----------
        {X_test}
        y : array-like, str or list
            True targets in the layout used for :meth:`fit`; missing labels are
            ignored. A DataFrame's columns are matched to the tasks by name (in
            any order; other names are an error); arrays are matched by position.
            With AnnData ``X``, obs column name(s).

        Returns
        -------
        scores : dict
            Task name to score; NaN for a task without observed labels in ``y``.
        """
        check_is_fitted(self)
        if sources.has_obs_table(X):
            y = obs_columns(X, y)
        frame = targets_frame(y, num_samples(X))
        frame = match_task_columns(y, frame, self.task_names_)
        preds = self._task_predictions(X)
        result = {}
        for j, (task, pred) in enumerate(zip(self.tasks_, preds, strict=True)):
            col = frame.iloc[:, j]
            obs = ~pd.isna(col).to_numpy()
            if not obs.any():
                result[task.name] = float("nan")
                continue
            result[task.name] = task.rule.score(col.to_numpy()[obs], pred[obs])
        return result

    @shared("X_test")
    def score(self, X: Any, y: Any) -> float:
        """Mean over tasks of accuracy (classification) or R^2 (regression).

        Missing labels are ignored; tasks without observed labels are skipped.

        Parameters
        ----------
        {X_test}
        y : array-like, str or list
            True targets; NaN / None mark missing labels.

        Returns
        -------
        score : float
            The mean task score.
        """
        values = [v for v in self.score_tasks(X, y).values() if np.isfinite(v)]
        return float(np.mean(values)) if values else float("nan")
