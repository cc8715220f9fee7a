"""The sampling loop: start from noise, call the model, step the sampler."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from torch import Tensor

from gen3d.diffusion.samplers.base import Sampler, randn_like
from gen3d.utils import progress as progress_bar


@torch.no_grad()
def sample_loop(
    model_fn: Callable[[Tensor, Tensor], Tensor],
    scheduler: Sampler,
    shape: Sequence[int],
    generator: torch.Generator | None = None,
    progress: bool = True,
    device: torch.device | str = "cpu",
    dtype: torch.dtype = torch.float32,
    x_T: Tensor | None = None,
) -> Tensor:
    """Run the reverse process from ``N(0, I)`` to data with the sampler's current timesteps.

    Args:
        model_fn: ``model_fn(x_t, t) -> output`` with ``x_t`` ``(B, ...)`` and ``t`` a long ``(B,)``.
        scheduler: a sampler (call ``set_timesteps`` on it first to choose the number of steps).
        shape: ``(B, ...)`` shape of the samples.
        generator: RNG for the initial noise and stochastic steps (same seed, same samples).
        progress: show a progress bar (only on a terminal).
        device: device of the samples.
        dtype: dtype of the samples.
        x_T: optional initial noise (overrides ``generator`` for the start).

    Returns:
        the samples ``x_0``, shaped ``shape``.
    """
    x = x_T if x_T is not None else randn_like(torch.empty(tuple(shape), device=device, dtype=dtype), generator)
    x = x * scheduler.init_noise_sigma
    ts = scheduler.timesteps
    for t in progress_bar(ts.tolist(), "sampling", total=len(ts), disable=None if progress else True):
        t_batch = torch.full((x.shape[0],), t, dtype=torch.long, device=x.device)
        x = scheduler.step(model_fn(x, t_batch), t, x, generator=generator).prev_sample
    return x
