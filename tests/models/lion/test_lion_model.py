"""LION's VAE, priors and sampling on a tiny configuration."""

from __future__ import annotations

import math

import pytest
import torch

from gen3d.models.lion import (
    LION,
    HierarchicalVAE,
    LionConfig,
    PointDiffusion,
    gaussian_kl,
    kl_weight_at,
    negative_elbo_per_point,
)


def test_gaussian_kl_matches_torch_distributions():
    mu, log_sigma = torch.randn(10, dtype=torch.float64), torch.randn(10, dtype=torch.float64)
    q = torch.distributions.Normal(mu, log_sigma.exp())
    p = torch.distributions.Normal(torch.zeros(10, dtype=torch.float64), torch.ones(10, dtype=torch.float64))
    torch.testing.assert_close(gaussian_kl(mu, log_sigma), torch.distributions.kl_divergence(q, p))


def test_kl_weight_schedule(tiny_cfg):
    c = LionConfig.from_dict({**tiny_cfg.to_dict(), "kl_weight_min": 1e-7, "kl_weight_max": 0.5})
    assert kl_weight_at(0, 1000, c) == pytest.approx(1e-7)
    assert kl_weight_at(250, 1000, c) == pytest.approx(1e-7 + (0.5 - 1e-7) * 0.5)  # half of the 500 anneal steps
    assert kl_weight_at(500, 1000, c) == pytest.approx(0.5)
    assert kl_weight_at(900, 1000, c) == pytest.approx(0.5)
    assert kl_weight_at(10, 0, c) == 0.5


def test_config_round_trip(tiny_cfg):
    assert LionConfig.from_dict(tiny_cfg.to_dict()) == tiny_cfg
    with pytest.raises(ValueError, match="unknown LION config keys"):
        LionConfig.from_dict({"num_point": 3})


def test_vae_shapes_and_latent_structure(tiny_cfg):
    vae = HierarchicalVAE(tiny_cfg)
    n = tiny_cfg.num_points
    x = torch.randn(3, n, 3)
    out = vae(x)
    assert out.recon.shape == (3, n, 3)
    assert out.glb.z.shape == (3, 8)
    assert out.loc.z.shape == (3, n, 4)  # xyz + 1 feature per latent point
    for v in (out.rec, out.kl_glb, out.kl_pt, out.kl_feat):
        assert v.shape == (3,) and torch.isfinite(v).all()
    # at initialisation the latent point means sit on the input points (skip weight 0.01) with narrow posteriors
    assert (out.loc.mu[..., :3] - x).abs().max() < 0.2
    assert out.loc.log_sigma.mean() < -4
    mean_out = vae(x, sample=False)
    torch.testing.assert_close(mean_out.loc.z, mean_out.loc.mu)


def test_vae_gradients_reach_every_parameter(tiny_cfg):
    vae = HierarchicalVAE(tiny_cfg)
    loss = vae.loss(vae(torch.randn(2, tiny_cfg.num_points, 3)), kl_weight=0.5)
    loss.backward()
    missing = [n for n, p in vae.named_parameters() if p.grad is None or not torch.isfinite(p.grad).all()]
    assert not missing
    assert sum(p.grad.abs().sum() for p in vae.parameters()) > 0


def test_vae_reconstruction_improves_on_a_fixed_batch(tiny_cfg):
    torch.manual_seed(0)
    vae = HierarchicalVAE(tiny_cfg)
    t = torch.linspace(0, 2 * math.pi, tiny_cfg.num_points)
    x = torch.stack([torch.stack([t.cos(), t.sin(), 0.3 * (2 * t).sin()], -1) * s for s in (0.5, 1.0)])  # (2, N, 3)
    opt = torch.optim.Adam(vae.parameters(), lr=3e-3)
    with torch.no_grad():
        before = vae(x, sample=False).rec.mean().item()
    for _ in range(40):
        loss = vae.loss(vae(x), kl_weight=1e-4)
        opt.zero_grad()
        loss.backward()
        opt.step()
    with torch.no_grad():
        after = vae(x, sample=False).rec.mean().item()
    assert after < 0.7 * before


def test_negative_elbo_per_point_formula(tiny_cfg):
    vae = HierarchicalVAE(tiny_cfg).eval()
    n = tiny_cfg.num_points
    x = torch.randn(2, n, 3)
    torch.manual_seed(3)
    nelbo = negative_elbo_per_point(vae, x)
    torch.manual_seed(3)
    out = vae(x)
    ref = (out.rec + n * 3 * math.log(2) + out.kl_glb + out.kl_pt + out.kl_feat) / n
    torch.testing.assert_close(nelbo, ref)
    assert nelbo.shape == (2,)


def test_prior_losses_train_only_the_priors(tiny_cfg):
    model = LION(tiny_cfg)
    loss_g, loss_l = model.prior_losses(torch.randn(2, tiny_cfg.num_points, 3))
    (loss_g + loss_l).backward()
    assert all(p.grad is None for p in model.vae.parameters())
    assert all(p.grad is not None for p in model.priors().parameters())


def test_sampling_shapes_and_seed(tiny_cfg):
    model = LION(tiny_cfg).eval()
    a = model.sample(2, "ddim", 5, generator=torch.Generator().manual_seed(1))
    b = model.sample(2, "ddim", 5, generator=torch.Generator().manual_seed(1))
    c = model.sample(2, "ddpm", 5, generator=torch.Generator().manual_seed(2), num_points=32)
    n = tiny_cfg.num_points
    assert a.shape == (2, n, 3) and c.shape == (2, 32, 3)
    assert torch.equal(a, b)
    pts, z_g, h = model.sample(1, "dpm", 4, return_latents=True)
    assert z_g.shape == (1, 8) and h.shape == (1, n, 4) and pts.shape == (1, n, 3)


@pytest.mark.parametrize("sampler", ["ddim", "dpm"])
def test_sampling_from_given_noise_equals_drawing_that_noise(tiny_cfg, sampler):
    model = LION(tiny_cfg).eval()
    g = torch.Generator().manual_seed(0)  # standardisation away from the identity: the noise lives in the priors' frame
    model.set_latent_stats(
        1.5 + 0.4 * torch.randn(12, 8, generator=g), torch.randn(12, tiny_cfg.num_points, 4, generator=g)
    )
    shape_z, shape_h = (2, tiny_cfg.style_dim), (2, tiny_cfg.num_points, tiny_cfg.point_channels)
    g = torch.Generator().manual_seed(5)
    z_T, h_T = torch.randn(shape_z, generator=g), torch.randn(shape_h, generator=g)  # the order the sampler draws in
    given = model.sample(2, sampler, 4, x_T=(z_T, h_T), return_latents=True, code_temperature=1.3)
    drawn = model.sample(
        2, sampler, 4, generator=torch.Generator().manual_seed(5), return_latents=True, code_temperature=1.3
    )
    for a, b in zip(given, drawn, strict=True):  # points, shape latents, latent points
        assert torch.equal(a, b)
    with pytest.raises(ValueError, match="starting noise"):
        model.sample(2, sampler, 4, x_T=(z_T, h_T[:, :10]))
    pvd = PointDiffusion(tiny_cfg).eval()
    x_T = torch.randn(2, tiny_cfg.num_points, 3, generator=torch.Generator().manual_seed(6))
    drawn = pvd.sample(2, sampler, 4, generator=torch.Generator().manual_seed(6))
    assert torch.equal(pvd.sample(2, sampler, 4, x_T=x_T), drawn)


def test_code_temperature_scales_the_shape_code_the_latent_points_are_drawn_for(tiny_cfg):
    from gen3d.diffusion import sample_loop

    model = LION(tiny_cfg).eval()
    g = torch.Generator().manual_seed(0)  # standardisation far from the identity: the factor acts in the priors' frame
    model.set_latent_stats(
        2.0 + 0.3 * torch.randn(20, 8, generator=g), torch.randn(20, tiny_cfg.num_points, 4, generator=g)
    )
    seed = lambda: torch.Generator().manual_seed(4)  # noqa: E731
    _, z1, _ = model.sample(3, "ddpm", 5, generator=seed(), return_latents=True)
    pts, z, h = model.sample(3, "ddpm", 5, generator=seed(), return_latents=True, code_temperature=1.7)
    zs1, _ = model.standardize(z1, h)
    zs, _ = model.standardize(z, h)
    torch.testing.assert_close(zs, 1.7 * zs1)
    # by hand: shape code, scaled, then the latent points for it from the same stream, then the decoder
    with torch.no_grad():
        g = seed()
        code = 1.7 * sample_loop(model.glb_prior, model.make_sampler("ddpm", 5), (3, 8), g)
        shape = (3, tiny_cfg.num_points, 4)
        lat = sample_loop(lambda x, t: model.loc_prior(x, t, code), model.make_sampler("ddpm", 5), shape, g)
        code, lat = model.unstandardize(code, lat)
        torch.testing.assert_close(pts, model.vae.decode(lat, code))
    for bad in (0.0, -1.0, float("nan")):
        with pytest.raises(ValueError, match="code_temperature"):
            model.sample(1, "ddpm", 2, code_temperature=bad)


def test_point_diffusion_baseline(tiny_cfg):
    model = PointDiffusion(tiny_cfg)
    n = tiny_cfg.num_points
    loss = model.loss(torch.randn(2, n, 3))
    loss.backward()
    assert torch.isfinite(loss)
    model.eval()
    assert model.sample(2, "dpm", 4, generator=torch.Generator().manual_seed(0)).shape == (2, n, 3)


def test_latent_standardization(tiny_cfg):
    model = LION(tiny_cfg)
    g = torch.Generator().manual_seed(0)
    z_g = 3.0 + 0.01 * torch.randn(20, 8, generator=g)  # tiny spread, far from zero: what a low KL weight gives
    n = tiny_cfg.num_points
    h = torch.cat(
        [
            torch.randn(20, n, 3, generator=g) * torch.tensor([1.0, 2.0, 0.5]),
            0.02 * torch.randn(20, n, 1, generator=g),
        ],
        -1,
    )
    z0, h0 = model.standardize(z_g, h)
    assert torch.equal(z0, z_g) and torch.equal(h0, h)  # identity until statistics are set (LION's behaviour)
    model.set_latent_stats(z_g, h)
    zs, hs = model.standardize(z_g, h)
    torch.testing.assert_close(zs.mean(0), torch.zeros(8), atol=1e-5, rtol=0)
    torch.testing.assert_close(zs.std(0), torch.ones(8), atol=1e-5, rtol=0)
    flat = hs.reshape(-1, 4)
    torch.testing.assert_close(flat.mean(0), torch.zeros(4), atol=1e-5, rtol=0)
    assert flat[:, 3].std().item() == pytest.approx(1.0, abs=1e-4)  # features: own scale
    assert (flat[:, :3] - flat[:, :3].mean(0)).std().item() == pytest.approx(1.0, abs=1e-4)  # xyz: one shared scale
    ratio = h[..., :3].std(dim=(0, 1)) / hs[..., :3].std(dim=(0, 1))
    torch.testing.assert_close(ratio, ratio[0].expand(3))  # isotropic: the geometry is not distorted
    back = model.unstandardize(zs, hs)
    torch.testing.assert_close(back[0], z_g)
    torch.testing.assert_close(back[1], h)
    assert set(model.state_dict()) >= {"glb_mean", "glb_std", "loc_mean", "loc_std"}
