"""GRAF's patch discriminator, GAN losses, R1 penalty (against finite differences) and the EMA."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from gen3d.models.ema import ema_update
from gen3d.models.graf.discriminator import PatchDiscriminator
from gen3d.models.graf.losses import d_loss_logistic, g_loss_nonsaturating, r1_penalty


@pytest.mark.parametrize("k", [8, 16, 32, 64])
def test_discriminator_on_patches(k):
    disc = PatchDiscriminator(patch_size=k, ndf=8)
    out = disc(torch.randn(5, 3, k, k))
    assert out.shape == (5,)
    with pytest.raises(ValueError):
        disc(torch.randn(5, 3, k // 2, k // 2))


def test_discriminator_layout_matches_graf():
    """GRAF's 64 x 64 network: nc->ndf (no IN), ndf->2ndf, 2ndf->4ndf, 4ndf->8ndf (IN each), 8ndf->1 (4x4)."""
    disc = PatchDiscriminator(patch_size=64, ndf=64)
    convs = [m for m in disc.main if isinstance(m, nn.Conv2d)]
    assert [(c.in_channels, c.out_channels) for c in convs] == [(3, 64), (64, 128), (128, 256), (256, 512), (512, 1)]
    assert [type(m).__name__ for m in disc.main[:4]] == ["Conv2d", "LeakyReLU", "Conv2d", "InstanceNorm2d"]
    disc32 = PatchDiscriminator(patch_size=32, ndf=64)  # GRAF's 32 network: nc->2ndf with IN first
    convs = [m for m in disc32.main if isinstance(m, nn.Conv2d)]
    assert [(c.in_channels, c.out_channels) for c in convs] == [(3, 128), (128, 256), (256, 512), (512, 1)]
    assert type(disc32.main[1]).__name__ == "InstanceNorm2d"
    assert all(hasattr(c, "weight_orig") for c in convs)  # spectral norm on every conv


def test_discriminator_without_instance_norm():
    disc = PatchDiscriminator(patch_size=16, ndf=8, instance_norm=False)
    assert not any(isinstance(m, nn.InstanceNorm2d) for m in disc.main)
    convs = [m for m in disc.main if isinstance(m, nn.Conv2d)]
    assert len(convs) == 3 and all(hasattr(c, "weight_orig") for c in convs)  # spectral norm stays
    assert disc(torch.randn(2, 3, 16, 16)).shape == (2,)


def test_losses_match_bce():
    d_real, d_fake = torch.randn(7), torch.randn(7)
    ref_d = F.binary_cross_entropy_with_logits(d_real, torch.ones(7)) + F.binary_cross_entropy_with_logits(
        d_fake, torch.zeros(7)
    )
    torch.testing.assert_close(d_loss_logistic(d_real, d_fake), ref_d)
    torch.testing.assert_close(g_loss_nonsaturating(d_fake), F.binary_cross_entropy_with_logits(d_fake, torch.ones(7)))


class _TinyD(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3, padding=1)
        self.lin = nn.Linear(4 * 4 * 4, 1)

    def forward(self, x):
        return self.lin(torch.tanh(self.conv(x)).flatten(1)).squeeze(1)


def test_r1_penalty_matches_finite_differences():
    torch.manual_seed(0)
    d = _TinyD().double()
    x = torch.randn(2, 3, 4, 4, dtype=torch.float64, requires_grad=True)
    r1 = r1_penalty(d(x), x)  # (2,)
    # Reference: central differences of D w.r.t. every input entry of every sample, in one batch.
    eps = 1e-6
    n = x[0].numel()
    basis = torch.eye(n, dtype=torch.float64).view(n, 3, 4, 4) * eps  # (n, 3, 4, 4)
    with torch.no_grad():
        xp = (x.detach()[:, None] + basis[None]).reshape(-1, 3, 4, 4)
        xm = (x.detach()[:, None] - basis[None]).reshape(-1, 3, 4, 4)
        grads = ((d(xp) - d(xm)) / (2 * eps)).view(2, n)
    torch.testing.assert_close(r1, grads.pow(2).sum(1), rtol=1e-7, atol=1e-9)
    # Double backward: d(mean r1)/d(theta) against finite differences on one parameter entry.
    r1.mean().backward()
    g_auto = d.lin.weight.grad[0, 5].item()
    vals = []
    for s in (1, -1):
        with torch.no_grad():
            d.lin.weight[0, 5] += s * 1e-5
        xx = x.detach().clone().requires_grad_(True)
        vals.append(r1_penalty(d(xx), xx).mean().item())
        with torch.no_grad():
            d.lin.weight[0, 5] -= s * 1e-5
    assert abs(g_auto - (vals[0] - vals[1]) / 2e-5) < 1e-6 * max(1.0, abs(g_auto))


def test_ema_closed_form():
    src, tgt = nn.Linear(3, 2), nn.Linear(3, 2)
    t0 = tgt.weight.detach().clone()
    beta, n = 0.9, 7
    for _ in range(n):
        ema_update(tgt, src, beta)
    expected = beta**n * t0 + (1 - beta**n) * src.weight.detach()
    torch.testing.assert_close(tgt.weight.detach(), expected, rtol=1e-6, atol=1e-6)
    ema_update(tgt, src, 0.0)
    torch.testing.assert_close(tgt.weight, src.weight)


def test_patch_scale_annealing_matches_graf():
    import math

    from gen3d.models.graf.patches import graf_min_scale

    # FlexGridRaySampler: k = iterations // 1000 * 3; min(0.9, max(min_scale, max_scale * exp(-k * anneal))).
    assert graf_min_scale(0) == 0.9  # exp(0) = 1, capped at 0.9
    assert graf_min_scale(100_000) == pytest.approx(math.exp(-300 * 0.0025))  # 0.472
    assert graf_min_scale(100_999) == graf_min_scale(100_000)  # steps of 1000 iterations
    assert graf_min_scale(10**6) == 0.25
    assert graf_min_scale(5, min_scale=0.4, anneal=-1) == 0.4  # annealing off
