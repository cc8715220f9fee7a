"""The sampling loop: start from noise, call the model, step the sampler.

Progress is counted in sampler steps. One :func:`sample_loop` call draws its own bar over its steps; work made of
several calls (batches, LION's two priors) counts them all on one bar inside :func:`step_progress`::

    with step_progress(batches * walks * len(sampler.timesteps), "sampling"):
        for b in batches:
            net.sample(b, sampler)  # each sampler step moves the one bar
"""

from __future__ import annotations

import contextvars
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager

import torch
from torch import Tensor

from gen3d.diffusion.samplers.base import Sampler, randn_like
from gen3d.utils import progress as progress_bar

# the step counter of the innermost step_progress block (None outside one)
_STEP: contextvars.ContextVar[Callable[[], None] | None] = contextvars.ContextVar("gen3d_sampling_step", default=None)


@contextmanager
def step_progress(total: int, description: str = "sampling", disable: bool | None = None) -> Iterator[None]:
    """One progress bar over every sampler step of the :func:`sample_loop` calls inside the block.

    The loops inside draw no bar of their own. Shown on a terminal only, like :func:`gen3d.utils.progress`.

    Args:
        total: the number of sampler steps the block will run (batches x reverse processes x steps).
        description: label left of the bar.
        disable: force the bar off (True) or on (False); by default shown only on a terminal.
    """
    ticks = progress_bar(range(total + 1), description, total=total, disable=disable)
    next(ticks)  # opens the bar at 0
    token = _STEP.set(lambda: next(ticks, None))
    try:
        yield
    finally:
        _STEP.reset(token)
        ticks.close()


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
        progress: show a progress bar over the steps (only on a terminal; inside :func:`step_progress` that
            block's bar counts them instead).
        device: device of the samples.
        dtype: dtype of the samples.
        x_T: optional initial noise (overrides ``generator`` for the start).

    Returns:
        the samples ``x_0``, shaped ``shape``.
    """
    x = x_T if x_T is not None else randn_like(torch.empty(tuple(shape), device=device, dtype=dtype), generator)
    x = x * scheduler.init_noise_sigma
    ts = scheduler.timesteps
    tick = _STEP.get()
    # inside step_progress the block's bar counts the steps; otherwise this call's own bar (when asked for)
    disable = None if progress and tick is None else True
    for t in progress_bar(ts.tolist(), "sampling", total=len(ts), disable=disable):
        t_batch = torch.full((x.shape[0],), t, dtype=torch.long, device=x.device)
        x = scheduler.step(model_fn(x, t_batch), t, x, generator=generator).prev_sample
        if tick is not None:
            tick()
    return x
