"""The generator's rendering path: an analytic sphere against its closed form, gradients through the
renderer, the occupancy-grid fast path against the plain renderer, mesh and GIF export."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import renderers
from gen3d.export.field import extract_mesh, render_turntable, save_gif, save_mesh
from gen3d.models.graf.fast import build_occupancy_grid, render_fast
from gen3d.models.graf.field import GRAFField, RadianceField
from gen3d.models.graf.generator import Generator


class SphereField(RadianceField):
    """Constant density ``sigma`` and colour inside a ball of radius ``rho`` centred at ``(c, 0, 0)``, c = z[0]."""

    def __init__(self, rho: float, sigma: float, color=(0.2, 0.5, 0.9)):
        super().__init__()
        self.z_dim = 1
        self.rho, self.sigma = rho, sigma
        self.register_buffer("color", torch.tensor(color))
        self.dummy = torch.nn.Parameter(torch.zeros(()))

    def condition(self, z):
        return (z,)

    def query(self, x, d, cond, noise_std=0.0):
        centre = torch.cat([cond[0], torch.zeros_like(cond[0]), torch.zeros_like(cond[0])], -1)  # (..., 3)
        inside = (x - centre).norm(dim=-1) < self.rho
        sigma = torch.where(inside, self.sigma, 0.0).to(x.dtype)
        return sigma, self.color.to(x.dtype).expand(*x.shape[:-1], 3)


def _closed_form(origins, dirs, centre, rho, sigma, color, background=1.0):
    """Colour of a ray through a homogeneous ball: opacity 1 - exp(-sigma * chord)."""
    oc = origins - centre
    b = np.linalg.norm(np.cross(oc, dirs), axis=-1)  # distance from the centre to the ray's line
    chord = 2 * np.sqrt(np.clip(rho**2 - b**2, 0, None))
    opacity = 1 - np.exp(-sigma * chord)
    return opacity[..., None] * np.asarray(color) + (1 - opacity[..., None]) * background, opacity


@pytest.mark.parametrize("impl", ["torch", "native"])
@pytest.mark.parametrize("n_importance", [0, 64])
def test_sphere_field_matches_closed_form(impl, n_importance):
    rho, sigma = 0.6, 3.0
    field = SphereField(rho, sigma).double()
    gen = Generator(
        field,
        image_size=24,
        fov=30,
        radius=2.5,
        near=1.5,
        far=3.5,
        n_samples=256 if not n_importance else 64,
        n_importance=n_importance,
        background="white",
        composite_impl=impl,
        eps=0.0,
    ).double()
    z = torch.tensor([[0.0], [0.2]], dtype=torch.float64)
    c2w = gen.pose_at(torch.tensor([0.1, 0.35]), torch.tensor([0.3, 0.45]))
    with torch.no_grad():
        out = gen.render(z, c2w.double())
    K = gen.intrinsics(24).double()
    origins, dirs = renderers.get_rays(24, 24, K, c2w.double())
    for b in range(2):
        ref_rgb, ref_op = _closed_form(
            origins[b].numpy(), dirs[b].numpy(), np.array([z[b, 0].item(), 0, 0]), rho, sigma, field.color.numpy()
        )
        got = (out["rgb"][b].permute(1, 2, 0).numpy() + 1) / 2
        err = np.abs(got - ref_rgb)
        # Quadrature error: the two boundary intervals (<= 2/256 long) are misjudged, so a pixel is off by at most
        # about sigma * 2 * 2/256 ~ 0.05; measured max 0.013, mean 7e-4.
        assert err.max() < 0.03 and err.mean() < 2e-3, (err.max(), err.mean())
        np.testing.assert_allclose(out["opacity"][b].numpy(), ref_op, atol=0.03)
        assert ref_op.max() > 0.9  # the ball is actually seen


def _small_generator(impl="torch", dtype=torch.float64, n_importance=4):
    torch.manual_seed(0)
    field = GRAFField(3, 2, depth=3, width=16, skips=(0,), pos_freqs=3, dir_freqs=2)
    with torch.no_grad():
        field.sigma_head.bias.fill_(1.0)
    gen = Generator(field, image_size=16, n_samples=6, n_importance=n_importance, composite_impl=impl)
    return gen.to(dtype)


@pytest.mark.parametrize("impl", ["torch", "native"])
def test_gradients_reach_the_field_through_the_renderer(impl):
    gen = _small_generator(impl)
    z = gen.field.sample_z(2, generator=torch.Generator().manual_seed(1)).double()
    c2w = gen.sample_poses(2, generator=torch.Generator().manual_seed(2)).double()
    grid, _ = renderers.sample_patch_grid(
        2, 4, 0.5, 1.0, generator=torch.Generator().manual_seed(3), dtype=torch.float64
    )
    target = torch.randn(2, 3, 4, 4, dtype=torch.float64, generator=torch.Generator().manual_seed(4))

    def loss_fn():
        patches = gen(z, c2w, grid, generator=torch.Generator().manual_seed(5))
        return ((patches - target) ** 2).mean()

    loss = loss_fn()
    loss.backward()
    for name, p in gen.field.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name
    # Finite differences on entries of the first trunk layer (its z_s block too) and of the colour head.
    for param, idx in (
        (gen.field.trunk[0].weight, (3, 1)),
        (gen.field.trunk[0].weight, (2, -2)),
        (gen.field.rgb_head.bias, (1,)),
    ):
        h = 1e-6
        with torch.no_grad():
            param[idx] += h
            lp = loss_fn().item()
            param[idx] -= 2 * h
            lm = loss_fn().item()
            param[idx] += h
        fd = (lp - lm) / (2 * h)
        assert abs(param.grad[idx].item() - fd) < 1e-6 + 1e-4 * abs(fd), (param.grad[idx].item(), fd)


def test_patch_matches_full_image_at_scale_one():
    """A K x K patch of scale 1 and K = image size samples exactly the full image's pixel centres."""
    gen = _small_generator("torch", torch.float64, n_importance=0)
    z = gen.field.sample_z(1).double()
    c2w = gen.sample_poses(1).double()
    grid, _ = renderers.sample_patch_grid(1, 16, 1.0, 1.0, random_shift=False, dtype=torch.float64)
    with torch.no_grad():
        full = gen.render(z, c2w)["rgb"]
        origins, dirs = renderers.patch_rays(grid, 16, 16, gen.intrinsics(device="cpu").double(), c2w)
        out = gen.render_rays(z, origins.reshape(1, -1, 3), dirs.reshape(1, -1, 3), *gen._near_far(c2w), perturb=False)
    torch.testing.assert_close(out["rgb"].reshape(1, 16, 16, 3).permute(0, 3, 1, 2) * 2 - 1, full)
    # And the same grid samples a real image at its pixels.
    img = torch.randn(1, 3, 16, 16, dtype=torch.float64)
    torch.testing.assert_close(F.grid_sample(img, grid, align_corners=True), img)


class BlobField(RadianceField):
    """Smooth compact blobs: density a * max(0, 1 - |x - c|^2 / r^2)^2, c = z, colour varying in space."""

    def __init__(self):
        super().__init__()
        self.z_dim = 3
        self.dummy = torch.nn.Parameter(torch.zeros(()))

    def condition(self, z):
        return (z,)

    def query(self, x, d, cond, noise_std=0.0):
        q = ((x - cond[0]) ** 2).sum(-1) / 0.5**2
        sigma = 8.0 * torch.clamp(1 - q, min=0) ** 2
        rgb = torch.sigmoid(torch.stack([3 * x[..., 0], 3 * x[..., 1] + 1, -3 * x[..., 2]], -1))
        return sigma, rgb


@pytest.mark.parametrize("impl", ["torch", "native"])
def test_fast_grid_render_matches_plain_renderer(impl):
    """Occupancy-grid rendering (one grid per sample) vs dense stratified sampling of the same field.

    Tolerance: max |difference| < 0.02 and mean < 1e-3 in [0, 1] colour units (measured 0.0095 and 1e-4); both
    are quadratures of the same integral with steps of 2/512 (plain) and 0.01 (fast)."""
    gen = Generator(
        BlobField(),
        image_size=32,
        radius=2.5,
        near=1.5,
        far=3.5,
        n_samples=512,
        background="white",
        composite_impl=impl,
        eps=1e-4,
    )
    z = torch.tensor([[0.0, 0.0, 0.0], [0.3, -0.2, 0.1], [-0.3, 0.2, 0.0]])
    c2w = gen.sample_poses(3, generator=torch.Generator().manual_seed(0))
    grid = build_occupancy_grid(gen, z, resolution=32, threshold=1e-3)
    occ = grid.occupancy.float().mean(dim=(1, 2, 3))
    assert (occ > 0.005).all() and (occ < 0.2).all()  # each scene's grid holds its own blob only
    with torch.no_grad():
        plain = gen.render(z, c2w)
        fast = render_fast(gen, z, c2w, grid, step=0.01)
    diff = ((fast["rgb"] - plain["rgb"]) / 2).abs()
    assert diff.max() < 0.02 and diff.mean() < 1e-3, (diff.max().item(), diff.mean().item())
    assert (plain["opacity"].amax(dim=(1, 2)) > 0.5).all()
    # One code seen by several cameras shares one grid.
    one = build_occupancy_grid(gen, z[:1], resolution=32, threshold=1e-3)
    with torch.no_grad():
        shared = render_fast(gen, z[:1], c2w, one, step=0.01)["rgb"]
        plain0 = gen.render(z[:1].expand(3, -1), c2w)["rgb"]
    assert ((shared - plain0) / 2).abs().mean() < 1e-3


def test_mesh_export_is_a_valid_mesh(tmp_path):
    import trimesh

    field = SphereField(0.5, 20.0)
    mesh = extract_mesh(field, torch.tensor([0.1]), resolution=48, bound=1.0)
    path = save_mesh(mesh, tmp_path / "sphere.ply")
    back = trimesh.load(path, force="mesh")
    assert len(back.vertices) > 0 and len(back.faces) > 0
    # The indicator field's iso-surface is the ball: vertices at distance rho (within a cell) from its centre.
    r = np.linalg.norm(back.vertices - np.array([0.1, 0, 0]), axis=1)
    assert abs(r.mean() - 0.5) < 2 / 47 and back.is_watertight
    from gen3d.errors import InputError

    with pytest.raises(InputError):
        extract_mesh(SphereField(0.01, 20.0), torch.tensor([5.0]), resolution=8)  # nothing inside the cube


def test_turntable_gif(tmp_path):
    import imageio.v3 as iio

    gen = Generator(SphereField(0.5, 5.0), image_size=16, n_samples=32)
    frames = render_turntable(gen, torch.tensor([0.3]), n_frames=6)
    assert frames.shape == (6, 16, 16, 3) and frames.dtype == np.uint8
    assert not np.array_equal(frames[0], frames[3])  # the off-centre ball moves as the camera turns
    fast = render_turntable(gen, torch.tensor([0.3]), n_frames=6, fast=True, grid_resolution=32)
    assert np.abs(fast.astype(int) - frames.astype(int)).mean() < 4
    path = save_gif(frames, tmp_path / "turn.gif")
    back = iio.imread(path, index=None)
    assert back.shape[0] == 6 and back.shape[1:3] == (16, 16)
    assert math.isclose(float(frames[0].mean()), float(back[0][..., :3].mean()), abs_tol=8)


def test_turntable_poses_sweep_the_pose_range():
    from gen3d.export.field import turntable_poses

    gen = Generator(SphereField(0.5, 5.0), radius=(2.0, 3.0), near=1.2, range_v=(0.2, 0.4))
    poses = turntable_poses(gen, 8)
    eye = poses[:, :3, 3]
    torch.testing.assert_close(eye.norm(dim=-1), torch.full((8,), 3.0))  # the largest radius
    azimuth = torch.atan2(eye[:, 1], eye[:, 0]) % (2 * math.pi)
    torch.testing.assert_close(azimuth, torch.arange(8) * 2 * math.pi / 8, atol=1e-5, rtol=0)  # a full turn
    torch.testing.assert_close(1 - eye[:, 2] / 3, torch.full((8,), 0.6))  # v = 0.3 -> cos(polar) = 0.4
    torch.testing.assert_close(poses[:, :3, 2], eye / 3)  # looking at the origin (camera z = -view direction)
    pig = Generator(SphereField(0.5, 5.0), radius=1.0, near=0.88, far=1.12, range_u=(0, 0), range_v=(0.5, 0.5),
                    pose_dist="gaussian", yaw_std=0.3)  # fmt: skip
    eye = turntable_poses(pig, 5)[:, :3, 3]
    torch.testing.assert_close(torch.atan2(eye[:, 1], eye[:, 0]), torch.linspace(-0.6, 0.6, 5))  # +-2 sigma of yaw


def test_camera_distributions_and_radius_shift():
    gen = Generator(SphereField(0.5, 5.0), radius=(9.5, 10.5), near=7.5, far=12.5, range_u=(0, 0.25),
                    range_v=(0.32898992833716556, 0.45642212862617093))  # fmt: skip
    c2w = gen.sample_poses(2000, generator=torch.Generator().manual_seed(0))
    r = c2w[:, :3, 3].norm(dim=-1)
    assert r.min() >= 9.5 and r.max() <= 10.5
    polar = torch.rad2deg(torch.acos(c2w[:, 2, 3] / r))
    assert polar.min() > 69.9 and polar.max() < 85.1  # GRAF's CelebA range: 70..85 degrees
    near, far = gen._near_far(gen.pose_at(0.1, 0.4, radius=10.0))
    torch.testing.assert_close((near.item(), far.item()), (7.0, 12.0))  # shifted by r_max - r = 0.5, as GRAF
    pig = Generator(SphereField(0.5, 5.0), radius=1.0, near=0.88, far=1.12, range_u=(0, 0), range_v=(0.5, 0.5),
                    pose_dist="gaussian", yaw_std=0.3, pitch_std=0.155)  # fmt: skip
    eye = pig.sample_poses(4000, generator=torch.Generator().manual_seed(1))[:, :3, 3]
    yaw, polar = torch.atan2(eye[:, 1], eye[:, 0]), torch.acos(eye[:, 2])
    assert abs(yaw.std().item() - 0.3) < 0.02 and abs(polar.std().item() - 0.155) < 0.01
    assert abs(yaw.mean().item()) < 0.02 and abs(polar.mean().item() - math.pi / 2) < 0.01
