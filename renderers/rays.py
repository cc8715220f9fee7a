"""Camera rays: one per pixel of a full image, or sparse K x K patches with random scale and shift (GRAF).

Conventions (shared with :mod:`renderers.cameras` and :mod:`renderers.points`):

- Camera frame (OpenGL): x right, y up, the camera looks down -z. ``c2w`` is the 4x4 camera-to-world matrix.
- Pixel coordinates ``(u, v)``: u grows to the right, v downwards; pixel ``(i, j)`` (column i, row j) covers
  ``[i, i + 1] x [j, j + 1]`` and its centre is ``(i + 0.5, j + 0.5)``.
- Intrinsics ``K = [[fx, 0, cx], [0, fy, cy], [0, 0, 1]]``; the camera-frame direction through ``(u, v)`` is
  ``((u - cx) / fx, -(v - cy) / fy, -1)``.
- Directions are unit length by default (then ``t`` is the Euclidean distance along the ray); with
  ``normalize=False`` they have camera-frame z = -1 (then ``t`` is the depth along the optical axis, as in
  NeRF and GRAF).
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from jaxtyping import Float
from torch import Tensor


def pixel_rays(
    uv: Float[Tensor, "*batch M 2"],
    K: Float[Tensor, "*batch 3 3"] | Float[Tensor, "3 3"],
    c2w: Float[Tensor, "*batch 4 4"],
    normalize: bool = True,
) -> tuple[Float[Tensor, "*batch M 3"], Float[Tensor, "*batch M 3"]]:
    """Rays through continuous pixel coordinates.

    Args:
        uv: pixel coordinates ``(u, v)`` (pixel centres at ``i + 0.5``), ``(*batch, M, 2)``.
        K: intrinsics, ``(3, 3)`` or ``(*batch, 3, 3)``.
        c2w: camera-to-world matrices, ``(*batch, 4, 4)``.
        normalize: return unit-length directions.

    Returns:
        ``origins`` and ``dirs`` in world coordinates, each ``(*batch, M, 3)``.
    """
    fx, fy = K[..., 0, 0, None], K[..., 1, 1, None]  # (*batch, 1)
    cx, cy = K[..., 0, 2, None], K[..., 1, 2, None]
    x = (uv[..., 0] - cx) / fx  # (*batch, M)
    y = -(uv[..., 1] - cy) / fy
    dirs_cam = torch.stack([x, y, -torch.ones_like(x)], dim=-1)  # (*batch, M, 3)
    rot = c2w[..., :3, :3]  # (*batch, 3, 3)
    dirs = dirs_cam @ rot.transpose(-1, -2)  # (*batch, M, 3)
    if normalize:
        dirs = dirs / dirs.norm(dim=-1, keepdim=True)
    origins = c2w[..., None, :3, 3].expand(dirs.shape)  # (*batch, M, 3)
    return origins, dirs


def get_rays(
    H: int,
    W: int,
    K: Float[Tensor, "*batch 3 3"] | Float[Tensor, "3 3"],
    c2w: Float[Tensor, "*batch 4 4"],
    normalize: bool = True,
) -> tuple[Float[Tensor, "*batch H W 3"], Float[Tensor, "*batch H W 3"]]:
    """One ray through the centre of every pixel of an ``H x W`` image.

    Args:
        H: image height in pixels.
        W: image width in pixels.
        K: intrinsics, ``(3, 3)`` or ``(*batch, 3, 3)``.
        c2w: camera-to-world matrices, ``(*batch, 4, 4)``.
        normalize: return unit-length directions.

    Returns:
        ``origins`` and ``dirs``, each ``(*batch, H, W, 3)``; ``[..., j, i, :]`` is the ray of row j, column i.
    """
    v, u = torch.meshgrid(
        torch.arange(H, dtype=c2w.dtype, device=c2w.device) + 0.5,
        torch.arange(W, dtype=c2w.dtype, device=c2w.device) + 0.5,
        indexing="ij",
    )  # (H, W)
    uv = torch.stack([u, v], dim=-1).reshape(H * W, 2)  # (H*W, 2)
    batch = c2w.shape[:-2]
    origins, dirs = pixel_rays(uv.expand(*batch, H * W, 2), K, c2w, normalize=normalize)
    return origins.reshape(*batch, H, W, 3), dirs.reshape(*batch, H, W, 3)


def sample_patch_grid(
    batch_size: int,
    patch_size: int,
    min_scale: float = 0.25,
    max_scale: float = 1.0,
    random_scale: bool = True,
    random_shift: bool = True,
    generator: torch.Generator | None = None,
    dtype: torch.dtype | None = None,
    device: torch.device | str | None = None,
) -> tuple[Float[Tensor, "B P P 2"], Float[Tensor, " B"]]:
    """Sparse ``P x P`` sampling grids in ``[-1, 1]^2`` with random scale and shift (GRAF's FlexGridRaySampler).

    A regular ``P x P`` grid spanning ``[-1, 1]`` is scaled by ``s ~ U[min_scale, max_scale]`` (``max_scale``
    when ``random_scale`` is off) and shifted by ``U[-(1 - s), 1 - s]`` per axis, so it stays inside the image.
    Annealing ``min_scale`` over training is left to the caller. Each batch element gets its own scale/shift.

    Args:
        batch_size: number of grids ``B``.
        patch_size: grid side ``P``.
        min_scale: smallest scale (fraction of the image side).
        max_scale: largest scale.
        random_scale: draw the scale; otherwise use ``max_scale``.
        random_shift: draw the shift; otherwise centre the grid.
        generator: random generator.
        dtype: dtype of the grid.
        device: device of the grid.

    Returns:
        ``grid (B, P, P, 2)`` in ``F.grid_sample`` order (``[..., 0]`` = x across columns, ``[..., 1]`` = y down
        rows; use ``align_corners=True``) and ``scale (B,)``.
    """
    dtype = dtype or torch.get_default_dtype()
    base = torch.linspace(-1.0, 1.0, patch_size, dtype=dtype, device=device)  # (P,)
    gy, gx = torch.meshgrid(base, base, indexing="ij")  # (P, P): gx varies along columns
    grid = torch.stack([gx, gy], dim=-1).expand(batch_size, patch_size, patch_size, 2)  # (B, P, P, 2)
    if random_scale:
        u = torch.rand(batch_size, generator=generator, dtype=dtype, device=device)
        scale = min_scale + (max_scale - min_scale) * u  # (B,)
    else:
        scale = torch.full((batch_size,), max_scale, dtype=dtype, device=device)
    if random_shift:
        u = torch.rand(batch_size, 2, generator=generator, dtype=dtype, device=device)
        shift = (2.0 * u - 1.0) * (1.0 - scale)[:, None]  # (B, 2)
    else:
        shift = torch.zeros(batch_size, 2, dtype=dtype, device=device)
    grid = grid * scale[:, None, None, None] + shift[:, None, None, :]
    return grid, scale


def patch_rays(
    grid: Float[Tensor, "B P P 2"],
    H: int,
    W: int,
    K: Float[Tensor, "B 3 3"] | Float[Tensor, "3 3"],
    c2w: Float[Tensor, "B 4 4"],
    normalize: bool = True,
) -> tuple[Float[Tensor, "B P P 3"], Float[Tensor, "B P P 3"]]:
    """Rays through the points of sampling grids, matching ``F.grid_sample(image, grid, align_corners=True)``.

    With ``align_corners=True``, -1 and +1 are the centres of the first and last pixels, i.e. pixel
    coordinate ``u = 0.5 + (x + 1) / 2 * (W - 1)`` (likewise ``v`` with ``H``).

    Args:
        grid: sampling grids in ``[-1, 1]``, ``(B, P, P, 2)``.
        H: image height.
        W: image width.
        K: intrinsics, ``(3, 3)`` or ``(B, 3, 3)``.
        c2w: camera-to-world matrices, ``(B, 4, 4)``.
        normalize: return unit-length directions.

    Returns:
        ``origins`` and ``dirs``, each ``(B, P, P, 3)``.
    """
    b, p = grid.shape[0], grid.shape[1]
    u = 0.5 + (grid[..., 0] + 1.0) * 0.5 * (W - 1)  # (B, P, P)
    v = 0.5 + (grid[..., 1] + 1.0) * 0.5 * (H - 1)
    uv = torch.stack([u, v], dim=-1).reshape(b, p * p, 2)
    origins, dirs = pixel_rays(uv, K, c2w, normalize=normalize)  # (B, P*P, 3)
    return origins.reshape(b, p, p, 3), dirs.reshape(b, p, p, 3)


class PatchRays(NamedTuple):
    """Rays of sparse patches and the grid that samples the same points from a real image."""

    origins: Tensor  # (B, P, P, 3)
    dirs: Tensor  # (B, P, P, 3)
    grid: Tensor  # (B, P, P, 2), for F.grid_sample(..., align_corners=True)
    scale: Tensor  # (B,)


def sample_patch_rays(
    H: int,
    W: int,
    K: Float[Tensor, "B 3 3"] | Float[Tensor, "3 3"],
    c2w: Float[Tensor, "B 4 4"],
    patch_size: int,
    min_scale: float = 0.25,
    max_scale: float = 1.0,
    random_scale: bool = True,
    random_shift: bool = True,
    generator: torch.Generator | None = None,
    normalize: bool = True,
) -> PatchRays:
    """Random sparse ``P x P`` patch of rays per camera (see :func:`sample_patch_grid`).

    Args:
        H: image height.
        W: image width.
        K: intrinsics, ``(3, 3)`` or ``(B, 3, 3)``.
        c2w: camera-to-world matrices, ``(B, 4, 4)``.
        patch_size: patch side ``P``.
        min_scale: smallest patch scale.
        max_scale: largest patch scale.
        random_scale: draw the scale.
        random_shift: draw the shift.
        generator: random generator.
        normalize: return unit-length directions.

    Returns:
        :class:`PatchRays` with origins and dirs ``(B, P, P, 3)``, grid ``(B, P, P, 2)`` and scale ``(B,)``.
    """
    grid, scale = sample_patch_grid(
        c2w.shape[0],
        patch_size,
        min_scale=min_scale,
        max_scale=max_scale,
        random_scale=random_scale,
        random_shift=random_shift,
        generator=generator,
        dtype=c2w.dtype,
        device=c2w.device,
    )
    origins, dirs = patch_rays(grid, H, W, K, c2w, normalize=normalize)
    return PatchRays(origins, dirs, grid, scale)
