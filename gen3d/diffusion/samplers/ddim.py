"""DDIM sampling (Song, Meng & Ermon 2021): deterministic for ``eta = 0``, DDPM-like for ``eta = 1``."""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import Tensor

from gen3d.diffusion.samplers.base import Sampler, StepOutput, randn_like
from gen3d.diffusion.schedules import NoiseSchedule


class DDIMSampler(Sampler):
    """``x_{t'} = sqrt(abar_t') x0_hat + sqrt(1 - abar_t' - sigma^2) eps_hat + sigma z``.

    ``sigma = eta * sqrt((1 - abar_t') / (1 - abar_t)) * sqrt(1 - abar_t / abar_t')``.

    Args:
        schedule: the noise schedule.
        prediction_type: ``"epsilon"``, ``"v_prediction"`` or ``"sample"``.
        clip_sample: optional clamp of ``x0_hat``.
        timestep_spacing: ``"quadratic"`` (default) or ``"linspace"``.
        eta: stochasticity, 0 (deterministic ODE-like) .. 1 (ancestral).
    """

    name = "ddim"

    def __init__(
        self,
        schedule: NoiseSchedule,
        prediction_type: str = "epsilon",
        clip_sample: float | None = None,
        timestep_spacing: str = "quadratic",
        eta: float = 0.0,
    ):
        self.eta = float(eta)
        super().__init__(schedule, prediction_type, clip_sample, timestep_spacing)

    def extra_config(self) -> dict[str, Any]:
        return {"eta": self.eta}

    def step(
        self, model_output: Tensor, t: int | Tensor, x: Tensor, generator: torch.Generator | None = None
    ) -> StepOutput:
        t = int(t)
        prev = self.prev_timestep(t)
        x0, eps = self.predict(model_output, t, x)
        abar_t, abar_prev = float(self.schedule.alpha_bar(t)), float(self.schedule.alpha_bar(prev))
        sigma = self.eta * math.sqrt((1.0 - abar_prev) / (1.0 - abar_t) * (1.0 - abar_t / abar_prev))
        direction = math.sqrt(max(1.0 - abar_prev - sigma**2, 0.0))
        prev_sample = math.sqrt(abar_prev) * x0 + direction * eps
        if sigma > 0:
            prev_sample = prev_sample + sigma * randn_like(x, generator)
        return StepOutput(prev_sample=prev_sample, pred_original_sample=x0)
