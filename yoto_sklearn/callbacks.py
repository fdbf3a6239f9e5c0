"""Per-epoch callbacks: see training as it happens, log it, prune it, stop it.

``YOTOSelector(callbacks=[...])`` calls every callback once at the end of each epoch
with an :class:`EpochInfo`. A callback is either a plain function ``f(info)`` or a
:class:`Callback` object (its :meth:`~Callback.on_epoch_end`). It may

- record or log the epoch's metrics (e.g. to MLflow, Weights & Biases, a CSV file);
- stop training by returning ``True``: the fit ends after this epoch and keeps what
  it has (the best weights so far if early stopping recorded any; the panel of the
  current scores if selection had not finished), with ``history_.stopped_early``
  and ``history_.stopped_by_callback`` set;
- abort the fit by raising an exception, which ``fit`` passes on and which leaves
  the estimator unfitted. This is how hyperparameter searches prune a trial:
  Optuna's ``raise optuna.TrialPruned()`` after ``trial.should_prune()``, or a Ray
  Tune scheduler stopping a trial.

Example, pruning an Optuna trial on the validation score::

    def objective(trial):
        def prune(info):
            trial.report(info.validation_score, info.epoch)
            if trial.should_prune():
                raise optuna.TrialPruned()

        sel = YOTOSelector(k=trial.suggest_int("k", 10, 50), callbacks=[prune])
        return sel.fit(X_train, y_train).score(X_val, y_val)

Callbacks see the network being trained (``info.network``); they should not change
it. They run in the fitting process, so with ``GridSearchCV(n_jobs=2)`` each worker
calls its own copy.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

__all__ = ["Callback", "EpochInfo", "EpochLogger"]


@dataclass
class EpochInfo:
    """What one epoch did, handed to every callback at its end.

    Attributes
    ----------
    epoch : int
        Epoch number, from 1.
    max_iter : int
        Number of epochs planned.
    phase : {"selection", "refinement"}
        ``"selection"`` while the panel is learned, ``"refinement"`` once it is
        frozen (see ``YOTOSelector``).
    loss : float
        Mean training loss of the epoch.
    validation_loss, validation_score : float or None
        Loss and mean task score (balanced accuracy / R^2) on the held-out
        validation cells; None without early stopping (no validation set).
    temperature : float
        Relaxed top-k temperature at the end of the epoch.
    n_cells : int
        Training cells the epoch visited.
    seconds : float
        Wall time of the epoch's training steps.
    best_epoch : int or None
        Epoch of the best validation result so far (refinement only).
    panel : list of int
        The panel the scores give now (gene indices, best first).
    network : torch.nn.Module
        The network being trained (read only).
    """

    epoch: int
    max_iter: int
    phase: str
    loss: float
    validation_loss: float | None
    validation_score: float | None
    temperature: float
    n_cells: int
    seconds: float
    best_epoch: int | None
    panel: list[int] = field(repr=False)
    network: Any = field(repr=False)

    def metrics(self) -> dict[str, Any]:
        """The numbers of the epoch as a flat dict (for loggers)."""
        return {
            "epoch": self.epoch,
            "phase": self.phase,
            "loss": self.loss,
            "validation_loss": self.validation_loss,
            "validation_score": self.validation_score,
            "temperature": self.temperature,
            "n_cells": self.n_cells,
            "seconds": self.seconds,
        }


class Callback:
    """Base class of callbacks with state; override :meth:`on_epoch_end`.

    A plain function ``f(info)`` works as well; a class is handy when the callback
    keeps state between epochs or fits.
    """

    def on_epoch_end(self, info: EpochInfo) -> bool | None:
        """Called at the end of every epoch; return True to stop training."""
        return None

    def __call__(self, info: EpochInfo) -> bool | None:
        """Call :meth:`on_epoch_end` (so a Callback is a plain callable too)."""
        return self.on_epoch_end(info)


class EpochLogger(Callback):
    """Keep every epoch's metrics (``records``), optionally print them.

    Parameters
    ----------
    print_every : int, default=0
        Print a line every this many epochs (0: never).

    Attributes
    ----------
    records : list of dict
        :meth:`EpochInfo.metrics` of every epoch of the last fit (a new fit
        starts a new list). ``pandas.DataFrame(logger.records)`` makes a table.
    """

    def __init__(self, print_every: int = 0) -> None:
        self.print_every = print_every
        self.records: list[dict[str, Any]] = []

    def on_epoch_end(self, info: EpochInfo) -> None:
        """Record the epoch's metrics."""
        if info.epoch == 1:
            self.records = []
        self.records.append(info.metrics())
        if self.print_every and info.epoch % self.print_every == 0:
            val = info.validation_score
            shown = "n/a" if val is None or math.isnan(val) else f"{val:.4f}"
            print(
                f"epoch {info.epoch}/{info.max_iter} ({info.phase}): "
                f"loss {info.loss:.4f}, validation score {shown}"
            )
        return None
