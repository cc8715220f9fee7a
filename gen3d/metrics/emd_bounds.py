"""Cheap lower bounds of the Earth Mover's Distance between equal-size clouds, for pruning nearest-neighbour searches.

Projecting both clouds onto a unit direction is 1-Lipschitz, so it cannot increase the transport cost: the EMD of
the clouds is at least the EMD of their projections, which in 1D is the mean absolute difference of the two
sorted projections (the monotone matching is optimal on a line). Splitting the sorted ranks into groups and
comparing group sums only lowers that value further (triangle inequality), so each cloud reduces to a small
feature per direction computed once:

``f[d, g] = (sum over the ranks k of group g of sort(cloud @ theta_d)[k]) / N``

``EMD(x, y) >= max over d of sum over g |f_x[d, g] - f_y[d, g]|``

With 64 directions and 64 groups the bound is about 0.69 of the EMD on 2048-point procedural airplanes (0.66 with
32 directions; more directions add little), at a cost of one 4096-element comparison per pair. It is exact
arithmetic on valid inequalities, computed in float64: a pair whose bound exceeds a known distance cannot be
nearer, whatever EMD solver (exact, or the auction whose cost is never below exact) computes the distance.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch

__all__ = ["DIRECTIONS", "GROUPS", "lower_bounds", "sliced_features", "unit_directions"]

DIRECTIONS = 64
GROUPS = 64
_SAFETY = 1.0 - 1e-9  # float64 rounding of the features must never lift the bound above a true distance


def unit_directions(count: int = DIRECTIONS) -> np.ndarray:
    """(count, 3) float64 unit vectors spread evenly over a hemisphere (Fibonacci lattice; a direction and its
    opposite give the same bound)."""
    if count < 1:
        raise ValueError(f"count must be at least 1, got {count}")
    k = np.arange(count) + 0.5
    z = 1.0 - k / count  # uniform in (0, 1]: equal areas of the upper hemisphere
    radius = np.sqrt(1.0 - z * z)
    angle = math.pi * (1.0 + math.sqrt(5.0)) * k
    return np.stack([radius * np.cos(angle), radius * np.sin(angle), z], axis=1)


def sliced_features(clouds: Any, directions: int = DIRECTIONS, groups: int = GROUPS) -> torch.Tensor:
    """Per-cloud features of :func:`lower_bounds`.

    Args:
        clouds: (B, N, 3) clouds (numpy array or torch tensor), all with the same N.
        directions: projection directions (:func:`unit_directions`).
        groups: rank groups per direction (at most N; groups differ in size by at most one rank).

    Returns:
        (B, directions, groups) float64 group sums of the sorted projections, divided by N.
    """
    x = torch.as_tensor(np.asarray(clouds) if not isinstance(clouds, torch.Tensor) else clouds)
    n = x.shape[1]
    if n < 1:
        raise ValueError("clouds must not be empty")
    groups = min(groups, n)
    theta = torch.from_numpy(unit_directions(directions))  # (D, 3)
    bounds = torch.from_numpy(np.linspace(0, n, groups + 1).round().astype(np.int64))  # (G + 1,) rank bounds
    out = torch.empty(x.shape[0], directions, groups, dtype=torch.float64)
    for b in range(x.shape[0]):  # one cloud at a time: (N, D) float64
        proj = torch.sort(x[b].to(torch.float64) @ theta.T, dim=0).values  # (N, D)
        cums = torch.cat([torch.zeros(1, directions, dtype=torch.float64), proj.cumsum(0)])  # (N + 1, D)
        out[b] = ((cums[bounds[1:]] - cums[bounds[:-1]]) / n).T  # (D, G)
    return out


def lower_bounds(fa: torch.Tensor, fb: torch.Tensor, chunk_bytes: int = 1 << 26) -> np.ndarray:
    """Lower bounds of the EMD between every cloud of one set and every cloud of another.

    Args:
        fa: (A, D, G) :func:`sliced_features` of the first set.
        fb: (B, D, G) features of the second set (same D and G).
        chunk_bytes: memory bound of one block of the computation.

    Returns:
        (A, B) float64 numpy, ``[i, j] <= EMD(a_i, b_j)``.
    """
    if fa.shape[1:] != fb.shape[1:]:
        raise ValueError(f"features of different shapes: {tuple(fa.shape[1:])} and {tuple(fb.shape[1:])}")
    out = np.empty((fa.shape[0], fb.shape[0]), dtype=np.float64)
    per_row = max(1, fb.shape[0] * fb.shape[1] * fb.shape[2] * 8)
    step = max(1, chunk_bytes // per_row)
    for start in range(0, fa.shape[0], step):
        block = fa[start : start + step, None] - fb[None]  # (c, B, D, G)
        out[start : start + step] = block.abs_().sum(-1).amax(-1).numpy()
    return out * _SAFETY
