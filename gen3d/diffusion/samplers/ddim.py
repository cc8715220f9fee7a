"""DDIM sampling (Song, Meng & Ermon 2021): deterministic for ``eta = 0``, DDPM-like for ``eta = 1``."""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import Tensor

from gen3d.diffusion.samplers.base import Sampler, randn_like
from gen3d.diffusion.schedules import NoiseSchedule


class DDIMSampler(Sampler):
    """``x_{t'} = sqrt(abar_t') x0_hat + sqrt(1 - abar_t' - sigma^2) eps_hat + sigma z``.

    ``sigma = eta * sqrt((1 - abar_t') / (1 - abar_t)) * sqrt(1 - abar_t / abar_t')``.

    Args:
        schedule: the noise schedule.
        *args: the other arguments of :class:`Sampler` (``prediction_type``, ``clip_sample``, ``timestep_spacing``).
        eta: stochasticity, 0 (deterministic ODE-like) .. 1 (ancestral).
        **kwargs: the arguments of :class:`Sampler` by name.
    """

    name = "ddim"

    def __init__(self, schedule: NoiseSchedule, *args: Any, eta: float = 0.0, **kwargs: Any):
        self.eta = float(eta)
        super().__init__(schedule, *args, **kwargs)

    def extra_config(self) -> dict[str, Any]:
        return {"eta": self.eta}

    def update(
        self, x: Tensor, t: int, prev: int, x0: Tensor, eps: Tensor, generator: torch.Generator | None
    ) -> Tensor:
        abar_t, abar_prev = float(self.schedule.alpha_bar(t)), float(self.schedule.alpha_bar(prev))
        sigma = self.eta * math.sqrt((1.0 - abar_prev) / (1.0 - abar_t) * (1.0 - abar_t / abar_prev))
        direction = math.sqrt(max(1.0 - abar_prev - sigma**2, 0.0))
        prev_sample = math.sqrt(abar_prev) * x0 + direction * eps
        if sigma > 0:
            prev_sample = prev_sample + sigma * randn_like(x, generator)
        return prev_sample
