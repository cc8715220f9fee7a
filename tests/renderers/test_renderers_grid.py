"""OccupancyGrid: jittered update and decaying maximum, and the analytic uniform sphere through the grid path."""

from __future__ import annotations

import math

import pytest
import torch

from renderers import OccupancyGrid, unpack_bits

RADIUS, SIGMA = 0.5, 5.0


def _sphere_density(x: torch.Tensor) -> torch.Tensor:
    return torch.where(x.norm(dim=-1) < RADIUS, SIGMA, 0.0)


def _sphere_field(x, d, scene):
    # Scene 1 holds the same sphere shifted by +0.2 along x.
    shift = torch.stack([0.2 * scene.to(x.dtype), torch.zeros_like(x[:, 0]), torch.zeros_like(x[:, 0])], dim=-1)
    sigma = torch.where((x - shift).norm(dim=-1) < RADIUS, SIGMA, 0.0).to(x.dtype)
    return sigma, torch.ones_like(x)


def test_update_samples_inside_each_cell():
    """The density at a cell's jittered points identifies the cell: after an update it equals the cell index."""
    grid = OccupancyGrid(2, (3, 4, 5), aabb=torch.tensor([[-1.0, -1, -1, 1, 1, 1], [0.0, 0, 0, 3, 2, 1]]))
    lo, size = grid.aabbs[:, None, :3], grid.aabbs[:, None, 3:] - grid.aabbs[:, None, :3]
    res = torch.tensor([3.0, 4.0, 5.0])

    def cell_index(x):  # (B, M, 3) -> (B, M): linear index of the containing cell
        ijk = torch.floor((x - lo) / size * res)
        return (ijk[..., 0] * 4 + ijk[..., 1]) * 5 + ijk[..., 2]

    grid.update(cell_index, ema_decay=0.0, threshold=-1.0, n_samples_per_cell=3, chunk_size=7)
    expected = torch.arange(60.0).reshape(1, 3, 4, 5).expand(2, 3, 4, 5)
    assert torch.equal(grid.density, expected)


def test_update_decaying_maximum_and_threshold():
    grid = OccupancyGrid(1, 4)
    assert grid.occupancy.all()  # everything occupied before the first update
    grid.update(lambda x: torch.ones(x.shape[:-1]), ema_decay=0.5, threshold=0.6)
    assert torch.equal(grid.density, torch.ones(1, 4, 4, 4)) and grid.occupancy.all()
    grid.update(lambda x: torch.zeros(x.shape[:-1]), ema_decay=0.5, threshold=0.6)
    # max(0.5 * 1, 0) = 0.5 < 0.6: all empty; bits follow the boolean grid.
    assert torch.equal(grid.density, torch.full((1, 4, 4, 4), 0.5)) and not grid.occupancy.any()
    assert torch.equal(unpack_bits(grid.bits, (4, 4, 4)), grid.occupancy)
    grid.update(lambda x: (x[..., 0] > 0).float() * 2, ema_decay=0.5, threshold=0.6)
    assert torch.equal(grid.occupancy[0, :, 0, 0], torch.tensor([False, False, True, True]))


def test_update_sphere_occupancy():
    grid = OccupancyGrid(1, 16)
    grid.update(_sphere_density, ema_decay=0.0, n_samples_per_cell=4, generator=torch.Generator().manual_seed(0))
    centres = (torch.stack(torch.meshgrid(*[torch.arange(16.0)] * 3, indexing="ij"), -1) + 0.5) / 16 * 2 - 1
    dist = centres.norm(dim=-1)
    half_diag = math.sqrt(3) / 16
    assert grid.occupancy[0][dist < RADIUS - half_diag].all()  # cells entirely inside
    assert not grid.occupancy[0][dist > RADIUS + half_diag].any()  # cells entirely outside


@pytest.mark.parametrize("impl", ["native", "torch"])
def test_uniform_sphere_through_grid(request, impl, device):
    if impl == "native":
        request.getfixturevalue("native_device")
    grid = OccupancyGrid(2, 32).to(device)
    # Every point of a cell that meets the sphere lies within one cell diagonal of it, so this update marks
    # exactly a superset of the sphere's cells whatever the jitter.
    diag = math.sqrt(3) * 2 / 32
    shifts = torch.tensor([[0.0, 0.0, 0.0], [0.2, 0.0, 0.0]], device=device)[:, None]
    grid.update(
        lambda x: ((x - shifts).norm(dim=-1) < RADIUS + diag).float() * SIGMA,
        ema_decay=0.0,
        generator=torch.Generator().manual_seed(1),
    )
    assert 0.05 < grid.occupancy.float().mean() < 0.2
    offsets = [0.0, 0.25, 0.45]
    origins = torch.tensor([[d, 0.0, -3.0] for d in offsets] + [[0.2 + d, 0.0, 3.0] for d in offsets] + [[3.0, 3, -3]])
    dirs = torch.tensor([[0.0, 0.0, 1.0]] * 3 + [[0.0, 0.0, -1.0]] * 3 + [[0.0, 0.0, 1.0]])
    scene = torch.tensor([0, 0, 0, 1, 1, 1, 0])
    origins, dirs, scene = origins.to(device), dirs.to(device), scene.to(device)
    rgb, opacity, depth = grid.render(_sphere_field, origins, dirs, scene, step=1 / 512, background=0.0, impl=impl)
    assert rgb.device.type == device.type
    rgb, opacity, depth = rgb.cpu(), opacity.cpu(), depth.cpu()
    expected = [1 - math.exp(-2 * SIGMA * math.sqrt(RADIUS**2 - d**2)) for d in offsets] * 2 + [0.0]
    torch.testing.assert_close(opacity, torch.tensor(expected), atol=2e-3, rtol=0)
    torch.testing.assert_close(rgb, opacity[:, None].expand(7, 3))
    assert depth[-1] == 0  # the ray missing the box
