"""The fitted state of a selector: one record, one writer, for ``fit`` and ``load``.

:class:`FittedState` lists every fitted attribute a :class:`~yoto_sklearn.
YOTOSelector` has (the attribute names are the field names); :meth:`FittedState.
apply` is the only code that assigns them, and it also sets the attributes derived
from the record (``task_names_``, ``task_types_``, ``classes_``). ``fit`` builds the
record from the trained network (:meth:`FittedState.from_training`); ``_io.load_model``
builds it from a validated model file. Adding a fitted attribute means adding a field
here (and, if it is stored in model files, reading it in ``_io``).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from ._network import PanelNetwork, YOTONetwork, export_panel_network
from ._targets import TaskSpec
from ._training import History

# Fitted attributes stored as tensors in model files; the others (but ``module_``,
# ``tasks_`` and ``history_``, which have sections of their own) are JSON.
TENSOR_ATTRS = ("scores_", "support_", "ranking_")


@dataclass
class FittedState:
    """Every fitted attribute of a selector (see ``YOTOSelector``'s Attributes)."""

    n_features_in_: int
    feature_names_in_: np.ndarray | None
    k_: int
    scores_: np.ndarray
    support_: np.ndarray
    ranking_: np.ndarray
    required_: np.ndarray
    excluded_: np.ndarray
    tasks_: list[TaskSpec]
    loss_curve_: list[float]
    validation_loss_curve_: list[float] | None
    validation_scores_: list[float] | None
    best_validation_score_: float | None
    n_iter_: int
    device_: str
    history_: History
    module_: PanelNetwork
    anndata_input_: dict | None = None
    binarize_threshold_: float | None = None
    count_target_sum_: float | None = None
    gene_loads_: np.ndarray | None = None
    panel_load_: float | None = None
    gene_penalties_: np.ndarray | None = None

    @classmethod
    def from_training(
        cls,
        net: YOTONetwork,
        *,
        tasks: list[TaskSpec],
        history: History,
        mean: np.ndarray | None,
        scale: np.ndarray | None,
        device: torch.device,
        required: np.ndarray,
        excluded: np.ndarray,
        feature_names: np.ndarray | None,
        anndata_input: dict | None = None,
        binarize: float | None = None,
        target_sum: float | None = None,
        loads: np.ndarray | None = None,
        penalties: np.ndarray | None = None,
    ) -> FittedState:
        """The record of a trained network (moved to the CPU)."""
        net = net.cpu()
        scores = net.scores.detach().cpu().double().numpy().copy()
        # stable score order, with required genes first and excluded genes last
        order = net.ranking().cpu().numpy()
        support = order[: net.k]
        ranking = np.empty(len(scores), dtype=np.int64)
        ranking[order] = np.arange(1, len(scores) + 1)
        has_val = bool(history.validation_loss_curve)
        best = None
        if has_val:
            best = history.validation_scores[(history.best_epoch or history.n_iter) - 1]
        return cls(
            n_features_in_=len(scores),
            feature_names_in_=feature_names,
            k_=net.k,
            scores_=scores,
            support_=support,
            ranking_=ranking,
            required_=required,
            excluded_=np.sort(excluded),
            tasks_=tasks,
            loss_curve_=list(history.loss_curve),
            validation_loss_curve_=(
                list(history.validation_loss_curve) if has_val else None
            ),
            validation_scores_=list(history.validation_scores) if has_val else None,
            best_validation_score_=best,
            n_iter_=history.n_iter,
            device_=str(device),
            history_=history,
            module_=export_panel_network(
                net,
                torch.as_tensor(support),
                None if mean is None else torch.as_tensor(mean),
                None if scale is None else torch.as_tensor(scale),
                n_heads=len(tasks),
            ),
            anndata_input_=anndata_input,
            binarize_threshold_=binarize,
            count_target_sum_=target_sum,
            gene_loads_=loads,
            panel_load_=None if loads is None else float(loads[support].sum()),
            gene_penalties_=penalties,
        )

    @staticmethod
    def clear(estimator: Any) -> None:
        """Remove every fitted attribute (names ending in ``_``) of ``estimator``."""
        fitted = [
            a for a in vars(estimator) if a.endswith("_") and not a.startswith("_")
        ]
        for name in fitted:
            delattr(estimator, name)

    def apply(self, estimator: Any) -> None:
        """Set every fitted attribute of ``estimator`` (the only writer)."""
        for item in dataclasses.fields(self):
            value = getattr(self, item.name)
            if item.name == "feature_names_in_" and value is None:
                if hasattr(estimator, "feature_names_in_"):
                    del estimator.feature_names_in_
                continue
            setattr(estimator, item.name, value)
        tasks = self.tasks_
        estimator.task_names_ = [t.name for t in tasks]
        estimator.task_types_ = [t.kind for t in tasks]
        if len(tasks) == 1:
            estimator.classes_ = tasks[0].classes
        else:
            estimator.classes_ = [t.classes for t in tasks]
