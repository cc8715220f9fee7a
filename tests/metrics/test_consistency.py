"""Multi-view consistency (warp error) against analytic renders of textured spheres."""

from __future__ import annotations

import math
from collections.abc import Callable

import pytest
import torch

import renderers
from gen3d.metrics.consistency import _pixel_dirs, _project, symmetric_warp_error, warp_error

SIZE, FOV, RADIUS = 64, 30.0, 2.5
POLAR = 66.0  # degrees from +z, the middle of the GRAF shapes' range

ColourFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]  # (points (N, 3), eye (3,)) -> (N, 3)


def camera(azimuth_deg: float, polar_deg: float = POLAR, radius: float = RADIUS) -> torch.Tensor:
    """float64 camera-to-world (4, 4) on a z-up sphere looking at the origin (OpenGL axes)."""
    a, p = math.radians(azimuth_deg), math.radians(polar_deg)
    eye = radius * torch.tensor(
        [math.sin(p) * math.cos(a), math.sin(p) * math.sin(a), math.cos(p)], dtype=torch.float64
    )
    z = eye / eye.norm()
    x = torch.linalg.cross(torch.tensor([0.0, 0.0, 1.0], dtype=torch.float64), z)
    x = x / x.norm()
    c2w = torch.eye(4, dtype=torch.float64)
    c2w[:3, 0], c2w[:3, 1], c2w[:3, 2], c2w[:3, 3] = x, torch.linalg.cross(z, x), z, eye
    return c2w


def intrinsics(size: int = SIZE, fov: float = FOV) -> torch.Tensor:
    f = 0.5 * size / math.tan(math.radians(fov) / 2)
    return torch.tensor([[f, 0.0, size / 2], [0.0, f, size / 2], [0.0, 0.0, 1.0]], dtype=torch.float64)


def render_spheres(
    c2w: torch.Tensor, spheres: list[tuple[tuple[float, float, float], float, ColourFn]], size: int = SIZE
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Ray-traced spheres (float64): rgb (3, H, W) on white, distance along unit rays (H, W), hit mask (H, W)."""
    f = 0.5 * size / math.tan(math.radians(FOV) / 2)
    j, i = torch.meshgrid(torch.arange(size, dtype=torch.float64) + 0.5, torch.arange(size, dtype=torch.float64) + 0.5,
                          indexing="ij")  # fmt: skip
    d = torch.stack([(i - size / 2) / f, -(j - size / 2) / f, -torch.ones_like(i)], -1).reshape(-1, 3) @ c2w[:3, :3].T
    d = d / d.norm(dim=-1, keepdim=True)  # (N, 3)
    eye = c2w[:3, 3]
    best = torch.full((d.shape[0],), math.inf, dtype=torch.float64)
    rgb = torch.ones(d.shape[0], 3, dtype=torch.float64)
    for centre, radius, colour in spheres:
        oc = eye - torch.tensor(centre, dtype=torch.float64)
        b = d @ oc
        disc = b * b - (oc @ oc - radius**2)
        t = -b - disc.clamp_min(0).sqrt()
        hit = (disc >= 0) & (t > 0) & (t < best)
        best = torch.where(hit, t, best)
        rgb = torch.where(hit[:, None], colour(eye + t[:, None] * d, eye), rgb)
    mask = torch.isfinite(best)
    dist = torch.where(mask, best, torch.zeros_like(best))
    return rgb.T.reshape(3, size, size), dist.reshape(size, size), mask.reshape(size, size)


def texture(points: torch.Tensor, eye: torch.Tensor) -> torch.Tensor:
    """A view-independent colour: a smooth function of the world position."""
    return 0.5 + 0.5 * torch.sin(3.0 * points + torch.tensor([0.0, 1.0, 2.0], dtype=points.dtype))


def view_dependent(points: torch.Tensor, eye: torch.Tensor) -> torch.Tensor:
    """The texture plus a term that follows the camera."""
    return 0.5 + 0.25 * torch.sin(3.0 * points) + 0.25 * torch.sin(3.0 * eye)


def dark(points: torch.Tensor, eye: torch.Tensor) -> torch.Tensor:
    return torch.full_like(points, 0.1)


def pair(spheres, azimuth_a: float = 0.0, azimuth_b: float = 20.0, size: int = SIZE):
    """Arguments of warp_error for two views of the same spheres."""
    c2w_a, c2w_b = camera(azimuth_a), camera(azimuth_b)
    return (
        *render_spheres(c2w_a, spheres, size),
        c2w_a,
        *render_spheres(c2w_b, spheres, size),
        c2w_b,
        intrinsics(size),
    )


def test_pixel_rays_and_projection_follow_renderers_conventions():
    H, W = 5, 8  # not square: u runs along the width, v along the height
    K = renderers.intrinsics(H, W, 40.0, dtype=torch.float64)
    c2w = camera(37.0, 50.0)[None]
    origins, dirs = renderers.get_rays(H, W, K, c2w)
    torch.testing.assert_close(_pixel_dirs(H, W, K[None], c2w), dirs, rtol=0, atol=1e-12)
    points = origins + 1.7 * dirs  # (1, H, W, 3)
    uv, depth = _project(points.reshape(1, -1, 3), K[None], c2w)
    j, i = torch.meshgrid(torch.arange(H, dtype=torch.float64), torch.arange(W, dtype=torch.float64), indexing="ij")
    torch.testing.assert_close(uv[0], torch.stack([i, j], -1).reshape(-1, 2) + 0.5, rtol=0, atol=1e-9)
    assert bool((depth > 0).all())
    _, behind = _project(c2w[:, None, :3, 3] + c2w[:, None, :3, 2], K[None], c2w)  # a point behind the camera
    assert float(behind) < 0


def test_view_warped_into_itself_is_reproduced_exactly():
    """Same camera: every pixel lands on its own centre, so even per-pixel noise is sampled back unchanged."""
    g = torch.Generator().manual_seed(0)
    rgb = torch.rand(3, 12, 16, generator=g, dtype=torch.float64)
    dist = 2.0 + torch.rand(12, 16, generator=g, dtype=torch.float64)
    mask = torch.ones(12, 16, dtype=torch.bool)
    c2w, K = camera(40.0), renderers.intrinsics(12, 16, FOV, dtype=torch.float64)
    res = warp_error(rgb, dist, mask, c2w, rgb, dist, mask, c2w, K)
    assert float(res.error) < 1e-9 and float(res.coverage) == 1.0
    shifted = warp_error(rgb, dist, mask, c2w, rgb.roll(1, dims=-1), dist, mask, c2w, K)
    assert float(shifted.error) > 0.2


def test_view_independent_texture_warps_with_near_zero_error():
    res = symmetric_warp_error(*pair([((0.0, 0.0, 0.0), 0.5, texture)]))
    assert float(res.error) < 0.01
    assert 0.5 < float(res.coverage) <= 1.0
    assert res.used.shape == (2, SIZE, SIZE)
    one_way = warp_error(*pair([((0.0, 0.0, 0.0), 0.5, texture)], azimuth_b=-25.0))
    assert float(one_way.error) < 0.01 and float(one_way.coverage) > 0.5


def test_background_never_leaks_into_the_lookup():
    """A uniformly dark sphere on white: any blend with a background pixel at the silhouette would show."""
    res = symmetric_warp_error(*pair([((0.0, 0.0, 0.0), 0.5, dark)], azimuth_b=30.0, size=32))
    assert float(res.error) < 1e-9 and float(res.coverage) > 0.5


def test_view_dependent_colour_is_penalised():
    consistent = float(symmetric_warp_error(*pair([((0.0, 0.0, 0.0), 0.5, texture)])).error)
    res = symmetric_warp_error(*pair([((0.0, 0.0, 0.0), 0.5, view_dependent)]))
    assert float(res.error) > 0.05
    assert float(res.error) > 10 * consistent
    assert float(res.coverage) > 0.5  # the geometry is the same: as many pixels are compared


def test_misplaced_geometry_is_not_matched():
    """Colour that follows the camera as if glued to the image (a 2D generator) fails too."""
    spheres = [((0.0, 0.0, 0.0), 0.5, texture)]
    rgb_a, dist_a, mask_a, c2w_a, rgb_b, dist_b, mask_b, c2w_b, K = pair(spheres)
    same_image = warp_error(rgb_a, dist_a, mask_a, c2w_a, rgb_a, dist_a, mask_a, c2w_b, K)
    assert float(same_image.error) > 0.05


def occluded_scene():
    """A textured sphere and a dark one in front of it as camera B sees it, away from A's view of that part."""
    eye_b = camera(25.0)[:3, 3]
    small = tuple((0.45 * eye_b).tolist())
    return [((0.0, 0.0, 0.0), 0.5, texture), (small, 0.15, dark)], small


def hidden_from_b(points: torch.Tensor, eye_b: torch.Tensor, centre: torch.Tensor, radius: float) -> torch.Tensor:
    """Points whose segment to camera B passes well inside the occluding sphere (margin 20 % of its radius)."""
    seg = points - eye_b  # (N, 3)
    s = (((centre - eye_b) @ seg.T) / (seg * seg).sum(-1)).clamp(0, 1)  # closest point parameter
    closest = eye_b + s[:, None] * seg
    return (closest - centre).norm(dim=-1) < 0.8 * radius


def test_points_hidden_in_b_are_not_counted():
    spheres, small = occluded_scene()
    args = pair(spheres, 0.0, 25.0)
    rgb_a, dist_a, mask_a, c2w_a, _, _, _, c2w_b, K = args
    dirs = _pixel_dirs(SIZE, SIZE, K[None], c2w_a[None])[0]  # (H, W, 3)
    points = (c2w_a[:3, 3] + dist_a[..., None] * dirs).reshape(-1, 3)
    hidden = hidden_from_b(points, c2w_b[:3, 3], torch.tensor(small, dtype=torch.float64), 0.15)
    hidden = hidden.reshape(SIZE, SIZE) & mask_a
    assert int(hidden.sum()) > 20  # the scene does hide part of what A sees

    checked = warp_error(*args)
    assert not bool((checked.used & hidden).any())
    assert float(checked.error) < 0.01
    unchecked = warp_error(*args, depth_tol=math.inf)
    assert bool(unchecked.used[hidden].all())  # only the occlusion test kept them out
    assert float(unchecked.error) > 0.02


def test_batched_matches_unbatched_and_symmetric_pools_both_directions():
    args_1 = pair([((0.0, 0.0, 0.0), 0.5, texture)], 10.0, 30.0, size=24)
    args_2 = pair([((0.0, 0.0, 0.0), 0.5, view_dependent)], 200.0, 185.0, size=24)
    batched = [torch.stack([x, y]) for x, y in zip(args_1, args_2, strict=True)]
    res = warp_error(*batched)
    for k, args in enumerate((args_1, args_2)):
        single = warp_error(*args)
        torch.testing.assert_close(res.error[k], single.error)
        torch.testing.assert_close(res.coverage[k], single.coverage)
        assert torch.equal(res.used[k], single.used)
    ab, ba = warp_error(*args_2), warp_error(*args_2[4:8], *args_2[:4], args_2[8])
    sym = symmetric_warp_error(*args_2)
    n_ab, n_ba = ab.used.sum(), ba.used.sum()
    torch.testing.assert_close(sym.error, (ab.error * n_ab + ba.error * n_ba) / (n_ab + n_ba))
    assert torch.equal(sym.used, torch.stack([ab.used, ba.used]))


def test_nothing_seen_gives_nan_error_and_zero_coverage():
    rgb, dist, mask, c2w, *_ = pair([((0.0, 0.0, 0.0), 0.5, texture)], size=16)
    empty = torch.zeros_like(mask)
    res = warp_error(rgb, dist, mask, c2w, rgb, dist, empty, camera(15.0), intrinsics(16))
    assert math.isnan(float(res.error)) and float(res.coverage) == 0.0


def _bad(name: str):
    rgb, dist, mask, c2w, *_ = pair([((0.0, 0.0, 0.0), 0.5, texture)], size=8)
    args = dict(rgb_a=rgb, dist_a=dist, mask_a=mask, c2w_a=c2w, rgb_b=rgb, dist_b=dist, mask_b=mask, c2w_b=c2w,
                K=intrinsics(8))  # fmt: skip
    bad = {
        "channels": dict(rgb_a=rgb[:2]),
        "dist": dict(dist_a=dist[:, :4]),
        "mask": dict(mask_b=mask[None]),
        "c2w": dict(c2w_b=c2w[:3]),
        "K": dict(K=torch.eye(4, dtype=torch.float64)),
        "batch": dict(rgb_b=rgb[None], dist_b=dist[None], mask_b=mask[None], c2w_b=c2w[None]),
        "rank": dict(rgb_a=rgb[0]),
        "size": dict(rgb_b=rgb[:, :4, :4], dist_b=dist[:4, :4], mask_b=mask[:4, :4]),
        "tol": dict(depth_tol=0.0),
    }[name]
    return {**args, **bad}


@pytest.mark.parametrize("name", ["channels", "dist", "mask", "c2w", "K", "batch", "rank", "size", "tol"])
@pytest.mark.parametrize("fn", [warp_error, symmetric_warp_error])
def test_bad_inputs_raise(fn, name):
    with pytest.raises(ValueError):
        fn(**_bad(name))
