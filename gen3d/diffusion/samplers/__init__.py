"""Reverse-process samplers with a diffusers-style ``set_timesteps`` / ``step`` API."""

from __future__ import annotations

from typing import Any

from gen3d.diffusion.samplers.base import Sampler, StepOutput, spaced_timesteps
from gen3d.diffusion.samplers.ddim import DDIMSampler
from gen3d.diffusion.samplers.ddpm import DDPMSampler
from gen3d.diffusion.samplers.dpm_solver import DPMSolverMultistepSampler, SDEDPMSolverMultistepSampler
from gen3d.diffusion.schedules import NoiseSchedule

SAMPLERS = ("ddpm", "ddim", "dpm", "dpm-sde")


def make_sampler(name: str, schedule: NoiseSchedule, num_inference_steps: int | None = None, **kwargs: Any) -> Sampler:
    """Build a sampler by name (``"ddpm"``, ``"ddim"``, ``"dpm"`` or ``"dpm-sde"``) and set its number of steps.

    Args:
        name: sampler name.
        schedule: noise schedule of the trained model.
        num_inference_steps: steps to walk (default: all training timesteps).
        **kwargs: sampler options (``prediction_type``, ``eta``, ``variance_type``, ...).
    """
    if name not in Sampler.registry:
        raise ValueError(f"unknown sampler {name!r}; expected one of {sorted(Sampler.registry)}")
    sampler = Sampler.registry[name](schedule, **kwargs)
    if num_inference_steps is not None:
        sampler.set_timesteps(num_inference_steps)
    return sampler


__all__ = [
    "SAMPLERS",
    "DDIMSampler",
    "DDPMSampler",
    "DPMSolverMultistepSampler",
    "SDEDPMSolverMultistepSampler",
    "Sampler",
    "StepOutput",
    "make_sampler",
    "spaced_timesteps",
]
