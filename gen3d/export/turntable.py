"""Turntable animations: a camera circling a point cloud, a mesh or a radiance field, saved as GIF (or MP4).

Point clouds and meshes are drawn by the point rasteriser of :mod:`gen3d.export.raster` (meshes as a dense,
Lambert-shaded sample of their surface), so a turntable needs no GPU and no OpenGL context. Radiance
fields are rendered by their own ``render(c2w, H, W)`` (see :class:`gen3d.inference.sources.FieldSource`).
GIF is written with imageio's Pillow plugin; MP4 needs the ``imageio-ffmpeg`` package.
:func:`write_animation` is gen3d's one animation writer.
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
from gen3d.export.raster import fit_view, height_colors, orbit_poses, render_points

ANIMATION_SUFFIXES = (".gif", ".mp4")
_POINTS_PER_CALL = 1 << 20  # points of all frames rendered in one call (bounds memory)


def _orbit_frames(
    points: np.ndarray,
    colors: Callable[[np.ndarray], np.ndarray],
    n_frames: int,
    size: int,
    elevation_deg: float,
    fov_deg: float,
    radius_px: float,
    depth_shading: float,
) -> list[np.ndarray]:
    """Frames of a camera orbiting ``points`` once; ``colors(c2w)`` gives the (P, 3) colours seen from ``c2w``."""
    if n_frames < 1 or size < 8:
        raise InputError(f"need at least 1 frame and 8 pixels, got {n_frames} frames of {size} px")
    center, distance = fit_view(points, fov_deg)
    poses = orbit_poses(n_frames, distance, elevation_deg, target=center)  # (T, 4, 4)
    per_call = max(1, _POINTS_PER_CALL // len(points))  # frames drawn together
    frames = []
    for start in range(0, n_frames, per_call):
        cams = poses[start : start + per_call]  # (T', 4, 4)
        clouds = np.broadcast_to(points, (len(cams), *points.shape))
        rgb = np.stack([colors(c2w) for c2w in cams])  # (T', P, 3)
        frames += list(render_points(clouds, cams, (size, size), rgb, fov_deg, radius_px, depth_shading=depth_shading))
    return frames


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
        fov_deg: field of view in degrees.
        radius_px: point radius in pixels (by default about size / 128).
        colors: (P, 3) colours; height colour map when None.

    Returns:
        ``n_frames`` images (size, size, 3) uint8.
    """
    from gen3d.data.io import check_points

    pts = check_points(points, "points", ndim=(2,)).astype(np.float64)
    rgb = height_colors(pts) if colors is None else colors
    r = max(1.0, size / 128.0) if radius_px is None else radius_px
    return _orbit_frames(pts, lambda c2w: rgb, n_frames, size, elevation_deg, fov_deg, r, depth_shading=0.35)


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
        fov_deg: field of view in degrees.
        samples: surface points drawn (default 2 * size^2, enough to cover the silhouette).
        color: base RGB in [0, 1].
        seed: seed of the surface sampling.

    Returns:
        ``n_frames`` images (size, size, 3) uint8.
    """
    import trimesh

    if len(mesh.faces) == 0:
        raise InputError("the mesh has no faces to draw")
    pts, face_idx = trimesh.sample.sample_surface(mesh, int(samples or 2 * size * size), seed=seed)  # (S, 3), (S,)
    pts = np.asarray(pts, dtype=np.float64)
    normals = np.asarray(mesh.face_normals)[face_idx]  # (S, 3)

    def lambert(c2w: np.ndarray) -> np.ndarray:
        view = c2w[:3, 3] - pts
        view /= np.linalg.norm(view, axis=1, keepdims=True)  # (S, 3) towards the camera
        facing = np.sum(normals * view, axis=1)  # (S,)
        # Two-sided Lambert with a headlight plus ambient; back faces a little darker.
        shade = 0.25 + 0.75 * np.abs(facing) * np.where(facing >= 0, 1.0, 0.7)
        return np.clip(np.asarray(color)[None, :] * shade[:, None], 0.0, 1.0)

    return _orbit_frames(pts, lambert, n_frames, size, elevation_deg, fov_deg, radius_px=1.0, depth_shading=0.0)


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
    from gen3d.utils import check_suffix

    p = Path(path)
    if check_suffix(p, ANIMATION_SUFFIXES, "animation") == ".mp4" and not has_mp4_backend():
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
