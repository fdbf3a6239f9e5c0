"""Training: the loop, its mini-batches, and helpers not about the estimator.

``loop``: the training loop with its seams; ``batches``: mini-batches as tensors;
``runtime``: threads, device, seeds, the validation split.
"""

from .batches import GeneBatches, PanelBatches, TrainingData, batch_tensors
from .loop import (
    EarlyStopping,
    History,
    TaskLoss,
    TrainConfig,
    check_finite_network,
    evaluate,
    multitask_loss,
    recover_from_interrupt,
    task_losses,
    train,
)
from .runtime import (
    auto_threads,
    derive_seed,
    resolve_device,
    seeded_torch,
    stratified_split,
    torch_threads,
)

__all__ = [
    "EarlyStopping",
    "GeneBatches",
    "History",
    "PanelBatches",
    "TaskLoss",
    "TrainConfig",
    "TrainingData",
    "auto_threads",
    "batch_tensors",
    "check_finite_network",
    "derive_seed",
    "evaluate",
    "multitask_loss",
    "recover_from_interrupt",
    "resolve_device",
    "seeded_torch",
    "stratified_split",
    "task_losses",
    "torch_threads",
    "train",
]
