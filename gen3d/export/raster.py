"""A small numpy point rasteriser for previews: turntables, thumbnails and the viewer's colours.

Not differentiable and not meant for training (``renderers.points`` is); it only has to draw a few
thousand to a few hundred thousand points into an image quickly and deterministically, with a z-buffer,
so that exports need neither a GPU nor an OpenGL context.

Camera convention (OpenGL, as in ``renderers``): a camera-to-world matrix ``c2w`` (4, 4) whose columns are
the camera's right, up and backward axes and its position; the camera looks down its -z axis.
"""

from __future__ import annotations

import math

import numpy as np

from gen3d.export.grid import zbuffer

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


def look_at(eye: np.ndarray, target: np.ndarray, up: np.ndarray | None = None) -> np.ndarray:
    """Camera-to-world matrix of a camera at ``eye`` looking at ``target``.

    Args:
        eye: (3,) camera position.
        target: (3,) point the camera looks at.
        up: (3,) world up direction (y by default).

    Returns:
        (4, 4) float64 camera-to-world matrix (OpenGL: the camera looks down its -z axis).
    """
    eye = np.asarray(eye, dtype=np.float64)
    target = np.asarray(target, dtype=np.float64)
    up = np.array([0.0, 1.0, 0.0]) if up is None else np.asarray(up, dtype=np.float64)
    back = eye - target
    back /= np.linalg.norm(back)
    right = np.cross(up, back)
    if np.linalg.norm(right) < 1e-9:  # looking along the up axis: pick any perpendicular right
        right = np.cross(np.array([0.0, 0.0, 1.0]), back)
    right /= np.linalg.norm(right)
    true_up = np.cross(back, right)
    c2w = np.eye(4)
    c2w[:3, 0], c2w[:3, 1], c2w[:3, 2], c2w[:3, 3] = right, true_up, back, eye
    return c2w


def orbit_poses(
    n: int, radius: float, elevation_deg: float = 20.0, target: np.ndarray | None = None, start_deg: float = 0.0
) -> np.ndarray:
    """Camera poses evenly spaced on a horizontal circle around ``target`` (y up), all looking at it.

    Args:
        n: number of poses.
        radius: distance from the target.
        elevation_deg: angle above the horizontal plane.
        target: (3,) orbit centre (origin by default).
        start_deg: azimuth of the first pose, degrees.

    Returns:
        (n, 4, 4) camera-to-world matrices.
    """
    target = np.zeros(3) if target is None else np.asarray(target, dtype=np.float64)
    elev = math.radians(elevation_deg)
    poses = []
    for i in range(n):
        azim = math.radians(start_deg) + 2.0 * math.pi * i / n
        offset = radius * np.array([math.cos(elev) * math.sin(azim), math.sin(elev), math.cos(elev) * math.cos(azim)])
        poses.append(look_at(target + offset, target))
    return np.stack(poses) if poses else np.zeros((0, 4, 4))


def render_points(
    points: np.ndarray,
    c2w: np.ndarray,
    size: tuple[int, int],
    colors: np.ndarray | None = None,
    fov_deg: float = 40.0,
    radius_px: float = 1.5,
    background: tuple[int, int, int] = (255, 255, 255),
    depth_shading: float = 0.35,
) -> np.ndarray:
    """Draw points as shaded discs with a z-buffer (nearest fragment wins).

    Args:
        points: (P, 3) world coordinates.
        c2w: (4, 4) camera-to-world matrix (OpenGL convention).
        size: (H, W) of the image.
        colors: (P, 3) uint8 or float [0, 1] colours; coloured by height when None.
        fov_deg: vertical field of view.
        radius_px: disc radius in pixels.
        background: RGB of empty pixels.
        depth_shading: how much farther points are darkened (0 = not at all).

    Returns:
        (H, W, 3) uint8 image.
    """
    H, W = size
    pts = np.asarray(points, dtype=np.float64)
    if colors is None:
        colors = height_colors(pts)
    col = np.asarray(colors)
    col = col.astype(np.float64) / 255.0 if col.dtype == np.uint8 else col.astype(np.float64)  # (P, 3)
    w2c = np.linalg.inv(np.asarray(c2w, dtype=np.float64))
    cam = pts @ w2c[:3, :3].T + w2c[:3, 3]  # (P, 3)
    depth = -cam[:, 2]  # (P,) distance along the viewing direction
    keep = depth > 1e-6
    cam, depth, col = cam[keep], depth[keep], col[keep]
    image = np.empty((H, W, 3), dtype=np.float64)
    image[:] = np.asarray(background, dtype=np.float64) / 255.0
    if len(depth) == 0:
        return np.round(image * 255).astype(np.uint8)
    focal = 0.5 * H / math.tan(math.radians(fov_deg) / 2.0)
    u = focal * cam[:, 0] / depth + 0.5 * W  # (P,) column, pixel centres at +0.5
    v = -focal * cam[:, 1] / depth + 0.5 * H  # (P,) row (image y points down)
    d_near, d_far = float(depth.min()), float(depth.max())
    fade = 1.0 - depth_shading * ((depth - d_near) / (d_far - d_near) if d_far > d_near else np.zeros_like(depth))

    r = max(float(radius_px), 0.5)
    reach = int(math.ceil(r))
    offsets = [
        (dx, dy) for dy in range(-reach, reach + 1) for dx in range(-reach, reach + 1) if dx * dx + dy * dy <= r * r
    ]
    frag_xy, frag_depth, frag_rgb = [], [], []
    base = np.floor(np.stack([u, v], axis=-1)).astype(np.int64)  # (P, 2) column, row
    for dx, dy in offsets:
        bulge = math.sqrt(max(0.0, 1.0 - (dx * dx + dy * dy) / (r * r + 1e-9)))  # sphere-like disc shading
        frag_xy.append(base + np.array([dx, dy]))
        frag_depth.append(depth)
        frag_rgb.append(col * (fade * (0.75 + 0.25 * bulge))[:, None])
    rgb_all = np.concatenate(frag_rgb)  # (F, 3)
    owner = zbuffer(np.concatenate(frag_xy), np.concatenate(frag_depth), H, W)  # (H, W) nearest fragment
    hit = owner >= 0
    image[hit] = rgb_all[owner[hit]]
    return np.round(np.clip(image, 0.0, 1.0) * 255).astype(np.uint8)
