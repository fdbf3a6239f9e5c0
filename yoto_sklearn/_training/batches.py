"""Mini-batches as tensors: all genes during selection, the panel in refinement.

The row source decides the batch order (:meth:`~yoto_sklearn.sources.RowSource.
batches`); :func:`batch_tensors` turns a block of rows into standardised tensors on
the training device, for both phases.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import scipy.sparse as sp
import torch
from torch import nn

from .._network import YOTONetwork
from ..sources import (
    BUFFER_CHUNKS,
    CHUNK_ENTRIES,
    ChunkStore,
    RowSource,
    dense_float,
    innermost,
    keeping_chunks,
    panel_blocks,
    reads_row_ranges,
)


@dataclass
class TrainingData:
    """The cells a run trains and validates on, and their standardisation."""

    source: RowSource
    Y: np.ndarray
    train_idx: np.ndarray
    val_idx: np.ndarray | None
    mean: np.ndarray | None
    scale: np.ndarray | None
    n_jobs: Any = None  # workers of the panel-column pass (sources.map_row_ranges)


def batch_tensors(
    rows: np.ndarray,
    block: np.ndarray,
    Y: np.ndarray,
    mean: torch.Tensor | None,
    scale: torch.Tensor | None,
    device: torch.device,
) -> tuple[torch.Tensor, torch.Tensor]:
    """A mini-batch on ``device``: standardised float32 rows and their targets."""
    xb = torch.from_numpy(block).to(device, non_blocking=True)
    if mean is not None:
        xb = (xb - mean) / scale
    yb = torch.from_numpy(Y[rows]).to(device, non_blocking=True)
    return xb, yb


def _on_device(values: np.ndarray | None, device: torch.device) -> torch.Tensor | None:
    return None if values is None else torch.as_tensor(values, device=device)


class GeneBatches:
    """Mini-batches of all genes; the row source decides the batch order."""

    def __init__(self, data: TrainingData, device: torch.device, net: nn.Module):
        self.data = data
        self.device = device
        self.forward = net
        self.mean = _on_device(data.mean, device)
        self.scale = _on_device(data.scale, device)
        self._held: tuple[np.ndarray, Any] | None = None
        # a streamed source's chunks, kept across epochs (sources.ChunkStore)
        buffers = getattr(innermost(data.source), "buffer_chunks", BUFFER_CHUNKS)
        self._store = ChunkStore(2 * buffers)

    def iterate(
        self, idx: np.ndarray, batch_size: int, rng: np.random.Generator | None
    ) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """Mini-batches over ``idx``: shuffled with ``rng``, in order without."""
        held = self._held_rows(idx) if rng is None else None
        if held is not None:  # evaluation of a streamed source: rows kept in memory
            rows, X = held
            for start in range(0, len(rows), batch_size):
                block = dense_float(X[start : start + batch_size])
                yield batch_tensors(
                    rows[start : start + batch_size], block, self.data.Y,
                    self.mean, self.scale, self.device,
                )  # fmt: skip
            return
        with keeping_chunks(self.data.source, self._store):
            for rows, block in self.data.source.batches(idx, batch_size, rng):
                yield batch_tensors(
                    rows, block, self.data.Y, self.mean, self.scale, self.device
                )

    def release(self) -> None:
        """Forget the kept chunks and validation rows (selection is over)."""
        self._store.clear()
        self._held = None

    def _held_rows(self, idx: np.ndarray) -> tuple[np.ndarray, Any] | None:
        """The evaluated rows of a streamed source, read once and then kept.

        Validation cells are few (capped on large data) but drawn at random, so
        they lie in every chunk of a file: streaming them every epoch read the whole
        file each epoch (most of a 10^6-cell fit's time). Kept as read (CSR stays
        CSR) when they hold at most a shuffle buffer's worth of stored values; the
        batches are the source's evaluation batches (sorted rows, the same values),
        so results do not change.
        """
        source = self.data.source
        if source.shuffle != "chunked" or not reads_row_ranges(source):
            return None
        rows = np.sort(idx)
        if self._held is not None and np.array_equal(self._held[0], rows):
            return self._held
        stored = len(rows) * source.n_vars * max(source.density, 1e-6)
        if stored > CHUNK_ENTRIES * BUFFER_CHUNKS:
            return None
        step, parts = source.chunk_rows(1), []
        for c in np.unique(rows // step):
            start = int(c) * step
            want = rows[(rows >= start) & (rows < start + step)]
            block = source.read_chunk(start, min(start + step, source.n_obs))
            parts.append(block[want - start])
        sparse = sp.issparse(parts[0])
        X = sp.vstack(parts, format="csr") if sparse else np.concatenate(parts)
        self._held = (rows, X)
        return self._held


class PanelBatches:
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

    def __init__(
        self,
        net: YOTONetwork,
        optimizer: torch.optim.Optimizer,
        data: TrainingData,
        device: torch.device,
    ) -> None:
        self.net = net
        self.device = device
        self.Y = data.Y
        cols = net.panel().detach().cpu().numpy()
        # filled in place: a list of parts plus their concatenation held the
        # panel twice (4.7 GB at peak for 5,100 columns of 10^5 cells)
        self.X = np.empty((data.source.n_obs, len(cols)), dtype=np.float32)
        # the source's panel reads: a SOMA experiment reads only these k columns
        # from storage (a row pass read every gene: 0.35 s vs 0.20 s per chunk of
        # 10^4 cells x 20,000 genes); in memory and CSR files pick them from rows
        start = 0
        for part in panel_blocks(data.source, cols, data.n_jobs):
            self.X[start : start + part.shape[0]] = part
            start += part.shape[0]
        # the same standardisation as all-gene batches, on k columns
        self.mean = _on_device(None if data.mean is None else data.mean[cols], device)
        self.scale = _on_device(
            None if data.scale is None else data.scale[cols], device
        )
        idx = torch.as_tensor(cols).to(device)
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
            yield batch_tensors(
                rows, self.X[rows], self.Y, self.mean, self.scale, self.device
            )

    def forward(self, xb: torch.Tensor) -> list[torch.Tensor]:
        """The network's outputs from panel-column rows."""
        z = torch.addmm(self.net.bias, xb, self.weight.t())
        z = self.net.body(z)
        return [head(z) for head in self.net.heads]

    def sync(self) -> None:
        """Write the trained panel columns back into the network's weight."""
        with torch.no_grad():
            self.net.weight.index_copy_(1, self._idx, self.weight.detach())

    def release(self) -> None:
        """Give the network's full first-layer weight back its gradient."""
        self.net.weight.requires_grad_(True)
