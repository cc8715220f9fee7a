"""Flow layers: exact inverses, log-determinants against brute-force Jacobians, closed-form densities."""

from __future__ import annotations

import math

import pytest
import torch

from gen3d.models.flow import (
    ActNorm,
    AffineCoupling,
    FlowBlock,
    InvertibleMixing,
    LatentPriorFlow,
    NormalizingFlow,
    PointFlow,
    standard_normal_log_prob,
)

COND = 5  # condition width of the point layers in these tests
TOL = {torch.float32: 1e-5, torch.float64: 1e-10}


def perturb(module: torch.nn.Module, scale: float | None = None) -> torch.nn.Module:
    """Move every parameter off its initial value (couplings start as the identity) and mark actnorms initialised.

    The default scale is 0.3 for one layer and 0.1 for a stack, whose conditioning compounds over its layers.
    """
    if scale is None:
        scale = 0.1 if isinstance(module, NormalizingFlow) else 0.3
    gen = torch.Generator().manual_seed(123)
    with torch.no_grad():
        for p in module.parameters():
            p.add_(scale * torch.randn(p.shape, generator=gen, dtype=p.dtype))
        for m in module.modules():
            if isinstance(m, ActNorm):
                m.initialized.fill_(True)
    return module.eval()


def point_layers() -> dict[str, torch.nn.Module]:
    """Each layer kind on 3-D points, conditioned where the layer takes a condition."""
    return {
        "actnorm": ActNorm(3),
        "mixing": InvertibleMixing(3),
        "coupling_1_2": AffineCoupling(3, 16, COND, parity=0),
        "coupling_2_1": AffineCoupling(3, 16, COND, parity=1),
        "block": FlowBlock(3, 16, COND, parity=1),
        "point_flow": PointFlow(COND, layers=3, hidden=16),
    }


def prior_layers(z_dim: int = 6) -> dict[str, torch.nn.Module]:
    """Unconditional layers on shape codes."""
    return {
        "actnorm": ActNorm(z_dim),
        "mixing": InvertibleMixing(z_dim),
        "coupling": AffineCoupling(z_dim, 16, parity=1),
        "block": FlowBlock(z_dim, 16),
        "prior_flow": LatentPriorFlow(z_dim, layers=3, hidden=16),
    }


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("name", list(point_layers()))
def test_point_layer_inverts(name, dtype):
    layer = perturb(point_layers()[name]).to(dtype)
    x = torch.randn(4, 50, 3, dtype=dtype)
    cond = torch.randn(4, COND, dtype=dtype)
    y, logdet = layer(x, cond)
    assert y.shape == (4, 50, 3) and logdet.shape == (4, 50)
    assert (y - x).abs().max() > 1e-2  # not the identity
    torch.testing.assert_close(layer.inverse(y, cond), x, atol=TOL[dtype], rtol=0)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("name", list(prior_layers()))
def test_prior_layer_inverts(name, dtype):
    layer = perturb(prior_layers()[name]).to(dtype)
    z = torch.randn(8, 6, dtype=dtype)
    y, logdet = layer(z)
    assert y.shape == (8, 6) and logdet.shape == (8,)
    assert (y - z).abs().max() > 1e-2
    torch.testing.assert_close(layer.inverse(y), z, atol=TOL[dtype], rtol=0)


@pytest.mark.parametrize("name", list(point_layers()))
def test_point_layer_logdet_matches_jacobian(name):
    layer = perturb(point_layers()[name]).double()
    x = torch.randn(2, 3, 3, dtype=torch.float64)
    cond = torch.randn(2, COND, dtype=torch.float64)
    _, logdet = layer(x, cond)  # (2, 3)
    for b in range(2):
        for i in range(3):

            def one_point(v, b=b):
                return layer(v.reshape(1, 1, 3), cond[b : b + 1])[0].reshape(3)

            jac = torch.autograd.functional.jacobian(one_point, x[b, i])  # (3, 3)
            expected = torch.linalg.slogdet(jac).logabsdet
            torch.testing.assert_close(logdet[b, i], expected, atol=1e-8, rtol=0)


@pytest.mark.parametrize("name", list(prior_layers()))
def test_prior_layer_logdet_matches_jacobian(name):
    layer = perturb(prior_layers()[name]).double()
    z = torch.randn(3, 6, dtype=torch.float64)
    _, logdet = layer(z)
    for b in range(3):
        jac = torch.autograd.functional.jacobian(lambda v: layer(v.reshape(1, 6))[0].reshape(6), z[b])  # (6, 6)
        torch.testing.assert_close(logdet[b], torch.linalg.slogdet(jac).logabsdet, atol=1e-8, rtol=0)


def test_mixing_stays_invertible_with_exact_logdet():
    mix = perturb(InvertibleMixing(4), scale=2.0).double()
    w = mix.weight()
    torch.testing.assert_close(mix.log_s.sum(), torch.linalg.slogdet(w).logabsdet, atol=1e-10, rtol=0)


def test_identity_flow_density_is_standard_normal():
    """A new flow is the identity up to a rotation (actnorm not yet initialised, zero couplings, orthogonal mixing),
    so its density on Gaussian data is the closed-form standard normal."""
    flow = NormalizingFlow(3, layers=4, hidden=16, cond_dim=COND).double().eval()
    with torch.no_grad():  # mixing to a signed permutation, orthogonal to the last bit
        for block in flow.blocks:
            block.mixing.lower.zero_()
            block.mixing.upper.zero_()
            block.mixing.log_s.zero_()
    x = torch.randn(5, 40, 3, dtype=torch.float64)
    cond = torch.randn(5, COND, dtype=torch.float64)
    expected = (-0.5 * x.square() - 0.5 * math.log(2 * math.pi)).sum(dim=-1)  # (5, 40)
    torch.testing.assert_close(flow.log_prob(x, cond), expected, atol=1e-10, rtol=0)
    prior = LatentPriorFlow(8, layers=3, hidden=16).double().eval()
    with torch.no_grad():
        for block in prior.blocks:
            block.mixing.lower.zero_()
            block.mixing.upper.zero_()
            block.mixing.log_s.zero_()
    z = torch.randn(7, 8, dtype=torch.float64)
    expected = torch.distributions.Normal(0.0, 1.0).log_prob(z).sum(dim=-1)
    torch.testing.assert_close(prior.log_prob(z), expected, atol=1e-10, rtol=0)


def test_actnorm_gives_affine_gaussian_density():
    """With ``x = s * u + b``, ``u ~ N(0, I)``, the density is ``N(x; b, diag(s^2))``."""
    s = torch.tensor([0.5, 2.0, 1.5], dtype=torch.float64)
    b = torch.tensor([1.0, -3.0, 0.25], dtype=torch.float64)
    norm = ActNorm(3).double().eval()
    with torch.no_grad():
        norm.loc.copy_(b)
        norm.log_scale.copy_(s.log())
        norm.initialized.fill_(True)
    x = b + s * torch.randn(100, 3, dtype=torch.float64)
    u, logdet = norm(x)
    expected = torch.distributions.Normal(b, s).log_prob(x).sum(dim=-1)
    torch.testing.assert_close(standard_normal_log_prob(u) + logdet, expected, atol=1e-10, rtol=0)
    torch.testing.assert_close(norm.inverse(u), x, atol=1e-12, rtol=0)


def test_actnorm_data_init_standardises_and_persists():
    norm = ActNorm(3).train()
    x = torch.randn(4, 500, 3) * torch.tensor([0.2, 3.0, 1.0]) + torch.tensor([5.0, -1.0, 0.0])
    y, _ = norm(x)
    torch.testing.assert_close(y.reshape(-1, 3).mean(0), torch.zeros(3), atol=1e-5, rtol=0)
    torch.testing.assert_close(y.reshape(-1, 3).std(0, unbiased=False), torch.ones(3), atol=1e-5, rtol=0)
    state = norm.state_dict()
    assert bool(state["initialized"])
    fresh = ActNorm(3).train()
    fresh.load_state_dict(state)
    y2, _ = fresh(3.0 * x)  # a later batch does not re-initialise a loaded layer
    torch.testing.assert_close(y2, (3.0 * x - state["loc"]) * torch.exp(-state["log_scale"]), atol=1e-6, rtol=0)
    assert (y2.reshape(-1, 3).std(0) > 2.0).all()
