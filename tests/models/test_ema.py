"""The weight average against a hand-computed recursion."""

from __future__ import annotations

import torch

from gen3d.models.ema import EMA


def test_ema_recursion_swap_and_state_dict():
    net = torch.nn.Linear(3, 2)
    ema = EMA(net, decay=0.9, warmup=False)
    w0 = net.weight.detach().clone()
    ref = w0.clone()
    for _ in range(3):
        with torch.no_grad():
            net.weight.add_(1.0)
        ema.update(net)
        ref = 0.9 * ref + 0.1 * net.weight.detach()
    torch.testing.assert_close(ema.shadows()[0], ref)
    current = net.weight.detach().clone()
    with ema.swapped(net):
        torch.testing.assert_close(net.weight, ref)
    assert torch.equal(net.weight, current)
    other = EMA(torch.nn.Linear(3, 2), decay=0.9, warmup=False)
    other.load_state_dict(ema.state_dict())
    assert torch.equal(other.shadows()[0], ema.shadows()[0]) and int(other.num_updates) == 3


def test_ema_warmup_ramp():
    ema = EMA(torch.nn.Linear(2, 2), decay=0.999)
    assert ema.current_decay() == 0.1  # (1 + 0) / (10 + 0)
    ema.num_updates.fill_(990)
    assert ema.current_decay() == 0.991  # (1 + 990) / (10 + 990)
    ema.num_updates.fill_(10**6)
    assert ema.current_decay() == 0.999
