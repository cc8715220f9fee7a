"""Clouds prepared for density evaluation (:mod:`gen3d.pipelines.flow_eval`, :mod:`gen3d.pipelines.lion_eval`).

Both score a seeded subset of each cloud, normalised with the checkpoint's statistics, and refuse clouds far outside
the scale of the model's training data.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from gen3d.errors import InputError

# Largest coordinate accepted, in standard deviations of the model's training data (after its normalisation). Real
# data lies within a few; far beyond, the network's float32 arithmetic overflows.
MAX_NORMALISED = 1e6


def check_reach(loaded: Any, clouds: np.ndarray, source: str | Path | None) -> None:
    """Refuse clouds whose coordinates reach more than :data:`MAX_NORMALISED` standard deviations of the data.

    Args:
        loaded: a loaded checkpoint with ``mean`` and ``std`` tensors (:mod:`gen3d.inference`).
        clouds: ``(N, P, 3)`` clouds in the data's original frame.
        source: the file the clouds came from, named in errors.

    Raises:
        InputError: a coordinate lies farther out (or is not finite after normalisation).
    """
    mean, std = loaded.mean.double().numpy(), loaded.std.double().numpy()
    reach = float(np.abs((clouds.astype(np.float64) - mean) / std).max())
    if not reach <= MAX_NORMALISED:
        raise InputError(
            f"coordinates reach {reach:.3g} standard deviations of the model's training data (at most "
            f"{MAX_NORMALISED:g} expected); give the clouds in the data's original frame",
            source,
        )


def points_per_cloud(num_points: int | None, model_points: int, clouds: np.ndarray, source: str | Path | None) -> int:
    """Points scored per cloud: ``num_points`` (default: the model's), at most the clouds' own count.

    Raises:
        InputError: the clouds have no points.
    """
    k = min(num_points or model_points, clouds.shape[1])
    if k < 1:
        raise InputError("clouds have no points", source)
    return k


def seeded_subsets(clouds: np.ndarray, k: int, seed: int) -> torch.Tensor:
    """A seeded subset of ``k`` points of each cloud (without replacement, cloud by cloud), ``(N, k, 3)`` float32."""
    g = torch.Generator().manual_seed(seed)
    x = torch.from_numpy(np.ascontiguousarray(clouds, dtype=np.float32))
    idx = torch.stack([torch.randperm(x.shape[1], generator=g)[:k] for _ in range(len(x))])
    return torch.gather(x, 1, idx[..., None].expand(-1, -1, 3))
