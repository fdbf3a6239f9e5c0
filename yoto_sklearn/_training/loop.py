"""One training loop for :class:`~yoto_sklearn._network.YOTONetwork`, with seams.

Training has two phases inside the one run:

1. **Selection** (the first ``selection_fraction`` of ``max_iter`` epochs): every
   mini-batch samples a Gumbel-perturbed hard top-k panel; the temperature anneals
   exponentially from ``temperature_start`` to ``temperature`` and the Gumbel noise
   from ``noise_start`` to ``noise_end``. Scores and network learn together.
2. **Refinement** (the remaining epochs): the panel is frozen at the deterministic
   top-k of the scores and the encoder and heads keep training on it. Early stopping
   (:class:`EarlyStopping`, on the validation loss) acts only here, so the selection
   always runs its full annealing schedule; the best weights of this phase are
   restored.

The seams: :func:`train` is keyword-only and takes the loss (``loss_fn``) and the
validation (``evaluate_fn``) as arguments; per-epoch ``callbacks``
(:mod:`yoto_sklearn.callbacks`) see every epoch and can stop training; mini-batches
become tensors in one plain function (``batches.batch_tensors``).
"""

from __future__ import annotations

import copy
import inspect
import math
import sys
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from sklearn.exceptions import ConvergenceWarning

from .._network import YOTONetwork
from .._targets import CLASSIFICATION, REGRESSION, TaskSpec, class_weights
from ..callbacks import EpochInfo
from ..sources import epoch_rows
from .batches import GeneBatches, PanelBatches, TrainingData


# ------------------------------------------------------------------ records
@dataclass
class TrainConfig:
    """Hyper-parameters of one training run (already validated)."""

    max_iter: int
    batch_size: int
    learning_rate: float
    score_learning_rate: float
    weight_decay: float
    temperature_start: float
    temperature: float
    noise_start: float = 1.0
    noise_end: float = 0.05
    selection_fraction: float = 0.6
    early_stopping: bool = True
    n_iter_no_change: int = 10
    tol: float = 1e-4
    verbose: int = 0
    # cells visited per epoch (None: all); see :func:`~yoto_sklearn.sources.epoch_rows`
    max_cells_per_epoch: int | None = None
    # what early stopping watches: the validation "score" (mean balanced accuracy /
    # R^2 over tasks, higher is better) or the summed validation "loss"
    stop_on: str = "loss"

    @classmethod
    def from_params(cls, params: dict[str, Any], stop_on: str = "loss") -> TrainConfig:
        """The config of a selector's (validated) ``get_params()``."""
        cap = params["max_cells_per_epoch"]
        return cls(
            max_iter=int(params["max_iter"]),
            batch_size=int(params["batch_size"]),
            learning_rate=float(params["learning_rate"]),
            score_learning_rate=float(params["score_learning_rate"]),
            weight_decay=float(params["weight_decay"]),
            temperature_start=float(params["temperature_start"]),
            temperature=float(params["temperature"]),
            early_stopping=bool(params["early_stopping"]),
            n_iter_no_change=int(params["n_iter_no_change"]),
            tol=float(params["tol"]),
            verbose=int(params["verbose"]),
            stop_on=stop_on,
            max_cells_per_epoch=None if cap is None else int(cap),
        )


@dataclass
class TaskLoss:
    """How to compute one task's loss from its head output.

    An ``auxiliary`` task (e.g. a structure target) counts in the loss, the
    validation loss included, but not in the validation score, which is the mean
    over the user's tasks.
    """

    kind: str
    weight: float
    class_weight: torch.Tensor | None = None
    auxiliary: bool = False


@dataclass
class History:
    """What happened during training, one entry per epoch."""

    loss_curve: list[float] = field(default_factory=list)
    validation_loss_curve: list[float] = field(default_factory=list)
    validation_scores: list[float] = field(default_factory=list)
    temperature_curve: list[float] = field(default_factory=list)
    epoch_times: list[float] = field(default_factory=list)
    epoch_cpu_times: list[float] = field(default_factory=list)
    best_epoch: int | None = None
    selection_epochs: int = 0
    n_iter: int = 0
    stopped_early: bool = False
    interrupted: bool = False
    stopped_by_callback: bool = False
    # Best refinement weights so far; only kept while training runs (see
    # :func:`recover_from_interrupt`), cleared before ``train`` returns.
    best_state: dict | None = field(default=None, repr=False)


def task_losses(
    tasks: Sequence[TaskSpec],
    Y_train: np.ndarray,
    weights: Sequence[float],
    scheme: str | None,
    device: torch.device,
    auxiliary: Sequence[float] = (),
) -> list[TaskLoss]:
    """One :class:`TaskLoss` per task, class weights from the training labels.

    ``auxiliary`` weights add auxiliary regression tasks (structure targets) last.
    """
    out = []
    for j, (task, weight) in enumerate(zip(tasks, weights, strict=True)):
        cw = class_weights(task, Y_train[:, j], scheme)
        if cw is not None:
            cw = torch.as_tensor(cw, dtype=torch.float32, device=device)
        out.append(TaskLoss(task.kind, weight, cw))
    aux = [TaskLoss(REGRESSION, w, None, auxiliary=True) for w in auxiliary]
    return out + aux


# ------------------------------------------------------------------- losses
def _cross_entropy(
    out: torch.Tensor, target: torch.Tensor, spec: TaskLoss
) -> tuple[torch.Tensor, torch.Tensor]:
    labels = target.long()
    per = F.cross_entropy(out, labels, reduction="none")
    weights = None if spec.class_weight is None else spec.class_weight[labels]
    return per, weights


def _squared_error(
    out: torch.Tensor, target: torch.Tensor, spec: TaskLoss
) -> tuple[torch.Tensor, None]:
    return (out[:, 0] - target) ** 2, None


# Per-cell loss and per-cell weight (None: 1) of each task kind.
PER_CELL_LOSS = {CLASSIFICATION: _cross_entropy, REGRESSION: _squared_error}


def multitask_loss(
    outputs: Sequence[torch.Tensor], yb: torch.Tensor, losses: Sequence[TaskLoss]
) -> torch.Tensor:
    """``sum_t w_t * mean over labelled cells of loss_t``; missing labels are NaN.

    A task with no labelled cell in the batch contributes exactly zero.
    """
    total = yb.new_zeros(())
    for t, (out, spec) in enumerate(zip(outputs, losses, strict=True)):
        col = yb[:, t]
        obs = ~torch.isnan(col)
        w = obs.to(out.dtype)
        target = torch.where(obs, col, torch.zeros_like(col))
        per, cell_weights = PER_CELL_LOSS[spec.kind](out, target, spec)
        if cell_weights is not None:
            w = w * cell_weights
        total = total + spec.weight * (per * w).sum() / w.sum().clamp_min(1e-12)
    return total


def _fast_adam_kwargs(device: torch.device) -> dict:
    """Optimizer flags: fused AdamW where torch supports it.

    The default multi-tensor path measured 32 ms per step against 0.5 ms fused for a
    256 x 300 layer on this project's 2-core CPU.
    """
    if "fused" in inspect.signature(torch.optim.AdamW).parameters and device.type in (
        "cpu",
        "cuda",
    ):
        return {"fused": True}
    return {"foreach": False}


def _schedule(start: float, end: float, progress: float) -> float:
    """Exponential interpolation from ``start`` to ``end`` (progress in [0, 1])."""
    if start <= 0 or end <= 0:
        return start + (end - start) * progress
    return float(start * (end / start) ** progress)


# ------------------------------------------------------------ validation
class _ClassScore:
    """Weighted loss and balanced accuracy of a classification task, batch by batch."""

    def __init__(self) -> None:
        self.loss_sum = self.weight_sum = 0.0
        self.hits: torch.Tensor | None = None  # per class: correct, total

    def add(self, out, target, per, weights) -> None:
        weights = torch.ones_like(per) if weights is None else weights
        self.loss_sum += float((per * weights).sum())
        self.weight_sum += float(weights.sum())
        labels = target.long()
        right = (out.argmax(1) == labels).to(out.dtype)
        counts = torch.stack(
            [
                torch.bincount(labels, weights=right, minlength=out.shape[1]),
                torch.bincount(labels, minlength=out.shape[1]).to(out.dtype),
            ]
        )
        self.hits = counts if self.hits is None else self.hits + counts

    def score(self) -> float:
        right, total = self.hits.cpu().double().numpy()
        present = total > 0
        return float(np.mean(right[present] / total[present]))


class _ValueScore:
    """Squared error and R^2 of a regression task, batch by batch."""

    def __init__(self) -> None:
        self.loss_sum = self.weight_sum = 0.0
        self.targets: list[torch.Tensor] = []

    def add(self, out, target, per, weights) -> None:
        self.loss_sum += float(per.sum())  # the squared error sum
        self.weight_sum += float(len(per))
        self.targets.append(target)

    def score(self) -> float:
        y_all = torch.cat(self.targets)
        sst = float(((y_all - y_all.mean()) ** 2).sum())
        return 1.0 - self.loss_sum / sst if sst > 0 else 0.0


# Validation loss and score of each task kind.
VALIDATION_SCORE = {CLASSIFICATION: _ClassScore, REGRESSION: _ValueScore}


@torch.no_grad()
def evaluate(
    net: YOTONetwork,
    batches: GeneBatches | PanelBatches,
    idx: np.ndarray,
    losses: Sequence[TaskLoss],
    batch_size: int,
) -> tuple[float, float]:
    """Validation loss and mean task score with the fixed panel.

    The score of a classification task is its balanced accuracy (mean recall over
    the classes present), of a regression task its R^2. ``batches`` gives the
    forward pass too: the network on all genes, or the panel-only refinement.
    """
    net.eval()
    tallies = [VALIDATION_SCORE[spec.kind]() for spec in losses]
    for xb, yb in batches.iterate(idx, batch_size, None):
        outputs = batches.forward(xb)
        for t, (out, spec) in enumerate(zip(outputs, losses, strict=True)):
            col = yb[:, t]
            obs = ~torch.isnan(col)
            if not bool(obs.any()):
                continue
            target, out = col[obs], out[obs]
            per, weights = PER_CELL_LOSS[spec.kind](out, target, spec)
            tallies[t].add(out, target, per, weights)
    total_loss = 0.0
    scores = []
    for spec, tally in zip(losses, tallies, strict=True):
        if tally.weight_sum == 0:
            continue
        total_loss += spec.weight * tally.loss_sum / tally.weight_sum
        if not spec.auxiliary:
            scores.append(tally.score())
    return total_loss, float(np.mean(scores)) if scores else float("nan")


class EarlyStopping:
    """Track the best validation result and count epochs without improvement.

    Parameters
    ----------
    patience : int
        Stop after this many epochs without improvement.
    tol : float
        Minimum change that counts as an improvement.
    stop_on : {"loss", "score"}
        Watch the validation loss (lower is better) or the mean task score (higher
        is better; a NaN score falls back to the loss).
    """

    def __init__(self, patience: int, tol: float, stop_on: str = "loss") -> None:
        self.patience = patience
        self.tol = tol
        self.stop_on = stop_on
        self.best_loss = math.inf
        self.best_score = -math.inf
        self.wait = 0

    def update(self, loss: float, score: float) -> bool:
        """Record one epoch's validation result; return whether it improved."""
        if self.stop_on == "score" and math.isfinite(score):
            improved = score > self.best_score + self.tol
        else:
            improved = loss < self.best_loss - self.tol
        if improved:
            self.best_loss = min(self.best_loss, loss)
            self.best_score = max(self.best_score, score)
            self.wait = 0
        else:
            self.wait += 1
        return improved

    @property
    def should_stop(self) -> bool:
        """Whether ``patience`` epochs passed without improvement."""
        return self.wait >= self.patience


# ---------------------------------------------------------------- the loop
class _Run:
    """The state of one training run; :func:`train` is its public door."""

    def __init__(self, net: YOTONetwork, data: TrainingData, config: TrainConfig,
                 rng: np.random.Generator, device: torch.device) -> None:  # fmt: skip
        self.net, self.data, self.config, self.rng = net, data, config, rng
        params = [p for name, p in net.named_parameters() if name != "scores"]
        self.optimizer = torch.optim.AdamW(
            **_fast_adam_kwargs(device),
            params=[
                {
                    "params": [net.scores],
                    "lr": config.score_learning_rate,
                    "weight_decay": 0,
                },
                {
                    "params": params,
                    "lr": config.learning_rate,
                    "weight_decay": config.weight_decay,
                },
            ],
        )
        n_train = len(data.train_idx)
        cap = config.max_cells_per_epoch
        epoch_size = n_train if cap is None else min(n_train, cap)
        self.batch_size = min(config.batch_size, epoch_size)
        steps_per_epoch = max(1, math.ceil(epoch_size / self.batch_size))
        self.val_idx = data.val_idx
        if cap is not None and n_train > cap and self.val_idx is not None:
            if len(self.val_idx) > cap // 4:
                # early stopping needs a score, not every held-out cell: a fixed
                # random quarter of an epoch's worth, evaluated after every epoch
                self.val_idx = np.sort(
                    rng.choice(self.val_idx, size=max(cap // 4, 2), replace=False)
                )
        source = data.source
        chunked = source.shuffle == "chunked"
        self.epochs = epoch_rows(
            data.train_idx,
            cap,
            rng,
            source.chunk_rows(self.batch_size) if chunked else None,
            source.buffer_chunks,
        )
        selection = max(1, round(config.selection_fraction * config.max_iter))
        self.selection_epochs = min(selection, config.max_iter)
        self.total_sel_steps = max(1, self.selection_epochs * steps_per_epoch - 1)
        self.step = 0

    def select_step(self, xb: torch.Tensor, generator: torch.Generator) -> tuple:
        """One selection step: outputs, temperature, panel-level loss terms.

        The outputs are those of a sampled panel; the panel-level terms (budget,
        gene penalties) are None without them.
        """
        progress = min(1.0, self.step / self.total_sel_steps)
        config = self.config
        tau = _schedule(config.temperature_start, config.temperature, progress)
        noise = _schedule(config.noise_start, config.noise_end, progress)
        soft, hard = self.net.select(tau, noise, generator)
        self.step += 1
        return self.net(xb, soft, hard), tau, self.net.design_loss(soft, hard)


def _epoch_info(run: _Run, history: History, epoch: int, selecting: bool,
                n_cells: int) -> EpochInfo:  # fmt: skip
    val = bool(history.validation_loss_curve)
    return EpochInfo(
        epoch=epoch + 1,
        max_iter=run.config.max_iter,
        phase="selection" if selecting else "refinement",
        loss=history.loss_curve[-1],
        validation_loss=history.validation_loss_curve[-1] if val else None,
        validation_score=history.validation_scores[-1] if val else None,
        temperature=history.temperature_curve[-1],
        n_cells=n_cells,
        seconds=history.epoch_times[-1],
        best_epoch=history.best_epoch,
        panel=run.net.panel().cpu().tolist(),
        network=run.net,
    )


def _non_finite(epoch: int, loss: float, best_state: dict | None) -> None:
    """Raise for a non-finite loss, or warn when best weights can be restored."""
    if best_state is None:
        raise FloatingPointError(
            f"Training loss became non-finite ({loss}) at epoch {epoch + 1}. "
            "Check X for extreme values, or lower learning_rate / "
            "score_learning_rate."
        )
    warnings.warn(
        f"Training loss became non-finite at epoch {epoch + 1}; stopped and "
        "restored the best weights so far. Lower learning_rate or "
        "score_learning_rate.",
        ConvergenceWarning,
        stacklevel=6,
    )


def train(
    net: YOTONetwork,
    *,
    data: TrainingData,
    losses: Sequence[TaskLoss],
    config: TrainConfig,
    rng: np.random.Generator,
    generator: torch.Generator,
    device: torch.device,
    refine_losses: Sequence[TaskLoss] | None = None,
    history: History | None = None,
    callbacks: Sequence[Callable[[EpochInfo], Any]] = (),
    loss_fn: Callable[..., torch.Tensor] = multitask_loss,
    evaluate_fn: Callable[..., tuple[float, float]] = evaluate,
) -> History:
    """Train ``net`` in place and return its :class:`History`.

    Parameters
    ----------
    net : YOTONetwork
        The network; trained in place.
    data : TrainingData
        Row source, encoded targets, training / validation rows, standardisation.
    losses, refine_losses : sequence of TaskLoss
        Per-task losses of the selection phase, and of the refinement phase
        (default: the same).
    config : TrainConfig
        Schedule and optimiser settings.
    rng, generator : numpy Generator, torch Generator
        Batch order / validation subset, and Gumbel noise.
    device : torch.device
        Where the mini-batches and the network live during training.
    history : History, optional
        Pass a fresh one to keep a handle on the progress if training is
        interrupted (``KeyboardInterrupt``); see :func:`recover_from_interrupt`.
    callbacks : sequence of callables
        Called with an :class:`~yoto_sklearn.callbacks.EpochInfo` after every
        epoch; one returning True stops training after that epoch.
    loss_fn, evaluate_fn : callables
        The training loss (``loss_fn(outputs, yb, losses)``) and the validation
        (``evaluate_fn(net, batches, idx, losses, batch_size)``); seams for
        experiments and tests.
    """
    from tqdm.auto import tqdm

    net.to(device)
    run = _Run(net, data, config, rng, device)
    history = History() if history is None else history
    history.selection_epochs = run.selection_epochs
    use_val = run.val_idx is not None and len(run.val_idx) > 0
    stopper = EarlyStopping(config.n_iter_no_change, config.tol, config.stop_on)
    best_state = None
    genes = GeneBatches(data, device, net)
    refine: PanelBatches | None = None
    bs = run.batch_size
    why = ""  # why training stopped early, for the progress bar
    bar = tqdm(range(config.max_iter), desc="YOTO", unit="epoch",
               disable=config.verbose <= 0, leave=True)  # fmt: skip
    for epoch in bar:
        selecting = epoch < run.selection_epochs
        net.train()
        epoch_start, epoch_cpu = time.perf_counter(), time.process_time()
        running = torch.zeros((), device=device)
        n_batches = 0
        tau = config.temperature
        if not selecting and refine is None:
            genes.release()  # refinement reads the panel columns only
            refine = PanelBatches(net, run.optimizer, data, device)
            losses = refine_losses if refine_losses is not None else losses
        current = genes if selecting else refine
        rows = next(run.epochs)
        for xb, yb in current.iterate(rows, bs, rng):
            if len(xb) < 2 and n_batches > 0:
                continue  # BatchNorm needs 2 rows; the cell is seen next epoch
            design = None
            if selecting:
                outputs, tau, design = run.select_step(xb, generator)
            else:
                outputs = refine.forward(xb)
            loss = loss_fn(outputs, yb, losses)
            if design is not None:  # not part of the reported loss curve
                loss_for_grad = loss + design
            else:
                loss_for_grad = loss
            run.optimizer.zero_grad(set_to_none=True)
            # refinement: the panel is detached, the scores get no gradient
            loss_for_grad.backward()
            run.optimizer.step()
            running = running + loss.detach()
            n_batches += 1
        epoch_loss = float(running) / max(n_batches, 1)
        history.epoch_times.append(time.perf_counter() - epoch_start)
        history.epoch_cpu_times.append(time.process_time() - epoch_cpu)
        history.loss_curve.append(epoch_loss)
        history.temperature_curve.append(tau)
        history.n_iter = epoch + 1
        if refine is not None:
            refine.sync()  # the network's own weight is current after every epoch
        if not math.isfinite(epoch_loss):
            _non_finite(epoch, epoch_loss, best_state)
            net.load_state_dict(best_state)
            history.stopped_early = True
            why = "the loss became non-finite; the best weights were restored"
            break
        postfix = {"loss": f"{epoch_loss:.4f}", "tau": f"{tau:.3g}"}
        stop = False
        if use_val:
            val_loss, val_score = evaluate_fn(net, current, run.val_idx, losses, bs)
            history.validation_loss_curve.append(val_loss)
            history.validation_scores.append(val_score)
            postfix["val_loss"] = f"{val_loss:.4f}"
            if not selecting and config.early_stopping:
                if stopper.update(val_loss, val_score):
                    best_state = copy.deepcopy(net.state_dict())
                    history.best_state = best_state
                    history.best_epoch = epoch + 1
                stop = stopper.should_stop
        if callbacks:
            info = _epoch_info(run, history, epoch, selecting, len(rows))
            if any([bool(callback(info)) for callback in callbacks]):
                history.stopped_by_callback = True
                stop = True
        bar.set_postfix(postfix)
        if stop:
            history.stopped_early = True
            break
    if config.verbose > 0 and history.stopped_early:
        why = why or (
            "a callback asked to stop"
            if history.stopped_by_callback
            else f"no validation improvement for {config.n_iter_no_change} epochs"
        )
        # on stderr with the bar: stdout stays for results (tables, piping)
        bar.write(f"YOTO stopped early at epoch {history.n_iter} of "
                  f"{config.max_iter}: {why}", file=sys.stderr)  # fmt: skip
    bar.close()
    if refine is not None:
        refine.release()
    if best_state is not None:
        net.load_state_dict(best_state)
    history.best_state = None
    net.eval()
    return history


def recover_from_interrupt(net: YOTONetwork, history: History) -> bool:
    """Make ``net`` usable after ``train`` was stopped by ``KeyboardInterrupt``.

    The panel is final once every selection epoch has run (the scores only move in
    the selection phase). In that case the best refinement weights so far are
    restored (if early stopping recorded any; otherwise the weights of the
    interrupted epoch are kept), validation curves are padded with NaN for an epoch
    whose evaluation did not finish, and ``True`` is returned. Otherwise nothing is
    usable and ``False`` is returned.
    """
    best_state, history.best_state = history.best_state, None
    if history.n_iter < max(history.selection_epochs, 1):
        return False
    if best_state is not None:
        net.load_state_dict(best_state)
    n = history.n_iter
    del history.loss_curve[n:], history.temperature_curve[n:]
    for curve in (history.validation_loss_curve, history.validation_scores):
        if curve:
            curve.extend([math.nan] * (n - len(curve)))
    history.interrupted = True
    history.stopped_early = True
    net.eval()
    return True


def check_finite_network(net: YOTONetwork) -> None:
    """Raise if any parameter or buffer of ``net`` is NaN or infinite.

    The loss is checked once per epoch; this catches weights that overflowed in the
    last optimiser step, so a fitted model can never predict NaN.

    Raises
    ------
    FloatingPointError
        Naming the first non-finite tensor.
    """
    for name, tensor in [*net.named_parameters(), *net.named_buffers()]:
        if tensor.is_floating_point() and not bool(torch.isfinite(tensor).all()):
            raise FloatingPointError(
                f"Training produced non-finite weights ({name!r}). Check X for "
                "extreme values, or lower learning_rate / score_learning_rate."
            )
