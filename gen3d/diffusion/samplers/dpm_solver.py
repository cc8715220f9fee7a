"""DPM-Solver++(2M) (Lu et al. 2022): a second-order multistep solver in data space, of the diffusion ODE
(deterministic) or of the reverse SDE (stochastic, "SDE-DPM-Solver++(2M)").

With ``lambda_t = log(alpha_t / sigma_t)``, ``h = lambda_t' - lambda_t`` and the data predictions ``D_0`` (now)
and ``D_-1`` (previous step, ``h_-1`` earlier):

    ODE, first order:  x_t' = (sigma_t' / sigma_t) x_t - alpha_t' (exp(-h) - 1) D_0            (= DDIM, eta 0)
    SDE, first order:  x_t' = (sigma_t' / sigma_t) exp(-h) x_t + alpha_t' (1 - exp(-2h)) D_0
                              + sigma_t' sqrt(1 - exp(-2h)) z                                  (= DDPM, DDIM eta 1)
    second order: the same with D_0 replaced by D_0 + (D_0 - D_-1) / (2 r),  r = h_-1 / h

The first step has no history and the last step (to ``sigma = 0``) is first order; for walks shorter than
15 steps the second-to-last step is first order too (as diffusers' ``lower_order_final``), which stabilises
very short walks.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import Tensor

from gen3d.diffusion.samplers.base import Sampler, randn_like
from gen3d.diffusion.schedules import NoiseSchedule


class DPMSolverMultistepSampler(Sampler):
    """DPM-Solver++ multistep of order 1 or 2 (data prediction); deterministic unless ``stochastic``.

    Args:
        schedule: the noise schedule.
        *args: the other arguments of :class:`Sampler` (``prediction_type``, ``clip_sample``, ``timestep_spacing``).
        solver_order: 1 (equivalent to DDIM with eta 0) or 2.
        lower_order_final: use first order on the last steps of short walks (< 15 steps).
        stochastic: solve the reverse SDE (fresh noise every step, as ancestral sampling) instead of the ODE.
        **kwargs: the arguments of :class:`Sampler` by name.
    """

    name = "dpm"

    def __init__(
        self,
        schedule: NoiseSchedule,
        *args: Any,
        solver_order: int = 2,
        lower_order_final: bool = True,
        stochastic: bool = False,
        **kwargs: Any,
    ):
        if solver_order not in (1, 2):
            raise ValueError(f"solver_order must be 1 or 2, got {solver_order}")
        self.solver_order = solver_order
        self.lower_order_final = lower_order_final
        self.stochastic = bool(stochastic)
        self._last_x0: Tensor | None = None
        self._last_lambda: float | None = None
        super().__init__(schedule, *args, **kwargs)

    def extra_config(self) -> dict[str, Any]:
        return {
            "solver_order": self.solver_order,
            "lower_order_final": self.lower_order_final,
            "stochastic": self.stochastic,
        }

    def set_timesteps(self, num_inference_steps: int) -> None:
        super().set_timesteps(num_inference_steps)
        self._last_x0 = None
        self._last_lambda = None

    def _lambda(self, t: int) -> float:
        alpha, sigma = (float(v) for v in self.schedule.alpha_sigma(t))
        return math.log(alpha) - math.log(sigma) if sigma > 0 else math.inf

    def update(
        self, x: Tensor, t: int, prev: int, x0: Tensor, eps: Tensor, generator: torch.Generator | None
    ) -> Tensor:
        index = self._index[t]
        n = self.num_inference_steps
        if index == 0:
            self._last_x0, self._last_lambda = None, None

        lam_t = self._lambda(t)
        if prev < 0:  # last step lands on sigma = 0: x_0 = D_0
            prev_sample = x0
        else:
            alpha_p, sigma_p = (float(v) for v in self.schedule.alpha_sigma(prev))
            sigma_t = float(self.schedule.alpha_sigma(t)[1])
            lam_p = self._lambda(prev)
            h = lam_p - lam_t
            near_end = self.lower_order_final and n < 15 and index >= n - 2
            second = self.solver_order == 2 and self._last_x0 is not None and not near_end
            d = x0
            if second:
                r = (lam_t - self._last_lambda) / h
                d = x0 + (x0 - self._last_x0) / (2.0 * r)
            if self.stochastic:
                keep = math.exp(-h)  # exp(-h) = (sigma_t' alpha_t) / (sigma_t alpha_t') < 1
                fresh = -math.expm1(-2.0 * h)  # 1 - exp(-2h), accurate for small h
                prev_sample = (sigma_p / sigma_t) * keep * x + alpha_p * fresh * d
                prev_sample = prev_sample + sigma_p * math.sqrt(fresh) * randn_like(x, generator)
            else:
                prev_sample = (sigma_p / sigma_t) * x - alpha_p * math.expm1(-h) * d
        self._last_x0, self._last_lambda = x0, lam_t
        return prev_sample


class SDEDPMSolverMultistepSampler(DPMSolverMultistepSampler):
    """SDE-DPM-Solver++(2M): :class:`DPMSolverMultistepSampler` on the reverse SDE (``stochastic=True``).

    Fresh noise at every step corrects a prior's errors the way ancestral sampling does, while the second-order
    update keeps walks of 25-100 steps close to the 1000-step chain. Its first order equals DDPM ancestral
    sampling (DDIM with eta 1) on the same timesteps.
    """

    name = "dpm-sde"

    def __init__(self, schedule: NoiseSchedule, *args: Any, stochastic: bool = True, **kwargs: Any):
        """The arguments of :class:`DPMSolverMultistepSampler`; ``stochastic`` is accepted (configs carry it)
        but must stay True."""
        if not stochastic:
            raise ValueError("dpm-sde is the stochastic solver; use the 'dpm' sampler for the ODE")
        super().__init__(schedule, *args, stochastic=True, **kwargs)
