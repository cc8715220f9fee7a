"""Ray marching through B occupancy grids at once (one grid and one box per scene), native and reference.

Step grid (shared by the native kernels and :func:`raymarch_ref`, which produce identical sample sets):
for a ray of scene ``s`` let ``[t_enter, t_exit]`` be its intersection with ``aabbs[s]`` (slab test, see
:func:`renderers.samplers.ray_aabb_intersect`), ``t_min = max(t_enter, near)`` and
``t_max = min(t_exit, far)``. The candidate intervals are ``[t_k, min(t_k + step, t_max)]`` with
``t_k = t_min + k * step`` for every ``k >= 0`` with ``t_k < t_max``; an interval is kept when the grid cell
containing its midpoint is occupied. At most ``max_samples`` intervals are kept per ray (the first ones).
Rays with ``t_min >= t_max`` (they miss the box, or lie outside [near, far]) or an unbounded range
(a zero direction) produce nothing.

Cell of a point ``p``: ``floor((p - lo) * (res / (hi - lo)))`` per axis, clamped to ``[0, res - 1]``; cell
``(i, j, k)`` of a ``(X, Y, Z)`` grid has linear index ``l = (i * Y + j) * Z + k`` and is bit ``l % 8`` of
byte ``l // 8`` of the scene's packed bitfield (see :func:`pack_bits`).

The native kernels skip runs of intervals inside empty cells and empty blocks of 8^3 cells (a DDA guess of
the exit, confirmed exactly with the same arithmetic), march rays in parallel and write their samples in two
passes (count, then fill at prefix-sum offsets), so the output is deterministic and sorted by ray.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from jaxtyping import Bool, Float, Int, UInt8
from torch import Tensor

from renderers.ops._backend import native_module
from renderers.samplers import ray_aabb_intersect

__all__ = ["raymarch", "raymarch_ref", "pack_bits", "unpack_bits"]

# Candidate intervals evaluated at once by the reference (rays x steps).
_REF_BUDGET = 1 << 22


def pack_bits(grid: Bool[Tensor, "B X Y Z"]) -> UInt8[Tensor, "B nbytes"]:
    """Pack boolean occupancy grids into bitfields (8 cells per byte, least significant bit first).

    Args:
        grid: occupancy, ``(B, X, Y, Z)`` (bool; other dtypes count as occupied where non-zero).

    Returns:
        ``(B, ceil(X * Y * Z / 8))`` uint8.
    """
    b = grid.shape[0]
    flat = grid.reshape(b, -1)
    flat = (flat if flat.dtype == torch.bool else flat != 0).view(torch.uint8)  # (B, L) of 0 / 1
    if flat.device.type == "cpu":  # no temporaries larger than the output
        return torch.from_numpy(np.packbits(flat.numpy(), axis=1, bitorder="little"))
    return _pack_words(flat)


def _pack_words(flat: UInt8[Tensor, "B L"]) -> UInt8[Tensor, "B nbytes"]:
    """:func:`pack_bits` of (B, L) 0/1 bytes by integer arithmetic, for any device (little-endian memory)."""
    b = flat.shape[0]
    pad = (-flat.shape[1]) % 8
    if pad:
        flat = torch.cat([flat, flat.new_zeros(b, pad)], dim=1)
    # Eight 0/1 bytes read as one little-endian word w = sum_i c_i 2^(8 i). Multiplying by sum_i 2^(56 - 7 i)
    # moves c_i to bit 56 + i; every other product lands on a distinct lower bit, so nothing carries into the
    # top byte, which is the packed byte (bit i = cell i).
    words = flat.contiguous().view(torch.int64) * 0x0102040810204080  # (B, nbytes)
    return words.bitwise_right_shift_(56).bitwise_and_(0xFF).to(torch.uint8)


def unpack_bits(bits: UInt8[Tensor, "B nbytes"], resolution: tuple[int, int, int]) -> Bool[Tensor, "B X Y Z"]:
    """Inverse of :func:`pack_bits`.

    Args:
        bits: packed bitfields, ``(B, nbytes)`` uint8.
        resolution: grid resolution ``(X, Y, Z)``.

    Returns:
        occupancy, ``(B, X, Y, Z)`` bool.
    """
    b = bits.shape[0]
    n_cells = math.prod(resolution)
    shifts = torch.arange(8, device=bits.device, dtype=torch.uint8)
    flat = ((bits[..., None] >> shifts) & 1).reshape(b, -1)[:, :n_cells]  # (B, L)
    return flat.bool().reshape(b, *resolution)


def _prepare(
    origins: Tensor,
    dirs: Tensor,
    aabbs: Tensor,
    occupancy: Tensor,
    ray_scene: Tensor | None,
    near: Tensor | float,
    far: Tensor | float,
    step: float,
    max_samples: int | None,
    resolution: tuple[int, int, int] | None,
) -> tuple[Tensor, Tensor, Tensor, Tensor, Tensor, Tensor, Tensor, tuple[int, int, int], int]:
    """Validate and normalise the arguments of :func:`raymarch` (see there)."""
    if origins.dim() != 2 or origins.shape[-1] != 3 or dirs.shape != origins.shape:
        raise ValueError(f"origins and dirs must be (R, 3), got {tuple(origins.shape)} and {tuple(dirs.shape)}")
    if not origins.is_floating_point() or dirs.dtype != origins.dtype:
        raise ValueError("origins and dirs must share a floating dtype")
    if not (bool(torch.isfinite(origins).all()) and bool(torch.isfinite(dirs).all())):
        raise ValueError("origins and dirs must be finite")
    if not (step > 0 and math.isfinite(step)):
        raise ValueError(f"step must be positive and finite, got {step}")
    dtype, device = origins.dtype, origins.device
    n_rays = origins.shape[0]
    aabbs = aabbs.to(device=device, dtype=dtype)
    if aabbs.dim() == 1:
        aabbs = aabbs[None]
    if occupancy.dtype == torch.uint8 and occupancy.dim() == 2:
        if resolution is None:
            raise ValueError("a packed uint8 bitfield (B, nbytes) needs resolution=(X, Y, Z)")
        bits = occupancy
    else:
        if occupancy.dim() == 3:
            occupancy = occupancy[None]
        if occupancy.dim() != 4:
            raise ValueError(f"occupancy must be (B, X, Y, Z) or a packed (B, nbytes) bitfield, got {occupancy.shape}")
        if resolution is not None and tuple(resolution) != tuple(occupancy.shape[1:]):
            raise ValueError(f"resolution {resolution} does not match the grid {tuple(occupancy.shape[1:])}")
        resolution = tuple(occupancy.shape[1:])
        bits = pack_bits(occupancy)
    resolution = tuple(int(r) for r in resolution)
    if len(resolution) != 3 or min(resolution) < 1:
        raise ValueError(f"resolution must be three positive ints, got {resolution}")
    if bits.shape[1] * 8 < math.prod(resolution):
        raise ValueError(f"bitfield of {bits.shape[1]} bytes is too small for a {resolution} grid")
    if aabbs.shape != (bits.shape[0], 6):
        raise ValueError(f"aabbs must be (B, 6) with B={bits.shape[0]} grids, got {tuple(aabbs.shape)}")
    if bool((aabbs[:, 3:] <= aabbs[:, :3]).any()):
        raise ValueError("every aabb must have max > min on all axes")
    if ray_scene is None:
        ray_scene = torch.zeros(n_rays, dtype=torch.long, device=device)
    ray_scene = ray_scene.to(device=device, dtype=torch.long).reshape(-1)
    if ray_scene.shape[0] != n_rays:
        raise ValueError(f"ray_scene must be (R,) with R={n_rays}, got {tuple(ray_scene.shape)}")
    if n_rays > 0 and (int(ray_scene.min()) < 0 or int(ray_scene.max()) >= bits.shape[0]):
        raise ValueError(f"ray_scene must index the {bits.shape[0]} scenes")
    near_t = torch.as_tensor(near, dtype=dtype, device=device).expand(n_rays).contiguous()
    far_t = torch.as_tensor(far, dtype=dtype, device=device).expand(n_rays).contiguous()
    if not bool(torch.isfinite(near_t).all()):
        raise ValueError("near must be finite")
    cap = -1 if max_samples is None else int(max_samples)
    if max_samples is not None and cap < 1:
        raise ValueError(f"max_samples must be positive or None, got {max_samples}")
    return origins, dirs, aabbs, bits.to(device).contiguous(), ray_scene, near_t, far_t, resolution, cap


def _march_ref(
    origins: Tensor,
    dirs: Tensor,
    aabbs: Tensor,
    bits: Tensor,
    ray_scene: Tensor,
    near: Tensor,
    far: Tensor,
    resolution: tuple[int, int, int],
    step: float,
    cap: int,
) -> tuple[Tensor, Tensor, Tensor]:
    dtype, device = origins.dtype, origins.device
    occupied = unpack_bits(bits, resolution).reshape(bits.shape[0], -1)  # (B, L)
    boxes = aabbs[ray_scene]  # (R, 6)
    t_enter, t_exit, _ = ray_aabb_intersect(origins, dirs, boxes)
    t_min = torch.maximum(t_enter, near)  # (R,)
    t_max = torch.minimum(t_exit, far)
    live = (t_min < t_max) & torch.isfinite(t_max)
    rays = live.nonzero()[:, 0]  # (R',) rays with a non-empty range, in order
    empty = (torch.zeros(0, dtype=torch.long, device=device), origins.new_zeros(0), origins.new_zeros(0))
    if rays.numel() == 0:
        return empty
    # Number of candidate intervals per ray: every k with t_min + k * step < t_max is below this bound.
    n_steps = (torch.ceil((t_max[rays].double() - t_min[rays].double()) / step) + 2).long().tolist()  # (R',)
    step_t = torch.tensor(step, dtype=dtype, device=device)
    res_f = torch.tensor(resolution, dtype=dtype, device=device)  # (3,)
    res_i = torch.tensor(resolution, dtype=torch.long, device=device)
    out_rays, out_starts, out_ends = [], [], []
    begin = 0
    while begin < rays.numel():
        # Grow the chunk while (rays x longest range) stays within budget.
        k_max = n_steps[begin]
        end = begin + 1
        while end < rays.numel():
            k_next = max(k_max, n_steps[end])
            if (end + 1 - begin) * k_next > _REF_BUDGET:
                break
            k_max, end = k_next, end + 1
        r = rays[begin:end]  # (C,)
        k = torch.arange(k_max, dtype=dtype, device=device)  # (K,)
        t0 = t_min[r, None] + (k * step_t)[None, :]  # (C, K)
        valid = t0 < t_max[r, None]
        t1 = torch.minimum(t0 + step_t, t_max[r, None])
        mid = (t0 + t1) * 0.5
        lo = boxes[r, None, :3]  # (C, 1, 3)
        scale = res_f / (boxes[r, None, 3:] - lo)  # cells per unit length
        p = origins[r, None, :] + mid[..., None] * dirs[r, None, :]  # (C, K, 3)
        cell = torch.floor((p - lo) * scale).clamp_min(0)
        cell = torch.minimum(cell, res_f - 1).long()  # (C, K, 3)
        linear = (cell[..., 0] * res_i[1] + cell[..., 1]) * res_i[2] + cell[..., 2]  # (C, K)
        keep = valid & occupied[ray_scene[r, None], linear]
        if cap > 0:
            keep &= torch.cumsum(keep, dim=1) <= cap
        idx = keep.nonzero()  # (M, 2), sorted by ray then k
        out_rays.append(r[idx[:, 0]])
        out_starts.append(t0[idx[:, 0], idx[:, 1]])
        out_ends.append(t1[idx[:, 0], idx[:, 1]])
        begin = end
    return torch.cat(out_rays), torch.cat(out_starts), torch.cat(out_ends)


def raymarch_ref(
    origins: Float[Tensor, "R 3"],
    dirs: Float[Tensor, "R 3"],
    aabbs: Float[Tensor, "B 6"] | Float[Tensor, "6"],
    occupancy: Bool[Tensor, "B X Y Z"] | UInt8[Tensor, "B nbytes"],
    step: float,
    ray_scene: Int[Tensor, " R"] | None = None,
    near: Float[Tensor, " R"] | float = 0.0,
    far: Float[Tensor, " R"] | float = math.inf,
    max_samples: int | None = None,
    resolution: tuple[int, int, int] | None = None,
) -> tuple[Int[Tensor, " N"], Float[Tensor, " N"], Float[Tensor, " N"]]:
    """Pure-PyTorch twin of :func:`raymarch`: a vectorised uniform march over the same step grid.

    Every candidate interval is evaluated (no empty-space skipping), in chunks of rays; the result equals the
    native one exactly. Arguments and returns as :func:`raymarch`.
    """
    args = _prepare(origins, dirs, aabbs, occupancy, ray_scene, near, far, step, max_samples, resolution)
    origins, dirs, aabbs, bits, ray_scene, near_t, far_t, resolution, cap = args
    return _march_ref(origins, dirs, aabbs, bits, ray_scene, near_t, far_t, resolution, step, cap)


def raymarch(
    origins: Float[Tensor, "R 3"],
    dirs: Float[Tensor, "R 3"],
    aabbs: Float[Tensor, "B 6"] | Float[Tensor, "6"],
    occupancy: Bool[Tensor, "B X Y Z"] | UInt8[Tensor, "B nbytes"],
    step: float,
    ray_scene: Int[Tensor, " R"] | None = None,
    near: Float[Tensor, " R"] | float = 0.0,
    far: Float[Tensor, " R"] | float = math.inf,
    max_samples: int | None = None,
    resolution: tuple[int, int, int] | None = None,
    impl: str = "auto",
) -> tuple[Int[Tensor, " N"], Float[Tensor, " N"], Float[Tensor, " N"]]:
    """March rays through per-scene occupancy grids and return the packed sample intervals.

    Args:
        origins: ray origins, ``(R, 3)``.
        dirs: ray directions, ``(R, 3)`` (unit length makes ``step`` a Euclidean distance).
        aabbs: box of each scene ``(xmin, ymin, zmin, xmax, ymax, zmax)``, ``(B, 6)`` or ``(6,)``.
        occupancy: per-scene grids, bool or uint8 ``(B, X, Y, Z)`` (or ``(X, Y, Z)``), or packed bitfields
            ``(B, ceil(X * Y * Z / 8))`` uint8 together with ``resolution`` (see :func:`pack_bits`).
        step: interval length along the rays.
        ray_scene: scene of each ray, ``(R,)`` int64; default all 0.
        near: smallest ``t`` per ray (float or ``(R,)``).
        far: largest ``t`` per ray (float or ``(R,)``).
        max_samples: keep at most this many intervals per ray (the first ones); ``None`` for no cap.
        resolution: ``(X, Y, Z)`` of packed bitfields.
        impl: ``"auto"``, ``"native"`` or ``"torch"`` (the reference).

    Returns:
        ``ray_indices (N,)`` int64 (sorted), ``t_starts (N,)`` and ``t_ends (N,)`` in the rays' dtype.
    """
    args = _prepare(origins, dirs, aabbs, occupancy, ray_scene, near, far, step, max_samples, resolution)
    origins, dirs, aabbs, bits, ray_scene, near_t, far_t, resolution, cap = args
    module = native_module(impl, origins.device)
    if module is None:
        return _march_ref(origins, dirs, aabbs, bits, ray_scene, near_t, far_t, resolution, step, cap)
    return module.raymarch(
        origins.contiguous(),
        dirs.contiguous(),
        ray_scene.contiguous(),
        bits,
        aabbs.contiguous(),
        near_t,
        far_t,
        resolution[0],
        resolution[1],
        resolution[2],
        float(step),
        cap,
    )
