"""Multi-view 3D consistency of GRAF / pi-GAN generators, and of the ground-truth renders they learn from.

Both drivers score scenes with :func:`gen3d.metrics.consistency.symmetric_warp_error` on pairs of views taken
by the same rule (:func:`camera_pairs`): a camera at a random azimuth ``u ~ U[range_u]`` and the middle polar
angle of ``range_v``, and a second one turned about the up axis by a random angle in ``angle_range`` degrees,
both on the sphere of the largest camera radius, looking at the origin.

- :func:`generator_consistency`: random latent codes rendered by a generator; a pixel sees the scene where its
  opacity exceeds 0.5, at the distance ``depth / opacity`` (the mean distance of the light it collects).
- :func:`data_consistency`: the procedural shapes rendered as :mod:`gen3d.data.multiview` renders training data
  (Lambert shading under a light fixed in the world, so view-independent), with the same rule on the rays of
  each pixel: seen where more than half of them hit, at their mean hit distance. This is the floor of the score
  (resampling, anti-aliasing and 8-bit quantisation), the value a perfect generator of this data would reach.

Each returns ``{"consistency", "consistency_std", "coverage", "n", "n_scored"}``: the mean and (population)
standard deviation over scenes of the per-scene error in [0, 1] colour units, the mean fraction of seen pixels
compared, the number of scenes and the number with at least one compared pixel (the others have no error
and count in ``coverage`` only).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np
import torch

import renderers
from gen3d.data.multiview import DEFAULT_FOV, DEFAULT_RADIUS, DEFAULT_RANGE_U, DEFAULT_RANGE_V, shape_mesh_z_up
from gen3d.metrics.consistency import DEFAULT_DEPTH_TOL, symmetric_warp_error

if TYPE_CHECKING:
    from gen3d.models.graf.generator import Generator

DEFAULT_ANGLES = (10.0, 30.0)  # azimuth step between the two views, degrees
_MASK_LEVEL = 0.5  # opacity (or fraction of hit rays) above which a pixel sees the scene


def camera_pairs(
    n: int,
    seed: int = 0,
    range_u: Sequence[float] = DEFAULT_RANGE_U,
    range_v: Sequence[float] = DEFAULT_RANGE_V,
    angle_range: Sequence[float] = DEFAULT_ANGLES,
) -> tuple[np.ndarray, np.ndarray, float]:
    """GRAF ``(u, v)`` of ``n`` camera pairs: random azimuths, the middle polar angle, a random azimuth step.

    Args:
        n: number of pairs.
        seed: seed of the azimuths and steps.
        range_u: azimuth range of the first cameras (fractions of a turn).
        range_v: GRAF ``v`` range; both cameras sit at its midpoint.
        angle_range: ``(min, max)`` azimuth step in degrees.

    Returns:
        ``u_a`` (n,), ``u_b = u_a + step / 360`` (n,) and ``v``.
    """
    lo, hi = (float(a) for a in angle_range)
    if n < 1 or not 0 <= lo <= hi < 180:
        raise ValueError(f"need n >= 1 and 0 <= min <= max < 180 degrees, got n={n}, angle_range={angle_range}")
    rng = np.random.default_rng(seed)
    u_a = rng.uniform(float(range_u[0]), float(range_u[1]), n)
    step = rng.uniform(lo, hi, n) / 360.0
    return u_a, u_a + step, 0.5 * (float(range_v[0]) + float(range_v[1]))


def _summary(errors: torch.Tensor, coverage: torch.Tensor) -> dict[str, float]:
    """Scene statistics of per-scene errors (NaN: nothing compared) and coverages."""
    scored = errors[torch.isfinite(errors)].double()
    return {
        "consistency": float(scored.mean()) if len(scored) else math.nan,
        "consistency_std": float(scored.std(correction=0)) if len(scored) else math.nan,
        "coverage": float(coverage.double().mean()),
        "n": len(errors),
        "n_scored": len(scored),
    }


def _field_view(out: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Colour in [0, 1], distance and mask of a :meth:`Generator.render` output."""
    opacity = out["opacity"]  # (B, H, W)
    rgb = ((out["rgb"] + 1.0) / 2.0).clamp(0.0, 1.0)  # (B, 3, H, W)
    return rgb, out["depth"] / opacity.clamp_min(1e-6), opacity > _MASK_LEVEL


def generator_consistency(
    generator: Generator,
    n_scenes: int = 64,
    size: int | None = None,
    seed: int = 0,
    angle_range: Sequence[float] = DEFAULT_ANGLES,
    batch_size: int = 8,
    depth_tol: float = DEFAULT_DEPTH_TOL,
) -> dict[str, float]:
    """Multi-view consistency of a generator's scenes (see the module docstring).

    Args:
        generator: the generator (evaluation rendering: bin-centre samples, no density noise).
        n_scenes: number of random codes, each rendered from one camera pair.
        size: image side (default the training size).
        seed: seed of the codes and the cameras (the cameras match :func:`data_consistency`'s ``pose_seed``).
        angle_range: ``(min, max)`` azimuth step between the two views, degrees.
        batch_size: scenes rendered at once.
        depth_tol: relative distance tolerance of the occlusion test.

    Returns:
        ``{"consistency", "consistency_std", "coverage", "n", "n_scored"}``.
    """
    device = next(generator.parameters()).device
    size = size or generator.image_size
    z = generator.field.sample_z(n_scenes, generator=torch.Generator().manual_seed(seed)).to(device)
    u_a, u_b, v = camera_pairs(n_scenes, seed, generator.range_u, generator.range_v, angle_range)
    c2w_a = generator.pose_at(torch.from_numpy(u_a), v).to(device)  # (n, 4, 4) at the largest radius
    c2w_b = generator.pose_at(torch.from_numpy(u_b), v).to(device)
    K = generator.intrinsics(size, device=device)
    errors, coverage = [], []
    with torch.no_grad():
        for start in range(0, n_scenes, batch_size):
            part = slice(start, start + batch_size)
            view_a = _field_view(generator.render(z[part], c2w_a[part], size))
            view_b = _field_view(generator.render(z[part], c2w_b[part], size))
            res = symmetric_warp_error(*view_a, c2w_a[part], *view_b, c2w_b[part], K, depth_tol)
            errors.append(res.error.cpu())
            coverage.append(res.coverage.cpu())
    return _summary(torch.cat(errors), torch.cat(coverage))


def _mesh_view(
    mesh: tuple[np.ndarray, np.ndarray, np.ndarray],
    u: float,
    v: float,
    size: int,
    radius: float,
    fov: float,
    supersample: int,
) -> tuple[torch.Tensor, ...]:
    """Colour in [0, 1], distance, mask and camera of one ground-truth render, float64."""
    from gen3d.data.multiview import look_at_c2w, render_mesh, sphere_point

    verts, faces, albedo = mesh
    c2w = look_at_c2w(radius * sphere_point(u, v))
    image, distance, opacity = render_mesh(
        verts, faces, c2w, size, fov, albedo, supersample=supersample, return_distance=True
    )
    rgb = torch.from_numpy(image).permute(2, 0, 1).double() / 255.0  # (3, H, W): the 8-bit training image
    return rgb, torch.from_numpy(distance), torch.from_numpy(opacity > _MASK_LEVEL), torch.from_numpy(c2w)


def data_consistency(
    classes: Sequence[str] | str | None = ("chair", "car", "mug"),
    per_class: int = 4,
    first_index: int = 0,
    seed: int = 0,
    size: int = 64,
    *,
    pose_seed: int = 0,
    angle_range: Sequence[float] = DEFAULT_ANGLES,
    radius: float = DEFAULT_RADIUS,
    fov: float = DEFAULT_FOV,
    range_u: Sequence[float] = DEFAULT_RANGE_U,
    range_v: Sequence[float] = DEFAULT_RANGE_V,
    supersample: int = 2,
    depth_tol: float = DEFAULT_DEPTH_TOL,
) -> dict[str, float]:
    """Multi-view consistency of ground-truth renders of the procedural shapes: the floor of the score.

    Args:
        classes: procedural class names (list, comma-separated string, or None / "all").
        per_class: shapes per class (indices ``first_index .. first_index + per_class - 1``).
        first_index: index of the first shape of each class.
        seed: dataset seed (shapes and colours, as :func:`gen3d.data.multiview.render_multiview`).
        size: image side in pixels.
        pose_seed: seed of the camera pairs (:func:`generator_consistency`'s ``seed`` gives the same pairs).
        angle_range: ``(min, max)`` azimuth step between the two views, degrees.
        radius: camera distance to the origin.
        fov: field of view in degrees.
        range_u: azimuth range of the first cameras.
        range_v: GRAF ``v`` range; the cameras sit at its midpoint.
        supersample: rays per pixel side (anti-aliasing, as the training renders).
        depth_tol: relative distance tolerance of the occlusion test.

    Returns:
        ``{"consistency", "consistency_std", "coverage", "n", "n_scored"}``.
    """
    from gen3d.data.shapes import check_classes

    scenes = [(name, i) for name in check_classes(classes) for i in range(first_index, first_index + per_class)]
    u_a, u_b, v = camera_pairs(len(scenes), pose_seed, range_u, range_v, angle_range)
    K = renderers.intrinsics(size, size, fov, dtype=torch.float64)
    errors, coverage = [], []
    for (name, index), ua, ub in zip(scenes, u_a, u_b, strict=True):
        mesh = shape_mesh_z_up(name, index, seed)
        view_a = _mesh_view(mesh, float(ua), v, size, radius, fov, supersample)
        view_b = _mesh_view(mesh, float(ub), v, size, radius, fov, supersample)
        res = symmetric_warp_error(*view_a, *view_b, K, depth_tol)
        errors.append(res.error)
        coverage.append(res.coverage)
    return _summary(torch.stack(errors), torch.stack(coverage))
