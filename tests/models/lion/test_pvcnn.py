"""Point-voxel blocks against brute-force numpy references."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch

from gen3d.models.lion.pvcnn import (
    PVCNN,
    AdaGN,
    PointNetEncoder,
    PointVoxelMap,
    PVConv,
    devoxelize,
    normalize_coords,
    timestep_embedding,
    trilinear_corners,
    voxelize,
)


def voxelize_ref(features: np.ndarray, nc: np.ndarray, r: int) -> np.ndarray:
    b, c, n = features.shape
    sums = np.zeros((b, c, r, r, r))
    counts = np.zeros((b, r, r, r))
    for i, j in itertools.product(range(b), range(n)):
        x, y, z = np.floor(nc[i, j] + 0.5).astype(int)  # round half up; coordinates are never exactly .5 here
        sums[i, :, x, y, z] += features[i, :, j]
        counts[i, x, y, z] += 1
    return sums / np.maximum(counts, 1)[:, None]


def trilinear_ref(grid: np.ndarray, nc: np.ndarray) -> np.ndarray:
    b, c, r = grid.shape[0], grid.shape[1], grid.shape[-1]
    n = nc.shape[1]
    out = np.zeros((b, c, n))
    for i, j in itertools.product(range(b), range(n)):
        p = nc[i, j]
        lo = np.minimum(np.floor(p).astype(int), r - 2)
        f = p - lo
        for dx, dy, dz in itertools.product((0, 1), repeat=3):
            w = (f[0] if dx else 1 - f[0]) * (f[1] if dy else 1 - f[1]) * (f[2] if dz else 1 - f[2])
            out[i, :, j] += w * grid[i, :, lo[0] + dx, lo[1] + dy, lo[2] + dz]
    return out


@pytest.mark.parametrize(("b", "c", "n", "r"), [(1, 1, 3, 2), (2, 3, 50, 4), (3, 5, 200, 7)])
def test_voxelize_matches_brute_force(b, c, n, r):
    g = torch.Generator().manual_seed(b * 100 + n)
    coords = torch.rand(b, n, 3, generator=g, dtype=torch.float64) * 2 - 1
    feats = torch.randn(b, c, n, generator=g, dtype=torch.float64)
    nc = normalize_coords(coords, r)
    grid = voxelize(feats, nc, r)
    assert grid.shape == (b, c, r, r, r)
    np.testing.assert_allclose(grid.numpy(), voxelize_ref(feats.numpy(), nc.numpy(), r), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("impl", ["auto", "gather", "grid_sample"])
@pytest.mark.parametrize(("b", "c", "n", "r"), [(1, 1, 1, 2), (2, 4, 40, 5), (2, 2, 100, 8)])
def test_devoxelize_matches_trilinear_brute_force(b, c, n, r, impl):
    g = torch.Generator().manual_seed(r)
    grid = torch.randn(b, c, r, r, r, generator=g, dtype=torch.float64)
    nc = torch.rand(b, n, 3, generator=g, dtype=torch.float64) * (r - 1)
    nc[0, 0] = torch.tensor([r - 1.0, 0.0, r - 1.0], dtype=torch.float64)  # on the faces of the grid
    out = devoxelize(grid, nc, impl=impl)
    assert out.shape == (b, c, n)
    np.testing.assert_allclose(out.numpy(), trilinear_ref(grid.numpy(), nc.numpy()), rtol=1e-10, atol=1e-10)


def test_trilinear_corners_and_the_two_devoxelize_impls_agree_in_gradients():
    """The gathered interpolation passes gradients to the grid and to the coordinates as grid_sample does (the
    VAE's decoder voxelises latent points that depend on the encoder)."""
    r = 5
    g = torch.Generator().manual_seed(0)
    nc = (torch.rand(2, 30, 3, generator=g, dtype=torch.float64) * (r - 1)).requires_grad_()
    index, weight = trilinear_corners(nc, r)
    assert index.shape == weight.shape == (2, 30, 8) and index.min() >= 0 and index.max() < r**3
    torch.testing.assert_close(weight.sum(-1), torch.ones(2, 30, dtype=torch.float64))
    grid = torch.randn(2, 3, r, r, r, generator=g, dtype=torch.float64, requires_grad=True)
    upstream = torch.randn(2, 3, 30, generator=g, dtype=torch.float64)
    grads = []
    for impl in ("gather", "grid_sample"):
        (devoxelize(grid, nc, impl=impl) * upstream).sum().backward()
        grads.append((grid.grad.clone(), nc.grad.clone()))
        grid.grad, nc.grad = None, None
    torch.testing.assert_close(grads[0][0], grads[1][0])
    torch.testing.assert_close(grads[0][1], grads[1][1])
    assert torch.autograd.gradcheck(lambda v, p: devoxelize(v, p, impl="gather"), (grid, nc))
    with pytest.raises(ValueError, match="impl"):
        devoxelize(grid, nc, impl="nearest")


def test_pvconv_with_a_shared_point_voxel_map_equals_its_own():
    torch.manual_seed(1)
    block = PVConv(6, 10, 4, cond_dim=3, voxel_channels=4).double().eval()
    x, coords = torch.randn(2, 6, 25, dtype=torch.float64), torch.randn(2, 25, 3, dtype=torch.float64)
    cond = torch.randn(2, 3, dtype=torch.float64)
    torch.testing.assert_close(block(x, coords, cond, PointVoxelMap.build(coords, 4)), block(x, coords, cond))


def test_box_voxel_frame_reaches_every_block():
    torch.manual_seed(1)
    x = torch.randn(2, 4, 40, dtype=torch.float64)
    coords = torch.randn(2, 40, 3, dtype=torch.float64) * torch.tensor([1.0, 0.3, 0.1], dtype=torch.float64)
    cond = torch.randn(2, 3, dtype=torch.float64)
    block = PVConv(4, 8, 5, cond_dim=3, voxel_frame="box").double().eval()
    box_map = PointVoxelMap.build(coords, 5, "box")
    torch.testing.assert_close(block(x, coords, cond), block(x, coords, cond, box_map))
    assert not torch.allclose(block(x, coords, cond), block(x, coords, cond, PointVoxelMap.build(coords, 5)))
    net = PVCNN(4, 5, channels=(8, 16), resolutions=(4, 6), cond_dim=3, voxel_frame="box").double().eval()
    assert all(b.voxel_frame == "box" for b in net.blocks)
    # the network's output is unchanged by scaling one axis of the voxelisation coordinates (not of the inputs)
    torch.testing.assert_close(net(x, coords, cond), net(x, coords * torch.tensor([1.0, 4.0, 0.5]).double(), cond))
    with pytest.raises(ValueError, match="voxel_frame"):
        PVConv(4, 8, 5, voxel_frame="cube")


def test_devoxelize_reproduces_linear_fields_and_has_gradients():
    r = 6
    idx = torch.stack(torch.meshgrid(*[torch.arange(r, dtype=torch.float64)] * 3, indexing="ij"))  # (3, R, R, R)
    a = torch.tensor([0.3, -1.2, 2.0], dtype=torch.float64)
    grid = ((a[:, None, None, None] * idx).sum(0) + 0.7)[None, None].requires_grad_()  # (1, 1, R, R, R)
    nc = torch.rand(1, 30, 3, dtype=torch.float64) * (r - 1)
    out = devoxelize(grid, nc)
    torch.testing.assert_close(out[0, 0], nc[0] @ a + 0.7)
    out.sum().backward()
    # the weights of a trilinear interpolation sum to one, so d(sum)/d(grid) sums to the number of points
    assert grid.grad.sum().item() == pytest.approx(30.0)


def test_normalize_coords_range_and_invariance():
    x = torch.randn(2, 64, 3, dtype=torch.float64)
    nc = normalize_coords(x, 9)
    assert nc.min() >= 0 and nc.max() <= 8
    torch.testing.assert_close(normalize_coords(3.0 * x + torch.tensor([1.0, -2.0, 5.0], dtype=torch.float64), 9), nc)


def test_normalize_coords_box_frame_fills_every_axis():
    # a flat cloud: 10x wider along x than along z
    x = torch.randn(2, 64, 3, dtype=torch.float64) * torch.tensor([1.0, 0.5, 0.1], dtype=torch.float64)
    r = 9
    box = normalize_coords(x, r, frame="box")
    centred = x - x.mean(dim=1, keepdim=True)
    # brute force, per cloud and axis: the point farthest from the mean lands on a face, the mean in the middle
    for b in range(2):
        for a in range(3):
            far = centred[b, :, a].abs().argmax()
            assert box[b, far, a].item() in (pytest.approx(0.0), pytest.approx(r - 1.0))
            expected = centred[b, :, a] / (2 * centred[b, :, a].abs().max()) * (r - 1) + (r - 1) / 2
            torch.testing.assert_close(box[b, :, a], expected)
    # invariant to scaling each axis on its own, which the sphere frame is not
    scale = torch.tensor([3.0, 0.2, 7.0], dtype=torch.float64)
    torch.testing.assert_close(normalize_coords(x * scale + 1.5, r, frame="box"), box)
    sphere = normalize_coords(x, r)
    assert not torch.allclose(normalize_coords(x * scale, r), sphere)
    # the sphere frame leaves the thin axis near the middle of the grid
    assert (sphere[..., 2] - (r - 1) / 2).abs().max() < 0.3 * (box[..., 2] - (r - 1) / 2).abs().max()
    with pytest.raises(ValueError, match="frame"):
        normalize_coords(x, r, frame="cube")


def test_adagn_is_group_norm_for_zero_conditioning():
    norm = AdaGN(16, cond_dim=5)
    x = torch.randn(3, 16, 20)
    ref = torch.nn.functional.group_norm(x, 8)
    torch.testing.assert_close(norm(x, torch.zeros(3, 5)), ref)
    assert not torch.allclose(norm(x, torch.randn(3, 5)), ref)


def test_pvcnn_shapes_and_permutation_equivariance():
    torch.manual_seed(0)
    net = PVCNN(4, 6, channels=(8, 16), resolutions=(4, 6), cond_dim=3).double().eval()
    x = torch.randn(2, 4, 37, dtype=torch.float64)
    coords = torch.randn(2, 37, 3, dtype=torch.float64)
    cond = torch.randn(2, 3, dtype=torch.float64)
    out = net(x, coords, cond)
    assert out.shape == (2, 6, 37)
    perm = torch.randperm(37)
    torch.testing.assert_close(net(x[:, :, perm], coords[:, perm], cond), out[:, :, perm])
    enc = PointNetEncoder(3, 10, (8,), (4,)).double().eval()
    z = enc(coords.transpose(1, 2), coords)
    assert z.shape == (2, 10)
    torch.testing.assert_close(enc(coords[:, perm].transpose(1, 2), coords[:, perm]), z)


def test_timestep_embedding_closed_form():
    t = torch.tensor([0, 5, 999])
    emb = timestep_embedding(t, 8)
    freqs = np.exp(-np.log(10000.0) * np.arange(4) / 3)
    ref = np.concatenate([np.sin(t.numpy()[:, None] * freqs), np.cos(t.numpy()[:, None] * freqs)], axis=1)
    np.testing.assert_allclose(emb.numpy(), ref, rtol=1e-4, atol=1e-4)
    assert timestep_embedding(t, 7).shape == (3, 7)


def test_narrow_voxel_branch_with_identity_projections_is_the_wide_block():
    """voxel_channels adds 1x1 projections around the voxel branch; with identity projections and the same
    convolution weights the block computes exactly what PVCNN's layout computes."""
    torch.manual_seed(1)
    wide = PVConv(6, 6, resolution=4, cond_dim=3).double().eval()
    narrow = PVConv(6, 6, resolution=4, cond_dim=3, voxel_channels=6).double().eval()
    state = {k: v for k, v in wide.state_dict().items()}
    eye = torch.eye(6, dtype=torch.float64).unsqueeze(-1)
    state.update(
        {"reduce.weight": eye, "reduce.bias": torch.zeros(6), "expand.weight": eye, "expand.bias": torch.zeros(6)}
    )
    narrow.load_state_dict(state)
    x, coords, cond = torch.randn(2, 6, 29), torch.randn(2, 29, 3), torch.randn(2, 3)
    x, coords, cond = x.double(), coords.double(), cond.double()
    torch.testing.assert_close(narrow(x, coords, cond), wide(x, coords, cond))
    # the point of the narrow branch: its 3D convolutions are (voxel_channels / out_channels)^2 as large
    slim = PVConv(64, 64, resolution=8, voxel_channels=16)
    assert slim.conv2.weight.numel() * 16 == PVConv(64, 64, resolution=8).conv2.weight.numel()
    net = PVCNN(4, 5, channels=(8, 16), resolutions=(4, 4), cond_dim=3, voxel_channels=(4, 8)).double().eval()
    perm = torch.randperm(29)
    out = net(x[:, :4], coords, cond)
    assert out.shape == (2, 5, 29)
    torch.testing.assert_close(net(x[:, :4, perm], coords[:, perm], cond), out[:, :, perm])
    with pytest.raises(ValueError, match="one entry per block"):
        PVCNN(4, 5, channels=(8, 16), resolutions=(4, 4), voxel_channels=(4,))
