"""Input checks shared by the metrics: shapes, dtypes and finiteness of point clouds and matrices."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from gen3d.errors import InputError


def as_clouds(x: Any, name: str, *, allow_empty_batch: bool = True) -> torch.Tensor:
    """A batch of point clouds as a floating torch tensor, validated.

    Args:
        x: (B, N, 3) numpy array or torch tensor. Integer and half-precision inputs become float32;
            float32 and float64 are kept.
        name: how error messages call the argument.
        allow_empty_batch: accept B == 0.

    Returns:
        (B, N, 3) float32 or float64 tensor (same device as a tensor input).

    Raises:
        InputError: wrong rank or last dimension, clouds without points, NaN or Inf coordinates.
    """
    t = x if isinstance(x, torch.Tensor) else torch.as_tensor(np.asarray(x))
    if t.dim() != 3 or t.shape[-1] != 3:
        raise InputError(f"{name} must have shape (B, N, 3), got {tuple(t.shape)}")
    if t.shape[0] == 0 and not allow_empty_batch:
        raise InputError(f"{name} is an empty set of clouds; expected at least one")
    if t.shape[1] == 0 and t.shape[0] > 0:
        raise InputError(f"{name} holds clouds without points, shape {tuple(t.shape)}")
    if t.dtype not in (torch.float32, torch.float64):
        t = t.to(torch.float32)
    if t.numel() and not bool(torch.isfinite(t).all()):
        raise InputError(f"{name} contains NaN or Inf coordinates")
    return t


def as_matrix(d: Any, name: str) -> np.ndarray:
    """A distance matrix as a float64 numpy array, validated (2-D, no NaN; +inf is allowed)."""
    m = d.detach().cpu().numpy() if isinstance(d, torch.Tensor) else np.asarray(d)
    m = m.astype(np.float64, copy=False)
    if m.ndim != 2:
        raise InputError(f"{name} must be a 2-D distance matrix, got shape {m.shape}")
    if np.isnan(m).any():
        raise InputError(f"{name} contains NaN distances")
    return m
