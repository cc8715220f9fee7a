"""Ancestral DDPM sampling (Ho et al. 2020), on the full or a strided set of timesteps."""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import Tensor

from gen3d.diffusion.samplers.base import Sampler, randn_like
from gen3d.diffusion.schedules import NoiseSchedule


class DDPMSampler(Sampler):
    """Sample ``x_{t'} ~ q(x_{t'} | x_t, x0_hat)``, the Gaussian posterior with the predicted ``x_0``.

    For a strided walk ``t -> t'`` the step uses ``beta = 1 - alpha_bar_t / alpha_bar_t'``.

    Args:
        schedule: the noise schedule.
        *args: the other arguments of :class:`Sampler` (``prediction_type``, ``clip_sample``, ``timestep_spacing``).
        variance_type: ``"fixed_small"`` (posterior variance, beta tilde) or ``"fixed_large"`` (beta; LION's
            ``fixedlarge``).
        **kwargs: the arguments of :class:`Sampler` by name.
    """

    name = "ddpm"

    def __init__(self, schedule: NoiseSchedule, *args: Any, variance_type: str = "fixed_small", **kwargs: Any):
        if variance_type not in ("fixed_small", "fixed_large"):
            raise ValueError(f"unknown variance_type {variance_type!r}; expected 'fixed_small' or 'fixed_large'")
        self.variance_type = variance_type
        super().__init__(schedule, *args, **kwargs)

    def extra_config(self) -> dict[str, Any]:
        return {"variance_type": self.variance_type}

    def update(
        self, x: Tensor, t: int, prev: int, x0: Tensor, eps: Tensor, generator: torch.Generator | None
    ) -> Tensor:
        abar_t, abar_prev = float(self.schedule.alpha_bar(t)), float(self.schedule.alpha_bar(prev))
        beta = 1.0 - abar_t / abar_prev
        # posterior mean coefficients of q(x_prev | x_t, x_0)
        c0 = math.sqrt(abar_prev) * beta / (1.0 - abar_t)
        ct = math.sqrt(1.0 - beta) * (1.0 - abar_prev) / (1.0 - abar_t)
        mean = c0 * x0 + ct * x
        if prev < 0:
            return mean
        var = beta if self.variance_type == "fixed_large" else (1.0 - abar_prev) / (1.0 - abar_t) * beta
        return mean + math.sqrt(var) * randn_like(x, generator)
