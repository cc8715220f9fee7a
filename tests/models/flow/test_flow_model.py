"""The point-cloud flow model: configuration, ELBO terms, sampling, checkpoints and a tiny training run."""

from __future__ import annotations

import math
import time

import pytest
import torch

from gen3d.data.shapes import shape_points
from gen3d.models.flow import FlowConfig, PointFlowModel, gaussian_entropy

TINY = FlowConfig(z_dim=16, point_layers=2, prior_layers=2, hidden=32, encoder_width=32, num_points=256)


def chairs(n: int = 4, points: int = 256) -> torch.Tensor:
    """(n, points, 3) chair clouds, centred and scaled to unit standard deviation over the set."""
    x = torch.stack([torch.from_numpy(shape_points("chair", i, points=points)) for i in range(n)])
    x = x - x.mean(dim=1, keepdim=True)
    return x / x.std()


def test_config_round_trip():
    cfg = FlowConfig(z_dim=8, scale_clamp=1.5)
    assert FlowConfig.from_dict(cfg.to_dict()) == cfg
    assert FlowConfig.from_dict(None) == FlowConfig()
    with pytest.raises(ValueError, match="unknown flow config keys \\['zdim'\\]"):
        FlowConfig.from_dict({"zdim": 3})


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_shapes_and_dtypes(dtype):
    model = PointFlowModel(TINY).to(dtype)
    x = torch.randn(3, 40, 3, dtype=dtype)
    mu, logvar = model.encode(x)
    assert mu.shape == logvar.shape == (3, 16) and mu.dtype == dtype
    assert model.point_log_prob(x, mu).shape == (3, 40)
    assert model.prior_log_prob(mu).shape == (3,)
    out = model.elbo(x, samples=2)
    assert set(out) == {"elbo", "recon", "prior", "entropy"}
    assert all(v.shape == (3,) and v.dtype == dtype for v in out.values())
    torch.testing.assert_close(out["elbo"], out["recon"] + out["prior"] + out["entropy"], atol=0, rtol=0)
    losses = model.loss(x)
    assert set(losses) == {"loss", "recon_nats_per_point", "prior_nats_per_point", "entropy_nats_per_point"}
    assert losses["loss"].shape == () and torch.isfinite(losses["loss"])
    total = losses["recon_nats_per_point"] + losses["prior_nats_per_point"] + losses["entropy_nats_per_point"]
    torch.testing.assert_close(losses["loss"], -total, atol=1e-5, rtol=1e-6)
    assert model.sample(2, 17).shape == (2, 17, 3)


def ignore_codes(model: PointFlowModel) -> None:
    """Cut the shape code out of the point flow: ``p(x | z) = p(x)``, so ``log p(X) = sum_i log p(x_i)`` exactly."""
    with torch.no_grad():
        for block in model.point_flow.blocks:
            for proj in block.coupling.net.cond:
                proj.weight.zero_()


def fix_posterior(model: PointFlowModel, mu: torch.Tensor, logvar: torch.Tensor) -> None:
    """Make ``q(z | X) = N(mu, diag(exp(logvar)))`` for every cloud."""
    last = model.encoder.head[-1]
    with torch.no_grad():
        last.weight.zero_()
        last.bias.copy_(torch.cat([mu, logvar]))


def test_elbo_terms_and_bound():
    """With ``p(x | z)`` ignoring z the exact log-likelihood is ``sum_i log p(x_i)``; the new prior flow is a standard
    normal up to a signed permutation, so ``prior + entropy`` estimates ``-KL(q || N(0, I))`` in closed form."""
    torch.manual_seed(0)
    model = PointFlowModel(TINY).double()
    with torch.no_grad():  # point flow off the identity; prior flow's mixing to a signed permutation
        for p in model.point_flow.parameters():
            p.add_(0.05 * torch.randn_like(p))
        for block in model.prior_flow.blocks:
            block.mixing.lower.zero_()
            block.mixing.upper.zero_()
            block.mixing.log_s.zero_()
    model.eval()
    ignore_codes(model)
    z_dim = TINY.z_dim
    mu = torch.linspace(-1.0, 1.0, z_dim, dtype=torch.float64)
    logvar = torch.linspace(-1.0, 0.5, z_dim, dtype=torch.float64)
    fix_posterior(model, mu, logvar)
    x = chairs(2, 16).double()

    exact_log_px = model.point_log_prob(x, torch.zeros(2, z_dim, dtype=torch.float64)).sum(dim=1)  # (2,)
    gen = torch.Generator().manual_seed(7)
    out = model.elbo(x, samples=1, generator=gen)
    torch.testing.assert_close(out["recon"], exact_log_px, atol=1e-9, rtol=0)
    torch.testing.assert_close(out["entropy"], gaussian_entropy(logvar.expand(2, -1)), atol=1e-12, rtol=0)
    expected_entropy = torch.distributions.Normal(mu, (0.5 * logvar).exp()).entropy().sum()
    torch.testing.assert_close(out["entropy"], expected_entropy.expand(2), atol=1e-12, rtol=0)
    eps = torch.randn(2, z_dim, generator=torch.Generator().manual_seed(7), dtype=torch.float64)
    z = mu + (0.5 * logvar).exp() * eps
    torch.testing.assert_close(
        out["prior"], torch.distributions.Normal(0.0, 1.0).log_prob(z).sum(-1), atol=1e-10, rtol=0
    )

    s = 400
    out = model.elbo(x, samples=s, generator=gen)
    kl = 0.5 * (mu.square() + logvar.exp() - logvar - 1.0).sum()
    var_log_p = 0.5 * (logvar.exp() * (2 * mu.square() + logvar.exp())).sum()  # Var_q of -|z|^2 / 2
    tol = 5.0 * math.sqrt(var_log_p.item() / s)
    torch.testing.assert_close(out["prior"] + out["entropy"], -kl.expand(2), atol=tol, rtol=0)
    assert (out["elbo"] < exact_log_px - kl + tol).all() and (out["elbo"] < exact_log_px).all()


def test_sampling_is_reproducible_and_any_size():
    torch.manual_seed(0)
    model = PointFlowModel(TINY)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.1 * torch.randn_like(p))
    model.eval()
    a = model.sample(3, 100, generator=torch.Generator().manual_seed(5))
    b = model.sample(3, 100, generator=torch.Generator().manual_seed(5))
    c = model.sample(3, 100, generator=torch.Generator().manual_seed(6))
    assert a.shape == (3, 100, 3) and torch.isfinite(a).all()
    assert torch.equal(a, b) and not torch.equal(a, c)
    z = torch.randn(2, TINY.z_dim)
    small = model.sample_points(z, 100, generator=torch.Generator().manual_seed(1))
    large = model.sample_points(z, 3000, generator=torch.Generator().manual_seed(1))
    assert small.shape == (2, 100, 3) and large.shape == (2, 3000, 3)
    assert torch.equal(small, model.sample_points(z, 100, generator=torch.Generator().manual_seed(1)))
    cold = model.sample_points(z, 3000, generator=torch.Generator().manual_seed(1), temperature=0.0)
    torch.testing.assert_close(cold, cold[:, :1].expand_as(cold), atol=1e-6, rtol=0)  # T = 0: each shape's mode


def test_checkpoint_keeps_actnorm_init():
    torch.manual_seed(0)
    model = PointFlowModel(TINY).train()
    x = chairs(2, 64)
    model.loss(x)
    assert all(bool(m.initialized) for m in model.modules() if hasattr(m, "initialized"))
    fresh = PointFlowModel(TINY)
    fresh.load_state_dict(model.state_dict())
    fresh.train()
    model.eval()
    z = torch.randn(2, TINY.z_dim)
    torch.testing.assert_close(fresh.point_log_prob(x, z), model.point_log_prob(x, z), atol=0, rtol=0)
    torch.testing.assert_close(fresh.prior_log_prob(z), model.prior_log_prob(z), atol=0, rtol=0)


def test_tiny_training_lowers_nll():
    torch.manual_seed(0)
    model = PointFlowModel(TINY).train()
    x = chairs()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    gen = torch.Generator().manual_seed(0)
    losses = []
    start = time.perf_counter()
    for _ in range(60):
        loss = model.loss(x, generator=gen)["loss"]
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    elapsed = time.perf_counter() - start
    first, last = sum(losses[:5]) / 5, sum(losses[-5:]) / 5
    assert last < first - 0.15, f"loss {first:.3f} -> {last:.3f} nats per point"
    assert elapsed < 20.0


def test_prior_stays_stable_on_small_batches():
    """A batch has one code per cloud: actnorm statistics of 4 codes in 64 dimensions would blow the prior up after
    one step (the prior term falls to about -500 nats per point with ``prior_data_init=True``), so the default prior
    flow starts as the identity instead."""
    torch.manual_seed(0)
    cfg = FlowConfig(z_dim=64, point_layers=2, prior_layers=8, hidden=64, encoder_width=32, prior_data_init=False)
    assert cfg.prior_data_init == FlowConfig().prior_data_init
    model = PointFlowModel(cfg).train()
    x = chairs(4, 64)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    priors = []
    for _ in range(3):
        out = model.loss(x)
        opt.zero_grad()
        out["loss"].backward()
        opt.step()
        priors.append(out["prior_nats_per_point"].item())
    assert min(priors) > -3.0, priors  # 64 codes dims / 64 points: about -1.4 nats per point
