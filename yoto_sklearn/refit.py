"""A per-task model refit on a YOTO panel, as one scikit-learn estimator.

YOTO trains one panel for several tasks, with labels missing for some cells; the
next step of a ``Pipeline`` (a classifier, say) takes one target without missing
labels, so ``make_pipeline(YOTOSelector(), LogisticRegression())`` cannot take a
2-D, NaN-masked ``y``. :class:`PanelRefit` does what that pipeline means: select
the panel on every task, then fit a model of one task on the panel columns of the
cells labelled for it. It is an ordinary estimator, so ``cross_val_score``,
``GridSearchCV`` and ``clone`` treat the panel selection as part of the fit: the
panel of each fold is chosen on that fold's training cells only.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, clone
from sklearn.utils._param_validation import HasMethods
from sklearn.utils.validation import check_is_fitted

from ._targets import as_frame, obs_columns
from .sources import is_anndata

__all__ = ["PanelRefit"]


class PanelRefit(BaseEstimator):
    """Select a panel with YOTO on every task, then fit ``estimator`` for one task.

    Parameters
    ----------
    selector : YOTOSelector
        Selects the panel from all tasks of ``y`` (cloned at fit).
    estimator : estimator
        Fitted on the panel columns of the cells labelled for ``task`` (cloned at
        fit), e.g. ``make_pipeline(StandardScaler(), LogisticRegression())``.
    task : str or int, default=0
        The task to refit: a column name of ``y`` (a DataFrame, or obs names with
        AnnData ``X``) or its position.

    Attributes
    ----------
    selector_ : YOTOSelector
        The fitted selector (its panel: ``selector_.support_``).
    estimator_ : estimator
        The fitted per-task model.
    task_ : str
        The name of the refitted task.

    Examples
    --------
    >>> from sklearn.linear_model import LogisticRegression
    >>> from sklearn.model_selection import cross_val_score
    >>> refit = PanelRefit(YOTOSelector(k=25), LogisticRegression(), task="phase")
    >>> cross_val_score(refit, X, Y, cv=5)  # doctest: +SKIP
    """

    _parameter_constraints: dict = {
        "selector": [HasMethods(["fit", "transform"])],
        "estimator": [HasMethods(["fit", "predict"])],
        "task": [str, int],
    }

    def __init__(self, selector: Any, estimator: Any, task: str | int = 0) -> None:
        self.selector = selector
        self.estimator = estimator
        self.task = task

    def _task_column(self, frame: pd.DataFrame) -> str:
        if isinstance(self.task, str):
            if self.task not in frame.columns:
                raise ValueError(
                    f"task {self.task!r} is not a column of y: {list(frame.columns)}"
                )
            return self.task
        if not -frame.shape[1] <= self.task < frame.shape[1]:
            raise ValueError(f"task {self.task} is out of range: y has "
                             f"{frame.shape[1]} column(s)")  # fmt: skip
        return str(frame.columns[self.task])

    def fit(self, X: Any, y: Any) -> PanelRefit:
        """Fit the selector on every task, then the estimator on one.

        Parameters
        ----------
        X : {array-like, sparse matrix, AnnData} of shape (n_samples, n_features)
            Cells by genes.
        y : array-like of shape (n_samples, n_tasks), str or list
            Targets as for ``YOTOSelector.fit`` (missing labels allowed).

        Returns
        -------
        self : PanelRefit
            The fitted estimator.
        """
        self._validate_params()
        self.selector_ = clone(self.selector).fit(X, y)
        frame = as_frame(obs_columns(X, y) if is_anndata(X) else y)
        self.task_ = self._task_column(frame)
        labelled = frame[self.task_].notna().to_numpy()
        panel = self.selector_.transform(X)
        target = frame[self.task_].to_numpy()[labelled]
        rows = np.flatnonzero(labelled)
        part = panel.iloc[rows] if hasattr(panel, "iloc") else panel[rows]
        self.estimator_ = clone(self.estimator).fit(part, target)
        return self

    def predict(self, X: Any) -> np.ndarray:
        """The refitted model's predictions from the panel columns of ``X``.

        Parameters
        ----------
        X : {array-like, sparse matrix, AnnData} of shape (n_samples, n_features)
            Same genes as at fit.

        Returns
        -------
        y_pred : ndarray of shape (n_samples,)
            Predictions of the refitted task.
        """
        check_is_fitted(self)
        return self.estimator_.predict(self.selector_.transform(X))

    def score(self, X: Any, y: Any) -> float:
        """The refitted model's score on the cells labelled for the task.

        Parameters
        ----------
        X : {array-like, sparse matrix, AnnData} of shape (n_samples, n_features)
            Test cells.
        y : array-like of shape (n_samples, n_tasks), str or list
            Targets in the layout of fit; cells without a label for the task are
            left out.

        Returns
        -------
        score : float
            ``estimator_.score`` on the labelled cells.
        """
        check_is_fitted(self)
        frame = as_frame(obs_columns(X, y) if is_anndata(X) else y)
        column = frame[self.task_] if self.task_ in frame else frame.iloc[:, 0]
        labelled = column.notna().to_numpy()
        panel = self.selector_.transform(X)
        rows = np.flatnonzero(labelled)
        part = panel.iloc[rows] if hasattr(panel, "iloc") else panel[rows]
        return float(self.estimator_.score(part, column.to_numpy()[labelled]))
