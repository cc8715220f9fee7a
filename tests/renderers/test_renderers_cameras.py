"""Cameras and rays: intrinsics, look-at frames, GRAF pose sampling, full-image and patch rays."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from scipy import stats

from renderers import (
    angles_to_uv,
    fov_to_focal,
    get_rays,
    intrinsics,
    look_at,
    patch_rays,
    project_points,
    sample_patch_grid,
    sample_patch_rays,
    sample_poses,
    to_sphere,
    uv_to_angles,
)


def test_fov_to_focal_closed_form():
    assert fov_to_focal(90.0, 64) == pytest.approx(32.0)
    assert fov_to_focal(60.0, 100) == pytest.approx(50.0 * math.sqrt(3))
    K = intrinsics(30, 40, 90.0, dtype=torch.float64)
    torch.testing.assert_close(K, torch.tensor([[20.0, 0, 20], [0, 20, 15], [0, 0, 1]], dtype=torch.float64))


@pytest.mark.parametrize(
    "eye",
    [(3.0, 0.0, 0.0), (1.0, -2.0, 0.5), (0.0, 0.0, 4.0), (0.0, 0.0, -2.0), (1e-9, 0.0, 1.0)],
)
def test_look_at_orthonormal_and_pointing(eye):
    eye_t = torch.tensor([eye], dtype=torch.float64)
    target = torch.tensor([0.2, -0.1, 0.3], dtype=torch.float64)
    c2w = look_at(eye_t, target)[0]
    rot = c2w[:3, :3]
    torch.testing.assert_close(rot.T @ rot, torch.eye(3, dtype=torch.float64), atol=1e-12, rtol=0)
    assert torch.linalg.det(rot) == pytest.approx(1.0)
    torch.testing.assert_close(c2w[:3, 3], eye_t[0])
    # OpenGL: the camera looks down its -z axis, i.e. towards the target.
    forward = -rot[:, 2]
    to_target = (target - eye_t[0]) / (target - eye_t[0]).norm()
    torch.testing.assert_close(forward, to_target, atol=1e-12, rtol=0)
    assert torch.equal(c2w[3], torch.tensor([0.0, 0, 0, 1], dtype=torch.float64))


def test_centre_ray_hits_look_at_point():
    target = torch.tensor([0.3, -0.2, 0.1], dtype=torch.float64)
    eye = torch.tensor([[2.0, 1.0, 1.5], [-1.0, 2.0, -0.5]], dtype=torch.float64)
    c2w = look_at(eye, target)
    H, W = 31, 45  # odd: pixel (15, 22) is centred on the principal point
    origins, dirs = get_rays(H, W, intrinsics(H, W, 40.0, dtype=torch.float64), c2w)
    o, d = origins[:, 15, 22], dirs[:, 15, 22]
    torch.testing.assert_close(d.norm(dim=-1), torch.ones(2, dtype=torch.float64))
    t = ((target - o) * d).sum(-1, keepdim=True)
    torch.testing.assert_close(o + t * d, target.expand(2, 3), atol=1e-12, rtol=0)
    # Image right is camera +x, image up is camera +y.
    assert ((dirs[:, 15, -1] - dirs[:, 15, 0]) * c2w[:, :3, 0]).sum(-1).min() > 0
    assert ((dirs[:, 0, 22] - dirs[:, -1, 22]) * c2w[:, :3, 1]).sum(-1).min() > 0


def test_rays_reproject_to_their_pixels():
    c2w = look_at(torch.tensor([[1.0, 2.0, 2.0]]))
    K = intrinsics(12, 16, 55.0)
    origins, dirs = get_rays(12, 16, K, c2w)
    points = (origins + 2.5 * dirs).reshape(1, -1, 3)
    uv, depth = project_points(points, c2w, K)
    v, u = torch.meshgrid(torch.arange(12) + 0.5, torch.arange(16) + 0.5, indexing="ij")
    torch.testing.assert_close(uv[0], torch.stack([u, v], -1).reshape(-1, 2), atol=1e-4, rtol=0)
    assert (depth > 0).all()
    # Unnormalised directions have camera-frame z = -1.
    _, d_raw = get_rays(12, 16, K, c2w, normalize=False)
    torch.testing.assert_close((d_raw @ c2w[0, :3, :3])[..., 2], -torch.ones(1, 12, 16))


def test_graf_sphere_parameterisation():
    u = torch.tensor([0.0, 0.25, 0.5, 0.1])
    v = torch.tensor([0.0, 0.5, 0.5, 1.0])
    p = to_sphere(u, v)
    torch.testing.assert_close(
        p[:3], torch.tensor([[0.0, 0.0, 1.0], [0.0, 1.0, 0.0], [-1.0, 0.0, 0.0]]), atol=1e-6, rtol=0
    )
    torch.testing.assert_close(p[3], torch.tensor([0.0, 0.0, -1.0]), atol=1e-6, rtol=0)
    assert angles_to_uv(90.0, 30.0) == pytest.approx((0.25, 0.25))
    assert uv_to_angles(*angles_to_uv(123.0, -20.0)) == pytest.approx((123.0, -20.0))


def test_sample_poses_ranges_and_distribution():
    gen = torch.Generator().manual_seed(0)
    c2w = sample_poses(
        4000, radius=(2.0, 3.0), range_u=(0.0, 0.25), hemisphere=True, generator=gen, dtype=torch.float64
    )
    eye = c2w[:, :3, 3]
    r = eye.norm(dim=-1)
    assert r.min() >= 2.0 and r.max() <= 3.0
    assert (eye[:, 2] >= 0).all()  # upper hemisphere
    azimuth = torch.atan2(eye[:, 1], eye[:, 0])
    assert azimuth.min() >= -1e-9 and azimuth.max() <= math.pi / 2 + 1e-9  # u in [0, 0.25]
    # Uniform on the sphere's area: z / r ~ U[0, 1] on the upper hemisphere; radius ~ U[2, 3].
    assert stats.kstest((eye[:, 2] / r).numpy(), "uniform").pvalue > 1e-3
    assert stats.kstest((r - 2.0).numpy(), "uniform").pvalue > 1e-3
    # Cameras look at the target.
    torch.testing.assert_close(-c2w[:, :3, 2], -eye / r[:, None], atol=1e-12, rtol=0)
    gen = torch.Generator().manual_seed(0)
    again = sample_poses(
        4000, radius=(2.0, 3.0), range_u=(0.0, 0.25), hemisphere=True, generator=gen, dtype=torch.float64
    )
    assert torch.equal(again, c2w)  # seeded: reproducible


def test_patch_grid_scale_and_shift():
    gen = torch.Generator().manual_seed(0)
    grid, scale = sample_patch_grid(500, 8, min_scale=0.3, max_scale=0.9, generator=gen)
    assert grid.shape == (500, 8, 8, 2)
    assert scale.min() >= 0.3 and scale.max() <= 0.9
    assert grid.abs().max() <= 1.0 + 1e-6  # shifted patches stay inside the image
    extent = grid[:, 0, -1, 0] - grid[:, 0, 0, 0]  # x varies along columns
    torch.testing.assert_close(extent, 2 * scale)
    torch.testing.assert_close(grid[:, -1, 0, 1] - grid[:, 0, 0, 1], 2 * scale)
    centre = grid.mean(dim=(1, 2))
    assert (centre.abs() <= (1 - scale)[:, None] + 1e-6).all()
    assert stats.kstest(((scale - 0.3) / 0.6).numpy(), "uniform").pvalue > 1e-3
    fixed, s = sample_patch_grid(2, 3, random_scale=False, random_shift=False, max_scale=1.0)
    torch.testing.assert_close(fixed[0, :, :, 0], torch.tensor([-1.0, 0.0, 1.0]).expand(3, 3))
    assert torch.equal(s, torch.ones(2))


def test_patch_rays_match_grid_sample_of_full_rays():
    """Rays of a patch equal the full-image rays bilinearly sampled at the patch grid (align_corners=True)."""
    H, W = 20, 28
    c2w = sample_poses(3, radius=3.0, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    K = intrinsics(H, W, 45.0, dtype=torch.float64)
    _, full_dirs = get_rays(H, W, K, c2w, normalize=False)  # linear in the pixel coordinates
    patch = sample_patch_rays(H, W, K, c2w, 6, generator=torch.Generator().manual_seed(2), normalize=False)
    sampled = F.grid_sample(full_dirs.permute(0, 3, 1, 2), patch.grid, mode="bilinear", align_corners=True)
    torch.testing.assert_close(patch.dirs, sampled.permute(0, 2, 3, 1), atol=1e-10, rtol=0)
    torch.testing.assert_close(patch.origins, c2w[:, None, None, :3, 3].expand_as(patch.origins))
    _, unit = patch_rays(patch.grid, H, W, K, c2w)
    torch.testing.assert_close(unit.norm(dim=-1), torch.ones(3, 6, 6, dtype=torch.float64))
    np.testing.assert_allclose(patch.scale.numpy() >= 0.25, True)
