"""Point-cloud thumbnails and grids: a small numpy z-buffered splat renderer, written as PNG with PIL.

Each cloud is seen from a fixed three-quarter view (rotated about the vertical y axis by ``azimuth``, then
tilted towards the viewer by ``elevation``), projected orthographically, fitted to its cell, and drawn as
round splats of a few pixels. A z-buffer keeps the nearest splat per pixel; brightness falls off with
depth so the shape reads in 3D. No GPU, no OpenGL.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from typing import Any

import numpy as np

from gen3d.errors import InputError
from gen3d.export.images import save_png

BACKGROUND = (255, 255, 255)
COLOR = (52, 101, 164)
LABEL_BAND = 14  # pixels of caption above each cell when labels are given


def view_rotation(azimuth: float = 35.0, elevation: float = 25.0) -> np.ndarray:
    """Rotation from the shape frame (y up) to the view frame (x right, y up, z towards the viewer).

    Args:
        azimuth: degrees about the y axis.
        elevation: degrees the viewer is raised above the horizon (looking down at the shape).

    Returns:
        (3, 3) rotation matrix; view coordinates are ``points @ R.T``.
    """
    a, e = math.radians(azimuth), math.radians(elevation)
    r_y = np.array([[math.cos(a), 0.0, math.sin(a)], [0.0, 1.0, 0.0], [-math.sin(a), 0.0, math.cos(a)]])
    r_x = np.array([[1.0, 0.0, 0.0], [0.0, math.cos(e), -math.sin(e)], [0.0, math.sin(e), math.cos(e)]])
    return r_x @ r_y


def project(
    points: np.ndarray, size: int, azimuth: float = 35.0, elevation: float = 25.0, margin: float = 0.06
) -> tuple[np.ndarray, np.ndarray]:
    """Orthographic projection of one cloud, fitted to a ``size`` x ``size`` image.

    Args:
        points: (P, 3) points.
        size: image side in pixels.
        azimuth: view azimuth in degrees.
        elevation: view elevation in degrees.
        margin: fraction of the image left empty on each side.

    Returns:
        xy: (P, 2) float pixel coordinates (column, row), row 0 at the top.
        depth: (P,) distance along the viewing direction (smaller is nearer).
    """
    view = np.asarray(points, dtype=np.float64) @ view_rotation(azimuth, elevation).T  # (P, 3)
    lo, hi = view.min(axis=0), view.max(axis=0)
    center = (lo + hi) / 2
    extent = max(float((hi - lo)[:2].max()), 1e-12)
    scale = size * (1.0 - 2.0 * margin) / extent
    col = (view[:, 0] - center[0]) * scale + size / 2
    row = size / 2 - (view[:, 1] - center[1]) * scale
    return np.stack([col, row], axis=-1), -view[:, 2]


def _disk(radius: int) -> np.ndarray:
    r = np.arange(-radius, radius + 1)
    dx, dy = np.meshgrid(r, r, indexing="xy")
    keep = dx**2 + dy**2 <= radius**2 + radius  # a round-ish splat (the full 3 x 3 block at radius 1)
    return np.stack([dx[keep], dy[keep]], axis=-1)  # (K, 2)


def zbuffer(pixels: np.ndarray, depth: np.ndarray, height: int, width: int) -> np.ndarray:
    """Index of the nearest fragment at each pixel.

    Args:
        pixels: (M, 2) int (column, row) of each fragment; fragments outside the image are ignored.
        depth: (M,) fragment depths (smaller is nearer); ties go to the lower fragment index.
        height: image rows.
        width: image columns.

    Returns:
        (height, width) int64 fragment index per pixel, -1 where nothing was drawn.
    """
    col, row = pixels[:, 0], pixels[:, 1]
    inside = (col >= 0) & (col < width) & (row >= 0) & (row < height)
    idx = np.nonzero(inside)[0]  # (M',)
    flat = row[idx].astype(np.int64) * width + col[idx]  # (M',)
    order = np.lexsort((idx, depth[idx], flat))  # by pixel, then depth, then fragment index
    flat, idx = flat[order], idx[order]
    first = np.ones(len(flat), dtype=bool)
    first[1:] = flat[1:] != flat[:-1]
    out = np.full(height * width, -1, dtype=np.int64)
    out[flat[first]] = idx[first]
    return out.reshape(height, width)


def _edge_shading(rel: np.ndarray, hit: np.ndarray, strength: float = 6.0, threshold: float = 0.05) -> np.ndarray:
    """Darken pixels lying behind their neighbours (eye-dome-lighting style), so that parts in front of
    others get visible outlines.

    Args:
        rel: (H, W) relative depth in [0, 1].
        hit: (H, W) bool, pixels covered by a splat.
        strength: how quickly shading falls off with the depth step.
        threshold: depth steps below this (neighbouring samples of one surface) are ignored.

    Returns:
        (H, W) multiplicative shading in (0, 1].
    """
    padded = np.pad(np.where(hit, rel, np.inf), 1, constant_values=np.inf)  # background never occludes
    h, w = rel.shape
    step = np.zeros_like(rel)
    for dy in (-1, 0, 1):
        for dx in (-1, 0, 1):
            if dx or dy:
                nb = padded[1 + dy : 1 + dy + h, 1 + dx : 1 + dx + w]
                step += np.maximum(0.0, rel - nb - threshold)  # > 0 where the neighbour is clearly nearer
    return np.exp(-strength * step)


def render_points(
    points: Any,
    size: int = 128,
    azimuth: float = 35.0,
    elevation: float = 25.0,
    radius: int | None = None,
    color: Sequence[int] = COLOR,
    background: Sequence[int] = BACKGROUND,
) -> np.ndarray:
    """Render one point cloud.

    Args:
        points: (P, 3) points (numpy or torch), y up.
        size: image side in pixels.
        azimuth: view azimuth in degrees.
        elevation: view elevation in degrees.
        radius: splat radius in pixels (default: grows with ``size`` and shrinks with the point count).
        color: RGB of the nearest points; farther points are darker.
        background: RGB of empty pixels.

    Returns:
        (size, size, 3) uint8 image.
    """
    from gen3d.data.io import check_points

    pts = check_points(points, ndim=(2,))
    if size < 8:
        raise InputError(f"image size must be at least 8 pixels, got {size}")
    if radius is None:  # about 2 px for 2048 points in 128 px; sparser clouds get larger splats
        radius = max(1, math.ceil(2.0 * size / 128 * math.sqrt(2048 / len(pts))))
    xy, depth = project(pts, size, azimuth, elevation)
    disk = _disk(radius)  # (K, 2)
    base = np.floor(xy).astype(np.int64)  # (P, 2)
    frag = (base[:, None, :] + disk[None, :, :]).reshape(-1, 2)  # (P*K, 2)
    frag_depth = np.repeat(depth, len(disk))  # (P*K,)
    owner = zbuffer(frag, frag_depth, size, size)  # (size, size)
    image = np.empty((size, size, 3), dtype=np.float64)
    image[:] = np.asarray(background, dtype=np.float64)
    hit = owner >= 0
    d = frag_depth[owner[hit]]
    span = max(float(depth.max() - depth.min()), 1e-12)
    rel = np.ones((size, size))  # relative depth per pixel: 0 nearest, 1 farthest (and background)
    rel[hit] = (d - depth.min()) / span
    shade = (1.0 - 0.55 * rel[hit]) * _edge_shading(rel, hit)[hit]
    image[hit] = shade[:, None] * np.asarray(color, dtype=np.float64)[None, :]
    return np.clip(np.rint(image), 0, 255).astype(np.uint8)


def render_point_grid(
    clouds: Any,
    path: str | os.PathLike | None = None,
    ncols: int | None = None,
    size: int = 128,
    labels: Sequence[str] | None = None,
    azimuth: float = 35.0,
    elevation: float = 25.0,
    radius: int | None = None,
) -> np.ndarray:
    """Render clouds side by side in a grid and optionally write it as a PNG (atomically).

    Args:
        clouds: (N, P, 3) array/tensor, or a sequence of N (P_i, 3) clouds.
        path: PNG file to write (None: only return the image).
        ncols: cells per row (default: ``ceil(sqrt(N))``).
        size: cell side in pixels.
        labels: N captions, drawn in a strip of :data:`LABEL_BAND` pixels above each cell.
        azimuth: view azimuth in degrees.
        elevation: view elevation in degrees.
        radius: splat radius in pixels.

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
    for k, cloud in enumerate(items):
        r, c = divmod(k, ncols)
        top = r * cell_h + band
        grid[top : top + size, c * size : (c + 1) * size] = render_points(cloud, size, azimuth, elevation, radius)
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
