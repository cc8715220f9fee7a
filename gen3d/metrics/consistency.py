"""Multi-view consistency of rendered radiance fields: the colour error after warping one view into another.

A 3D-consistent scene shows a surface point with the same colour from every camera (for view-independent
shading). Given two renders of one scene, each with its colour, its per-pixel distance to the surface and a mask
of the pixels that see something, :func:`warp_error` measures how far the colours of view A are from those of
view B at the same surface points:

1. Unproject: every pixel of A inside ``mask_a`` becomes the world point ``o_a + dist_a * d_a``, where ``d_a`` is
   the unit ray through the pixel centre (pixel ``(i, j)`` has its centre at ``(i + 0.5, j + 0.5)``).
2. Project the point into B with the views' shared pinhole intrinsics ``K`` (OpenGL camera frame: x right, y up,
   looking down -z; the camera-frame direction through pixel coordinates ``(u, v)`` is
   ``((u - cx) / fx, -(v - cy) / fy, -1)``, as :func:`renderers.get_rays`).
3. Keep the point when B "sees it too":

   - it lies in front of B and lands inside B's image, between the outermost pixel centres
     (``0.5 <= u <= W - 0.5``, likewise ``v``, to 1e-3 pixel), where bilinear interpolation is defined;
   - every pixel that the bilinear lookup blends is inside ``mask_b`` (the bilinearly sampled mask is 1), so
     no background colour leaks in;
   - it is not occluded in B: its distance to B's camera agrees with B's rendered distance there (bilinear)
     within ``depth_tol`` times that distance (a relative tolerance, 3 % by default).

4. Sample B's colour there (bilinear) and average ``|rgb_a - rgb_b|`` over the three channels and the kept pixels.

Units: colours in [0, 1] (a mean absolute error of 0.01 is 2.55 grey levels); distances in world units along
unit rays (a radiance field's expected ray distance divided by its opacity). ``coverage`` is the fraction of A's
masked pixels that were kept; a pair with none kept has a NaN error. :func:`symmetric_warp_error` warps both
ways and pools the two directions' pixels.

The score is 0 for a perfectly consistent scene with view-independent colour, up to resampling error; lighting
that depends on the viewer (specular highlights) or a generator that paints each view differently raises it.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
import torch.nn.functional as F
from jaxtyping import Bool, Float
from torch import Tensor

from gen3d.errors import InputError

__all__ = ["DEFAULT_DEPTH_TOL", "WarpError", "symmetric_warp_error", "warp_error"]

DEFAULT_DEPTH_TOL = 0.03  # relative distance tolerance of the occlusion test
_FULL_MASK = 1.0 - 1e-4  # a bilinearly sampled mask at least this high blends only masked pixels
_EDGE = 1e-3  # pixels: slack of the image bounds for rounding (the lookup clamps to the border pixels)


class WarpError(NamedTuple):
    """Result of a warp between two views (leading ``B`` absent for unbatched inputs).

    Attributes:
        error: mean absolute colour error over the kept pixels, ``(B,)``; NaN where none was kept.
        coverage: kept pixels over masked pixels of the source view(s), ``(B,)``.
        used: the kept pixels, ``(B, H, W)`` for :func:`warp_error`; ``(B, 2, H, W)`` (A's, then B's) for
            :func:`symmetric_warp_error`.
    """

    error: Tensor
    coverage: Tensor
    used: Tensor


class _Sums(NamedTuple):
    abs_sum: Tensor  # (B,) sum over kept pixels of the channel-mean absolute error
    n_used: Tensor  # (B,)
    n_seen: Tensor  # (B,)
    used: Tensor  # (B, H, W)


def _check_view(
    rgb: Tensor, dist: Tensor, mask: Tensor, c2w: Tensor, name: str
) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """Validate one view and give it a batch dimension: rgb (B, 3, H, W), dist and mask (B, H, W), c2w (B, 4, 4)."""
    if rgb.dim() == 3:
        rgb, dist, mask, c2w = rgb[None], dist[None], mask[None], c2w[None]
    if rgb.dim() != 4 or rgb.shape[1] != 3:
        raise InputError(f"rgb_{name} must have shape (B, 3, H, W) or (3, H, W), got {tuple(rgb.shape)}")
    b, _, h, w = rgb.shape
    if tuple(dist.shape) != (b, h, w) or tuple(mask.shape) != (b, h, w):
        raise InputError(
            f"dist_{name} and mask_{name} must have shape {(b, h, w)} to match rgb_{name}, "
            f"got {tuple(dist.shape)} and {tuple(mask.shape)}"
        )
    if tuple(c2w.shape) != (b, 4, 4):
        raise InputError(f"c2w_{name} must have shape {(b, 4, 4)}, got {tuple(c2w.shape)}")
    return rgb, dist, mask.bool(), c2w


def _pixel_dirs(H: int, W: int, K: Float[Tensor, "B 3 3"], c2w: Float[Tensor, "B 4 4"]) -> Float[Tensor, "B H W 3"]:
    """Unit world directions of the rays through the pixel centres."""
    j, i = torch.meshgrid(
        torch.arange(H, dtype=c2w.dtype, device=c2w.device) + 0.5,
        torch.arange(W, dtype=c2w.dtype, device=c2w.device) + 0.5,
        indexing="ij",
    )  # (H, W)
    fx, fy = K[:, 0, 0, None, None], K[:, 1, 1, None, None]  # (B, 1, 1)
    cx, cy = K[:, 0, 2, None, None], K[:, 1, 2, None, None]
    x, y = (i - cx) / fx, -(j - cy) / fy  # (B, H, W)
    dirs_cam = torch.stack([x, y, -torch.ones_like(x)], dim=-1)  # (B, H, W, 3)
    dirs = torch.einsum("bhwk,bjk->bhwj", dirs_cam, c2w[:, :3, :3])  # R @ d per pixel
    return dirs / dirs.norm(dim=-1, keepdim=True)


def _project(
    points: Float[Tensor, "B N 3"], K: Float[Tensor, "B 3 3"], c2w: Float[Tensor, "B 4 4"]
) -> tuple[Float[Tensor, "B N 2"], Float[Tensor, "B N"]]:
    """Pixel coordinates ``(u, v)`` of world points and their depth in front of the camera (> 0: in front)."""
    p_cam = (points - c2w[:, None, :3, 3]) @ c2w[:, :3, :3]  # (B, N, 3): R^T (X - t)
    depth = -p_cam[..., 2]  # (B, N)
    safe = torch.where(depth.abs() > 1e-9, depth, torch.ones_like(depth))
    u = K[:, None, 0, 2] + K[:, None, 0, 0] * p_cam[..., 0] / safe
    v = K[:, None, 1, 2] - K[:, None, 1, 1] * p_cam[..., 1] / safe
    return torch.stack([u, v], dim=-1), depth


def _warp_sums(
    view_a: tuple[Tensor, Tensor, Tensor, Tensor],
    view_b: tuple[Tensor, Tensor, Tensor, Tensor],
    K: Float[Tensor, "B 3 3"],
    depth_tol: float,
) -> _Sums:
    """Sums behind :func:`warp_error` for batched, validated views ``(rgb, dist, mask, c2w)``."""
    rgb_a, dist_a, mask_a, c2w_a = view_a
    rgb_b, dist_b, mask_b, c2w_b = view_b
    B, _, H, W = rgb_a.shape
    dist_a = torch.where(mask_a, dist_a, torch.ones_like(dist_a))  # finite everywhere; unmasked pixels are dropped
    points = c2w_a[:, None, None, :3, 3] + dist_a[..., None] * _pixel_dirs(H, W, K, c2w_a)  # (B, H, W, 3)
    points = points.reshape(B, H * W, 3)
    uv, depth = _project(points, K, c2w_b)  # (B, N, 2), (B, N)
    u, v = uv.unbind(-1)
    lo, hi_u, hi_v = 0.5 - _EDGE, W - 0.5 + _EDGE, H - 0.5 + _EDGE
    inside = (depth > 0) & (u >= lo) & (u <= hi_u) & (v >= lo) & (v <= hi_v)  # (B, N)
    size = torch.tensor([W, H], dtype=uv.dtype, device=uv.device)
    grid = (2.0 * uv / size - 1.0).nan_to_num(0.0).clamp(-2.0, 2.0)  # align_corners=False: centres at i + 0.5
    dist_b = torch.where(mask_b, dist_b, torch.zeros_like(dist_b))
    stack = torch.cat([rgb_b, dist_b[:, None], mask_b[:, None].to(rgb_b.dtype)], dim=1)  # (B, 5, H, W)
    sampled = F.grid_sample(stack, grid[:, None], align_corners=False, padding_mode="border")[:, :, 0]  # (B, 5, N)
    rgb_s, dist_s, mask_s = sampled[:, :3], sampled[:, 3], sampled[:, 4]
    dist_to_b = (points - c2w_b[:, None, :3, 3]).norm(dim=-1)  # (B, N)
    visible = (dist_to_b - dist_s).abs() <= depth_tol * dist_s
    used = mask_a.reshape(B, H * W) & inside & (mask_s >= _FULL_MASK) & visible  # (B, N)
    diff = (rgb_a.reshape(B, 3, H * W) - rgb_s).abs().mean(dim=1)  # (B, N)
    abs_sum = torch.where(used, diff, torch.zeros_like(diff)).sum(dim=1)
    return _Sums(abs_sum, used.sum(dim=1), mask_a.reshape(B, -1).sum(dim=1), used.reshape(B, H, W))


def _prepare(
    view_a: tuple[Tensor, Tensor, Tensor, Tensor],
    view_b: tuple[Tensor, Tensor, Tensor, Tensor],
    K: Tensor,
    depth_tol: float,
) -> tuple[tuple[Tensor, ...], tuple[Tensor, ...], Tensor, bool]:
    """Validate both views, the intrinsics and the tolerance; returns batched views, (B, 3, 3) K, unbatched."""
    unbatched = view_a[0].dim() == 3
    a, b = _check_view(*view_a, "a"), _check_view(*view_b, "b")
    if (view_b[0].dim() == 3) != unbatched or a[0].shape != b[0].shape:
        raise InputError(
            f"views a and b must have the same shape, got {tuple(view_a[0].shape)}, {tuple(view_b[0].shape)}"
        )
    n = a[0].shape[0]
    if tuple(K.shape) not in ((3, 3), (n, 3, 3)):
        raise InputError(f"K must have shape (3, 3) or ({n}, 3, 3), got {tuple(K.shape)}")
    if not depth_tol > 0:
        raise InputError(f"depth_tol must be positive (inf disables the occlusion test), got {depth_tol}")
    dtype = torch.promote_types(a[3].dtype, torch.float32)  # computed in at least float32
    a = (a[0].to(dtype), a[1].to(dtype), a[2], a[3].to(dtype))
    b = (b[0].to(dtype), b[1].to(dtype), b[2], b[3].to(dtype))
    return a, b, K.to(dtype=dtype, device=a[3].device).expand(n, 3, 3), unbatched


def warp_error(
    rgb_a: Float[Tensor, "*B 3 H W"],
    dist_a: Float[Tensor, "*B H W"],
    mask_a: Bool[Tensor, "*B H W"],
    c2w_a: Float[Tensor, "*B 4 4"],
    rgb_b: Float[Tensor, "*B 3 H W"],
    dist_b: Float[Tensor, "*B H W"],
    mask_b: Bool[Tensor, "*B H W"],
    c2w_b: Float[Tensor, "*B 4 4"],
    K: Float[Tensor, "*B 3 3"],
    depth_tol: float = DEFAULT_DEPTH_TOL,
) -> WarpError:
    """Colour error of view A warped into view B (see the module docstring for the protocol).

    Args:
        rgb_a: colours of A in [0, 1], ``(B, 3, H, W)`` or ``(3, H, W)``.
        dist_a: distance from A's camera to the surface along each unit pixel ray, ``(B, H, W)``.
        mask_a: pixels of A that see a surface, ``(B, H, W)`` (bool, or 0/1).
        c2w_a: A's camera-to-world matrix, ``(B, 4, 4)``.
        rgb_b: colours of B, ``(B, 3, H, W)``.
        dist_b: B's distances, ``(B, H, W)``.
        mask_b: B's mask, ``(B, H, W)``.
        c2w_b: B's camera-to-world matrix, ``(B, 4, 4)``.
        K: pinhole intrinsics of both views, ``(3, 3)`` or ``(B, 3, 3)`` (as :func:`renderers.intrinsics`).
        depth_tol: relative distance tolerance of the occlusion test (``inf`` turns it off).

    Returns:
        :class:`WarpError`: ``error`` and ``coverage`` ``(B,)``, ``used`` ``(B, H, W)`` (no ``B`` when unbatched).

    Raises:
        InputError: (a ``ValueError``) mismatched or malformed shapes, or a non-positive ``depth_tol``.

    Example:
        >>> err = warp_error(rgb_a, dist_a, opacity_a > 0.5, c2w_a, rgb_b, dist_b, opacity_b > 0.5, c2w_b, K)
        >>> err.error, err.coverage
    """
    a, b, K, unbatched = _prepare((rgb_a, dist_a, mask_a, c2w_a), (rgb_b, dist_b, mask_b, c2w_b), K, depth_tol)
    s = _warp_sums(a, b, K, depth_tol)
    error = s.abs_sum / s.n_used.clamp_min(1)
    error = torch.where(s.n_used > 0, error, torch.full_like(error, float("nan")))
    out = WarpError(error, s.n_used / s.n_seen.clamp_min(1), s.used)
    return WarpError(*(t[0] for t in out)) if unbatched else out


def symmetric_warp_error(
    rgb_a: Float[Tensor, "*B 3 H W"],
    dist_a: Float[Tensor, "*B H W"],
    mask_a: Bool[Tensor, "*B H W"],
    c2w_a: Float[Tensor, "*B 4 4"],
    rgb_b: Float[Tensor, "*B 3 H W"],
    dist_b: Float[Tensor, "*B H W"],
    mask_b: Bool[Tensor, "*B H W"],
    c2w_b: Float[Tensor, "*B 4 4"],
    K: Float[Tensor, "*B 3 3"],
    depth_tol: float = DEFAULT_DEPTH_TOL,
) -> WarpError:
    """:func:`warp_error` both ways (A into B and B into A), the two directions' kept pixels pooled.

    Args:
        rgb_a, dist_a, mask_a, c2w_a, rgb_b, dist_b, mask_b, c2w_b, K, depth_tol: as :func:`warp_error`.

    Returns:
        :class:`WarpError`: ``error`` is the mean over the kept pixels of both directions, ``coverage`` the kept
        pixels over the masked pixels of both views, ``used`` ``(B, 2, H, W)`` (A's kept pixels, then B's).
    """
    a, b, K, unbatched = _prepare((rgb_a, dist_a, mask_a, c2w_a), (rgb_b, dist_b, mask_b, c2w_b), K, depth_tol)
    ab, ba = _warp_sums(a, b, K, depth_tol), _warp_sums(b, a, K, depth_tol)
    n_used = ab.n_used + ba.n_used
    error = (ab.abs_sum + ba.abs_sum) / n_used.clamp_min(1)
    error = torch.where(n_used > 0, error, torch.full_like(error, float("nan")))
    coverage = n_used / (ab.n_seen + ba.n_seen).clamp_min(1)
    out = WarpError(error, coverage, torch.stack([ab.used, ba.used], dim=1))
    return WarpError(*(t[0] for t in out)) if unbatched else out
