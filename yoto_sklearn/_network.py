"""Plain torch building blocks of YOTO: relaxed top-k, masked encoder, task heads.

Nothing here knows about numpy, pandas or scikit-learn.

Training-time selection (once per mini-batch)::

    s~ = s + noise_scale * Gumbel(0, 1)          # perturbed scores, one per gene
    h  = 1[top-k of s~]                          # hard mask: exactly k ones
    m~ = relaxed_topk(s~, k, tau)                # soft mask in [0, 1], sum ~ k
    m  = h + m~ - stopgrad(m~)                   # straight-through estimator

The first layer is ``W1 @ (x * m)``. Because ``m`` is exactly k-sparse in the forward
pass, :class:`_StraightThroughMaskedLinear` multiplies only the ``k`` selected columns
(``B * k * H`` flops instead of ``B * G * H``); the backward pass needs two dense
products (the mask gradient of every gene, and the weight gradient through the soft
mask).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from ._budget import budgeted_positions, trimmed_positions, within

# Soft-mask entries below this are treated as exactly zero in the weight gradient, so
# no denormal floats reach the optimiser state.
_MASK_FLOOR = 1e-6
# Rows per block in PanelNetwork.forward: the hidden activations of a block (1,024
# x 256 float64 = 2 MB) stay in the cache.
FORWARD_ROWS = 1024
_NEWTON_STEPS = 12


def gumbel_like(
    scores: torch.Tensor, generator: torch.Generator | None
) -> torch.Tensor:
    """Draw standard Gumbel noise with the shape, dtype and device of ``scores``."""
    u = torch.rand(
        scores.shape, generator=generator, device=scores.device, dtype=scores.dtype
    )
    tiny = torch.finfo(scores.dtype).tiny
    return -torch.log(-torch.log(u.clamp(min=tiny, max=1.0 - 1e-7)))


def _solve_threshold(x: torch.Tensor, k: int, t0: torch.Tensor) -> torch.Tensor:
    """Solve ``sum(sigmoid(x - t)) = k`` for ``t`` (no gradient).

    Newton steps clamped to +-2 (the sigmoid's transition width is ~1 in these scaled
    units) and kept inside the bracket of known signs, bisecting when a step leaves
    it. Fixed iteration count and tensor-only control flow, so no host sync.
    """
    lo = x.min() - 30.0
    hi = x.max() + 30.0
    t = t0
    for _ in range(_NEWTON_STEPS):
        sig = torch.sigmoid(x - t)
        f = sig.sum() - k
        lo = torch.where(f > 0, t, lo)
        hi = torch.where(f > 0, hi, t)
        step = (f / (sig * (1.0 - sig)).sum().clamp_min(1e-12)).clamp(-2.0, 2.0)
        t_new = t + step
        inside = (t_new >= lo) & (t_new <= hi)
        t = torch.where(inside, t_new, 0.5 * (lo + hi))
    return t


def sigmoid_topk(logits: torch.Tensor, k: int, tau: float) -> torch.Tensor:
    """Relaxed top-k mask ``sigmoid((logits - t) / tau)`` summing to ``k``.

    The threshold ``t`` solves ``sum(mask) = k`` (a few safeguarded Newton steps from
    the midpoint of the k-th and (k+1)-th largest logits). In the backward pass ``t``
    moves as the implicit function theorem says it does under that constraint,
    ``dt/ds_i = w_i`` with ``w = sigmoid' / sum(sigmoid')``, so the gradient is
    relative: raising one gene's score lowers the others' share, as in a real top-k.
    Cost: one ``topk`` and a few element-wise passes over the genes, independent of k.
    """
    n = logits.shape[0]
    if k >= n:
        return torch.ones_like(logits)
    with torch.no_grad():
        x = logits.detach() / tau
        top = torch.topk(x, k + 1).values
        t_scaled = _solve_threshold(x, k, 0.5 * (top[k - 1] + top[k]))
        z = (x - t_scaled).clamp(-20.0, 20.0)
        sig = torch.sigmoid(z)
        dsig = sig * (1.0 - sig)
        w = dsig / dsig.sum().clamp_min(torch.finfo(logits.dtype).tiny)
    # t carries the implicit gradient: its value is t_scaled * tau, d t / d s = w.
    t = t_scaled * tau + (w * (logits - logits.detach())).sum()
    return torch.sigmoid(((logits - t) / tau).clamp(-20.0, 20.0))


def softmax_topk(logits: torch.Tensor, k: int, tau: float) -> torch.Tensor:
    """Successive-softmax relaxed top-k (Xie & Ermon, 2019).

    ``a_1 = softmax(s / tau)``; then ``s <- s + log(1 - a_j)`` and
    ``a_{j+1} = softmax(s / tau)``; the mask is ``sum_{j <= k} a_j``. Costs ``k``
    softmaxes per call. Logits are shifted and clamped so that small temperatures never
    produce denormal floats (which make float32 arithmetic very slow on CPUs).
    """
    n = logits.shape[0]
    if k >= n:
        return torch.ones_like(logits)
    # Each round: shift so the best remaining logit is 0 and clamp at -80 (exp stays
    # above float32's smallest normal number: no denormals). A gene whose weight has
    # saturated (a > 1 - 1e-6) is removed outright (-inf), since log(1 - a) cannot
    # express its removal in float32 and its gradient is ~0 anyway.
    x = logits / tau
    mask = torch.zeros_like(logits)
    removed = torch.zeros_like(logits, dtype=torch.bool)
    neg_inf = torch.full_like(logits, float("-inf"))
    for _ in range(k):
        top = x.detach().masked_fill(removed, float("-inf")).max()
        z = torch.where(removed, neg_inf, (x - top).clamp_min(-80.0))
        onehot = torch.softmax(z, dim=0)
        mask = mask + onehot
        removed = removed | (onehot.detach() > 1.0 - 1e-6)
        # s <- s + log(1 - a): the removal acts on unscaled scores, hence / tau
        x = x + torch.log1p(-onehot.clamp(max=1.0 - 1e-6)) / tau
    return mask.clamp(max=1.0)


def budgeted_choice(
    order: torch.Tensor,
    loads: torch.Tensor,
    required: torch.Tensor,
    k_free: int,
    budget: float,
) -> torch.Tensor:
    """The ``k_free`` free genes of a panel within a total-load budget, best first.

    ``order`` lists the candidate genes best first. The best ``k_free`` are
    trimmed to fit (:func:`yoto_sklearn._budget.trimmed_positions`: the heaviest
    panel gene is dropped and the best remaining gene that fits takes its place,
    until the panel fits). Should trimming run out of candidates, the greedy
    choice (:func:`yoto_sklearn._budget.budgeted_positions`) is used, which
    completes whenever the lightest ``k_free`` candidates fit. The ``required``
    genes' loads count against the budget; sums are in float64 on the CPU, so
    the panel's total never exceeds ``budget`` (beyond float rounding:
    :data:`yoto_sklearn._budget.BUDGET_RTOL`).

    Raises
    ------
    ValueError
        If even the lightest candidates do not fit (checked before training).
    """
    if k_free == 0:
        return order[:0]
    all_loads = loads.detach().double().cpu().numpy()
    cand = all_loads[order.cpu().numpy()]
    left = within(budget) - float(all_loads[required.cpu().numpy()].sum())
    chosen = trimmed_positions(cand, k_free, left)
    if chosen is None:
        chosen = budgeted_positions(cand, k_free, left)
    if chosen is None:
        raise ValueError("no panel of this size fits the expression budget")
    return order[torch.as_tensor(chosen, dtype=torch.long, device=order.device)]


MARKER_CANDIDATES = 3  # genes per class pulled towards the panel at each step


def marker_gain(
    markers: torch.Tensor, soft: torch.Tensor, idx: torch.Tensor
) -> torch.Tensor:
    """Marker-coverage term of a sampled panel (``marker_coverage``).

    ``markers[g, c]`` is gene ``g``'s one-vs-rest AUROC for class ``c``
    (``yoto_sklearn._markers``). For the sampled panel ``idx`` the best marker of
    class ``c`` is ``best_c = max_{g in idx} markers[g, c]``, and a gene outside
    the panel would gain ``max(markers[g, c] - best_c, 0)``. The term is
    ``-mean_c sum_g m_g gain[g, c]`` over the :data:`MARKER_CANDIDATES` genes of
    largest gain per class, with the straight-through mask ``m`` (hard in the
    forward pass, so the value is 0: panel genes gain nothing); its gradient
    raises the scores of the genes that would give a class a better marker, in
    proportion to the improvement. Only a few candidates per class are pulled:
    Adam scales each score's step by its own gradient history, so a small but
    steady pull on thousands of genes would move them all as fast as the
    prediction loss moves the few that matter.
    """
    hard = torch.zeros_like(soft).index_fill(0, idx, 1.0)
    m = hard + soft - soft.detach()
    best = markers.index_select(0, idx).max(dim=0).values
    gain = (markers - best).clamp_min(0.0)
    r = min(MARKER_CANDIDATES, markers.shape[0])
    kth = torch.topk(gain, r, dim=0).values[-1]
    gain = torch.where(gain >= kth.clamp_min(1e-12), gain, torch.zeros_like(gain))
    return -(m[:, None] * gain).sum(dim=0).mean()


class _StraightThroughMaskedLinear(torch.autograd.Function):
    """``x[:, idx] @ weight[:, idx].T + bias`` with straight-through mask gradients.

    Forward uses only the ``k`` selected columns. Backward returns the gradient of the
    loss with respect to every gene's mask entry evaluated at the hard mask,
    ``d L / d m_i = sum_b x_bi (delta_b . W[:, i])``, routed to the soft mask (and
    from it to the scores), and a weight gradient computed with the effective mask
    ``max(h, m~)``. Two dense ``B x H x G`` products per step, the same count as a
    dense first layer's forward plus weight gradient.
    """

    @staticmethod
    def forward(ctx, x, soft_mask, weight, bias, idx):  # noqa: D102
        ctx.save_for_backward(x, soft_mask, weight, idx)
        x_sel = x.index_select(1, idx)
        w_sel = weight.index_select(1, idx)
        return torch.addmm(bias, x_sel, w_sel.t())

    @staticmethod
    def backward(ctx, grad_out):  # noqa: D102
        x, soft_mask, weight, idx = ctx.saved_tensors
        grad_mask = grad_weight = grad_bias = None
        if ctx.needs_input_grad[1]:
            grad_mask = (torch.mm(grad_out, weight) * x).sum(0)
        if ctx.needs_input_grad[2]:
            # Columns outside the panel learn as if their gene were switched on with
            # its soft-mask value. Without this they never get a gradient (their input
            # is zero), so their straight-through signal stays noise: on a synthetic
            # 4,000-gene problem this recovered 22/24 markers instead of 10/24.
            m_eff = torch.where(soft_mask >= _MASK_FLOOR, soft_mask, 0.0)
            m_eff[idx] = 1.0
            grad_weight = torch.mm(grad_out.t(), x * m_eff)
        if ctx.needs_input_grad[3]:
            grad_bias = grad_out.sum(0)
        return None, grad_mask, grad_weight, grad_bias, None


class YOTONetwork(nn.Module):
    """Learnable gene scores, a masked MLP encoder and one linear head per task.

    Parameters
    ----------
    n_features : int
        Number of input genes ``G``.
    k : int
        Panel size (``1 <= k <= G``).
    hidden_layer_sizes : sequence of int
        Widths of the encoder layers; the first one is the masked layer.
    head_sizes : sequence of int
        Output width of each task head (number of classes, or 1 for regression).
    dropout : float
        Dropout after each hidden layer.
    batch_norm : bool
        BatchNorm1d after each hidden linear layer.
    relaxation : {"sigmoid", "softmax"}
        Relaxed top-k used for the score gradients.
    """

    def __init__(
        self,
        n_features: int,
        k: int,
        hidden_layer_sizes: Sequence[int],
        head_sizes: Sequence[int],
        dropout: float = 0.0,
        batch_norm: bool = True,
        relaxation: str = "sigmoid",
        required: Sequence[int] = (),
        excluded: Sequence[int] = (),
        loads: Sequence[float] | None = None,
        budget: float | None = None,
        penalties: Sequence[float] | None = None,
        markers: Any = None,
        marker_weight: float = 0.0,
    ) -> None:
        super().__init__()
        self.n_features = int(n_features)
        self.k = int(k)
        self.relaxation = relaxation
        # Panel constraints: ``required`` genes are always in the panel (they take
        # ``len(required)`` of the k places), ``excluded`` genes never are; the other
        # ``k - len(required)`` places go to the top of the remaining candidates.
        required_idx = torch.as_tensor(list(required), dtype=torch.long)
        blocked = torch.zeros(self.n_features, dtype=torch.bool)
        blocked[required_idx] = True
        blocked[torch.as_tensor(list(excluded), dtype=torch.long)] = True
        self.constrained = bool(blocked.any())
        self.register_buffer("required", required_idx, persistent=False)
        self.register_buffer(
            "candidates", torch.nonzero(~blocked).flatten(), persistent=False
        )
        self.k_free = self.k - len(required_idx)
        # Panel-level design (see yoto_sklearn._budget): each gene's load (mean
        # expression per cell) and the panel's budget, and per-gene penalties.
        self.budget = None if budget is None else float(budget)
        self.constrained = self.constrained or self.budget is not None
        if markers is not None and marker_weight > 0:
            # an excluded gene is never a candidate (required ones count as the
            # panel's markers: they are always in it); a copy, the caller's
            # table stays as it was
            markers = torch.as_tensor(markers).float().clone()
            markers[torch.as_tensor(list(excluded), dtype=torch.long)] = 0.0
        else:
            markers = None
        self.marker_weight = float(marker_weight)
        table = (("loads", loads), ("penalties", penalties), ("markers", markers))
        for name, values in table:
            tensor = None if values is None else torch.as_tensor(values).float()
            self.register_buffer(name, tensor, persistent=False)
        sizes = [int(h) for h in hidden_layer_sizes]
        self.scores = nn.Parameter(0.01 * torch.randn(self.n_features))
        h0 = sizes[0]
        bound = 1.0 / math.sqrt(max(self.k, 1))
        # Initialise as if the layer had k inputs: only k columns are ever active.
        self.weight = nn.Parameter(
            torch.empty(h0, self.n_features).uniform_(-bound, bound)
        )
        self.bias = nn.Parameter(torch.empty(h0).uniform_(-bound, bound))
        layers: list[nn.Module] = []
        prev = h0
        layers += self._block(h0, batch_norm, dropout)
        for h in sizes[1:]:
            layers.append(nn.Linear(prev, h))
            layers += self._block(h, batch_norm, dropout)
            prev = h
        self.body = nn.Sequential(*layers)
        self.heads = nn.ModuleList(nn.Linear(prev, int(c)) for c in head_sizes)

    @staticmethod
    def _block(width: int, batch_norm: bool, dropout: float) -> list[nn.Module]:
        block: list[nn.Module] = []
        if batch_norm:
            block.append(nn.BatchNorm1d(width))
        block.append(nn.ReLU())
        if dropout > 0:
            block.append(nn.Dropout(dropout))
        return block

    def ranking(self) -> torch.Tensor:
        """Every gene, best first.

        The panel (required genes, then the top free candidates), then the other
        candidates by score, then the excluded genes.
        """
        scores = self.scores.detach()
        if not self.constrained:
            return torch.sort(-scores, stable=True).indices
        cand = self.candidates
        cand = cand[torch.sort(-scores[cand], stable=True).indices]
        if self.budget is not None:
            # the panel's free genes: best first within the budget, then the rest
            free = budgeted_choice(cand, self.loads, self.required, self.k_free,
                                   self.budget)  # fmt: skip
            rest = cand[~torch.isin(cand, free)]
            cand = torch.cat([free, rest])
        listed = torch.zeros(self.n_features, dtype=torch.bool, device=scores.device)
        listed[self.required] = True
        listed[cand] = True
        rest = torch.nonzero(~listed).flatten()
        rest = rest[torch.sort(-scores[rest], stable=True).indices]
        return torch.cat([self.required, cand, rest])

    def panel(self) -> torch.Tensor:
        """Deterministic inference panel: the first k genes of :meth:`ranking`.

        Without constraints, the top-k of the scores with a stable tie-break.
        """
        return self.ranking()[: self.k]

    def select(
        self,
        tau: float,
        noise_scale: float,
        generator: torch.Generator | None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Sample a training panel: returns (soft mask with gradient, hard indices)."""
        relax = sigmoid_topk if self.relaxation == "sigmoid" else softmax_topk
        if not self.constrained:
            s = self.scores
            if noise_scale > 0:
                s = s + noise_scale * gumbel_like(s.detach(), generator)
            idx = torch.topk(s.detach(), self.k).indices
            return relax(s, self.k, tau), idx
        # Only the free candidates compete, for the k - len(required) free places;
        # required genes are always on (mask 1, no score gradient), excluded always off.
        s = self.scores.index_select(0, self.candidates)
        if noise_scale > 0:
            s = s + noise_scale * gumbel_like(s.detach(), generator)
        soft = torch.zeros_like(self.scores).index_fill(0, self.required, 1.0)
        if self.k_free == 0:
            return soft, self.required
        # a budget does not restrict the sampled panels: the scores learn from
        # every gene, heavy ones included; ranking() trims the learned panel to fit
        free = self.candidates[torch.topk(s.detach(), self.k_free).indices]
        soft = soft.index_put((self.candidates,), relax(s, self.k_free, tau))
        return soft, torch.cat([self.required, free])

    def design_loss(self, soft: torch.Tensor, idx: torch.Tensor) -> torch.Tensor | None:
        """The selection loss's panel-level terms for a sampled panel, or None.

        Per-gene penalties: ``sum(soft * penalties)``; marker coverage:
        ``marker_weight * marker_gain(...)`` (see :func:`marker_gain`). (An
        expression budget adds no term: it acts on the returned panel, see
        :meth:`ranking`.)
        """
        terms = []
        if self.penalties is not None:
            terms.append((soft * self.penalties).sum())
        if self.markers is not None:
            terms.append(self.marker_weight * marker_gain(self.markers, soft, idx))
        return sum(terms) if terms else None

    def forward(
        self,
        x: torch.Tensor,
        soft_mask: torch.Tensor | None = None,
        idx: torch.Tensor | None = None,
    ) -> list[torch.Tensor]:
        """Predict every task from the masked input.

        With ``soft_mask`` and ``idx`` (from :meth:`select`) gradients reach the scores
        through the straight-through estimator; without them the deterministic panel
        is used and the scores get no gradient.
        """
        if idx is None:
            idx = self.panel()
        if soft_mask is None:
            x_sel = x.index_select(1, idx)
            z = torch.addmm(self.bias, x_sel, self.weight.index_select(1, idx).t())
        else:
            z = _StraightThroughMaskedLinear.apply(
                x, soft_mask, self.weight, self.bias, idx
            )
        z = self.body(z)
        return [head(z) for head in self.heads]


class PanelNetwork(nn.Module):
    """The fitted predictor on the panel genes only, in float64 on CPU.

    Input standardisation and BatchNorm (eval mode) are folded into the linear layers,
    so prediction is ``k -> hidden -> ... -> heads`` and never sees other genes.
    """

    def __init__(self, linears: list[nn.Linear], heads: list[nn.Linear]) -> None:
        super().__init__()
        self.linears = nn.ModuleList(linears)
        self.heads = nn.ModuleList(heads)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        """Outputs of every head for a batch of panel-gene rows.

        Rows go through in blocks of :data:`FORWARD_ROWS`, so each hidden activation
        stays in the CPU cache: a product of k = 50 inputs is bound by writing its
        output, and one pass over 83,886 cells with 256 hidden units took 0.21 s
        whole and 0.08 s in blocks of 1,024 rows with the ReLU in place (one torch
        thread; ``benchmarks/results/bench_forward.md``). The blocks write into
        buffers made once per call, not a fresh allocation per block, which the
        allocator may hand back to the system and fault in again (0.92 against
        1.55 s for 10^6 rows when it did). Every row's outputs are the same either
        way (each row is its own product).
        """
        n = x.shape[0]
        if n <= FORWARD_ROWS:
            return self._block(x)
        if torch.is_grad_enabled() and (  # out= has no gradient
            x.requires_grad or any(p.requires_grad for p in self.parameters())
        ):
            parts = [
                self._block(x[i : i + FORWARD_ROWS]) for i in range(0, n, FORWARD_ROWS)
            ]
            return [torch.cat(outs) for outs in zip(*parts, strict=True)]
        hidden = [x.new_empty((FORWARD_ROWS, lin.out_features)) for lin in self.linears]
        outs = [x.new_empty((n, head.out_features)) for head in self.heads]
        for i in range(0, n, FORWARD_ROWS):
            h = x[i : i + FORWARD_ROWS]
            m = h.shape[0]
            for lin, buf in zip(self.linears, hidden, strict=True):
                h = torch.relu_(torch.addmm(lin.bias, h, lin.weight.t(), out=buf[:m]))
            for head, out in zip(self.heads, outs, strict=True):
                torch.addmm(head.bias, h, head.weight.t(), out=out[i : i + m])
        return outs

    def _block(self, x: torch.Tensor) -> list[torch.Tensor]:
        for lin in self.linears:
            x = torch.relu_(lin(x))  # in place: the product's output is fresh
        return [head(x) for head in self.heads]


def linear_from(weight: torch.Tensor, bias: torch.Tensor) -> nn.Linear:
    # skip_init: no random initialisation, so exporting (or loading) a model never
    # draws from torch's global RNG.
    lin = nn.utils.skip_init(
        nn.Linear, weight.shape[1], weight.shape[0], dtype=torch.float64
    )
    with torch.no_grad():
        lin.weight.copy_(weight)
        lin.bias.copy_(bias)
    lin.requires_grad_(False)
    return lin


@torch.no_grad()
def export_panel_network(
    net: YOTONetwork,
    idx: torch.Tensor,
    mean: torch.Tensor | None,
    scale: torch.Tensor | None,
    n_heads: int | None = None,
) -> PanelNetwork:
    """Fold standardisation and BatchNorm into a float64 :class:`PanelNetwork`.

    Only the first ``n_heads`` heads are kept (all by default): auxiliary heads
    that only shaped training are left out.
    """
    net = net.to("cpu")
    idx = idx.cpu()
    w = net.weight.index_select(1, idx).double()
    b = net.bias.double()
    if scale is not None:
        w = w / scale.cpu().double().index_select(0, idx)
    if mean is not None:
        b = b - w @ mean.cpu().double().index_select(0, idx)
    linears = []
    pending_w, pending_b = w, b
    for module in net.body:
        if isinstance(module, nn.Linear):
            linears.append(linear_from(pending_w, pending_b))
            pending_w, pending_b = module.weight.double(), module.bias.double()
        elif isinstance(module, nn.BatchNorm1d):
            s = module.weight.double() / torch.sqrt(
                module.running_var.double() + module.eps
            )
            pending_b = (
                pending_b - module.running_mean.double()
            ) * s + module.bias.double()
            pending_w = pending_w * s[:, None]
    linears.append(linear_from(pending_w, pending_b))
    kept = net.heads[: len(net.heads) if n_heads is None else n_heads]
    heads = [linear_from(h.weight.double(), h.bias.double()) for h in kept]
    return PanelNetwork(linears, heads)
