"""Point previews (turntables, thumbnails, the viewer's colours) drawn by the rendering core's point splatting.

gen3d has one point rasteriser, :func:`renderers.points.render_points` (soft, depth-ordered Gaussian splats,
pure PyTorch, fast enough on a CPU). This module feeds it numpy clouds and returns uint8 images, and holds
what previews share: cameras on an orbit around a cloud, a fit of the orbit radius to the cloud, and a
height colour map. No GPU and no OpenGL context is needed.

Camera convention (OpenGL, as in ``renderers``): a camera-to-world matrix ``c2w`` (4, 4) whose columns are
the camera's right, up and backward axes and its position; the camera looks down its -z axis. Previews are
y up.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from gen3d.data.multiview import look_at_c2w
from gen3d.export.images import to_uint8

_NEAR = 1e-3  # points closer to the camera than this are not drawn (renderers.points' default ``near``)

# Anchor colours of the height colour map (low -> high), RGB in [0, 1].
_HEIGHT_ANCHORS = np.array(
    [
        [0.16, 0.20, 0.55],
        [0.10, 0.45, 0.70],
        [0.15, 0.68, 0.60],
        [0.55, 0.80, 0.30],
        [0.98, 0.80, 0.20],
    ]
)


def colormap(values: np.ndarray) -> np.ndarray:
    """Map values in [0, 1] to RGB with a blue -> teal -> green -> yellow ramp.

    Args:
        values: (...,) values; clipped to [0, 1].

    Returns:
        (..., 3) float64 RGB in [0, 1].
    """
    t = np.clip(np.asarray(values, dtype=np.float64), 0.0, 1.0) * (len(_HEIGHT_ANCHORS) - 1)
    lo = np.minimum(np.floor(t).astype(np.int64), len(_HEIGHT_ANCHORS) - 2)
    frac = (t - lo)[..., None]
    return _HEIGHT_ANCHORS[lo] * (1.0 - frac) + _HEIGHT_ANCHORS[lo + 1] * frac


def height_colors(points: np.ndarray, axis: int = 1) -> np.ndarray:
    """Colour points by their coordinate along ``axis`` (y, the up axis, by default).

    Args:
        points: (P, 3) points.
        axis: which coordinate to map to colour.

    Returns:
        (P, 3) uint8 colours.
    """
    h = np.asarray(points, dtype=np.float64)[:, axis]  # (P,)
    span = float(h.max() - h.min()) if h.size else 0.0
    t = (h - h.min()) / span if span > 0 else np.full_like(h, 0.5)
    return np.round(colormap(t) * 255).astype(np.uint8)


def fit_view(points: np.ndarray, fov_deg: float, margin: float = 1.15) -> tuple[np.ndarray, float]:
    """Where to look and from how far so that the whole cloud is in view from any direction.

    Args:
        points: (P, 3) points.
        fov_deg: the camera's field of view in degrees.
        margin: ratio of the camera's view cone to the cloud's bounding sphere.

    Returns:
        The centre of the cloud's bounding box (3,) and the camera distance from it, at which the sphere
        around that centre through the farthest point fills the view up to ``margin``.
    """
    pts = np.asarray(points, dtype=np.float64)
    center = 0.5 * (pts.min(axis=0) + pts.max(axis=0))
    extent = float(np.linalg.norm(pts - center, axis=1).max()) or 1.0
    return center, margin * extent / math.sin(math.radians(fov_deg) / 2.0)


def orbit_poses(
    n: int, radius: float, elevation_deg: float = 20.0, target: np.ndarray | None = None, start_deg: float = 0.0
) -> np.ndarray:
    """Camera poses evenly spaced on a horizontal circle around ``target`` (y up), all looking at it.

    Args:
        n: number of poses.
        radius: distance from the target.
        elevation_deg: angle above the horizontal plane.
        target: (3,) orbit centre (origin by default).
        start_deg: azimuth of the first pose in degrees, from +z towards +x.

    Returns:
        (n, 4, 4) camera-to-world matrices.
    """
    target = np.zeros(3) if target is None else np.asarray(target, dtype=np.float64)
    elev = math.radians(elevation_deg)
    poses = []
    for i in range(n):
        azim = math.radians(start_deg) + 2.0 * math.pi * i / n
        offset = radius * np.array([math.cos(elev) * math.sin(azim), math.sin(elev), math.cos(elev) * math.cos(azim)])
        poses.append(look_at_c2w(target + offset, up=(0.0, 1.0, 0.0), target=target))
    return np.stack(poses) if poses else np.zeros((0, 4, 4))


def render_points(
    points: Any,
    c2w: np.ndarray,
    size: tuple[int, int],
    colors: np.ndarray | None = None,
    fov_deg: float = 40.0,
    radius_px: float = 1.5,
    background: Sequence[int] = (255, 255, 255),
    depth_shading: float = 0.35,
) -> np.ndarray:
    """Draw point clouds with :func:`renderers.points.render_points`: nearer splats cover farther ones.

    One cloud ``(P, 3)`` seen from ``c2w (4, 4)`` gives one image; ``B`` clouds ``(B, P, 3)`` seen from
    ``(B, 4, 4)`` cameras are drawn in one call and give ``B`` images.

    Args:
        points: (P, 3) or (B, P, 3) world coordinates.
        c2w: (4, 4) or (B, 4, 4) camera-to-world matrices (OpenGL convention).
        size: (H, W) of the images.
        colors: (P, 3) or (B, P, 3) colours, uint8 or float in [0, 1]; coloured by height when None.
        fov_deg: field of view across the image width, degrees.
        radius_px: splat radius in pixels (a Gaussian footprint of standard deviation ``radius_px / 2``).
        background: RGB of empty pixels.
        depth_shading: how much the farthest point of an image is darkened relative to its nearest
            (0 = not at all).

    Returns:
        (H, W, 3) or (B, H, W, 3) uint8.
    """
    import torch

    from renderers import intrinsics
    from renderers import render_points as splat

    H, W = size
    pts = np.asarray(points, dtype=np.float64)
    batched = pts.ndim == 3
    pts = pts if batched else pts[None]  # (B, P, 3)
    cams = np.asarray(c2w, dtype=np.float64).reshape(-1, 4, 4)  # (B, 4, 4)
    rgb = np.stack([height_colors(p) for p in pts]) if colors is None else np.asarray(colors)
    rgb = rgb / 255.0 if rgb.dtype == np.uint8 else rgb.astype(np.float64)
    rgb = np.broadcast_to(rgb, pts.shape) * _depth_fade(pts, cams, depth_shading)[..., None]  # (B, P, 3)
    images, _ = splat(
        torch.tensor(pts, dtype=torch.float32),
        torch.tensor(rgb, dtype=torch.float32),
        torch.tensor(cams, dtype=torch.float32),
        intrinsics(H, W, fov_deg),
        H,
        W,
        radius=radius_px,
        background=torch.tensor(background, dtype=torch.float32) / 255.0,
        near=_NEAR,
    )  # (B, H, W, 3)
    images = to_uint8(images.numpy())
    return images if batched else images[0]


def _depth_fade(points: np.ndarray, c2w: np.ndarray, strength: float) -> np.ndarray:
    """Brightness ``1 - strength * t`` of each point, ``t`` its depth from 0 (nearest) to 1 (farthest) in its image.

    Args:
        points: (B, P, 3) world coordinates.
        c2w: (B, 4, 4) cameras.
        strength: darkening of the farthest point.

    Returns:
        (B, P) factors in [1 - strength, 1] (1 for points behind the camera).
    """
    depth = np.einsum("bpk,bk->bp", c2w[:, None, :3, 3] - points, c2w[:, :3, 2])  # (B, P) in front of the camera
    front = depth > _NEAR
    near = np.where(front, depth, np.inf).min(axis=1, keepdims=True)  # (B, 1)
    far = np.where(front, depth, -np.inf).max(axis=1, keepdims=True)
    t = np.divide(depth - near, far - near, out=np.zeros_like(depth), where=front & (far > near))
    return 1.0 - strength * t
