"""raymarch: native == reference exactly; the reference against a per-ray Python loop; bitfield packing."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import torch

from renderers import pack_bits, raymarch, raymarch_ref, unpack_bits
from renderers.ops.raymarch import _pack_words


def _rays(n, dtype, gen, spread=1.5):
    origins = (torch.rand(n, 3, generator=gen, dtype=dtype) * 2 - 1) * spread
    dirs = torch.randn(n, 3, generator=gen, dtype=dtype)
    if n >= 8:
        dirs[0::8, 0] *= 1e-6  # nearly parallel to the x faces
        dirs[1::8, 1] = 0.0  # exactly parallel to the y faces
        dirs[2::8, :2] = 0.0  # along z only
        origins[3::8, 0] = torch.round(origins[3::8, 0] * 8) / 8  # on cell boundaries
        origins[4::8] = torch.tensor([5.0, 5.0, 5.0], dtype=dtype)  # outside, pointing anywhere: mostly misses
    dirs = dirs / dirs.norm(dim=-1, keepdim=True)
    return origins, dirs


def _assert_same(a, b):
    assert a[0].dtype == torch.long and a[1].dtype == b[1].dtype
    for x, y in zip(a, b, strict=True):
        assert torch.equal(x.cpu(), y.cpu())


def _native_on(device, origins, dirs, aabbs, occupancy, step, ray_scene=None, near=0.0, far=math.inf, **kwargs):
    """``raymarch(impl="native")`` with every tensor argument moved to ``device``."""
    to = lambda x: x.to(device) if isinstance(x, torch.Tensor) else x
    return raymarch(
        to(origins), to(dirs), to(aabbs), to(occupancy), step, to(ray_scene), to(near), to(far), impl="native", **kwargs
    )


CASES = list(
    itertools.product(
        [torch.float32, torch.float64],
        [(1, 1, 1), (3, 5, 2), (16, 16, 16), (64, 32, 48)],
        [1, 3],  # scenes
        [0.3, 0.0137],  # step
        ["plain", "near_far_cap"],
    )
)


@pytest.mark.parametrize("dtype,res,n_scenes,step,variant", CASES)
def test_native_equals_reference(native_device, dtype, res, n_scenes, step, variant):
    gen = torch.Generator().manual_seed(math.prod(res) + n_scenes)
    occupancy = torch.rand(n_scenes, *res, generator=gen) > 0.8
    lo = torch.rand(n_scenes, 3, generator=gen, dtype=dtype) - 1.2
    hi = lo + 0.5 + torch.rand(n_scenes, 3, generator=gen, dtype=dtype) * 1.5
    aabbs = torch.cat([lo, hi], dim=-1)
    origins, dirs = _rays(400, dtype, gen)
    ray_scene = torch.randint(0, n_scenes, (400,), generator=gen)
    kwargs = {}
    if variant == "near_far_cap":
        kwargs = dict(near=torch.rand(400, generator=gen, dtype=dtype), far=2.5, max_samples=5)
    native = _native_on(native_device, origins, dirs, aabbs, occupancy, step, ray_scene=ray_scene, **kwargs)
    assert native[0].device.type == native_device.type
    ref = raymarch_ref(origins, dirs, aabbs, occupancy, step, ray_scene=ray_scene, **kwargs)
    _assert_same(native, ref)
    if variant == "near_far_cap" and native[0].numel():
        assert int(torch.bincount(native[0]).max()) <= 5


@pytest.mark.parametrize(
    "dtype,res", list(itertools.product([torch.float32, torch.float64], [(64, 64, 64), (37, 50, 23)]))
)
def test_native_equals_reference_sparse(native_device, dtype, res):
    """Mostly empty grids with small blobs: long empty runs exercise the cell- and block-level skipping."""
    gen = torch.Generator().manual_seed(res[0])
    occupancy = torch.zeros(2, *res, dtype=torch.bool)
    for b in range(2):
        for _ in range(6):
            i, j, k = (int(torch.randint(0, r - 3, (1,), generator=gen)) for r in res)
            occupancy[b, i : i + 3, j : j + 2, k : k + 3] = True
    aabbs = torch.tensor([[-1.0, -1.0, -1.0, 1.0, 1.0, 1.0], [-0.7, -1.2, -0.4, 1.1, 0.6, 0.9]], dtype=dtype)
    # Rays from outside the boxes aimed at (jittered) occupied cells, plus random rays.
    ray_scene = torch.randint(0, 2, (600,), generator=gen)
    origins, dirs = _rays(600, dtype, gen, spread=1.0)
    origins[:400] = origins[:400] / origins[:400].norm(dim=-1, keepdim=True) * 3.0
    cells = [occupancy[b].nonzero() for b in range(2)]  # occupied cells of each scene
    picked = torch.stack(
        [cells[int(b)][int(torch.randint(0, len(cells[int(b)]), (1,), generator=gen))] for b in ray_scene[:400]]
    )
    frac = (picked.to(dtype) + torch.rand(400, 3, generator=gen, dtype=dtype)) / torch.tensor(res, dtype=dtype)
    box = aabbs[ray_scene[:400]]
    targets = box[:, :3] + frac * (box[:, 3:] - box[:, :3])
    dirs[:400] = (targets - origins[:400]) / (targets - origins[:400]).norm(dim=-1, keepdim=True)
    for step in (0.002, 0.0111):
        native = _native_on(native_device, origins, dirs, aabbs, occupancy, step, ray_scene=ray_scene)
        ref = raymarch_ref(origins, dirs, aabbs, occupancy, step, ray_scene=ray_scene)
        _assert_same(native, ref)
        assert native[0].numel() > 100


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_edge_cases(native_device, dtype):
    aabb = torch.tensor([-1.0, -1.0, -1.0, 1.0, 1.0, 1.0], dtype=dtype)
    full = torch.ones(8, 8, 8, dtype=torch.bool)
    empty = torch.zeros(1, 8, 8, 8, dtype=torch.bool)
    o = torch.tensor([[0.0, 0.0, -3.0], [0.0, 3.0, -3.0], [0.0, 0.0, 0.0], [0.2, 0.1, -3.0]], dtype=dtype)
    d = torch.tensor([[0.0, 0.0, 1.0], [0.0, 0.0, 1.0], [0.0, 0.0, 0.0], [0.0, 0.0, -1.0]], dtype=dtype)
    # Ray 0 crosses the box, ray 1 misses it, ray 2 has a zero direction, ray 3 points away from the box.
    aabb, full, empty, o, d = (x.to(native_device) for x in (aabb, full, empty, o, d))
    for impl in ("native", "torch"):
        ri, ts, te = raymarch(o, d, aabb, full, 0.5, impl=impl)
        assert ri.tolist() == [0, 0, 0, 0]
        assert ts.tolist() == [2.0, 2.5, 3.0, 3.5] and te.tolist() == [2.5, 3.0, 3.5, 4.0]
        # Last interval clipped at the box exit.
        ri, ts, te = raymarch(o[:1], d[:1], aabb, full, 0.75, impl=impl)
        assert te.tolist()[-1] == 4.0 and ts.tolist() == [2.0, 2.75, 3.5]
        for args in ((o, d, aabb, empty, 0.1), (o[:0], d[:0], aabb, full, 0.1)):
            ri, ts, te = raymarch(*args, impl=impl)
            assert ri.numel() == 0 and ts.numel() == 0 and te.numel() == 0 and ts.dtype == dtype
        # near/far clip the range; far before near leaves nothing.
        ri, ts, te = raymarch(o[:1], d[:1], aabb, full, 0.5, near=2.6, far=3.4, impl=impl)
        assert ts.tolist() == pytest.approx([2.6, 3.1]) and te.tolist() == pytest.approx([3.1, 3.4])
        ri, _, _ = raymarch(o[:1], d[:1], aabb, full, 0.5, near=3.0, far=2.0, impl=impl)
        assert ri.numel() == 0


def _loop_march(origins, dirs, aabb, occ, step):
    """Per-ray float64 loop following the documented step-grid convention (independent of the vectorised code)."""
    out = []
    res = occ.shape
    for r in range(origins.shape[0]):
        o, d = origins[r].tolist(), dirs[r].tolist()
        t_enter, t_exit = -math.inf, math.inf
        for a in range(3):
            if d[a] == 0:
                if not aabb[a] <= o[a] <= aabb[a + 3]:
                    t_enter, t_exit = math.inf, -math.inf
                continue
            t1, t2 = (aabb[a] - o[a]) / d[a], (aabb[a + 3] - o[a]) / d[a]
            t_enter, t_exit = max(t_enter, min(t1, t2)), min(t_exit, max(t1, t2))
        t_min, t_max = max(t_enter, 0.0), t_exit
        k = 0
        while t_min < t_max and math.isfinite(t_max):
            t0 = t_min + k * step
            if t0 >= t_max:
                break
            t1 = min(t0 + step, t_max)
            mid = 0.5 * (t0 + t1)
            scale = [res[a] / (aabb[a + 3] - aabb[a]) for a in range(3)]
            cell = [min(max(math.floor((o[a] + mid * d[a] - aabb[a]) * scale[a]), 0), res[a] - 1) for a in range(3)]
            if occ[cell[0], cell[1], cell[2]]:
                out.append((r, t0, t1))
            k += 1
    return out


def test_reference_matches_python_loop():
    gen = torch.Generator().manual_seed(5)
    occ = torch.rand(6, 4, 5, generator=gen) > 0.6
    aabb = [-1.0, -0.5, -1.0, 1.0, 1.5, 0.5]
    origins, dirs = _rays(64, torch.float64, gen)
    ri, ts, te = raymarch_ref(origins, dirs, torch.tensor(aabb, dtype=torch.float64), occ, 0.05)
    expected = _loop_march(origins, dirs, aabb, occ, 0.05)
    assert len(expected) > 50
    assert ri.tolist() == [e[0] for e in expected]
    torch.testing.assert_close(ts, torch.tensor([e[1] for e in expected], dtype=torch.float64), atol=1e-12, rtol=0)
    torch.testing.assert_close(te, torch.tensor([e[2] for e in expected], dtype=torch.float64), atol=1e-12, rtol=0)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_native_equals_reference_solid(native_device, dtype):
    """Solid ellipsoids: most rays keep one run of consecutive steps (emitted without grid lookups when filled)."""
    res = 40
    axis = (torch.arange(res, dtype=torch.float64) + 0.5) / res * 2 - 1
    x, y, z = torch.meshgrid(axis, axis, axis, indexing="ij")
    occupancy = torch.stack([(x / 0.8) ** 2 + (y / 0.6) ** 2 + (z / 0.7) ** 2 <= 1, x**2 + y**2 + z**2 <= 0.5])
    gen = torch.Generator().manual_seed(7)
    origins, dirs = _rays(500, dtype, gen, spread=1.0)
    origins = origins / origins.norm(dim=-1, keepdim=True) * 2.5
    dirs = -origins + 0.3 * torch.randn(500, 3, generator=gen, dtype=dtype)
    dirs = dirs / dirs.norm(dim=-1, keepdim=True)
    aabbs = torch.tensor([-1.0, -1.0, -1.0, 1.0, 1.0, 1.0], dtype=dtype).expand(2, 6)
    ray_scene = torch.randint(0, 2, (500,), generator=gen)
    for kwargs in ({}, {"max_samples": 7}, {"near": 2.0, "far": 2.6}):
        native = _native_on(native_device, origins, dirs, aabbs, occupancy, 0.0173, ray_scene=ray_scene, **kwargs)
        _assert_same(native, raymarch_ref(origins, dirs, aabbs, occupancy, 0.0173, ray_scene=ray_scene, **kwargs))
        assert native[0].numel() > 500


def test_pack_bits_matches_numpy(device):
    gen = torch.Generator().manual_seed(3)
    for shape in [(1, 1, 1, 1), (2, 3, 5, 7), (3, 16, 16, 16)]:
        grid = torch.rand(*shape, generator=gen) > 0.5
        expected = np.packbits(grid.reshape(shape[0], -1).numpy(), axis=1, bitorder="little")
        on = grid.to(device)
        assert np.array_equal(pack_bits(on).cpu().numpy(), expected)
        assert np.array_equal(pack_bits(on.to(torch.uint8) * 2).cpu().numpy(), expected)  # non-zero is occupied
        # the word arithmetic that packs on other devices, checked here on every device
        words = _pack_words(on.reshape(shape[0], -1).view(torch.uint8))
        assert np.array_equal(words.cpu().numpy(), expected)


def test_pack_bits_roundtrip_and_layout():
    gen = torch.Generator().manual_seed(2)
    grid = torch.rand(2, 3, 5, 7, generator=gen) > 0.5
    bits = pack_bits(grid)
    assert bits.dtype == torch.uint8 and bits.shape == (2, math.ceil(3 * 5 * 7 / 8))
    assert torch.equal(unpack_bits(bits, (3, 5, 7)), grid)
    # Cell (i, j, k) is bit l % 8 of byte l // 8 with l = (i * Y + j) * Z + k.
    for b, i, j, k in [(0, 0, 0, 0), (1, 2, 4, 6), (0, 1, 3, 2)]:
        lin = (i * 5 + j) * 7 + k
        assert bool((int(bits[b, lin // 8]) >> (lin % 8)) & 1) == bool(grid[b, i, j, k])
    # A packed bitfield with its resolution gives the same samples as the boolean grid.
    origins, dirs = _rays(50, torch.float32, gen)
    aabb = torch.tensor([[-1.0, -1, -1, 1, 1, 1], [-0.5, -1, -1, 1, 1, 0.5]])
    scene = torch.randint(0, 2, (50,), generator=gen)
    a = raymarch_ref(origins, dirs, aabb, grid, 0.1, ray_scene=scene)
    b = raymarch_ref(origins, dirs, aabb, bits, 0.1, ray_scene=scene, resolution=(3, 5, 7))
    _assert_same(a, b)


def test_input_validation():
    o, d = torch.zeros(2, 3), torch.tensor([[0.0, 0, 1], [1.0, 0, 0]])
    occ = torch.ones(1, 4, 4, 4, dtype=torch.bool)
    aabb = torch.tensor([-1.0, -1, -1, 1, 1, 1])
    with pytest.raises(ValueError, match="ray_scene"):
        raymarch_ref(o, d, aabb, occ, 0.1, ray_scene=torch.tensor([0, 1]))
    with pytest.raises(ValueError, match="step"):
        raymarch_ref(o, d, aabb, occ, 0.0)
    with pytest.raises(ValueError, match="resolution"):
        raymarch_ref(o, d, aabb, pack_bits(occ), 0.1)
    with pytest.raises(ValueError, match="finite"):
        raymarch_ref(o, d * float("nan"), aabb, occ, 0.1)


def test_native_skips_empty_space_matches_reference(native_ops):
    """A 256^3 grid with one occupied cell: the native march (empty-space skipping) equals stepping every interval.

    Its speed is measured in ``scripts/bench_render.py``, not here."""
    occ = torch.zeros(1, 256, 256, 256, dtype=torch.bool)
    occ[0, 128, 128, 128] = True
    gen = torch.Generator().manual_seed(0)
    origins, dirs = _rays(4096, torch.float32, gen, spread=0.9)
    step = 2.0 / 1024
    aabb = torch.tensor([-1.0, -1, -1, 1, 1, 1])
    native = raymarch(origins, dirs, aabb, occ, step, impl="native")
    ref = raymarch_ref(origins, dirs, aabb, occ, step)
    _assert_same(native, ref)
