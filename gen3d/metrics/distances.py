"""Nearest-neighbour distances and the Chamfer distance between batches of point clouds.

The Chamfer distance follows PointFlow's evaluation code: the mean *squared* nearest-neighbour distance
from x to y plus the mean squared nearest-neighbour distance from y to x, no square root::

    CD(x, y) = mean_i min_j |x_i - y_j|^2 + mean_j min_i |x_i - y_j|^2

Two implementations give the same numbers: a native C++/OpenMP kernel (``impl="native"``; tiled so that
tiles of y stay in L1, both directions in one sweep) and a chunked ``torch.cdist`` reference
(``impl="torch"``). ``impl="auto"`` takes the native kernel for CPU tensors when it builds, else the
reference (always for CUDA tensors). Gradients flow through both (the native path recomputes the matched
distances in torch from the nearest-neighbour indices).
"""

from __future__ import annotations

import numpy as np
import torch
from jaxtyping import Float, Int
from torch import Tensor

from gen3d.metrics._native import IMPLS, resolve
from gen3d.metrics._validate import as_clouds

__all__ = ["chamfer_distance", "nn_distances", "nn_distances_ref"]

# Chunks of the torch reference hold at most this many pairwise distances (128 MiB in float32).
_REF_CHUNK_ELEMENTS = 1 << 25


def _pair_check(x, y) -> tuple[Tensor, Tensor]:
    x = as_clouds(x, "x")
    y = as_clouds(y, "y")
    if x.shape[0] != y.shape[0]:
        raise ValueError(f"x and y must hold the same number of clouds, got {x.shape[0]} and {y.shape[0]}")
    if x.device != y.device:
        raise ValueError(f"x and y must be on the same device, got {x.device} and {y.device}")
    dtype = torch.promote_types(x.dtype, y.dtype)
    return x.to(dtype), y.to(dtype)


def nn_distances_ref(
    x: Float[Tensor, "B N 3"], y: Float[Tensor, "B M 3"], return_index: bool = False
) -> tuple[Tensor, ...]:
    """PyTorch reference of :func:`nn_distances` (``torch.cdist`` in chunks of x's points).

    Args:
        x: (B, N, 3) clouds.
        y: (B, M, 3) clouds.
        return_index: also return the nearest-neighbour indices.

    Returns:
        dist_xy (B, N) and dist_yx (B, M) squared distances, then idx_xy (B, N) and idx_yx (B, M) int64
        when ``return_index``.
    """
    x, y = _pair_check(x, y)
    batch, n, m = x.shape[0], x.shape[1], y.shape[1]
    if batch == 0:
        empty = (x.new_zeros(0, n), x.new_zeros(0, m))
        return empty + (
            (torch.zeros(0, n, dtype=torch.long), torch.zeros(0, m, dtype=torch.long)) if return_index else ()
        )
    chunk = max(1, _REF_CHUNK_ELEMENTS // max(1, batch * m))
    dist_xy, idx_xy = [], []
    dist_yx = torch.full((batch, m), float("inf"), dtype=x.dtype, device=x.device)  # (B, M)
    idx_yx = torch.zeros((batch, m), dtype=torch.long, device=x.device)  # (B, M)
    for start in range(0, n, chunk):
        d = torch.cdist(x[:, start : start + chunk], y).square()  # (B, n_chunk, M)
        row_min, row_arg = d.min(dim=2)  # (B, n_chunk)
        dist_xy.append(row_min)
        idx_xy.append(row_arg)
        col_min, col_arg = d.min(dim=1)  # (B, M)
        closer = col_min < dist_yx  # strict: earlier chunks win ties, as the lowest index should
        dist_yx = torch.where(closer, col_min, dist_yx)
        idx_yx = torch.where(closer, col_arg + start, idx_yx)
    out = (torch.cat(dist_xy, dim=1), dist_yx)
    return out + ((torch.cat(idx_xy, dim=1), idx_yx) if return_index else ())


def nn_distances(
    x: Float[Tensor, "B N 3"], y: Float[Tensor, "B M 3"], impl: str = "auto", return_index: bool = False
) -> tuple[Tensor, ...]:
    """Squared nearest-neighbour distances from every point of x to y and from every point of y to x.

    Args:
        x: (B, N, 3) clouds (torch tensor or numpy array; float32 or float64 kept, other dtypes -> float32).
        y: (B, M, 3) clouds, same B; M may differ from N.
        impl: ``"auto"``, ``"native"`` (C++/OpenMP, CPU tensors) or ``"torch"`` (reference).
        return_index: also return the indices of the nearest neighbours.

    Returns:
        dist_xy: (B, N) ``min_j |x[b, i] - y[b, j]|^2``.
        dist_yx: (B, M) ``min_i |x[b, i] - y[b, j]|^2``.
        idx_xy, idx_yx: (B, N) and (B, M) int64 indices, only when ``return_index``.

    Raises:
        InputError: wrong shapes, empty clouds, NaN or Inf coordinates.
    """
    if impl not in IMPLS:
        raise ValueError(f"impl must be one of {IMPLS}, got {impl!r}")
    x, y = _pair_check(x, y)
    return _nn(x, y, impl, return_index)


def _nn(x: Tensor, y: Tensor, impl: str, return_index: bool) -> tuple[Tensor, ...]:
    """:func:`nn_distances` on checked inputs (same dtype and device)."""
    module = resolve(impl) if x.device.type == "cpu" or impl == "native" else None
    if module is None or x.shape[0] == 0:
        return nn_distances_ref(x, y, return_index=return_index)
    if x.device.type != "cpu":
        raise ValueError("impl='native' computes on the CPU only; move the clouds to the CPU or use impl='torch'")
    needs_grad = torch.is_grad_enabled() and (x.requires_grad or y.requires_grad)
    with torch.no_grad():
        out = module.nn_distance(x.detach().contiguous(), y.detach().contiguous(), bool(needs_grad or return_index))
    if not needs_grad:
        return tuple(out) if return_index else (out[0], out[1])
    # Differentiable distances of the matched pairs (the matching itself is piecewise constant).
    idx_xy: Int[Tensor, "B N"] = out[2]
    idx_yx: Int[Tensor, "B M"] = out[3]
    y_nn = torch.gather(y, 1, idx_xy.unsqueeze(-1).expand(-1, -1, 3))  # (B, N, 3)
    x_nn = torch.gather(x, 1, idx_yx.unsqueeze(-1).expand(-1, -1, 3))  # (B, M, 3)
    dist_xy = (x - y_nn).square().sum(-1)  # (B, N)
    dist_yx = (y - x_nn).square().sum(-1)  # (B, M)
    return (dist_xy, dist_yx, idx_xy, idx_yx) if return_index else (dist_xy, dist_yx)


def chamfer_rows(x: Tensor, y: Tensor, impl: str = "auto") -> np.ndarray:
    """Chamfer distances of already checked CPU batches as float64 numpy (no autograd; for matrices).

    The means are taken in numpy, in float64, so that a batch costs one native call and no further
    parallel torch operations.
    """
    with torch.no_grad():
        dist_xy, dist_yx = _nn(x, y, impl, False)
    return dist_xy.numpy().mean(axis=1, dtype=np.float64) + dist_yx.numpy().mean(axis=1, dtype=np.float64)


def chamfer_distance(x: Float[Tensor, "B N 3"], y: Float[Tensor, "B M 3"], impl: str = "auto") -> Float[Tensor, " B"]:
    """Chamfer distance per pair of clouds, PointFlow's definition (squared distances, no root).

    ``CD = mean_i min_j |x_i - y_j|^2 + mean_j min_i |x_i - y_j|^2``.

    Args:
        x: (B, N, 3) clouds.
        y: (B, M, 3) clouds; M may differ from N.
        impl: ``"auto"``, ``"native"`` or ``"torch"`` (see :func:`nn_distances`).

    Returns:
        (B,) Chamfer distances in the dtype of the inputs (squared units of the coordinates).

    Example:
        >>> x = torch.rand(4, 2048, 3); y = torch.rand(4, 2048, 3)
        >>> chamfer_distance(x, y).shape
        torch.Size([4])
    """
    dist_xy, dist_yx = nn_distances(x, y, impl=impl)
    return dist_xy.mean(dim=1) + dist_yx.mean(dim=1)
