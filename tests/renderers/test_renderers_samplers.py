"""Samplers: ray-box intersection vs brute force, stratified bins, inverse-CDF sampling vs the exact CDF."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy import stats

from renderers import ray_aabb_intersect, sample_pdf, samples_to_intervals, stratified_samples


def test_ray_aabb_intersect_brute_force():
    gen = torch.Generator().manual_seed(0)
    origins = (torch.rand(120, 3, generator=gen, dtype=torch.float64) * 2 - 1) * 2
    dirs = torch.randn(120, 3, generator=gen, dtype=torch.float64)
    dirs[::10, 1] = 0.0  # parallel to the y slabs
    dirs = dirs / dirs.norm(dim=-1, keepdim=True)
    aabb = torch.tensor([-0.5, -1.0, -0.25, 1.0, 0.5, 0.75], dtype=torch.float64)
    t_near, t_far, hit = ray_aabb_intersect(origins, dirs, aabb)
    # Dense points on the line: the inside set is [t_near, t_far].
    t = torch.linspace(-8, 8, 8001, dtype=torch.float64)
    x = origins[:, None] + t[None, :, None] * dirs[:, None]
    inside = ((x >= aabb[:3]) & (x <= aabb[3:])).all(-1)  # (R, T)
    any_inside = inside.any(-1)
    ahead = (inside & (t > 0)).any(-1)  # the half-line t > 0 meets the box
    clear = ((t_far - t_near).abs() > 5e-3) & (t_far.abs() > 5e-3)  # not decided by the grid spacing
    assert torch.equal(hit[clear], ahead[clear])
    assert 0 < int(hit.sum()) < 120
    first = torch.where(inside, t, torch.inf).amin(-1)
    last = torch.where(inside, t, -torch.inf).amax(-1)
    torch.testing.assert_close(t_near[any_inside], first[any_inside], atol=2.1e-3, rtol=0)
    torch.testing.assert_close(t_far[any_inside], last[any_inside], atol=2.1e-3, rtol=0)


def test_ray_aabb_axis_parallel_cases():
    aabb = torch.tensor([0.0, 0.0, 0.0, 1.0, 1.0, 1.0])
    o = torch.tensor([[0.5, 0.5, -1.0], [2.0, 0.5, -1.0], [0.5, 0.5, 0.5], [0.5, 0.5, 2.0]])
    d = torch.tensor([[0.0, 0.0, 1.0], [0.0, 0.0, 1.0], [1.0, 0.0, 0.0], [0.0, 0.0, 1.0]])
    t_near, t_far, hit = ray_aabb_intersect(o, d, aabb)
    assert hit.tolist() == [True, False, True, False]
    assert t_near[0] == 1.0 and t_far[0] == 2.0
    assert t_near[2] == -0.5 and t_far[2] == 0.5  # origin inside: entry behind it


def test_stratified_one_sample_per_bin():
    gen = torch.Generator().manual_seed(1)
    near = torch.tensor([0.0, 1.0, 2.0])
    far = torch.tensor([1.0, 3.0, 2.5])
    t = stratified_samples(near, far, 8, generator=gen)
    assert t.shape == (3, 8)
    bins = torch.floor((t - near[:, None]) / (far - near)[:, None] * 8)
    assert torch.equal(bins, torch.arange(8.0).expand(3, 8))
    centred = stratified_samples(0.0, 1.0, 4, perturb=False, batch_shape=(2,))
    torch.testing.assert_close(centred, torch.tensor([0.125, 0.375, 0.625, 0.875]).expand(2, 4))
    # Same seed, same samples.
    a = stratified_samples(near, far, 8, generator=torch.Generator().manual_seed(7))
    b = stratified_samples(near, far, 8, generator=torch.Generator().manual_seed(7))
    assert torch.equal(a, b)


def test_intervals_tile_the_range():
    t = torch.tensor([[0.2, 0.5, 0.9]])
    t_starts, t_ends = samples_to_intervals(t, 0.0, 1.0)
    torch.testing.assert_close(t_starts, torch.tensor([[0.0, 0.35, 0.7]]))
    torch.testing.assert_close(t_ends, torch.tensor([[0.35, 0.7, 1.0]]))


def _piecewise_cdf(bins: np.ndarray, weights: np.ndarray):
    pdf = weights / weights.sum()
    cdf_edges = np.concatenate([[0.0], np.cumsum(pdf)])

    def cdf(x):
        x = np.asarray(x, dtype=np.float64)
        i = np.clip(np.searchsorted(bins, x, side="right") - 1, 0, len(weights) - 1)
        frac = np.clip((x - bins[i]) / (bins[i + 1] - bins[i]), 0.0, 1.0)
        return np.where(x < bins[0], 0.0, np.where(x >= bins[-1], 1.0, cdf_edges[i] + frac * pdf[i]))

    return cdf


def test_sample_pdf_matches_piecewise_constant_pdf():
    """Kolmogorov-Smirnov test of 20000 samples against the exact piecewise-linear CDF."""
    bins = torch.tensor([0.0, 0.5, 1.0, 2.5, 3.0, 4.0], dtype=torch.float64)
    weights = torch.tensor([1.0, 0.0, 3.0, 0.5, 2.0], dtype=torch.float64)
    gen = torch.Generator().manual_seed(0)
    samples = sample_pdf(bins[None], weights[None], 20000, generator=gen, padding=0.0)[0]
    assert torch.all(samples[1:] >= samples[:-1])
    assert not ((samples > 0.5) & (samples < 1.0)).any()  # zero-weight bin never sampled
    result = stats.kstest(samples.numpy(), _piecewise_cdf(bins.numpy(), weights.numpy()))
    assert result.pvalue > 1e-3, result


def test_sample_pdf_deterministic_quantiles():
    bins = torch.tensor([[0.0, 1.0, 3.0]])
    weights = torch.tensor([[1.0, 3.0]])
    got = sample_pdf(bins, weights, 4, deterministic=True, padding=0.0)[0]
    # Quantiles (k + 0.5) / 4 of the CDF: 1/4 of the mass on [0, 1], 3/4 on [1, 3].
    cdf = _piecewise_cdf(bins[0].numpy().astype(np.float64), weights[0].numpy().astype(np.float64))
    np.testing.assert_allclose(cdf(got.numpy()), [0.125, 0.375, 0.625, 0.875], atol=1e-6)
    assert torch.equal(got, sample_pdf(bins, weights, 4, deterministic=True, padding=0.0)[0])


def test_sample_pdf_zero_weights_is_uniform():
    bins = torch.linspace(0, 1, 5)[None]
    got = sample_pdf(bins, torch.zeros(1, 4), 4, deterministic=True, padding=0.0)
    torch.testing.assert_close(got, torch.tensor([[0.125, 0.375, 0.625, 0.875]]))


@pytest.mark.parametrize("shape", [(3,), (2, 4)])
def test_sample_pdf_shapes(shape):
    bins = torch.sort(torch.rand(*shape, 9), dim=-1).values
    out = sample_pdf(bins, torch.rand(*shape, 8), 5)
    assert out.shape == (*shape, 5)
    assert torch.all(out >= bins[..., :1]) and torch.all(out <= bins[..., -1:])
