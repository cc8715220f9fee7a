"""Cameras: intrinsics from a field of view, look-at poses, random poses on a sphere (GRAF ranges). Rays through
the pixels are in :mod:`renderers.rays`.

Camera frame (OpenGL convention): x right, y up, and the camera looks down its -z axis. A pose is the 4x4
camera-to-world matrix ``c2w = [[R, t], [0, 1]]`` whose columns are the camera axes and position in world
coordinates. World "up" defaults to +z, as in GRAF.

Pose sampling follows GRAF: a point on the unit sphere is parameterised by ``u, v in [0, 1]`` with azimuth
``theta = 2 pi u`` and polar angle ``phi = arccos(1 - 2 v)`` measured from +z::

    position = (sin(phi) cos(theta), sin(phi) sin(theta), cos(phi))

so uniform ``(u, v)`` is uniform on the sphere's area; ``v in [0, 0.5]`` is the upper hemisphere (z >= 0),
``v = 0.5`` the equator. GRAF trains with ``range_u = (0, 1)`` and ``range_v = (0.01, 0.49)``.
"""

from __future__ import annotations

import math

import torch
from jaxtyping import Float
from torch import Tensor


def fov_to_focal(fov_deg: float, size: float) -> float:
    """Focal length in pixels of a pinhole camera with field of view ``fov_deg`` across ``size`` pixels.

    Args:
        fov_deg: full field of view in degrees.
        size: image extent (pixels) along which the field of view is measured.

    Returns:
        ``size / 2 / tan(fov / 2)``.
    """
    return 0.5 * size / math.tan(0.5 * math.radians(fov_deg))


def focal_to_fov(focal: float, size: float) -> float:
    """Inverse of :func:`fov_to_focal`: the field of view in degrees."""
    return math.degrees(2.0 * math.atan(0.5 * size / focal))


def intrinsics(
    H: int,
    W: int,
    fov_deg: float,
    dtype: torch.dtype | None = None,
    device: torch.device | str | None = None,
) -> Float[Tensor, "3 3"]:
    """Pinhole intrinsics with square pixels, the principal point at the image centre.

    Args:
        H: image height in pixels.
        W: image width in pixels.
        fov_deg: horizontal field of view in degrees (across the width, as GRAF's ``focal = W / 2 / tan(fov / 2)``).
        dtype: dtype of the matrix.
        device: device of the matrix.

    Returns:
        ``K = [[f, 0, W / 2], [0, f, H / 2], [0, 0, 1]]``, ``(3, 3)``.
    """
    f = fov_to_focal(fov_deg, W)
    return torch.tensor([[f, 0.0, 0.5 * W], [0.0, f, 0.5 * H], [0.0, 0.0, 1.0]], dtype=dtype, device=device)


def _normalize(x: Tensor, eps: float = 1e-12) -> Tensor:
    return x / x.norm(dim=-1, keepdim=True).clamp_min(eps)


def look_at(
    eye: Float[Tensor, "*batch 3"],
    target: Float[Tensor, "*batch 3"] | Float[Tensor, "3"] | None = None,
    up: Float[Tensor, "3"] | tuple[float, float, float] = (0.0, 0.0, 1.0),
) -> Float[Tensor, "*batch 4 4"]:
    """Camera-to-world matrices of cameras at ``eye`` looking at ``target`` (OpenGL: looking down -z).

    The camera z axis points from the target to the eye, x = normalize(up x z), y = z x x. When the viewing
    direction is parallel to ``up`` another up vector is used, so the result is always a rotation.

    Args:
        eye: camera positions, ``(*batch, 3)``.
        target: points looked at, ``(3,)`` or ``(*batch, 3)``; default the origin.
        up: world up direction, ``(3,)``.

    Returns:
        ``c2w (*batch, 4, 4)``.
    """
    if target is None:
        target = torch.zeros(3, dtype=eye.dtype, device=eye.device)
    up_t = torch.as_tensor(up, dtype=eye.dtype, device=eye.device).expand(eye.shape)  # (*batch, 3)
    z = _normalize(eye - target)  # (*batch, 3)
    x = torch.linalg.cross(up_t, z, dim=-1)
    degenerate = x.norm(dim=-1, keepdim=True) < 1e-6 * up_t.norm(dim=-1, keepdim=True).clamp_min(1e-12)
    if bool(degenerate.any()):
        e_y = torch.tensor([0.0, 1.0, 0.0], dtype=eye.dtype, device=eye.device).expand(eye.shape)
        e_x = torch.tensor([1.0, 0.0, 0.0], dtype=eye.dtype, device=eye.device).expand(eye.shape)
        alt = torch.where((z * e_y).sum(-1, keepdim=True).abs() < 0.9, e_y, e_x)
        x = torch.where(degenerate, torch.linalg.cross(alt, z, dim=-1), x)
    x = _normalize(x)
    y = torch.linalg.cross(z, x, dim=-1)
    c2w = torch.zeros(*eye.shape[:-1], 4, 4, dtype=eye.dtype, device=eye.device)
    c2w[..., :3, 0] = x
    c2w[..., :3, 1] = y
    c2w[..., :3, 2] = z
    c2w[..., :3, 3] = eye
    c2w[..., 3, 3] = 1.0
    return c2w


def to_sphere(u: Float[Tensor, "*batch"], v: Float[Tensor, "*batch"]) -> Float[Tensor, "*batch 3"]:
    """GRAF's parameterisation of the unit sphere: azimuth ``2 pi u``, polar angle ``arccos(1 - 2 v)``.

    Args:
        u: azimuth fraction, ``(*batch,)``.
        v: polar fraction (0 = +z pole, 0.5 = equator, 1 = -z pole), ``(*batch,)``.

    Returns:
        unit vectors, ``(*batch, 3)``.
    """
    theta = 2.0 * math.pi * u
    cos_phi = 1.0 - 2.0 * v
    sin_phi = torch.sqrt((1.0 - cos_phi * cos_phi).clamp_min(0.0))
    return torch.stack([sin_phi * torch.cos(theta), sin_phi * torch.sin(theta), cos_phi], dim=-1)


def angles_to_uv(azimuth_deg: float, elevation_deg: float) -> tuple[float, float]:
    """Convert an azimuth and an elevation above the xy-plane (degrees) to GRAF's ``(u, v)``.

    Args:
        azimuth_deg: angle around +z from +x.
        elevation_deg: angle above the equator (90 = +z pole).

    Returns:
        ``(u, v)`` with ``u = azimuth / 360`` and ``v = (1 - sin(elevation)) / 2``.
    """
    return azimuth_deg / 360.0, 0.5 * (1.0 - math.sin(math.radians(elevation_deg)))


def uv_to_angles(u: float, v: float) -> tuple[float, float]:
    """Inverse of :func:`angles_to_uv`: ``(azimuth_deg, elevation_deg)``."""
    return 360.0 * u, math.degrees(math.asin(max(-1.0, min(1.0, 1.0 - 2.0 * v))))


def sample_poses(
    n: int,
    radius: float | tuple[float, float] = 1.0,
    range_u: tuple[float, float] = (0.0, 1.0),
    range_v: tuple[float, float] = (0.0, 1.0),
    hemisphere: bool = False,
    target: tuple[float, float, float] = (0.0, 0.0, 0.0),
    up: tuple[float, float, float] = (0.0, 0.0, 1.0),
    generator: torch.Generator | None = None,
    dtype: torch.dtype | None = None,
    device: torch.device | str | None = None,
) -> Float[Tensor, "n 4 4"]:
    """Random cameras on a sphere around ``target``, looking at it (GRAF's ``sample_pose``).

    ``u ~ U[range_u]``, ``v ~ U[range_v]`` (see :func:`to_sphere`), radius fixed or ``U[radius]``.

    Args:
        n: number of poses.
        radius: sphere radius, or a ``(min, max)`` range sampled uniformly per pose. (GRAF then shifts each
            ray's near/far by the radius difference; that is the caller's business.)
        range_u: azimuth range as fractions of a full turn.
        range_v: polar range (0 = top pole, 0.5 = equator, 1 = bottom pole).
        hemisphere: restrict to the upper hemisphere (clips ``range_v`` to ``[0, 0.5]``).
        target: point looked at and centre of the sphere.
        up: world up direction.
        generator: random generator.
        dtype: dtype of the poses.
        device: device of the poses.

    Returns:
        ``c2w (n, 4, 4)``.
    """
    dtype = dtype or torch.get_default_dtype()
    v_lo, v_hi = range_v
    if hemisphere:
        v_lo, v_hi = min(v_lo, 0.5), min(v_hi, 0.5)
    if not (range_u[0] <= range_u[1] and v_lo <= v_hi):
        raise ValueError(f"pose ranges must be (low, high), got range_u={range_u}, range_v={range_v}")
    rand = torch.rand(n, 3, generator=generator, dtype=dtype, device=device)  # (n, 3)
    u = range_u[0] + (range_u[1] - range_u[0]) * rand[:, 0]
    v = v_lo + (v_hi - v_lo) * rand[:, 1]
    if isinstance(radius, (tuple, list)):
        r = radius[0] + (radius[1] - radius[0]) * rand[:, 2]
    else:
        r = torch.full((n,), float(radius), dtype=dtype, device=device)
    centre = torch.as_tensor(target, dtype=dtype, device=device)
    eye = centre + r[:, None] * to_sphere(u, v)  # (n, 3)
    return look_at(eye, centre, up)
