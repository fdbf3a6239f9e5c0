"""The pure-torch network: hard top-k masks, relaxations, panel constraints, export."""

from __future__ import annotations

import pytest
import torch

from yoto_sklearn._network import (
    YOTONetwork,
    export_panel_network,
    sigmoid_topk,
    softmax_topk,
)


def test_training_forward_is_exactly_k_sparse():
    torch.manual_seed(0)
    net = YOTONetwork(20, 4, [8], [3], batch_norm=False)
    gen = torch.Generator().manual_seed(0)
    soft, idx = net.select(0.5, 1.0, gen)
    x = torch.randn(6, 20)
    out = net(x, soft, idx)[0]
    x2 = x.clone()
    others = [i for i in range(20) if i not in set(idx.tolist())]
    x2[:, others] = 1e3
    torch.testing.assert_close(out, net(x2, soft, idx)[0], rtol=0, atol=0)
    out.sum().backward()
    assert net.scores.grad is not None and torch.isfinite(net.scores.grad).all()
    assert net.scores.grad.abs().sum() > 0


@pytest.mark.parametrize("relaxation", ["sigmoid", "softmax"])
def test_relaxed_topk_mass_and_gradient(relaxation):
    fn = sigmoid_topk if relaxation == "sigmoid" else softmax_topk
    s = torch.randn(50, requires_grad=True)
    m = fn(s, 5, 0.3)
    assert m.shape == (50,)
    assert torch.all((m >= 0) & (m <= 1))
    mass = float(m.detach().sum())
    if relaxation == "sigmoid":
        assert mass == pytest.approx(5, abs=1e-3)  # the threshold solves sum = k
    else:
        # successive softmax: exactly k rounds of unit mass, capped at 1 per gene
        assert 2.5 <= mass <= 5 + 1e-4
    # the top-5 genes get the largest soft-mask values
    top = set(torch.topk(s.detach(), 5).indices.tolist())
    assert top == set(torch.topk(m.detach(), 5).indices.tolist())
    (m * torch.arange(50.0)).sum().backward()
    assert torch.isfinite(s.grad).all()


def test_constrained_selection_keeps_required_and_never_picks_excluded():
    torch.manual_seed(0)
    net = YOTONetwork(30, 6, [8], [2], required=[4, 9], excluded=[0, 1, 2])
    gen = torch.Generator().manual_seed(1)
    for _ in range(20):
        soft, idx = net.select(0.5, 1.0, gen)
        chosen = idx.tolist()
        assert len(set(chosen)) == 6 and chosen[:2] == [4, 9]
        assert not {0, 1, 2} & set(chosen)
        assert float(soft[4]) == float(soft[9]) == 1.0
        assert float(soft[[0, 1, 2]].abs().sum()) == 0.0
    ranking = net.ranking().tolist()
    assert ranking[:2] == [4, 9] and set(ranking[-3:]) == {0, 1, 2}
    assert net.panel().tolist() == ranking[:6]


def test_export_predicts_like_the_network_in_eval_mode():
    torch.manual_seed(0)
    net = YOTONetwork(15, 4, [8, 6], [3, 1], dropout=0.3)
    net.train()
    for _ in range(3):  # give BatchNorm running statistics something to hold
        net(torch.randn(32, 15))
    net.eval()
    mean, scale = torch.rand(15), torch.rand(15) + 0.5
    x = torch.randn(10, 15)
    want = net((x - mean) / scale)
    panel = net.panel()
    exported = export_panel_network(net, panel, mean, scale)
    got = exported(x[:, panel].double())
    for w, g in zip(want, got, strict=True):
        torch.testing.assert_close(g.float(), w, rtol=1e-5, atol=1e-5)
    assert exported.linears[0].weight.shape == (8, 4)  # k inputs, not 15


def test_panel_network_blocks_give_the_rows_of_one_pass():
    """Rows go through in FORWARD_ROWS blocks: same outputs as one pass, input kept."""
    from yoto_sklearn._network import FORWARD_ROWS

    torch.manual_seed(0)
    net = YOTONetwork(15, 4, [8, 6], [3, 1])
    net.eval()
    exported = export_panel_network(net, net.panel(), None, None)
    n = 2 * FORWARD_ROWS + 7  # two whole blocks and a short one
    x = torch.randn(n, 4, dtype=torch.float64)
    before = x.clone()
    with torch.no_grad():
        got = exported(x)
        h = x
        for lin in exported.linears:  # every row at once
            h = torch.relu(lin(h))
        want = [head(h) for head in exported.heads]
        single = exported(x[-3:])  # a block shorter than FORWARD_ROWS
    assert [g.shape for g in got] == [(n, 3), (n, 1)]
    for w, g, s in zip(want, got, single, strict=True):
        torch.testing.assert_close(g, w, rtol=1e-12, atol=1e-12)
        torch.testing.assert_close(s, w[-3:], rtol=1e-12, atol=1e-12)
    assert torch.equal(x, before)
    # with a gradient asked for (attribution methods), blocks without buffers
    xg = x.clone().requires_grad_(True)
    grad_out = exported(xg)
    torch.testing.assert_close(grad_out[0].detach(), want[0], rtol=1e-12, atol=1e-12)
    grad_out[0].sum().backward()
    assert xg.grad is not None and xg.grad.shape == x.shape
    exported.heads[0].weight.requires_grad_(True)  # fine-tuning a head
    exported(x)[0].sum().backward()
    assert exported.heads[0].weight.grad is not None
