"""Exponential moving average of a network's weights (GRAF's ``model_average_beta``)."""

from __future__ import annotations

import torch
from torch import nn


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
    for name, p in target.named_parameters():
        p.lerp_(src[name].detach(), 1.0 - beta)
    src_buf = dict(source.named_buffers())
    for name, b in target.named_buffers():
        b.copy_(src_buf[name])
