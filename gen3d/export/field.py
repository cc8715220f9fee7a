"""Exports of generated radiance fields (GRAF, pi-GAN): density grids and marching-cubes meshes, turntable frames
and GIFs.

Files are written by gen3d's one mesh writer and one animation writer: :func:`save_mesh` is
:func:`gen3d.export.mesh.save_mesh`, and :func:`save_gif` calls :func:`gen3d.export.turntable.write_animation`.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

import numpy as np
import torch
from jaxtyping import Float
from torch import Tensor

from gen3d.errors import InputError
from gen3d.export.images import to_uint8
from gen3d.export.mesh import save_mesh
from gen3d.export.turntable import write_animation
from gen3d.models.graf.field import RadianceField
from gen3d.models.graf.generator import Generator

__all__ = ["density_grid", "extract_mesh", "render_turntable", "save_gif", "save_mesh", "turntable_poses"]

DEFAULT_LEVEL = 10.0  # density iso-level (pi-GAN's extract_shapes threshold)


@torch.no_grad()
def density_grid(
    field: RadianceField, z: Float[Tensor, " Z"], resolution: int = 128, bound: float = 1.0, chunk: int = 1 << 16
) -> np.ndarray:
    """Density of one scene sampled on a regular grid of ``resolution^3`` points spanning ``[-bound, bound]^3``.

    Args:
        field: the radiance field.
        z: one latent code (Z,) or (1, Z).
        resolution: points per axis.
        bound: half side of the cube.
        chunk: points per field evaluation.

    Returns:
        (R, R, R) float32, indexed ``[i, j, k]`` = point ``(x_i, y_j, z_k)``.
    """
    z = z.reshape(1, -1)
    lin = torch.linspace(-bound, bound, resolution, device=z.device, dtype=z.dtype)
    pts = torch.stack(torch.meshgrid(lin, lin, lin, indexing="ij"), -1).reshape(1, -1, 3)  # (1, R^3, 3)
    vals = [field.density(pts[:, i : i + chunk], z) for i in range(0, pts.shape[1], chunk)]
    return torch.cat(vals, 1).reshape(resolution, resolution, resolution).float().cpu().numpy()


def extract_mesh(
    field: RadianceField,
    z: Float[Tensor, " Z"],
    resolution: int = 128,
    bound: float = 1.0,
    level: float | None = None,
):
    """Marching cubes (scikit-image) on the density of one scene.

    Args:
        field: the radiance field.
        z: one latent code.
        resolution: grid points per axis.
        bound: half side of the cube that is meshed.
        level: density iso-level; ``None`` takes 10 (pi-GAN's threshold) when the field exceeds it, else the
            midpoint of the grid's density range. The level used is stored in ``mesh.metadata["level"]``.

    Returns:
        A ``trimesh.Trimesh`` in world coordinates.

    Raises:
        InputError: the density is constant on the grid (no surface at any level) or ``level`` is outside it.
    """
    import trimesh
    from skimage.measure import marching_cubes

    vol = density_grid(field, z, resolution, bound)
    lo, hi = float(vol.min()), float(vol.max())
    if not np.isfinite(vol).all():
        raise InputError("the density field has NaN or Inf values; cannot extract a mesh")
    if hi - lo <= 1e-12:
        raise InputError(f"the density field is constant ({lo:g}) on the grid; no surface to extract")
    if level is None:
        level = DEFAULT_LEVEL if lo < DEFAULT_LEVEL < hi else 0.5 * (lo + hi)
    if not lo < level < hi:
        raise InputError(f"iso-level {level:g} lies outside the density range [{lo:g}, {hi:g}]")
    h = 2 * bound / (resolution - 1)
    verts, faces, _, _ = marching_cubes(vol, level=level, spacing=(h, h, h))
    mesh = trimesh.Trimesh(vertices=verts - bound, faces=faces, process=True)
    mesh.metadata["level"] = float(level)
    return mesh


def turntable_poses(generator: Generator, n_frames: int = 40, v: float | None = None) -> Float[Tensor, "N 4 4"]:
    """Cameras around the object at the largest radius (GRAF's ``get_render_poses``).

    The azimuth sweeps ``range_u`` (a full turn when the range is one; +-2 standard deviations around its
    middle for Gaussian poses), the polar ``v`` is the middle of ``range_v`` unless given.
    """
    u0, u1 = generator.range_u
    if generator.pose_dist == "gaussian":
        mid, half = (u0 + u1) / 2, 2 * generator.yaw_std / (2 * math.pi)
        u0, u1 = mid - half, mid + half
    full = math.isclose(u1 - u0, 1.0)
    u = torch.linspace(u0, u1, n_frames + 1)[:-1] if full else torch.linspace(u0, u1, n_frames)
    v = sum(generator.range_v) / 2 if v is None else v
    return generator.pose_at(u, torch.full_like(u, v))


@torch.no_grad()
def render_turntable(
    generator: Generator,
    z: Float[Tensor, " Z"],
    n_frames: int = 40,
    size: int | None = None,
    fast: bool = False,
    grid_resolution: int = 64,
    batch: int = 8,
) -> np.ndarray:
    """Frames of one scene seen from :func:`turntable_poses`.

    Args:
        generator: the generator.
        z: one latent code.
        n_frames: number of frames.
        size: image side (default the generator's ``image_size``).
        fast: render through an occupancy grid (:mod:`gen3d.models.graf.fast`) instead of dense samples.
        grid_resolution: occupancy grid resolution when ``fast``.
        batch: frames rendered at once.

    Returns:
        (N, H, W, 3) uint8 frames.
    """
    from gen3d.models.graf.fast import build_occupancy_grid, render_fast

    z = z.reshape(1, -1)
    poses = turntable_poses(generator, n_frames).to(z)
    frames = []
    grid = build_occupancy_grid(generator, z, grid_resolution) if fast else None
    for i in range(0, n_frames, batch):
        c2w = poses[i : i + batch]
        if grid is not None:
            rgb = render_fast(generator, z, c2w, grid, size)["rgb"]
        else:
            rgb = generator.render(z.expand(c2w.shape[0], -1), c2w, size)["rgb"]
        frames.append(to_uint8(rgb, value_range=(-1.0, 1.0)))
    return np.concatenate(frames, 0)


def save_gif(frames: np.ndarray, path: str | os.PathLike, fps: float = 20.0) -> Path:
    """Write (N, H, W, 3) uint8 frames as a looping GIF, atomically (:func:`gen3d.export.turntable.write_animation`)."""
    return write_animation(list(frames), path, fps=fps)
