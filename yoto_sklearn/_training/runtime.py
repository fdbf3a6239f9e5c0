"""Helpers of training not about the estimator: threads, device, seeds, split."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import numpy as np
import torch
from sklearn.utils import check_random_state


@contextlib.contextmanager
def torch_threads(n_threads: int | str | None) -> Iterator[None]:
    """Run the block with ``n_threads`` torch intra-op threads, then restore.

    CPU results depend on the thread count in the last bits (reductions are split
    differently), and joblib workers start with fewer threads than the main process.
    Pinning the count makes fits bit-identical across processes. ``None`` keeps the
    current setting, and so does ``"auto"`` (resolved by :func:`auto_threads` once
    the network's size is known).
    """
    if n_threads is None or n_threads == "auto":
        yield
        return
    previous = torch.get_num_threads()
    torch.set_num_threads(int(n_threads))
    try:
        yield
    finally:
        torch.set_num_threads(previous)


# Below this many first-layer weights (input columns x first hidden width) a fit runs
# on one thread under n_threads="auto": its matrix products are too small to gain from
# a second thread, and any competing process makes the threads wait on each other
# (benchmarks/bench_threads.py; benchmarks/TUNING.md, n_threads="auto").
AUTO_ONE_THREAD_WEIGHTS = 4_000_000


def auto_threads(
    n_threads: int | str | None, n_inputs: int, hidden: list[int] | tuple[int, ...]
) -> int | None:
    """The thread count ``n_threads`` stands for on a network of this size.

    ``"auto"`` is 1 when the first layer has fewer than
    :data:`AUTO_ONE_THREAD_WEIGHTS` weights, else ``None`` (torch's setting); an
    int or ``None`` passes through.
    """
    if n_threads != "auto":
        return n_threads  # type: ignore[return-value]
    width = hidden[0] if len(hidden) else 1
    return 1 if n_inputs * width < AUTO_ONE_THREAD_WEIGHTS else None


def resolve_device(device: Any) -> torch.device:
    """Turn the ``device`` parameter into a usable :class:`torch.device`.

    Raises
    ------
    ValueError
        If the name is not a torch device, or names an accelerator that is absent.
    """
    if isinstance(device, torch.device):
        dev = device
    elif device == "auto":
        dev = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    else:
        try:
            dev = torch.device(device)
        except (RuntimeError, TypeError) as exc:
            raise ValueError(
                f"Unknown device {device!r}; use 'auto', 'cpu', 'cuda' or 'cuda:N'."
            ) from exc
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(
                f"device={device!r} was requested but CUDA is not available on this "
                "machine; use device='cpu' or 'auto'."
            )
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise ValueError(
                f"device={device!r}: only {torch.cuda.device_count()} CUDA device(s) "
                "are visible."
            )
    elif dev.type == "mps":
        if not (hasattr(torch.backends, "mps") and torch.backends.mps.is_available()):
            raise ValueError(
                f"device={device!r} was requested but MPS is not available."
            )
    elif dev.type != "cpu":
        raise ValueError(
            f"Unsupported device {device!r}; use 'auto', 'cpu', 'cuda' or 'mps'."
        )
    return dev


def derive_seed(random_state: Any) -> int:
    """An int seed from ``random_state`` without touching numpy's global RNG."""
    if random_state is None:
        return int(np.random.SeedSequence().generate_state(1)[0] & 0x7FFFFFFF)
    return int(check_random_state(random_state).randint(np.iinfo(np.int32).max))


@contextlib.contextmanager
def seeded_torch(seed: int, device: torch.device) -> Iterator[None]:
    """Seed torch for the block (weights, dropout), restoring the global RNG after."""
    devices = [device.index or 0] if device.type == "cuda" else []
    with torch.random.fork_rng(devices=devices):
        torch.random.default_generator.manual_seed(seed)
        if device.type == "cuda":
            torch.cuda.manual_seed(seed)
        yield


def stratified_split(
    rng: np.random.Generator, groups: np.ndarray, fraction: float
) -> tuple[np.ndarray, np.ndarray]:
    """Per-group random split; groups of one member stay in the training part."""
    val: list[np.ndarray] = []
    train_rows: list[np.ndarray] = []
    for g in np.unique(groups):
        members = rng.permutation(np.flatnonzero(groups == g))
        n_val = int(round(fraction * len(members))) if len(members) > 1 else 0
        val.append(members[:n_val])
        train_rows.append(members[n_val:])
    val_idx = np.sort(np.concatenate(val))
    train_idx = np.sort(np.concatenate(train_rows))
    if len(val_idx) == 0 and len(train_idx) > 2:
        val_idx, train_idx = train_idx[-1:], train_idx[:-1]
    return train_idx, val_idx
