"""Point-cloud thumbnails and grids, drawn by the one point rasteriser (:mod:`gen3d.export.raster`) and
written as PNG.

Each cloud is seen from a fixed three-quarter view (turned about the vertical y axis by ``azimuth``, seen
from ``elevation`` degrees above the horizon) by a perspective camera fitted to the cloud, and drawn as
splats of a few pixels; nearer splats cover farther ones and brightness falls off with depth, so the
shape reads in 3D. No GPU, no OpenGL.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from typing import Any

import numpy as np

from gen3d.errors import InputError
from gen3d.export.images import save_png
from gen3d.export.raster import fit_view, orbit_poses, render_points

BACKGROUND = (255, 255, 255)
COLOR = (52, 101, 164)
LABEL_BAND = 14  # pixels of caption above each cell when labels are given
FOV = 30.0  # field of view of the thumbnail camera, degrees


def render_thumbnails(
    clouds: Sequence[Any],
    size: int = 128,
    azimuth: float = 35.0,
    elevation: float = 25.0,
    radius: float | None = None,
    color: Sequence[int] = COLOR,
    background: Sequence[int] = BACKGROUND,
) -> np.ndarray:
    """Render point clouds, each from its own camera fitted to it; clouds of one point count share one call.

    Args:
        clouds: N clouds (P_i, 3) (numpy or torch), y up.
        size: image side in pixels.
        azimuth: degrees the clouds are turned about the y axis (the camera moves the other way).
        elevation: degrees the camera is raised above the horizon (looking down at the clouds).
        radius: splat radius in pixels (default: grows with ``size`` and shrinks with the point count).
        color: RGB of the nearest points; farther points are darker.
        background: RGB of empty pixels.

    Returns:
        (N, size, size, 3) uint8 images.
    """
    from gen3d.data.io import check_points

    pts = [check_points(c, ndim=(2,)).astype(np.float64) for c in clouds]
    if size < 8:
        raise InputError(f"image size must be at least 8 pixels, got {size}")
    cams = []
    for cloud in pts:
        center, distance = fit_view(cloud, FOV)
        cams.append(orbit_poses(1, distance, elevation, target=center, start_deg=-azimuth)[0])
    out = np.empty((len(pts), size, size, 3), dtype=np.uint8)
    for n in dict.fromkeys(len(cloud) for cloud in pts):
        members = [k for k, cloud in enumerate(pts) if len(cloud) == n]
        # 2.5 px for 2048 points in 128 px; sparser clouds get larger splats.
        r = 2.5 * size / 128 * math.sqrt(2048 / n) if radius is None else radius
        stack = np.stack([pts[k] for k in members])  # (M, n, 3)
        colors = np.broadcast_to(np.asarray(color, dtype=np.uint8), stack.shape)
        cameras = np.stack([cams[k] for k in members])
        out[members] = render_points(stack, cameras, (size, size), colors, FOV, r, background, depth_shading=0.55)
    return out


def render_point_grid(
    clouds: Any,
    path: str | os.PathLike | None = None,
    ncols: int | None = None,
    size: int = 128,
    labels: Sequence[str] | None = None,
    azimuth: float = 35.0,
    elevation: float = 25.0,
    radius: float | None = None,
) -> np.ndarray:
    """Render clouds side by side in a grid and optionally write it as a PNG (atomically).

    Args:
        clouds: (N, P, 3) array/tensor, or a sequence of N (P_i, 3) clouds.
        path: PNG file to write (None: only return the image).
        ncols: cells per row (default: ``ceil(sqrt(N))``).
        size: cell side in pixels.
        labels: N captions, drawn in a strip of :data:`LABEL_BAND` pixels above each cell.
        azimuth: degrees the clouds are turned about the y axis.
        elevation: camera elevation in degrees.
        radius: splat radius in pixels (default: see :func:`render_thumbnails`).

    Returns:
        (rows * (size + band), ncols * size, 3) uint8 image (band = 0 without labels); unused cells are
        background.
    """
    from PIL import Image, ImageDraw

    items = list(clouds)
    n = len(items)
    if n == 0:
        raise InputError("nothing to render: no clouds given")
    if labels is not None and len(labels) != n:
        raise InputError(f"got {len(labels)} labels for {n} clouds")
    ncols = max(1, math.ceil(math.sqrt(n))) if ncols is None else int(ncols)
    if ncols < 1:
        raise InputError(f"ncols must be at least 1, got {ncols}")
    nrows = math.ceil(n / ncols)
    band = LABEL_BAND if labels is not None else 0  # caption strip above each cell
    cell_h = size + band
    grid = np.empty((nrows * cell_h, ncols * size, 3), dtype=np.uint8)
    grid[:] = BACKGROUND
    for k, cell in enumerate(render_thumbnails(items, size, azimuth, elevation, radius)):
        r, c = divmod(k, ncols)
        top = r * cell_h + band
        grid[top : top + size, c * size : (c + 1) * size] = cell
    if labels is not None:
        img = Image.fromarray(grid)
        draw = ImageDraw.Draw(img)
        for k, text in enumerate(labels):
            r, c = divmod(k, ncols)
            draw.text((c * size + 3, r * cell_h + 1), str(text), fill=(30, 30, 30))
        grid = np.array(img)
    if path is not None:
        save_png(path, grid)
    return grid
