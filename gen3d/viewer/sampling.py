"""LION in the viewer, sampled as ``gen3d sample`` samples: its samplers, its default steps, its code temperature.

For a seed, sampler, step count and temperature, :meth:`CliLionSource.sample` draws the shapes
``gen3d sample --n N`` writes (N up to its batch size of 32; the CPU, EMA weights, the model's point count).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from gen3d.diffusion import SAMPLERS
from gen3d.errors import InputError
from gen3d.inference.lion import (
    DEFAULT_CODE_TEMPERATURE,
    DEFAULT_SAMPLER,
    LionSampleSource,
    default_sampling_steps,
    slerp,
)


class CliLionSource(LionSampleSource):
    """A LION (or PVD) checkpoint as a :class:`~gen3d.inference.sources.SampleSource` with ``gen3d sample``'s options.

    Args:
        loaded: :class:`gen3d.inference.lion.LoadedLion`.
        num_points: points per generated cloud (default: the model's).

    Attributes:
        samplers: ``gen3d sample --sampler``'s choices, its default (ddpm) first.
        default_steps: the default steps of the default sampler.
        num_train_timesteps: the model's diffusion timesteps (the most steps a sampler can take).
        supports_code_temperature: LION takes a code temperature; the PVD baseline has no shape code.
    """

    samplers = (DEFAULT_SAMPLER, *(s for s in SAMPLERS if s != DEFAULT_SAMPLER))

    def __init__(self, loaded: Any, num_points: int | None = None):
        super().__init__(loaded, num_points)
        self.num_train_timesteps = int(self.net.schedule.num_train_timesteps)
        self.default_steps = self.steps_for(self.samplers[0])
        self.supports_code_temperature = loaded.stage != "pvd"

    def steps_for(self, sampler: str) -> int:
        """``gen3d sample``'s default steps for ``sampler`` on this model."""
        return default_sampling_steps(sampler, self.num_train_timesteps)

    def _check_all(self, sampler: str, steps: int, code_temperature: float) -> None:
        self._check(sampler, steps)
        if steps > self.num_train_timesteps:
            raise InputError(f"steps must be at most the model's {self.num_train_timesteps} timesteps, got {steps}")
        if not code_temperature > 0:
            raise InputError(f"the code temperature must be positive, got {code_temperature}")
        if code_temperature != DEFAULT_CODE_TEMPERATURE and not self.supports_code_temperature:
            raise InputError("the code temperature applies to LION: this model has no shape code")

    def sample(
        self, seed: int, n: int, sampler: str, steps: int, code_temperature: float = DEFAULT_CODE_TEMPERATURE
    ) -> np.ndarray:
        """``n`` clouds (N, P, 3) in the data's frame, from ``torch.Generator().manual_seed(seed)``."""
        self._check_all(sampler, int(steps), float(code_temperature))
        gen = torch.Generator().manual_seed(int(seed))
        smp = self.net.make_sampler(sampler, int(steps))
        with torch.no_grad():
            x = self.net.sample(
                int(n), smp, generator=gen, num_points=self.num_points, code_temperature=float(code_temperature)
            )
        return self.loaded.denormalize(x).cpu().numpy().astype(np.float32)

    def interpolate(
        self,
        seed_a: int,
        seed_b: int,
        alpha: float,
        sampler: str | None = None,
        steps: int | None = None,
        code_temperature: float = DEFAULT_CODE_TEMPERATURE,
    ) -> np.ndarray:
        """One cloud (P, 3) from the spherical interpolation of the starting noise of ``seed_a`` and ``seed_b``."""
        sampler = sampler or self.samplers[0]
        steps = int(steps or self.steps_for(sampler))
        self._check_all(sampler, steps, float(code_temperature))
        (za, ha), (zb, hb) = self._noise(seed_a), self._noise(seed_b)
        x_T = (slerp(za, zb, alpha), slerp(ha, hb, alpha))
        gen = torch.Generator().manual_seed(int(seed_a))  # noise of the stochastic steps
        smp = self.net.make_sampler(sampler, steps)
        with torch.no_grad():
            points = self.net.sample(
                1, smp, generator=gen, num_points=self.num_points, x_T=x_T, code_temperature=float(code_temperature)
            )
        return self.loaded.denormalize(points)[0].cpu().numpy().astype(np.float32)
