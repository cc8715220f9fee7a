"""Samplers driven by the exact epsilon predictor of a 1-D Gaussian must recover that Gaussian.

For data ``x0 ~ N(mu, s^2)``, ``E[eps | x_t] = (x_t - sqrt(abar) mu) sqrt(1 - abar) / (abar s^2 + 1 - abar)``.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from gen3d.diffusion import (
    DDIMSampler,
    DDPMSampler,
    DPMSolverMultistepSampler,
    EpsilonLoss,
    NoiseSchedule,
    Sampler,
    VLoss,
    make_sampler,
    sample_loop,
    spaced_timesteps,
)

MU, S = 1.5, 0.5


def oracle(sched: NoiseSchedule, prediction_type: str = "epsilon"):
    def model_fn(x_t: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        assert (t == t[0]).all()
        abar = sched.alpha_bar(int(t[0])).item()
        a, s = abar**0.5, (1 - abar) ** 0.5
        eps = (x_t - a * MU) * s / (abar * S**2 + 1 - abar)
        if prediction_type == "epsilon":
            return eps
        x0 = (x_t - s * eps) / a
        return a * eps - s * x0  # v

    return model_fn


@pytest.mark.parametrize(
    ("name", "steps", "kwargs", "kind"),
    [
        ("ddpm", 1000, {"variance_type": "fixed_small"}, "linear"),
        ("ddpm", 1000, {"variance_type": "fixed_large"}, "linear"),
        ("ddim", 50, {"eta": 0.0}, "linear"),
        ("ddim", 50, {"eta": 0.5}, "cosine"),
        ("ddim", 50, {"eta": 0.0, "prediction_type": "v_prediction"}, "cosine"),
        ("dpm", 20, {}, "linear"),
        ("dpm", 20, {"prediction_type": "v_prediction"}, "cosine"),
        ("dpm", 10, {}, "linear"),
        ("dpm-sde", 50, {}, "linear"),
        ("dpm-sde", 50, {"prediction_type": "v_prediction"}, "cosine"),
    ],
)
def test_oracle_sampling_recovers_gaussian(name, steps, kwargs, kind):
    sched = NoiseSchedule(kind, 1000)
    sampler = make_sampler(name, sched, num_inference_steps=steps, **kwargs)
    g = torch.Generator().manual_seed(1)
    n = 20000
    x = sample_loop(
        oracle(sched, kwargs.get("prediction_type", "epsilon")), sampler, (n, 1), g, progress=False, dtype=torch.float64
    )
    # Monte-Carlo error of the mean is S / sqrt(n) = 0.0035, of the std about 0.0025; the rest of the budget
    # (5 % of S) is the discretisation error of first-order few-step walks (DDIM at 50 steps: about 3.5 %).
    assert abs(x.mean().item() - MU) < 0.02
    assert abs(x.std().item() - S) < 0.025


def test_ddim_eta0_and_dpm_are_deterministic_given_the_start():
    sched = NoiseSchedule("linear", 1000)
    x_T = torch.randn(64, 3, dtype=torch.float64)
    for sampler in (DDIMSampler(sched, eta=0.0), DPMSolverMultistepSampler(sched)):
        sampler.set_timesteps(25)
        a = sample_loop(oracle(sched), sampler, x_T.shape, torch.Generator().manual_seed(1), False, x_T=x_T)
        b = sample_loop(oracle(sched), sampler, x_T.shape, torch.Generator().manual_seed(2), False, x_T=x_T)
        assert torch.equal(a, b)
    ddpm = DDPMSampler(sched)
    ddpm.set_timesteps(25)
    a = sample_loop(oracle(sched), ddpm, x_T.shape, torch.Generator().manual_seed(1), False, x_T=x_T)
    b = sample_loop(oracle(sched), ddpm, x_T.shape, torch.Generator().manual_seed(1), False, x_T=x_T)
    c = sample_loop(oracle(sched), ddpm, x_T.shape, torch.Generator().manual_seed(2), False, x_T=x_T)
    assert torch.equal(a, b) and not torch.equal(a, c)


def test_dpm_second_order_beats_first_order_on_the_ode():
    """The probability-flow ODE solution from a fixed start, approximated by DDIM(eta 0) with 1000 steps."""
    sched = NoiseSchedule("linear", 1000)
    x_T = torch.randn(512, 1, dtype=torch.float64, generator=torch.Generator().manual_seed(3))
    ref_sampler = DDIMSampler(sched)  # 1000 steps
    ref = sample_loop(oracle(sched), ref_sampler, x_T.shape, None, False, x_T=x_T)
    errs = {}
    for order in (1, 2):
        s = DPMSolverMultistepSampler(sched, solver_order=order)
        s.set_timesteps(20)
        errs[order] = (sample_loop(oracle(sched), s, x_T.shape, None, False, x_T=x_T) - ref).abs().max().item()
    assert errs[2] < 0.5 * errs[1]


def test_first_order_dpm_equals_ddim():
    sched = NoiseSchedule("cosine", 1000)
    x_T = torch.randn(32, 2, dtype=torch.float64)
    a_s, b_s = DDIMSampler(sched), DPMSolverMultistepSampler(sched, solver_order=1)
    a_s.set_timesteps(30)
    b_s.set_timesteps(30)
    a = sample_loop(oracle(sched), a_s, x_T.shape, None, False, x_T=x_T)
    b = sample_loop(oracle(sched), b_s, x_T.shape, None, False, x_T=x_T)
    torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("kind", ["linear", "cosine"])
def test_first_order_sde_dpm_equals_ancestral_ddim(kind):
    """SDE-DPM-Solver++ of order 1 is DDPM ancestral sampling (DDIM eta 1): same noise, same samples."""
    sched = NoiseSchedule(kind, 1000)
    x_T = torch.randn(32, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(4))
    a_s = make_sampler("ddim", sched, 30, eta=1.0)
    b_s = make_sampler("dpm-sde", sched, 30, solver_order=1)
    a = sample_loop(oracle(sched), a_s, x_T.shape, torch.Generator().manual_seed(5), False, x_T=x_T)
    b = sample_loop(oracle(sched), b_s, x_T.shape, torch.Generator().manual_seed(5), False, x_T=x_T)
    torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-10)
    c = sample_loop(oracle(sched), b_s, x_T.shape, torch.Generator().manual_seed(6), False, x_T=x_T)
    assert not torch.allclose(b, c)  # stochastic


def test_sde_dpm_second_order_beats_ancestral_at_50_steps():
    """With the exact score of N(MU, S^2), 50 ancestral steps shrink the spread by ~7 % (S 0.5 -> 0.466); the
    second-order SDE solver's error is several times smaller (Monte-Carlo error of the std: 0.0008)."""
    sched = NoiseSchedule("linear", 1000)
    n = 200_000
    errs = {}
    for order in (1, 2):
        sampler = make_sampler("dpm-sde", sched, 50, solver_order=order)
        x = sample_loop(oracle(sched), sampler, (n, 1), torch.Generator().manual_seed(7), False, dtype=torch.float64)
        assert abs(x.mean().item() - MU) < 0.005
        errs[order] = abs(x.std().item() - S)
    assert errs[1] > 0.02
    assert errs[2] < 0.25 * errs[1]


def test_sde_dpm_rejects_the_ode():
    with pytest.raises(ValueError, match="stochastic"):
        make_sampler("dpm-sde", NoiseSchedule("linear", 1000), 10, stochastic=False)


def test_cli_lists_every_sampler():
    from gen3d.cli.sample import SAMPLERS as CLI_SAMPLERS
    from gen3d.diffusion import SAMPLERS

    assert set(CLI_SAMPLERS) == set(SAMPLERS) == set(Sampler.registry)


@pytest.mark.parametrize("name", ["ddpm", "ddim", "dpm", "dpm-sde"])
def test_config_round_trip(name, tmp_path):
    sched = NoiseSchedule("cosine", 200, cosine_s=0.01)
    extra = {
        "ddpm": {"variance_type": "fixed_large"},
        "ddim": {"eta": 0.3},
        "dpm": {"solver_order": 1},
        "dpm-sde": {"lower_order_final": False},
    }[name]
    sampler = make_sampler(name, sched, num_inference_steps=17, prediction_type="v_prediction", **extra)
    d = sampler.to_dict()
    again = Sampler.from_dict(json.loads(json.dumps(d)))
    assert type(again) is type(sampler) and again.to_dict() == d
    assert torch.equal(again.timesteps, sampler.timesteps)
    sampler.save_config(tmp_path / "sampler.json")
    loaded = Sampler.load_config(tmp_path / "sampler.json")
    assert loaded.to_dict() == d
    x, out = torch.randn(5, 3), torch.randn(5, 3)
    t = int(sampler.timesteps[3])
    r1 = sampler.step(out, t, x, torch.Generator().manual_seed(0))
    r2 = loaded.step(out, t, x, torch.Generator().manual_seed(0))
    assert torch.equal(r1.prev_sample, r2.prev_sample)


@pytest.mark.parametrize("spacing", ["quadratic", "linspace"])
@pytest.mark.parametrize("n", [2, 10, 20, 50, 333, 999, 1000])
def test_spaced_timesteps(spacing, n):
    ts = spaced_timesteps(1000, n, spacing)
    assert ts[0] == 999 and ts[-1] == 0 and len(ts) == n
    assert (ts[:-1] > ts[1:]).all()


def test_spaced_timesteps_shapes():
    assert torch.equal(spaced_timesteps(10, 10, "quadratic"), torch.arange(9, -1, -1))
    lin = spaced_timesteps(1001, 11, "linspace").tolist()
    assert lin == list(range(1000, -1, -100))
    quad = spaced_timesteps(101, 11, "quadratic").tolist()
    assert quad == [(10 - i) ** 2 for i in range(11)]
    assert spaced_timesteps(1000, 1).tolist() == [999]
    with pytest.raises(ValueError):
        spaced_timesteps(10, 11)
    with pytest.raises(ValueError):
        spaced_timesteps(10, 5, "cubic")


def test_losses_match_closed_form_for_the_oracle():
    """With the exact predictor, E[(eps_hat - eps)^2] = a^2 s^2 / (a^2 s^2 + sigma^2); the v loss is that / a^2."""
    sched = NoiseSchedule("linear", 1000)
    n, t_val = 200000, 300
    g = torch.Generator().manual_seed(0)
    x0 = MU + S * torch.randn(n, 1, dtype=torch.float64, generator=g)
    t = torch.full((n,), t_val)
    abar = sched.alphas_cumprod[t_val].item()
    ref_eps = abar * S**2 / (abar * S**2 + 1 - abar)
    l_eps = EpsilonLoss(sched)(oracle(sched), x0, t=t, generator=g).item()
    l_v = VLoss(sched)(oracle(sched, "v_prediction"), x0, t=t, generator=g).item()
    assert l_eps == pytest.approx(ref_eps, rel=0.02)
    assert l_v == pytest.approx(ref_eps / abar, rel=0.02)


def test_losses_backpropagate():
    sched = NoiseSchedule("linear", 100)
    net = torch.nn.Linear(3, 3)
    loss = EpsilonLoss(sched)(lambda x, t: net(x), torch.randn(8, 3))
    loss.backward()
    assert net.weight.grad is not None and net.weight.grad.abs().sum() > 0
    assert np.isfinite(loss.item())


def test_min_snr_weighting():
    """With one timestep, Min-SNR-gamma scales the loss by min(SNR, gamma) / SNR (eps) or / (SNR + 1) (v)."""
    sched = NoiseSchedule("linear", 1000)
    x0 = torch.randn(64, 3, dtype=torch.float64)
    net = lambda x, t: 0.5 * x  # noqa: E731 - any fixed predictor
    for t_val in (10, 500):
        t = torch.full((64,), t_val)
        noise = torch.randn(64, 3, dtype=torch.float64)
        abar = sched.alphas_cumprod[t_val].item()
        snr = abar / (1 - abar)
        for cls, denom in ((EpsilonLoss, snr), (VLoss, snr + 1)):
            plain = cls(sched)(net, x0, t=t, noise=noise).item()
            weighted = cls(sched, snr_gamma=5.0)(net, x0, t=t, noise=noise).item()
            assert weighted == pytest.approx(plain * min(snr, 5.0) / denom, rel=1e-6)
