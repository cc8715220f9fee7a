"""Differentiable point-cloud rendering by Gaussian splatting with front-to-back alpha compositing.

Each point is projected with the camera (conventions of :mod:`renderers.rays`: OpenGL camera frame, pixel
centres at ``i + 0.5``) and covers nearby pixels with a Gaussian footprint of standard deviation
``radius / 2`` pixels, cut off at ``1.5 * radius`` (3 standard deviations)::

    a = opacity * exp(-d^2 / (2 (radius / 2)^2))        (d: pixel-centre distance to the projection)

Per pixel the splats are composited front to back in depth order, ``C = sum_i a_i prod_{j<i} (1 - a_j) c_i``,
and the alpha is ``sum_i a_i prod_{j<i} (1 - a_j)``. Images are differentiable with respect to point positions
(through the footprints) and colours; the depth order itself is piecewise constant.

Memory stays bounded: the points of all images, sorted image by image and by depth within an image, are
processed in chunks, each chunk composited behind the transmittance left by the nearer chunks (which is
exact). Every point only touches the pixels of its ``(2w + 1)^2`` window, ``w = ceil(1.5 * radius)``.

``backend="pytorch3d"`` rasterises with pytorch3d's ``rasterize_points`` (nearest ``points_per_pixel`` splats
per pixel), then applies the same footprint and compositing; pytorch3d is an optional dependency.
"""

from __future__ import annotations

import math

import torch
from jaxtyping import Float
from torch import Tensor

from renderers.volrend import exclusive_segment_cumsum

_MAX_ALPHA = 0.999  # keeps log(1 - a) finite


def project_points(
    points: Float[Tensor, "B P 3"],
    c2w: Float[Tensor, "B 4 4"],
    K: Float[Tensor, "B 3 3"] | Float[Tensor, "3 3"],
) -> tuple[Float[Tensor, "B P 2"], Float[Tensor, "B P"]]:
    """Project world points to pixel coordinates.

    Args:
        points: world positions, ``(B, P, 3)``.
        c2w: camera-to-world matrices, ``(B, 4, 4)``.
        K: intrinsics, ``(3, 3)`` or ``(B, 3, 3)``.

    Returns:
        ``uv (B, P, 2)`` pixel coordinates (pixel centres at ``i + 0.5``) and ``depth (B, P)``, the distance
        in front of the camera along its viewing axis (negative behind it).
    """
    rot = c2w[..., :3, :3]  # (B, 3, 3)
    cam = (points - c2w[..., None, :3, 3]) @ rot  # (B, P, 3) = R^T (p - t), as rows
    depth = -cam[..., 2]
    K = K.expand(points.shape[0], 3, 3) if K.dim() == 2 else K
    safe = torch.where(depth.abs() > 1e-12, depth, torch.full_like(depth, 1e-12))
    u = K[:, None, 0, 0] * cam[..., 0] / safe + K[:, None, 0, 2]
    v = -K[:, None, 1, 1] * cam[..., 1] / safe + K[:, None, 1, 2]
    return torch.stack([u, v], dim=-1), depth


def _footprint_alpha(dist2: Tensor, radius: float, opacity: float) -> Tensor:
    sigma = 0.5 * radius
    alpha = opacity * torch.exp(-0.5 * dist2 / (sigma * sigma))
    return torch.where(dist2 <= (1.5 * radius) ** 2, alpha, torch.zeros_like(alpha)).clamp(max=_MAX_ALPHA)


def _window_offsets(radius: float, device: torch.device) -> tuple[Tensor, Tensor]:
    """Pixel offsets ``(dx, dy)`` from a point's pixel that its footprint can reach, ``(Wn,)`` each."""
    half = math.ceil(1.5 * radius)
    offsets = torch.arange(-half, half + 1, device=device)
    dy, dx = torch.meshgrid(offsets, offsets, indexing="ij")
    # A pixel at offset d from the point's pixel has its centre at least max(0, |d| - 0.5) away per axis:
    # offsets beyond the cut-off from every position inside the point's pixel are never reached.
    reach = (dx.abs() - 0.5).clamp_min(0) ** 2 + (dy.abs() - 0.5).clamp_min(0) ** 2 <= (1.5 * radius) ** 2
    return dx[reach], dy[reach]


def _visible_order(uv: Tensor, depth: Tensor, H: int, W: int, radius: float, near: float) -> Tensor:
    """Flat indices into ``(B * P)`` of the points that can reach the image: image by image, nearest first."""
    b, n_points = depth.shape
    half = math.ceil(1.5 * radius)
    visible = (depth > near) & torch.isfinite(uv).all(-1)  # (B, P)
    visible &= (uv[..., 0] > -half) & (uv[..., 0] < W + half) & (uv[..., 1] > -half) & (uv[..., 1] < H + half)
    order = torch.argsort(torch.where(visible, depth, torch.full_like(depth, math.inf)), dim=1, stable=True)
    order = order + n_points * torch.arange(b, device=depth.device)[:, None]  # (B, P) flat indices
    rank = torch.arange(n_points, device=depth.device)[None, :]
    return order[rank < visible.sum(dim=1, keepdim=True)]  # (N,) the visible ones, row by row


def _render_splats(
    uv: Tensor, depth: Tensor, colors: Tensor, H: int, W: int, radius: float, opacity: float, near: float, chunk: int
) -> tuple[Tensor, Tensor]:
    """Splat ``uv (B, P, 2)``, ``depth (B, P)``, ``colors (B, P, C)`` -> ``(B, H*W, C)``, ``(B, H*W)``.

    Pixels of all images are numbered ``b * H * W + row * W + column``; each chunk of points is composited
    behind the transmittance its nearer points left, touching only the pixels its fragments cover.
    """
    b, n_points, n_channels = colors.shape
    dx, dy = _window_offsets(radius, uv.device)
    order = _visible_order(uv, depth, H, W, radius, near)  # (N,)
    uv, colors = uv.reshape(b * n_points, 2), colors.reshape(b * n_points, n_channels)
    image = colors.new_zeros(b * H * W, n_channels)
    trans = colors.new_ones(b * H * W)  # transmittance left by the nearer chunks
    for start in range(0, order.numel(), chunk):
        idx = order[start : start + chunk]  # (Pc,) image by image, nearest first
        puv = uv.index_select(0, idx)  # (Pc, 2)
        px = torch.floor(puv[:, 0]).long()[:, None] + dx  # (Pc, Wn)
        py = torch.floor(puv[:, 1]).long()[:, None] + dy
        dist2 = (px + 0.5 - puv[:, 0:1]) ** 2 + (py + 0.5 - puv[:, 1:2]) ** 2  # (Pc, Wn)
        inside = (px >= 0) & (px < W) & (py >= 0) & (py < H) & (dist2 <= (1.5 * radius) ** 2)
        frag = inside.reshape(-1).nonzero()[:, 0]  # (F,) point-major, so nearest first per pixel
        frag_point = frag // dx.numel()
        pixel = ((idx // n_points * H)[:, None] + py) * W + px  # (Pc, Wn)
        pixel = pixel.reshape(-1).index_select(0, frag)  # (F,)
        alpha = _footprint_alpha(dist2.reshape(-1).index_select(0, frag), radius, opacity)  # (F,)
        # Group fragments by pixel; the stable sort keeps them in depth order within each pixel.
        pixel, perm = torch.sort(pixel, stable=True)
        alpha, frag_point = alpha.index_select(0, perm), frag_point.index_select(0, perm)
        touched, slot = torch.unique_consecutive(pixel, return_inverse=True)  # (U,), (F,) slot of each fragment
        log_keep = torch.log1p(-alpha)  # (F,)
        excl = exclusive_segment_cumsum(log_keep, slot, touched.numel())
        weights = alpha * torch.exp(excl) * trans.index_select(0, pixel)  # (F,)
        frag_colors = colors.index_select(0, idx.index_select(0, frag_point))  # (F, C)
        image = image.index_add(0, pixel, weights[:, None] * frag_colors)
        kept = torch.exp(log_keep.new_zeros(touched.numel()).index_add(0, slot, log_keep))  # (U,)
        trans = trans.index_copy(0, touched, trans.index_select(0, touched) * kept)
    return image.reshape(b, H * W, n_channels), (1.0 - trans).reshape(b, H * W)


def _render_pytorch3d(
    uv: Tensor,
    depth: Tensor,
    colors: Tensor,
    H: int,
    W: int,
    radius: float,
    opacity: float,
    near: float,
    points_per_pixel: int,
) -> tuple[Tensor, Tensor]:
    """pytorch3d rasterisation + the same footprint and compositing; ``(B, H*W, C)``, ``(B, H*W)``."""
    from pytorch3d.renderer.points import rasterize_points
    from pytorch3d.structures import Pointclouds

    b, n_points = depth.shape
    s = min(H, W)
    # pytorch3d NDC: +x left, +y up, the shorter image side spans [-1, 1]; pixel centre u -> (W - 2u) / s.
    ndc = torch.stack([(W - 2.0 * uv[..., 0]) / s, (H - 2.0 * uv[..., 1]) / s, depth], dim=-1)
    ndc = torch.where((depth > near)[..., None], ndc, torch.full_like(ndc, -1.0))  # z < 0 is culled
    idx, _, dists = rasterize_points(
        Pointclouds(points=list(ndc)),
        image_size=(H, W),
        radius=1.5 * radius * 2.0 / s,
        points_per_pixel=points_per_pixel,
    )  # (B, H, W, K), sorted front to back
    valid = idx >= 0
    dist2 = dists * (0.5 * s) ** 2  # squared distance in pixels
    alpha = torch.where(valid, _footprint_alpha(dist2, radius, opacity), torch.zeros_like(dist2))
    trans = torch.cumprod(torch.cat([torch.ones_like(alpha[..., :1]), 1.0 - alpha[..., :-1]], dim=-1), dim=-1)
    weights = alpha * trans  # (B, H, W, K)
    flat_colors = colors.reshape(b * n_points, -1)
    gathered = flat_colors[idx.clamp_min(0)]  # (B, H, W, K, C)
    image = (weights[..., None] * gathered).sum(dim=-2)
    return image.reshape(b, H * W, -1), weights.sum(dim=-1).reshape(b, H * W)


def render_points(
    points: Float[Tensor, "B P 3"],
    colors: Float[Tensor, "B P C"] | None,
    c2w: Float[Tensor, "B 4 4"],
    K: Float[Tensor, "B 3 3"] | Float[Tensor, "3 3"],
    H: int,
    W: int,
    radius: float = 1.5,
    background: Float[Tensor, " C"] | float | None = None,
    opacity: float = 1.0,
    near: float = 1e-3,
    chunk_points: int = 1 << 14,
    backend: str = "torch",
    points_per_pixel: int = 16,
) -> tuple[Float[Tensor, "B H W C"], Float[Tensor, "B H W"]]:
    """Render point clouds as soft, depth-ordered Gaussian splats.

    Args:
        points: world positions, ``(B, P, 3)``.
        colors: per-point colours ``(B, P, C)``; ``None`` renders white (C = 3).
        c2w: camera-to-world matrices (OpenGL convention), ``(B, 4, 4)``.
        K: intrinsics, ``(3, 3)`` or ``(B, 3, 3)``.
        H: image height.
        W: image width.
        radius: footprint radius in pixels (Gaussian standard deviation ``radius / 2``, cut off at
            ``1.5 * radius``).
        background: colour ``(C,)`` or scalar blended behind the points; ``None`` leaves black.
        opacity: peak alpha of a splat (clamped to 0.999).
        near: points closer than this depth are dropped.
        chunk_points: points composited per step (bounds memory).
        backend: ``"torch"`` (default) or ``"pytorch3d"`` (needs pytorch3d).
        points_per_pixel: splats kept per pixel by the pytorch3d backend.

    Returns:
        ``images (B, H, W, C)`` and ``alpha (B, H, W)``.
    """
    if points.dim() != 3 or points.shape[-1] != 3:
        raise ValueError(f"points must be (B, P, 3), got {tuple(points.shape)}")
    b, n_points = points.shape[:2]
    if colors is None:
        colors = points.new_ones(b, n_points, 3)
    if colors.shape[:2] != (b, n_points):
        raise ValueError(f"colors must be (B, P, C) matching points, got {tuple(colors.shape)}")
    if radius <= 0:
        raise ValueError(f"radius must be positive, got {radius}")
    colors = colors.to(points.dtype)
    uv, depth = project_points(points, c2w.to(points.dtype), K.to(points.dtype))
    if backend == "pytorch3d":
        images, alpha = _render_pytorch3d(uv, depth, colors, H, W, radius, opacity, near, points_per_pixel)
    elif backend == "torch":
        images, alpha = _render_splats(uv, depth, colors, H, W, radius, opacity, near, chunk_points)
    else:
        raise ValueError(f"backend must be 'torch' or 'pytorch3d', got {backend!r}")
    if background is not None:
        bg = torch.as_tensor(background, dtype=images.dtype, device=images.device)
        images = images + (1.0 - alpha)[..., None] * bg
    return images.reshape(b, H, W, -1), alpha.reshape(b, H, W)
