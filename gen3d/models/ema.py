"""Exponential moving averages of a network's weights: the one place gen3d averages weights.

- :class:`EMA` keeps the averages as buffers of a small module (LION, PVD): it lives inside the LightningModule,
  so it is saved in ``state_dict`` with the weights, restored exactly on resume, loads with
  ``torch.load(weights_only=True)``, and :mod:`gen3d.inference` applies it without any training code.
- :func:`ema_update` averages into a full copy of the network (GRAF's ``generator_ema``, which renders directly).

Both fold weights in with the same step, :func:`lerp_parameters`.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch
from torch import nn


@torch.no_grad()
def lerp_parameters(averages: list[torch.Tensor], weights: list[torch.Tensor], weight: float) -> None:
    """``a <- a + weight * (w - a)`` for every pair: one averaging step (``weight = 1 - decay``)."""
    for a, w in zip(averages, weights, strict=True):
        a.lerp_(w.detach().to(a.dtype), weight)


@torch.no_grad()
def ema_update(target: nn.Module, source: nn.Module, beta: float) -> None:
    """``target <- beta * target + (1 - beta) * source`` for parameters; buffers are copied.

    Args:
        target: the averaged copy (same architecture as ``source``).
        source: the network being trained.
        beta: decay in [0, 1] (GRAF: 0.999; 0 copies ``source``).
    """
    if not 0.0 <= beta <= 1.0:
        raise ValueError(f"beta must be in [0, 1], got {beta}")
    src = dict(source.named_parameters())
    names = [name for name, _ in target.named_parameters()]
    lerp_parameters([p for _, p in target.named_parameters()], [src[name] for name in names], 1.0 - beta)
    src_buf = dict(source.named_buffers())
    for name, b in target.named_buffers():
        b.copy_(src_buf[name])


class EMA(nn.Module):
    """Shadow copy ``s <- decay * s + (1 - decay) * w`` of every floating parameter of ``model``.

    The effective decay ramps up as ``min(decay, (1 + n) / (10 + n))`` over the first updates (n = number
    of updates so far), so early averages are not dominated by the random initialisation.

    Args:
        model: the module whose parameters are averaged (only its parameter names and shapes are used here).
        decay: the target decay (LION: 0.9999).
        warmup: use the ramp above.
    """

    def __init__(self, model: nn.Module, decay: float = 0.999, warmup: bool = True):
        super().__init__()
        self.decay = float(decay)
        self.warmup = warmup
        self._names = [n for n, p in model.named_parameters() if p.dtype.is_floating_point]
        for i, (_, p) in enumerate(self._named(model)):
            self.register_buffer(f"shadow_{i}", p.detach().clone())
        self.register_buffer("num_updates", torch.zeros((), dtype=torch.long))

    def _named(self, model: nn.Module) -> Iterator[tuple[str, torch.Tensor]]:
        params = dict(model.named_parameters())
        for name in self._names:
            yield name, params[name]

    def shadows(self) -> list[torch.Tensor]:
        return [getattr(self, f"shadow_{i}") for i in range(len(self._names))]

    def current_decay(self) -> float:
        n = int(self.num_updates)
        return min(self.decay, (1 + n) / (10 + n)) if self.warmup else self.decay

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        """Fold the current weights of ``model`` into the average."""
        lerp_parameters(self.shadows(), [p for _, p in self._named(model)], 1.0 - self.current_decay())
        self.num_updates += 1

    @torch.no_grad()
    def copy_to(self, model: nn.Module) -> None:
        """Overwrite the parameters of ``model`` with the averages."""
        for s, (_, p) in zip(self.shadows(), self._named(model), strict=True):
            p.copy_(s)

    @torch.no_grad()
    def reset(self, model: nn.Module) -> None:
        """Restart the average from the current weights of ``model``."""
        for s, (_, p) in zip(self.shadows(), self._named(model), strict=True):
            s.copy_(p)
        self.num_updates.zero_()

    @contextlib.contextmanager
    def swapped(self, model: nn.Module) -> Iterator[nn.Module]:
        """Temporarily load the averages into ``model`` (e.g. for validation or sampling)."""
        backup = [p.detach().clone() for _, p in self._named(model)]
        self.copy_to(model)
        try:
            yield model
        finally:
            with torch.no_grad():
                for b, (_, p) in zip(backup, self._named(model), strict=True):
                    p.copy_(b)
