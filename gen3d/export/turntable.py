"""Turntable animations: a camera circling a point cloud, a mesh or a radiance field, saved as GIF (or MP4).

Point clouds and meshes are drawn with the numpy rasteriser of :mod:`gen3d.export.raster` (meshes as a
dense, Lambert-shaded sample of their surface), so a turntable needs no GPU and no OpenGL context. Radiance
fields are rendered by their own ``render(c2w, H, W)`` (see :class:`gen3d.inference.sources.FieldSource`).
GIF is written with imageio's Pillow plugin; MP4 needs the ``imageio-ffmpeg`` package.
"""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from gen3d.errors import Gen3DError, InputError
from gen3d.export.images import to_uint8
from gen3d.export.raster import height_colors, orbit_poses, render_points

ANIMATION_SUFFIXES = (".gif", ".mp4")


def _fit(points: np.ndarray, fov_deg: float, margin: float = 1.15) -> tuple[np.ndarray, float]:
    """Centre of the bounding box and an orbit radius at which the bounding sphere fills the view."""
    lo, hi = points.min(axis=0), points.max(axis=0)
    center = 0.5 * (lo + hi)
    extent = float(np.linalg.norm(hi - lo)) * 0.5 or 1.0
    return center, margin * extent / np.sin(np.radians(fov_deg) / 2.0)


def turntable_points(
    points: Any,
    n_frames: int = 36,
    size: int = 256,
    elevation_deg: float = 20.0,
    fov_deg: float = 40.0,
    radius_px: float | None = None,
    colors: np.ndarray | None = None,
) -> list[np.ndarray]:
    """Frames of a camera orbiting a point cloud once.

    Args:
        points: (P, 3) points.
        n_frames: frames per revolution.
        size: image height and width in pixels.
        elevation_deg: camera elevation above the horizontal plane (y up).
        fov_deg: vertical field of view.
        radius_px: point radius in pixels (by default about size / 160).
        colors: (P, 3) colours; height colour map when None.

    Returns:
        ``n_frames`` images (size, size, 3) uint8.
    """
    from gen3d.data.io import check_points

    pts = check_points(points, "points", ndim=(2,)).astype(np.float64)
    if n_frames < 1 or size < 8:
        raise InputError(f"need at least 1 frame and 8 pixels, got {n_frames} frames of {size} px")
    center, dist = _fit(pts, fov_deg)
    colors = height_colors(pts) if colors is None else colors
    r = max(1.0, size / 160.0) if radius_px is None else radius_px
    poses = orbit_poses(n_frames, dist, elevation_deg, target=center)
    return [render_points(pts, c2w, (size, size), colors=colors, fov_deg=fov_deg, radius_px=r) for c2w in poses]


def turntable_mesh(
    mesh: Any,
    n_frames: int = 36,
    size: int = 256,
    elevation_deg: float = 20.0,
    fov_deg: float = 40.0,
    samples: int | None = None,
    color: tuple[float, float, float] = (0.55, 0.70, 0.90),
    seed: int = 0,
) -> list[np.ndarray]:
    """Frames of a camera orbiting a mesh, drawn as a dense surface sample lit from the camera.

    Args:
        mesh: ``trimesh.Trimesh``.
        n_frames: frames per revolution.
        size: image height and width in pixels.
        elevation_deg: camera elevation.
        fov_deg: vertical field of view.
        samples: surface points drawn (default 2 * size^2, enough to cover the silhouette).
        color: base RGB in [0, 1].
        seed: seed of the surface sampling.

    Returns:
        ``n_frames`` images (size, size, 3) uint8.
    """
    import trimesh

    if len(mesh.faces) == 0:
        raise InputError("the mesh has no faces to draw")
    count = int(samples or 2 * size * size)
    pts, face_idx = trimesh.sample.sample_surface(mesh, count, seed=seed)  # (S, 3), (S,)
    normals = np.asarray(mesh.face_normals)[face_idx]  # (S, 3)
    pts = np.asarray(pts, dtype=np.float64)
    center, dist = _fit(pts, fov_deg)
    frames = []
    for c2w in orbit_poses(n_frames, dist, elevation_deg, target=center):
        view = c2w[:3, 3] - pts
        view /= np.linalg.norm(view, axis=1, keepdims=True)  # (S, 3) towards the camera
        facing = np.sum(normals * view, axis=1)  # (S,)
        # Two-sided Lambert with a headlight plus ambient; back faces a little darker.
        shade = 0.25 + 0.75 * np.abs(facing) * np.where(facing >= 0, 1.0, 0.7)
        rgb = np.clip(np.asarray(color)[None, :] * shade[:, None], 0.0, 1.0)
        frames.append(
            render_points(pts, c2w, (size, size), colors=rgb, fov_deg=fov_deg, radius_px=1.0, depth_shading=0.0)
        )
    return frames


def turntable_field(
    render: Callable[[np.ndarray, int, int], Any],
    n_frames: int = 36,
    size: int = 128,
    radius: float = 4.0,
    elevation_deg: float = 20.0,
) -> list[np.ndarray]:
    """Frames of a camera orbiting the origin, rendered by a radiance field.

    Args:
        render: ``render(c2w, H, W)`` returning an (H, W, 3) image, float in [0, 1] or uint8.
        n_frames: frames per revolution.
        size: image height and width.
        radius: camera distance from the origin.
        elevation_deg: camera elevation.

    Returns:
        ``n_frames`` images (size, size, 3) uint8.
    """
    frames = []
    for c2w in orbit_poses(n_frames, radius, elevation_deg):
        image = render(c2w, size, size)
        image = image.detach().cpu().numpy() if hasattr(image, "detach") else np.asarray(image)
        frames.append(to_uint8(image))
    return frames


def has_mp4_backend() -> bool:
    """Whether imageio can write MP4 here (it needs the ``imageio-ffmpeg`` package)."""
    return importlib.util.find_spec("imageio_ffmpeg") is not None


def check_animation_path(path: str | os.PathLike) -> Path:
    """Check that ``path`` names a format that can be written here (call before rendering frames).

    Args:
        path: ``.gif`` or ``.mp4`` destination.

    Returns:
        ``path`` as a :class:`Path`.

    Raises:
        InputError: for another suffix.
        Gen3DError: for ``.mp4`` when the ``imageio-ffmpeg`` package is missing.
    """
    p = Path(path)
    suffix = p.suffix.lower()
    if suffix not in ANIMATION_SUFFIXES:
        raise InputError(f"unsupported animation format {suffix!r}; expected .gif or .mp4", p)
    if suffix == ".mp4" and not has_mp4_backend():
        raise Gen3DError(
            f"{p}: writing MP4 needs the imageio-ffmpeg package (pip install imageio-ffmpeg); write a .gif instead"
        )
    return p


def write_animation(frames: list[np.ndarray], path: str | os.PathLike, fps: float = 12.0) -> Path:
    """Write frames as a looping GIF or an MP4, atomically.

    The GIF writer (Pillow) merges identical consecutive frames into one longer frame, so an animation
    that does not change (e.g. a rotationally symmetric shape) may hold fewer frames than given; its total
    duration is unchanged.

    Args:
        frames: images (H, W, 3) uint8, all the same size.
        path: ``.gif`` or ``.mp4`` destination.
        fps: frames per second.

    Returns:
        The written path.
    """
    import imageio.v3 as iio

    from gen3d.utils import atomic_path

    p = check_animation_path(path)
    if not frames:
        raise InputError("no frames to write", p)
    if fps <= 0:
        raise InputError(f"fps must be positive, got {fps}", p)
    stack = np.stack([to_uint8(f) for f in frames])  # (T, H, W, 3)
    if p.suffix.lower() == ".mp4":
        with atomic_path(p) as tmp:
            iio.imwrite(tmp, stack, plugin="FFMPEG", extension=".mp4", fps=fps, macro_block_size=1)
        return p
    with atomic_path(p) as tmp:
        iio.imwrite(tmp, stack, extension=".gif", duration=1000.0 / fps, loop=0)
    return p
