"""Noise schedules against closed forms computed independently in float64 numpy."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from gen3d.diffusion import NoiseSchedule


def test_linear_alphas_cumprod_matches_closed_form():
    T, b0, b1 = 1000, 1e-4, 2e-2
    sched = NoiseSchedule("linear", T, b0, b1)
    betas = np.array([b0 + i * (b1 - b0) / (T - 1) for i in range(T)], dtype=np.float64)
    ref = np.exp(np.cumsum(np.log1p(-betas)))  # prod(1 - beta) through logs: a different computation
    assert sched.alphas_cumprod.dtype == torch.float64
    np.testing.assert_allclose(sched.alphas_cumprod.numpy(), ref, rtol=1e-12, atol=0)
    # the known value at the end of LION/PVD's schedule: alpha_bar_T ~ 4.0e-5
    assert 3.5e-5 < sched.alphas_cumprod[-1].item() < 4.5e-5


def test_cosine_alphas_cumprod_matches_closed_form():
    T, s = 1000, 0.008
    sched = NoiseSchedule("cosine", T)

    def f(t: float) -> float:
        return math.cos((t / T + s) / (1 + s) * math.pi / 2) ** 2

    ref = np.array([f(t + 1) / f(0) for t in range(T)])
    unclipped = sched.betas.numpy() < 0.999  # only the last betas are clipped
    assert unclipped[: T - 5].all()
    np.testing.assert_allclose(sched.alphas_cumprod.numpy()[unclipped], ref[unclipped], rtol=1e-10, atol=1e-14)


def test_add_noise_and_alpha_bar_endpoints():
    sched = NoiseSchedule("linear", 100, 1e-4, 2e-2)
    x0, noise = torch.randn(4, 5, dtype=torch.float64), torch.randn(4, 5, dtype=torch.float64)
    t = torch.tensor([0, 10, 50, 99])
    abar = np.cumprod(1 - np.linspace(1e-4, 2e-2, 100))[t.numpy()][:, None]
    ref = np.sqrt(abar) * x0.numpy() + np.sqrt(1 - abar) * noise.numpy()
    np.testing.assert_allclose(sched.add_noise(x0, noise, t).numpy(), ref, rtol=1e-12)
    assert sched.alpha_bar(-1).item() == 1.0


def test_prediction_conversions_are_consistent():
    sched = NoiseSchedule("cosine", 1000)
    x0, eps = torch.randn(6, 3, dtype=torch.float64), torch.randn(6, 3, dtype=torch.float64)
    t = torch.tensor([0, 1, 200, 500, 900, 999])
    x_t = sched.add_noise(x0, eps, t)
    v = sched.get_velocity(x0, eps, t)
    abar = sched.alphas_cumprod[t][:, None]
    a, s = abar.sqrt(), (1 - abar).sqrt()
    # v = a eps - s x0  <=>  x0 = a x_t - s v, eps = s x_t + a v  (a^2 + s^2 = 1)
    torch.testing.assert_close(v, a * eps - s * x0)
    torch.testing.assert_close(a * x_t - s * v, x0)
    torch.testing.assert_close(s * x_t + a * v, eps)
    for kind, out in (("epsilon", eps), ("v_prediction", v), ("sample", x0)):
        x0_hat, eps_hat = sched.split_prediction(out, x_t, t, kind)
        if kind == "sample":  # eps from x0 divides by alpha-tiny sigma at t=0: compare where well conditioned
            torch.testing.assert_close(eps_hat[1:], eps[1:], rtol=1e-6, atol=1e-6)
        else:
            torch.testing.assert_close(eps_hat, eps, rtol=1e-9, atol=1e-9)
        torch.testing.assert_close(x0_hat[:-1], x0[:-1], rtol=1e-9, atol=1e-7)


def test_schedule_round_trip_and_bad_kind():
    sched = NoiseSchedule("cosine", 500, cosine_s=0.01)
    again = NoiseSchedule.from_dict(sched.to_dict())
    assert again.to_dict() == sched.to_dict()
    assert torch.equal(again.betas, sched.betas)
    with pytest.raises(ValueError, match="unknown noise schedule"):
        NoiseSchedule("quadratic")
