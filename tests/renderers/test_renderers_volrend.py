"""Volume rendering building blocks vs a float64 Python loop; the analytic uniform sphere (batched path)."""

from __future__ import annotations

import math

import pytest
import torch

import renderers.volrend as volrend
from renderers import (
    aabb_stratified_samples,
    exclusive_segment_cumprod,
    exclusive_segment_cumsum,
    render_weights,
    samples_to_intervals,
    volume_render,
    volume_render_packed,
)


def _loop_render(sigmas, rgbs, t_starts, t_ends, eps):
    """Float64 loop over (R, S) samples: weights, colour, opacity, depth with transmittance as a product."""
    n_rays, n_samples = sigmas.shape
    weights = torch.zeros(n_rays, n_samples, dtype=torch.float64)
    rgb = torch.zeros(n_rays, rgbs.shape[-1], dtype=torch.float64)
    opacity = torch.zeros(n_rays, dtype=torch.float64)
    depth = torch.zeros(n_rays, dtype=torch.float64)
    for r in range(n_rays):
        trans = 1.0
        for i in range(n_samples):
            if trans < eps:
                break
            alpha = 1.0 - math.exp(-float(sigmas[r, i]) * (float(t_ends[r, i]) - float(t_starts[r, i])))
            w = trans * alpha
            weights[r, i] = w
            rgb[r] += w * rgbs[r, i].double()
            opacity[r] += w
            depth[r] += w * 0.5 * (float(t_starts[r, i]) + float(t_ends[r, i]))
            trans *= 1.0 - alpha
    return rgb, opacity, depth, weights


@pytest.mark.parametrize("eps", [0.0, 1e-3])
def test_batched_and_packed_match_loop(eps):
    gen = torch.Generator().manual_seed(0)
    sigmas = torch.rand(6, 9, generator=gen, dtype=torch.float64) * 5
    rgbs = torch.rand(6, 9, 3, generator=gen, dtype=torch.float64)
    edges = torch.cumsum(torch.rand(6, 10, generator=gen, dtype=torch.float64) * 0.4, dim=-1)
    t_starts, t_ends = edges[:, :-1], edges[:, 1:]
    expected = _loop_render(sigmas, rgbs, t_starts, t_ends, eps)
    got = volume_render(sigmas, rgbs, t_starts, t_ends, eps=eps)
    for a, b in zip(got, expected, strict=True):
        torch.testing.assert_close(a, b, atol=1e-12, rtol=1e-12)
    ray_indices = torch.arange(6).repeat_interleave(9)
    packed = volume_render_packed(
        sigmas.reshape(-1), rgbs.reshape(-1, 3), t_starts.reshape(-1), t_ends.reshape(-1), ray_indices, 6, eps=eps
    )
    for a, b in zip(packed[:3], expected[:3], strict=True):
        torch.testing.assert_close(a, b, atol=1e-12, rtol=1e-12)
    torch.testing.assert_close(packed[3], expected[3].reshape(-1), atol=1e-12, rtol=1e-12)


def test_weights_sum_and_transmittance():
    gen = torch.Generator().manual_seed(1)
    sigmas = torch.rand(4, 7, generator=gen, dtype=torch.float64) * 3
    t = torch.cumsum(torch.rand(4, 8, generator=gen, dtype=torch.float64), dim=-1)
    weights, trans, alphas = render_weights(sigmas, t[:, :-1], t[:, 1:])
    assert torch.equal(trans[:, 0], torch.ones(4, dtype=torch.float64))
    # Sum of weights = 1 - transmittance after the last sample = 1 - exp(-sum sigma delta).
    total = 1 - torch.exp(-(sigmas * (t[:, 1:] - t[:, :-1])).sum(-1))
    torch.testing.assert_close(weights.sum(-1), total, atol=1e-12, rtol=0)
    torch.testing.assert_close(weights, trans * alphas)


@pytest.mark.parametrize("force_global", [False, True])
def test_exclusive_segment_scans(monkeypatch, force_global):
    if force_global:  # exercise the per-length-class branch used for very ragged rays
        monkeypatch.setattr(volrend, "_PAD_BUDGET_MIN", 0)
        monkeypatch.setattr(volrend, "_PAD_BUDGET_FACTOR", 0)
    counts = [0, 3, 1, 0, 5, 2]
    ray_indices = torch.repeat_interleave(torch.arange(len(counts)), torch.tensor(counts))
    values = torch.arange(1, 12, dtype=torch.float64)
    expected, start = [], 0
    for c in counts:
        running = 0.0
        for v in values[start : start + c].tolist():
            expected.append(running)
            running += v
        start += c
    out = exclusive_segment_cumsum(values, ray_indices, len(counts))
    assert out.tolist() == expected
    assert exclusive_segment_cumsum(values[:0], ray_indices[:0], 3).numel() == 0
    products, start = [], 0
    for c in counts:
        running = 1.0
        for v in values[start : start + c].tolist():
            products.append(running)
            running *= v
        start += c
    assert exclusive_segment_cumprod(values, ray_indices, len(counts)).tolist() == products


def test_background_blend():
    sigmas = torch.zeros(2, 3)
    rgbs = torch.rand(2, 3, 3)
    t = torch.linspace(0, 1, 4).expand(2, 4)
    rgb, opacity, depth, _ = volume_render(sigmas, rgbs, t[:, :-1], t[:, 1:], background=torch.tensor([0.1, 0.2, 0.3]))
    assert torch.equal(opacity, torch.zeros(2)) and torch.equal(depth, torch.zeros(2))
    torch.testing.assert_close(rgb, torch.tensor([[0.1, 0.2, 0.3]]).expand(2, 3))


@pytest.mark.parametrize("offset", [0.0, 0.3, 0.45])
def test_uniform_sphere_batched(offset):
    """Uniform sphere (radius r, density sigma): a chord at distance d has opacity 1 - exp(-2 sigma sqrt(r^2 - d^2))."""
    radius, sigma = 0.5, 5.0
    origins = torch.tensor([[offset, 0.0, -3.0], [0.0, offset, 3.0]], dtype=torch.float64)
    dirs = torch.tensor([[0.0, 0.0, 1.0], [0.0, 0.0, -1.0]], dtype=torch.float64)
    aabb = torch.tensor([-1.0, -1.0, -1.0, 1.0, 1.0, 1.0], dtype=torch.float64)
    t, t_min, t_max, hit = aabb_stratified_samples(origins, dirs, aabb, 4096, perturb=False)
    assert hit.all()
    t_starts, t_ends = samples_to_intervals(t, t_min, t_max)
    x = origins[:, None] + t[..., None] * dirs[:, None]  # (R, S, 3)
    sigmas = torch.where(x.norm(dim=-1) < radius, sigma, 0.0)
    rgbs = torch.ones(*sigmas.shape, 3, dtype=torch.float64)
    _, opacity, depth, _ = volume_render(sigmas, rgbs, t_starts, t_ends)
    chord = 2 * math.sqrt(radius**2 - offset**2)
    expected = 1 - math.exp(-sigma * chord)
    torch.testing.assert_close(opacity, torch.full((2,), expected, dtype=torch.float64), atol=2e-3, rtol=0)
    # Expected depth of a uniform slab [a, a + L]: integral of t sigma exp(-sigma (t - a)) dt over the chord.
    a, length = 3.0 - chord / 2, chord
    exp_depth = a * expected + (1 - math.exp(-sigma * length) * (1 + sigma * length)) / sigma
    torch.testing.assert_close(depth, torch.full((2,), exp_depth, dtype=torch.float64), atol=5e-3, rtol=0)
