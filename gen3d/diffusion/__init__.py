"""Diffusion building blocks shared by every diffusion model: schedules, losses, samplers, the sampling loop.

Example:
    >>> from gen3d.diffusion import NoiseSchedule, EpsilonLoss, make_sampler, sample_loop
    >>> sched = NoiseSchedule("linear", 1000, 1e-4, 2e-2)
    >>> loss = EpsilonLoss(sched)(model, x0)
    >>> sampler = make_sampler("dpm", sched, num_inference_steps=20)
    >>> x = sample_loop(model, sampler, (16, 2048, 3), generator=torch.Generator().manual_seed(0))
"""

from gen3d.diffusion.loop import sample_loop, step_progress
from gen3d.diffusion.losses import DenoisingLoss, EpsilonLoss, VLoss, make_loss
from gen3d.diffusion.samplers import (
    SAMPLERS,
    DDIMSampler,
    DDPMSampler,
    DPMSolverMultistepSampler,
    Sampler,
    SDEDPMSolverMultistepSampler,
    StepOutput,
    make_sampler,
    spaced_timesteps,
)
from gen3d.diffusion.schedules import PREDICTION_TYPES, NoiseSchedule, cosine_alpha_bar

__all__ = [
    "PREDICTION_TYPES",
    "SAMPLERS",
    "DDIMSampler",
    "DDPMSampler",
    "DPMSolverMultistepSampler",
    "DenoisingLoss",
    "EpsilonLoss",
    "NoiseSchedule",
    "SDEDPMSolverMultistepSampler",
    "Sampler",
    "StepOutput",
    "VLoss",
    "cosine_alpha_bar",
    "make_loss",
    "make_sampler",
    "sample_loop",
    "step_progress",
    "spaced_timesteps",
]
