"""One training loop for :class:`~yoto_sklearn._network.YOTONetwork`.

Training has two phases inside the one run:

1. **Selection** (the first ``selection_fraction`` of ``max_iter`` epochs): every
   mini-batch samples a Gumbel-perturbed hard top-k panel; the temperature anneals
   exponentially from ``temperature_start`` to ``temperature`` and the Gumbel noise
   from ``noise_start`` to ``noise_end``. Scores and network learn together.
2. **Refinement** (the remaining epochs): the panel is frozen at the deterministic
   top-k of the scores and the encoder and heads keep training on it. Early stopping
   (on the validation loss) acts only here, so the selection always runs its full
   annealing schedule; the best weights of this phase are restored.
"""

from __future__ import annotations

import contextlib
import copy
import math
import time
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F
from sklearn.exceptions import ConvergenceWarning
from torch import nn

from ._data import chunked_permutation
from ._network import YOTONetwork


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
    # cells visited per epoch (None: all); see :func:`epoch_rows`
    max_cells_per_epoch: int | None = None
    # what early stopping watches: the validation "score" (mean balanced accuracy /
    # R^2 over tasks, higher is better) or the summed validation "loss"
    stop_on: str = "loss"


@dataclass
class TaskLoss:
    """How to compute one task's loss from its head output."""

    kind: str
    weight: float
    class_weight: torch.Tensor | None = None


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
    # Best refinement weights so far; only kept while training runs (see
    # :func:`recover_from_interrupt`), cleared before ``train`` returns.
    best_state: dict | None = field(default=None, repr=False)


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
        obs_f = obs.to(out.dtype)
        target = torch.where(obs, col, torch.zeros_like(col))
        if spec.kind == "classification":
            per = F.cross_entropy(out, target.long(), reduction="none")
            w = obs_f
            if spec.class_weight is not None:
                w = w * spec.class_weight[target.long()]
        else:
            per = (out[:, 0] - target) ** 2
            w = obs_f
        total = total + spec.weight * (per * w).sum() / w.sum().clamp_min(1e-12)
    return total


def _fast_adam_kwargs(device: torch.device) -> dict:
    """Optimizer flags: fused AdamW where torch supports it.

    The default multi-tensor path measured 32 ms per step against 0.5 ms fused for a
    256 x 300 layer on this project's 2-core CPU.
    """
    import inspect

    if "fused" in inspect.signature(torch.optim.AdamW).parameters and device.type in (
        "cpu",
        "cuda",
    ):
        return {"fused": True}
    return {"foreach": False}


def epoch_rows(
    train_idx: np.ndarray,
    cap: int | None,
    rng: np.random.Generator,
    chunk_rows: int | None,
) -> Iterator[np.ndarray]:
    """The training rows of each epoch: all of them, or ``cap`` at a time.

    With ``cap`` at least the number of training cells (every dataset up to that
    size) each epoch is ``train_idx`` and no random number is drawn, so training
    is exactly what it is without a cap. Above it, an epoch is the next ``cap``
    cells of a shuffled pass over the data (a new pass starts when one is used up),
    so the cost of an epoch, and of the whole schedule, stops growing with the
    number of cells while every cell is still visited in turn. With ``chunk_rows``
    (a source streamed from disk) the pass is the reader's chunk-wise shuffle
    (:func:`~yoto_sklearn._data.chunked_permutation`), so an epoch reads about
    ``cap`` cells from disk, not the whole file.
    """
    n = len(train_idx)
    if cap is None or n <= cap:
        while True:
            yield train_idx
    pending = np.empty(0, dtype=train_idx.dtype)
    while True:
        if len(pending) >= cap:
            epoch, pending = pending[:cap], pending[cap:]
        else:  # the rest of this pass, topped up from the next (no cell twice)
            if chunk_rows:  # the streaming reader's chunk-wise shuffle
                fresh = chunked_permutation(train_idx, rng, chunk_rows)[0]
            else:
                fresh = rng.permutation(train_idx)
            # cells still pending wait for a later epoch of the new pass
            take = np.flatnonzero(~np.isin(fresh, pending))[: cap - len(pending)]
            epoch = np.concatenate([pending, fresh[take]])
            pending = np.delete(fresh, take)
        yield np.sort(epoch)


class _PanelBatches:
    """Refinement on the panel only: its k columns, read once; a k-column layer.

    When the selection phase ends the panel is fixed, so the refinement needs
    neither the other genes nor their first-layer weights. One pass over the
    source's row chunks keeps the panel columns of every cell (``n x k`` float32,
    200 MB for 10^6 cells and k = 50); mini-batches are then sliced from that
    matrix, and the first layer trains as a ``H x k`` parameter that takes over the
    panel columns of the ``H x G`` weight (and their AdamW moments) inside the same
    optimizer. A refinement step therefore costs ``O(B k H)``, independent of the
    number of genes, instead of densifying ``B x G`` and updating ``G x H``.
    Predictions are the same as those of the full network: the same values enter
    the same operations (the batch order of an in-memory, fully shuffled source is
    unchanged too). :meth:`sync` writes the panel columns back into the network.
    """

    def __init__(self, net, optimizer, source, Y, mean, scale, device) -> None:
        self.net = net
        self.panel = net.panel().detach().cpu()
        cols = self.panel.numpy()
        parts = []
        for _, block in source.chunks():
            part = block[:, cols]
            part = part.toarray() if hasattr(part, "toarray") else np.asarray(part)
            parts.append(np.asarray(part, dtype=np.float32))
        self.X = np.concatenate(parts) if parts else np.empty((0, len(cols)), "f4")
        idx = self.panel.to(device)
        # the same standardisation and transfer as all-gene batches, on k columns
        self._tensors = _Batches(
            None,
            Y,
            None if mean is None else np.asarray(mean)[cols],
            None if scale is None else np.asarray(scale)[cols],
            device,
        )._tensors
        # the H x k layer takes over the panel columns of the weight, optimiser
        # state included; the H x G weight leaves the optimiser
        full = net.weight
        self.weight = nn.Parameter(full.detach().index_select(1, idx).clone())
        for group in optimizer.param_groups:
            for j, p in enumerate(group["params"]):
                if p is full:
                    group["params"][j] = self.weight
        state = optimizer.state.pop(full, {})
        optimizer.state[self.weight] = {
            key: value.index_select(1, idx).clone()
            if torch.is_tensor(value) and value.shape == full.shape
            else (value.clone() if torch.is_tensor(value) else value)
            for key, value in state.items()
        }
        full.requires_grad_(False)
        self._idx = idx

    def iterate(
        self, idx: np.ndarray, batch_size: int, rng: np.random.Generator | None
    ) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """Mini-batches over ``idx`` (shuffled with ``rng``) of the panel columns."""
        order = np.sort(idx) if rng is None else rng.permutation(idx)
        for start in range(0, len(order), batch_size):
            rows = np.sort(order[start : start + batch_size])
            yield self._tensors(rows, self.X[rows])

    def forward(self, xb: torch.Tensor) -> list[torch.Tensor]:
        """The network's outputs from panel-column rows."""
        z = torch.addmm(self.net.bias, xb, self.weight.t())
        z = self.net.body(z)
        return [head(z) for head in self.net.heads]

    def sync(self) -> None:
        """Write the trained panel columns back into the network's weight."""
        with torch.no_grad():
            self.net.weight.index_copy_(1, self._idx, self.weight.detach())


def _schedule(start: float, end: float, progress: float) -> float:
    """Exponential interpolation from ``start`` to ``end`` (progress in [0, 1])."""
    if start <= 0 or end <= 0:
        return start + (end - start) * progress
    return float(start * (end / start) ** progress)


class _Batches:
    """Dense float32 standardised mini-batches on ``device``.

    The row source decides the batch order (``source.batches``): a full permutation
    in memory, a chunk-wise shuffle when streaming from disk.
    """

    def __init__(self, source, Y, mean, scale, device) -> None:
        self.source = source
        self.Y = Y
        self.device = device
        self.mean = None if mean is None else torch.as_tensor(mean, device=device)
        self.scale = None if scale is None else torch.as_tensor(scale, device=device)

    def iterate(
        self, idx: np.ndarray, batch_size: int, rng: np.random.Generator | None
    ) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """Mini-batches over ``idx``: shuffled with ``rng``, in order without."""
        for rows, block in self.source.batches(idx, batch_size, rng):
            yield self._tensors(rows, block)

    def _tensors(
        self, idx: np.ndarray, block: np.ndarray
    ) -> tuple[torch.Tensor, torch.Tensor]:
        xb = torch.from_numpy(block).to(self.device, non_blocking=True)
        if self.mean is not None:
            xb = (xb - self.mean) / self.scale
        yb = torch.from_numpy(self.Y[idx]).to(self.device, non_blocking=True)
        return xb, yb


@torch.no_grad()
def evaluate(
    net: YOTONetwork,
    batches: _Batches | _PanelBatches,
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
    forward = getattr(batches, "forward", net)
    n_tasks = len(losses)
    loss_num = np.zeros(n_tasks)
    loss_den = np.zeros(n_tasks)
    hits: list[torch.Tensor | None] = [None] * n_tasks  # per class: correct, total
    ys: list[list[torch.Tensor]] = [[] for _ in range(n_tasks)]
    for xb, yb in batches.iterate(idx, batch_size, None):
        outputs = forward(xb)
        for t, (out, spec) in enumerate(zip(outputs, losses, strict=True)):
            col = yb[:, t]
            obs = ~torch.isnan(col)
            if not bool(obs.any()):
                continue
            target = col[obs]
            out = out[obs]
            if spec.kind == "classification":
                tl = target.long()
                per = F.cross_entropy(out, tl, reduction="none")
                w = (
                    spec.class_weight[tl]
                    if spec.class_weight is not None
                    else torch.ones_like(per)
                )
                loss_num[t] += float((per * w).sum())
                loss_den[t] += float(w.sum())
                n_cls = out.shape[1]
                right = (out.argmax(1) == tl).to(out.dtype)
                counts = torch.stack(
                    [
                        torch.bincount(tl, weights=right, minlength=n_cls),
                        torch.bincount(tl, minlength=n_cls).to(out.dtype),
                    ]
                )
                hits[t] = counts if hits[t] is None else hits[t] + counts
            else:
                err = (out[:, 0] - target) ** 2
                loss_num[t] += float(err.sum())  # the squared error sum
                loss_den[t] += float(len(err))
            ys[t].append(target)
    total_loss = 0.0
    scores = []
    for t, spec in enumerate(losses):
        if loss_den[t] == 0:
            continue
        total_loss += spec.weight * loss_num[t] / loss_den[t]
        y_all = torch.cat(ys[t])
        if spec.kind == "classification":
            right, total = hits[t].cpu().double().numpy()
            present = total > 0
            scores.append(float(np.mean(right[present] / total[present])))
        else:
            sst = float(((y_all - y_all.mean()) ** 2).sum())
            scores.append(1.0 - loss_num[t] / sst if sst > 0 else 0.0)
    return total_loss, float(np.mean(scores)) if scores else float("nan")


def train(
    net: YOTONetwork,
    source,
    Y: np.ndarray,
    losses: Sequence[TaskLoss],
    train_idx: np.ndarray,
    val_idx: np.ndarray | None,
    mean: np.ndarray | None,
    scale: np.ndarray | None,
    config: TrainConfig,
    rng: np.random.Generator,
    generator: torch.Generator,
    device: torch.device,
    history: History | None = None,
    refine_losses: Sequence[TaskLoss] | None = None,
) -> History:
    """Train ``net`` in place and return its :class:`History`.

    Pass a fresh ``history`` to keep a handle on the progress if training is
    interrupted (``KeyboardInterrupt``); see :func:`recover_from_interrupt`.
    """
    from tqdm.auto import tqdm

    net.to(device)
    batches = _Batches(source, Y, mean, scale, device)
    score_params = [net.scores]
    other_params = [p for name, p in net.named_parameters() if name != "scores"]
    optimizer = torch.optim.AdamW(
        **_fast_adam_kwargs(device),
        params=[
            {
                "params": score_params,
                "lr": config.score_learning_rate,
                "weight_decay": 0,
            },
            {
                "params": other_params,
                "lr": config.learning_rate,
                "weight_decay": config.weight_decay,
            },
        ],
    )
    n_train = len(train_idx)
    cap = config.max_cells_per_epoch
    epoch_size = n_train if cap is None else min(n_train, cap)
    bs = min(config.batch_size, epoch_size)
    steps_per_epoch = max(1, math.ceil(epoch_size / bs))
    capped = cap is not None and n_train > cap
    if capped and val_idx is not None and len(val_idx) > cap // 4:
        # early stopping needs a score, not every held-out cell: a fixed random
        # quarter of an epoch's worth, evaluated after every epoch
        val_idx = np.sort(rng.choice(val_idx, size=max(cap // 4, 2), replace=False))
    streamed = getattr(source, "shuffle", "full") == "chunked"
    epochs = epoch_rows(
        train_idx, cap, rng, source._chunk_rows(bs) if streamed else None
    )
    selection_epochs = max(1, round(config.selection_fraction * config.max_iter))
    selection_epochs = min(selection_epochs, config.max_iter)
    total_sel_steps = max(1, selection_epochs * steps_per_epoch - 1)
    use_val = val_idx is not None and len(val_idx) > 0
    history = History() if history is None else history
    history.selection_epochs = selection_epochs
    best_loss = math.inf
    best_score = -math.inf
    best_state = None
    no_improve = 0
    step = 0
    refine: _PanelBatches | None = None
    bar = tqdm(
        range(config.max_iter),
        desc="YOTO",
        unit="epoch",
        disable=config.verbose <= 0,
        leave=True,
    )
    for epoch in bar:
        selecting = epoch < selection_epochs
        net.train()
        epoch_start = time.perf_counter()
        epoch_cpu = time.process_time()
        running = torch.zeros((), device=device)
        n_batches = 0
        tau = config.temperature
        if not selecting and refine is None:
            refine = _PanelBatches(net, optimizer, source, Y, mean, scale, device)
            if refine_losses is not None:
                losses = refine_losses
        current = batches if selecting else refine
        for xb, yb in current.iterate(next(epochs), bs, rng):
            if len(xb) < 2 and n_batches > 0:
                continue  # BatchNorm needs 2 rows; the cell is seen next epoch
            if selecting:
                progress = min(1.0, step / total_sel_steps)
                tau = _schedule(config.temperature_start, config.temperature, progress)
                noise = _schedule(config.noise_start, config.noise_end, progress)
                soft, hard = net.select(tau, noise, generator)
                outputs = net(xb, soft, hard)
                step += 1
            else:
                outputs = refine.forward(xb)
            loss = multitask_loss(outputs, yb, losses)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()  # refinement: the panel is detached, scores get no grad
            optimizer.step()
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
            if best_state is not None:
                net.load_state_dict(best_state)
                warnings.warn(
                    f"Training loss became non-finite at epoch {epoch + 1}; stopped "
                    "and restored the best weights so far. Lower learning_rate or "
                    "score_learning_rate.",
                    ConvergenceWarning,
                    stacklevel=5,
                )
                history.stopped_early = True
                break
            raise FloatingPointError(
                f"Training loss became non-finite ({epoch_loss}) at epoch {epoch + 1}. "
                "Check X for extreme values, or lower learning_rate / "
                "score_learning_rate."
            )
        postfix = {"loss": f"{epoch_loss:.4f}", "tau": f"{tau:.3g}"}
        if use_val:
            val_loss, val_score = evaluate(net, current, val_idx, losses, bs)
            history.validation_loss_curve.append(val_loss)
            history.validation_scores.append(val_score)
            postfix["val_loss"] = f"{val_loss:.4f}"
            if not selecting and config.early_stopping:
                if config.stop_on == "score" and math.isfinite(val_score):
                    improved = val_score > best_score + config.tol
                else:
                    improved = val_loss < best_loss - config.tol
                if improved:
                    best_loss = min(best_loss, val_loss)
                    best_score = max(best_score, val_score)
                    best_state = copy.deepcopy(net.state_dict())
                    history.best_state = best_state
                    history.best_epoch = epoch + 1
                    no_improve = 0
                else:
                    no_improve += 1
                if no_improve >= config.n_iter_no_change:
                    history.stopped_early = True
                    bar.set_postfix(postfix)
                    break
        bar.set_postfix(postfix)
    bar.close()
    if refine is not None:
        net.weight.requires_grad_(True)
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


@contextlib.contextmanager
def torch_threads(n_threads: int | None) -> Iterator[None]:
    """Run the block with ``n_threads`` torch intra-op threads, then restore.

    CPU results depend on the thread count in the last bits (reductions are split
    differently), and joblib workers start with fewer threads than the main process.
    Pinning the count makes fits bit-identical across processes. ``None`` keeps the
    current setting.
    """
    if n_threads is None:
        yield
        return
    previous = torch.get_num_threads()
    torch.set_num_threads(int(n_threads))
    try:
        yield
    finally:
        torch.set_num_threads(previous)
