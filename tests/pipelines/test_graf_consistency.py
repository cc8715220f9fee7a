"""Multi-view consistency drivers: a generator of a known sphere, a tiny GRAF generator, the ground-truth floor."""

from __future__ import annotations

import math
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from torch import nn

import renderers
from gen3d.data.multiview import DEFAULT_RANGE_V, look_at_c2w, pixel_rays, render_mesh
from gen3d.metrics.consistency import symmetric_warp_error
from gen3d.models.graf.build import build_generator
from gen3d.pipelines.graf_consistency import camera_pairs, data_consistency, generator_consistency

TINY_GRAF = dict(
    field="graf", z_dim=8, z_app_dim=4, net_depth=2, net_width=16, skips=[], pos_freqs=2, dir_freqs=1, image_size=16,
    fov=30.0, radius=2.5, near=1.5, far=3.5, range_u=[0.0, 1.0], range_v=list(DEFAULT_RANGE_V), pose_dist="uniform",
    yaw_std=0.3, pitch_std=0.155, n_samples=6, n_importance=0, background="white", composite_impl="auto",
)  # fmt: skip


class SphereGenerator(nn.Module):
    """A textured sphere behind the generator's interface, with a partial opacity as a radiance field has.

    ``depth`` is the distance times the opacity, as a volume renderer returns it; ``view_dependent`` adds a colour
    term that follows the camera.
    """

    def __init__(self, view_dependent: bool = False, opacity: float = 0.8):
        super().__init__()
        self.anchor = nn.Parameter(torch.zeros(()))  # gives the module a device
        self.image_size, self.fov, self.max_radius = 32, 30.0, 2.5
        self.range_u, self.range_v = (0.0, 1.0), DEFAULT_RANGE_V
        self.field = SimpleNamespace(sample_z=lambda n, generator=None: torch.randn(n, 4, generator=generator))
        self.view_dependent, self.opacity = view_dependent, opacity

    def intrinsics(self, size: int | None = None, device=None) -> torch.Tensor:
        size = size or self.image_size
        return renderers.intrinsics(size, size, self.fov, device=device)

    def pose_at(self, u, v, radius: float | None = None) -> torch.Tensor:
        u_t, v_t = torch.broadcast_tensors(torch.as_tensor(u, dtype=torch.float32), torch.as_tensor(v))
        return renderers.look_at((radius or self.max_radius) * renderers.to_sphere(u_t, v_t.to(torch.float32)))

    def render(self, z: torch.Tensor, c2w: torch.Tensor, size: int | None = None) -> dict[str, torch.Tensor]:
        size = size or self.image_size
        origins, dirs = renderers.get_rays(size, size, self.intrinsics(size), c2w)  # (B, H, W, 3)
        b = (dirs * origins).sum(-1)
        disc = b * b - ((origins * origins).sum(-1) - 0.25)  # sphere of radius 0.5 at the origin
        hit = disc > 0
        t = torch.where(hit, -b - disc.clamp_min(0).sqrt(), torch.zeros_like(b))  # (B, H, W)
        colour = 0.5 + 0.5 * torch.sin(3.0 * (origins + t[..., None] * dirs))  # (B, H, W, 3)
        if self.view_dependent:
            colour = 0.5 * colour + 0.25 + 0.25 * torch.sin(3.0 * origins)
        rgb = torch.where(hit[..., None], colour, torch.ones_like(colour)).permute(0, 3, 1, 2) * 2 - 1
        opacity = hit.to(t.dtype) * self.opacity
        return {"rgb": rgb, "opacity": opacity, "depth": t * opacity}


def test_camera_pairs_are_seeded_and_within_range():
    u_a, u_b, v = camera_pairs(50, seed=3, range_v=(0.1, 0.3), angle_range=(10.0, 30.0))
    steps = 360.0 * (u_b - u_a)
    assert steps.min() >= 10.0 and steps.max() <= 30.0 and steps.std() > 3.0
    assert u_a.min() >= 0.0 and u_a.max() <= 1.0 and v == pytest.approx(0.2)
    again = camera_pairs(50, seed=3, range_v=(0.1, 0.3), angle_range=(10.0, 30.0))
    assert np.array_equal(u_a, again[0]) and np.array_equal(u_b, again[1])
    with pytest.raises(ValueError):
        camera_pairs(4, angle_range=(30.0, 10.0))


def test_generator_of_a_consistent_scene_scores_near_zero():
    res = generator_consistency(SphereGenerator(), n_scenes=3, batch_size=2)
    assert res["n"] == res["n_scored"] == 3
    assert res["consistency"] < 0.01 and res["coverage"] > 0.5
    view_dependent = generator_consistency(SphereGenerator(view_dependent=True), n_scenes=3, batch_size=2)
    assert view_dependent["consistency"] > 0.05
    assert view_dependent["coverage"] == pytest.approx(res["coverage"])  # the same cameras and geometry


def test_generator_consistency_spelled_out():
    """The driver's cameras, colour range and distances, written out by hand for the view-dependent sphere."""
    gen = SphereGenerator(view_dependent=True)
    u_a, u_b, v = camera_pairs(2, seed=5, range_u=gen.range_u, range_v=gen.range_v)
    views = []
    for u in (u_a, u_b):
        c2w = gen.pose_at(torch.from_numpy(u), v)
        out = gen.render(torch.zeros(2, 4), c2w)
        views += [(out["rgb"] + 1) / 2, out["depth"] / out["opacity"].clamp_min(1e-6), out["opacity"] > 0.5, c2w]
    expected = symmetric_warp_error(*views, gen.intrinsics())
    res = generator_consistency(gen, n_scenes=2, seed=5)
    assert res["consistency"] == pytest.approx(float(expected.error.mean()), rel=1e-5)
    assert res["coverage"] == pytest.approx(float(expected.coverage.mean()), rel=1e-5)


def test_tiny_graf_generator_gives_finite_seeded_scores():
    torch.manual_seed(0)
    generator = build_generator(TINY_GRAF)
    with torch.no_grad():  # a density everywhere in the shell, so pixels are opaque
        generator.field.sigma_head.bias.fill_(0.5)
    res = generator_consistency(generator, n_scenes=3, size=12, batch_size=2)
    assert set(res) == {"consistency", "consistency_std", "coverage", "n", "n_scored"}
    assert res["n"] == res["n_scored"] == 3
    assert all(math.isfinite(res[k]) for k in ("consistency", "consistency_std", "coverage"))
    assert 0.0 <= res["consistency"] <= 1.0 and 0.0 < res["coverage"] <= 1.0
    assert generator_consistency(generator, n_scenes=3, size=12, batch_size=3) == pytest.approx(res, rel=1e-5)


def test_render_mesh_distance_of_a_plane():
    """A square facing the camera: the distance is the plane's along each pixel ray, the image is unchanged."""
    verts = np.array([[-0.4, 0.0, -0.4], [0.4, 0.0, -0.4], [0.4, 0.0, 0.4], [-0.4, 0.0, 0.4]])
    faces = np.array([[0, 1, 2], [0, 2, 3]])
    c2w = look_at_c2w(np.array([0.0, -2.5, 0.0]))
    image = render_mesh(verts, faces, c2w, 16, 30.0, (0.5, 0.6, 0.7))
    again, distance, opacity = render_mesh(verts, faces, c2w, 16, 30.0, (0.5, 0.6, 0.7), return_distance=True)
    assert np.array_equal(image, again)
    _, dirs = pixel_rays(c2w, 16, 30.0)
    seen = opacity.reshape(-1) == 1.0
    assert 40 < seen.sum() < 256 and set(np.unique(opacity)) <= {0.0, 0.25, 0.5, 0.75, 1.0}
    np.testing.assert_allclose(distance.reshape(-1)[seen], 2.5 / dirs[seen, 1], rtol=5e-4)  # mean of 4 sub-rays
    assert np.isinf(distance[opacity == 0]).all()


def test_ground_truth_renders_set_a_small_floor():
    res = data_consistency(("mug", "car"), per_class=1, size=32)
    assert res["n"] == res["n_scored"] == 2
    assert math.isfinite(res["consistency"]) and res["consistency"] < 0.05
    assert res["coverage"] > 0.5
