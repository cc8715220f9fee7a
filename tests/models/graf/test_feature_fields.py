"""Triplane and voxel fields against explicit references of their lookups (float64), and the marched training path:
gradients through raymarch + composite checked by finite differences, and agreement with the dense sampler."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

import renderers
from gen3d.models.graf.feature_fields import linear_lookup
from gen3d.models.graf.generator import Generator
from gen3d.models.graf.triplane import PLANE_AXES, TriplaneField
from gen3d.models.graf.voxel import VoxelField


def _grid_sample_ref(table: torch.Tensor, coords: torch.Tensor) -> torch.Tensor:
    """One grid (n_1, ..., n_D, C) at points (M, D) by F.grid_sample (which orders its coordinates last dim first)."""
    D = coords.shape[1]
    inp = table.permute(D, *range(D))[None]  # (1, C, n_1, ..., n_D)
    grid = coords.flip(-1).reshape(1, *([1] * (D - 1)), -1, D)
    out = F.grid_sample(inp, grid, mode="bilinear", padding_mode="border", align_corners=False)
    return out.reshape(table.shape[-1], -1).T  # (M, C)


@pytest.mark.parametrize("shape", [(5, 7), (4, 6, 3)])
def test_linear_lookup_matches_grid_sample(shape):
    g = torch.Generator().manual_seed(0)
    S, C, M = 3, 4, 200
    table = torch.randn(S, *shape, C, generator=g, dtype=torch.float64)
    coords = torch.rand(M, len(shape), generator=g, dtype=torch.float64) * 2.4 - 1.2  # some outside [-1, 1]
    index = torch.randint(0, S, (M,), generator=g)
    got = linear_lookup(table, coords, index)
    ref = torch.stack([_grid_sample_ref(table[int(s)], coords[m : m + 1])[0] for m, s in enumerate(index)])
    assert torch.allclose(got, ref, atol=1e-12)


@pytest.mark.parametrize("shape", [(4, 4), (3, 4, 5)])
def test_linear_lookup_gradient_matches_finite_differences(shape):
    """First and second derivatives in the table and the coordinates (points away from cell borders)."""
    g = torch.Generator().manual_seed(1)
    table = torch.randn(2, *shape, 3, generator=g, dtype=torch.float64, requires_grad=True)
    coords = (torch.rand(10, len(shape), generator=g, dtype=torch.float64) * 1.8 - 0.9).requires_grad_()
    index = torch.randint(0, 2, (10,), generator=g)
    assert torch.autograd.gradcheck(lambda t, c: linear_lookup(t, c, index), (table, coords))
    assert torch.autograd.gradgradcheck(lambda t, c: linear_lookup(t, c, index), (table, coords))


@pytest.mark.parametrize("shape", [(5, 7), (4, 6, 3)])
def test_linear_lookup_gradients_match_grid_sample(shape):
    """Gradients of a loss in the table and the coordinates equal those through F.grid_sample (float64)."""
    g = torch.Generator().manual_seed(2)
    S, C, M = 2, 3, 60
    table = torch.randn(S, *shape, C, generator=g, dtype=torch.float64, requires_grad=True)
    coords = (torch.rand(M, len(shape), generator=g, dtype=torch.float64) * 1.6 - 0.8).requires_grad_()
    index = torch.randint(0, S, (M,), generator=g)
    weights = torch.randn(M, C, generator=g, dtype=torch.float64)
    got = torch.autograd.grad((linear_lookup(table, coords, index) * weights).sum(), (table, coords))
    ref_out = torch.cat([_grid_sample_ref(table[int(s)], coords[m : m + 1]) for m, s in enumerate(index)])
    ref = torch.autograd.grad((ref_out * weights).sum(), (table, coords))
    for a, b in zip(got, ref, strict=True):
        assert torch.allclose(a, b, atol=1e-12)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_linear_lookup_of_half_features_is_computed_in_float32(dtype):
    """Half-precision features (as under autocast) with float32 points: the float32 lookup of the same values."""
    g = torch.Generator().manual_seed(3)
    table = torch.randn(2, 5, 6, 4, generator=g).to(dtype).requires_grad_()
    coords = torch.rand(30, 2, generator=g) * 2 - 1
    index = torch.randint(0, 2, (30,), generator=g)
    out = linear_lookup(table, coords, index)
    assert out.dtype == torch.float32
    assert torch.equal(out, linear_lookup(table.detach().float(), coords, index))
    out.sum().backward()
    assert table.grad.dtype == dtype and torch.isfinite(table.grad.float()).all()


def _feature_ref(field, z, x):
    """Features of points x (B, N, 3) by an explicit per-point lookup of the field's volume with F.grid_sample."""
    volume = field.condition(z)[0]
    xn = x / field.bound
    out = torch.zeros(*x.shape[:-1], volume.shape[-1], dtype=x.dtype)
    for b in range(x.shape[0]):
        if isinstance(field, TriplaneField):
            per_plane = [_grid_sample_ref(volume[b, p], xn[b][:, list(ax)]) for p, ax in enumerate(PLANE_AXES)]
            out[b] = torch.stack(per_plane).mean(0)
        else:
            out[b] = _grid_sample_ref(volume[b], xn[b])
    return out


@pytest.mark.parametrize(
    "make",
    [
        lambda: TriplaneField(
            z_dim=8, channels=4, resolution=8, base_channels=16, min_channels=8, decoder_width=8, colour_code=True
        ),  # fmt: skip
        lambda: VoxelField(z_dim=8, channels=5, resolution=8, base_channels=16, min_channels=8, decoder_width=0),
    ],
    ids=["triplane", "voxel"],
)
def test_feature_field_matches_explicit_lookup(make):
    torch.manual_seed(0)
    field = make().double()
    z = torch.randn(3, 8, dtype=torch.float64)
    x = (torch.rand(3, 50, 3, dtype=torch.float64) * 2 - 1) * 0.7  # some outside the cube of half side 0.6
    f_ref = _feature_ref(field, z, x)
    assert torch.allclose(field.features(field.condition(z)[0], (x / field.bound).reshape(-1, 3),
                                         torch.arange(3).repeat_interleave(50)), f_ref.reshape(-1, f_ref.shape[-1]),
                          atol=1e-12)  # fmt: skip
    sigma, rgb = field(x, torch.zeros_like(x), z)
    tint = field.tint(z).repeat_interleave(50, 0) if field.tint is not None else None  # (150, 3) per point
    raw, rgb_ref = field.decoder(f_ref.reshape(-1, f_ref.shape[-1]), None, tint)
    sigma_ref = F.softplus(raw + field.density_shift).reshape(3, 50) * (x.abs() <= 0.6).all(-1)
    assert torch.allclose(sigma, sigma_ref, atol=1e-12)
    assert torch.allclose(rgb, rgb_ref.reshape(3, 50, 3), atol=1e-12)
    assert bool((sigma[(x.abs() > 0.6).any(-1)] == 0).all())  # nothing outside the cube
    # Packed points of several scenes give the batched answer.
    scene = torch.arange(3).repeat_interleave(50)
    s_packed, c_packed = field.forward_packed(x.reshape(-1, 3), torch.zeros(150, 3, dtype=torch.float64), z, scene)
    assert torch.allclose(s_packed, sigma.reshape(-1)) and torch.allclose(c_packed, rgb.reshape(-1, 3))


class _FixedPlanes(TriplaneField):
    """A triplane field whose planes are a parameter (no conv generator): gradients checked on the planes."""

    def __init__(self, planes: torch.Tensor):
        super().__init__(z_dim=1, channels=planes.shape[-1], resolution=4, base_channels=8, min_channels=8,
                         decoder_width=6, density_shift=0.0)  # fmt: skip
        self.planes = torch.nn.Parameter(planes)

    def volume(self, z):
        return self.planes.expand(z.shape[0], *self.planes.shape[1:])


def _marched_generator(field, **kw):
    return Generator(field, image_size=6, fov=30, radius=2.5, near=1.5, far=3.5, n_samples=8, background="white",
                     composite_impl="torch", sampler="marched", grid_resolution=4, grid_threshold=0.0,
                     **kw)  # fmt: skip


def test_gradients_reach_the_planes_through_raymarch_and_composite():
    torch.manual_seed(0)
    planes = torch.randn(1, 3, 6, 6, 3, dtype=torch.float64) * 2
    field = _FixedPlanes(planes).double()
    gen = _marched_generator(field, march_step=0.05)
    z = torch.zeros(2, 1, dtype=torch.float64)
    c2w = gen.pose_at(torch.tensor([0.1, 0.35]), torch.tensor([0.3, 0.3])).double()
    weights = torch.randn(2, 3, 6, 6, dtype=torch.float64)

    def loss():
        return (gen.render(z, c2w, size=6)["rgb"] * weights).sum()

    value = loss()
    value.backward()
    grad = field.planes.grad.clone()
    assert grad.abs().sum() > 0 and torch.isfinite(grad).all()
    flat = grad.reshape(-1)
    for i in torch.topk(flat.abs(), 5).indices.tolist() + [0]:  # the largest entries and one more
        with torch.no_grad():
            h = 1e-6
            field.planes.view(-1)[i] += h
            up = loss()
            field.planes.view(-1)[i] -= 2 * h
            down = loss()
            field.planes.view(-1)[i] += h
        assert float((up - down) / (2 * h)) == pytest.approx(float(flat[i]), rel=1e-4, abs=1e-8)


def test_marched_sampler_matches_dense_sampler():
    torch.manual_seed(0)
    field = TriplaneField(z_dim=8, channels=4, resolution=8, base_channels=16, min_channels=8, decoder_width=8,
                          density_shift=2.0).double()  # fmt: skip
    dense = Generator(field, image_size=12, fov=30, radius=2.5, near=1.5, far=3.5, n_samples=1200,
                      composite_impl="torch", eps=0.0)  # fmt: skip
    marched = _marched_generator(field, march_step=2.0 / 1200)
    marched.eps = 0.0
    z = torch.randn(2, 8, dtype=torch.float64)
    c2w = dense.pose_at(torch.tensor([0.0, 0.4]), torch.tensor([0.35, 0.2])).double()
    with torch.no_grad():
        a = dense.render(z, c2w, size=12)
        b = marched.render(z, c2w, size=12)
    assert float(a["opacity"].mean()) > 0.2  # the scenes are not empty
    assert torch.allclose(a["rgb"], b["rgb"], atol=5e-3)
    assert torch.allclose(a["opacity"], b["opacity"], atol=5e-3)


def test_marched_sampler_skips_empty_space():
    """A field that is empty but for a small cube: the grid keeps the rays' samples to the occupied cells."""
    field = _FixedPlanes(torch.full((1, 3, 4, 4, 3), -8.0, dtype=torch.float64)).double()
    with torch.no_grad():
        field.planes[0, :, 1:3, 1:3, :] = 8.0  # dense only where all three projections fall in the middle
        field.decoder.fc.weight.fill_(0.3)
        field.decoder.fc.bias.zero_()
        field.decoder.sigma_head.weight.fill_(1.0)
        field.decoder.sigma_head.bias.fill_(-6.0)
    gen = _marched_generator(field, march_step=0.02)
    z = torch.zeros(1, 1, dtype=torch.float64)
    grid = renderers.OccupancyGrid(1, 4, aabb=(-0.6,) * 3 + (0.6,) * 3).double()
    grid.update(lambda x: field.density(x, z), ema_decay=0.0, threshold=0.01, n_samples_per_cell=4)
    occupied = grid.occupancy[0].numpy()
    assert occupied[1:3, 1:3, 1:3].all() and occupied.sum() < 64
    c2w = gen.pose_at(0.0, 0.3).double()
    origins, dirs = renderers.get_rays(8, 8, gen.intrinsics(8).double(), c2w)
    origins, dirs = origins.reshape(-1, 3), dirs.reshape(-1, 3)
    kept = grid.march(origins, dirs, step=0.02)[0].numel()
    every = renderers.raymarch(origins, dirs, grid.aabbs, torch.ones(1, 4, 4, 4, dtype=torch.bool), 0.02)[0].numel()
    assert 0 < kept < 0.5 * every
    with torch.no_grad():  # and the skipped space was empty: the marched image equals a dense one
        dense = Generator(field, image_size=8, fov=30, radius=2.5, near=1.5, far=3.5, n_samples=400,
                          composite_impl="torch")  # fmt: skip
        a, b = dense.render(z, c2w, size=8)["rgb"], gen.render(z, c2w, size=8)["rgb"]
    assert float((a < 0.9).float().mean()) > 0.05  # the cube is in view
    assert torch.allclose(a, b, atol=0.03)
