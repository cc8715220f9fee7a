"""composite: native forward/backward vs the PyTorch reference vs a float64 loop; gradcheck; impl switch."""

from __future__ import annotations

import itertools
import math
import os
import subprocess
import sys

import pytest
import torch

from renderers import composite, composite_ref
from renderers.ops.composite import cuda_kernel

TOL = {torch.float32: dict(atol=1e-5, rtol=1e-5), torch.float64: dict(atol=1e-10, rtol=1e-10)}

# Samples per ray of the packed cases: tiny, ragged (with empty rays), all rays empty, no rays at all.
PACKED_COUNTS = {
    "tiny": [1],
    "ragged": [3, 0, 1, 7, 0, 0, 12, 2],
    "all_empty": [0, 0, 0],
    "no_rays": [],
}


def _packed(counts, dtype, gen, channels=3, sigma_scale=3.0, zero_length=False):
    """Random packed samples with sorted ray indices and contiguous, increasing intervals per ray."""
    n = sum(counts)
    ray_indices = torch.repeat_interleave(torch.arange(len(counts)), torch.tensor(counts, dtype=torch.long))
    sigmas = torch.rand(n, generator=gen, dtype=dtype) * sigma_scale
    rgbs = torch.rand(n, channels, generator=gen, dtype=dtype)
    deltas = torch.rand(n, generator=gen, dtype=dtype) * 0.5
    if zero_length and n > 0:
        deltas[::3] = 0.0
    t_ends = torch.zeros(n, dtype=dtype)
    t_starts = torch.zeros(n, dtype=dtype)
    start = 0
    for c in counts:
        ends = 0.5 + torch.cumsum(deltas[start : start + c], 0)
        t_ends[start : start + c] = ends
        t_starts[start : start + c] = ends - deltas[start : start + c]
        start += c
    return sigmas, rgbs, t_starts, t_ends, ray_indices, len(counts)


def _loop_reference(sigmas, rgbs, t_starts, t_ends, ray_indices, n_rays, eps):
    """Front-to-back compositing in float64 with Python loops (transmittance as a running product)."""
    c = rgbs.shape[-1]
    rgb = [[0.0] * c for _ in range(n_rays)]
    opacity = [0.0] * n_rays
    depth = [0.0] * n_rays
    trans = [1.0] * n_rays
    for i in range(sigmas.shape[0]):
        r = int(ray_indices[i])
        if trans[r] < eps:
            continue
        delta = float(t_ends[i]) - float(t_starts[i])
        alpha = 1.0 - math.exp(-float(sigmas[i]) * delta)
        w = trans[r] * alpha
        for k in range(c):
            rgb[r][k] += w * float(rgbs[i, k])
        opacity[r] += w
        depth[r] += w * 0.5 * (float(t_starts[i]) + float(t_ends[i]))
        trans[r] *= 1.0 - alpha
    as64 = lambda x: torch.tensor(x, dtype=torch.float64)
    return as64(rgb).reshape(n_rays, c), as64(opacity), as64(depth)


def _run(impl, sigmas, rgbs, t_starts, t_ends, ray_indices, n_rays, eps, upstream, device="cpu"):
    """Outputs and gradients of ``composite`` on ``device`` (inputs moved there), returned on the CPU."""
    s = sigmas.detach().to(device).requires_grad_()  # a fresh leaf (.to(cpu) alone would return sigmas itself)
    c = rgbs.detach().to(device).requires_grad_()
    t_starts, t_ends = t_starts.to(device), t_ends.to(device)
    ray_indices = None if ray_indices is None else ray_indices.to(device)
    upstream = [u.to(device) for u in upstream]
    outs = composite(s, c, t_starts, t_ends, ray_indices, n_rays, eps=eps, impl=impl)
    loss = sum((o * u).sum() for o, u in zip(outs, upstream, strict=True))
    grads = torch.autograd.grad(loss, (s, c), allow_unused=True) if loss.requires_grad else (None, None)
    grads = tuple(torch.zeros_like(x) if g is None else g for g, x in zip(grads, (s, c), strict=True))
    return [o.detach().cpu() for o in outs], tuple(g.cpu() for g in grads)


@pytest.mark.parametrize(
    "dtype,case,channels,eps,zero_length",
    list(itertools.product([torch.float32, torch.float64], list(PACKED_COUNTS), [1, 2, 3], [0.0, 1e-4], [False, True])),
)
def test_packed_native_matches_torch(native_device, dtype, case, channels, eps, zero_length):
    gen = torch.Generator().manual_seed(list(PACKED_COUNTS).index(case) * 10 + channels)
    counts = PACKED_COUNTS[case]
    sigmas, rgbs, t_starts, t_ends, ray_indices, n_rays = _packed(
        counts, dtype, gen, channels=channels, zero_length=zero_length
    )
    upstream = [torch.randn(n_rays, channels, dtype=dtype, generator=gen)] + [
        torch.randn(n_rays, dtype=dtype, generator=gen) for _ in range(2)
    ]
    args = (sigmas, rgbs, t_starts, t_ends, ray_indices, n_rays, eps, upstream, native_device)
    out_n, grad_n = _run("native", *args)
    out_t, grad_t = _run("torch", *args)
    for a, b in zip(out_n + list(grad_n), out_t + list(grad_t), strict=True):
        assert a.dtype == dtype and a.shape == b.shape
        torch.testing.assert_close(a, b, **TOL[dtype])
    ref = _loop_reference(sigmas.double(), rgbs.double(), t_starts.double(), t_ends.double(), ray_indices, n_rays, eps)
    for a, b in zip(out_n, ref, strict=True):
        torch.testing.assert_close(a.double(), b, **(TOL[torch.float64] if dtype == torch.float64 else TOL[dtype]))


@pytest.mark.parametrize(
    "dtype,shape", list(itertools.product([torch.float32, torch.float64], [(1, 1), (4, 7), (0, 5), (3, 0), (2, 3, 5)]))
)
def test_batched_native_matches_torch(native_device, dtype, shape):
    gen = torch.Generator().manual_seed(sum(shape))
    sigmas = torch.rand(shape, generator=gen, dtype=dtype) * 4
    rgbs = torch.rand(*shape, 3, generator=gen, dtype=dtype)
    edges = torch.sort(torch.rand(*shape[:-1], shape[-1] + 1, generator=gen, dtype=dtype), dim=-1).values * 3
    t_starts, t_ends = edges[..., :-1], edges[..., 1:]
    batch = shape[:-1]
    upstream = [torch.randn(*batch, 3, dtype=dtype, generator=gen)] + [
        torch.randn(batch, dtype=dtype, generator=gen) for _ in range(2)
    ]
    out_n, grad_n = _run("native", sigmas, rgbs, t_starts, t_ends, None, None, 1e-4, upstream, native_device)
    out_t, grad_t = _run("torch", sigmas, rgbs, t_starts, t_ends, None, None, 1e-4, upstream, native_device)
    assert out_n[0].shape == (*batch, 3) and out_n[1].shape == batch
    for a, b in zip(out_n + list(grad_n), out_t + list(grad_t), strict=True):
        torch.testing.assert_close(a, b, **TOL[dtype])


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_early_termination_matches(native_device, dtype):
    """Dense rays terminate early; the native kernel and the reference zero the same samples."""
    gen = torch.Generator().manual_seed(3)
    sigmas, rgbs, t_starts, t_ends, ray_indices, n_rays = _packed([40, 25, 60], dtype, gen, sigma_scale=60.0)
    upstream = [torch.randn(n_rays, 3, dtype=dtype, generator=gen)] + [
        torch.randn(n_rays, dtype=dtype, generator=gen) for _ in range(2)
    ]
    args = (sigmas, rgbs, t_starts, t_ends, ray_indices, n_rays, 1e-2, upstream, native_device)
    out_n, grad_n = _run("native", *args)
    out_t, grad_t = _run("torch", *args)
    for a, b in zip(out_n + list(grad_n), out_t + list(grad_t), strict=True):
        torch.testing.assert_close(a, b, **TOL[dtype])
    # Terminated samples (the tail of every ray) receive no gradient at all.
    assert (grad_n[0] == 0).sum() > 10
    assert torch.equal(grad_n[0] == 0, grad_t[0] == 0)


@pytest.mark.parametrize("layout", ["packed", "batched"])
def test_gradcheck_native_float64(native_device, layout):
    gen = torch.Generator().manual_seed(11)
    if layout == "packed":
        sigmas, rgbs, t_starts, t_ends, ray_indices, n_rays = _packed([4, 0, 6, 1], torch.float64, gen, sigma_scale=8)
    else:
        sigmas = torch.rand(3, 5, generator=gen, dtype=torch.float64) * 8
        rgbs = torch.rand(3, 5, 2, generator=gen, dtype=torch.float64)
        edges = torch.cumsum(torch.rand(3, 6, generator=gen, dtype=torch.float64) * 0.3, dim=-1)
        t_starts, t_ends, ray_indices, n_rays = edges[:, :-1], edges[:, 1:], None, None
    to = lambda x: None if x is None else x.to(native_device)
    sigmas, rgbs, t_starts, t_ends, ray_indices = map(to, (sigmas, rgbs, t_starts, t_ends, ray_indices))
    sigmas.requires_grad_()
    rgbs.requires_grad_()

    def fn(s, c):
        return composite(s, c, t_starts, t_ends, ray_indices, n_rays, background=0.3, eps=1e-4, impl="native")

    assert torch.autograd.gradcheck(fn, (sigmas, rgbs), eps=1e-6, atol=1e-8)


def test_background_and_depth_convention(native_ops):
    """One ray, one sample: closed-form colour, opacity, expected (unnormalised) depth and background blend."""
    for impl in ("native", "torch"):
        sig = torch.tensor([2.0], dtype=torch.float64)
        rgb = torch.tensor([[0.2, 0.4, 0.6]], dtype=torch.float64)
        ts, te = torch.tensor([1.0], dtype=torch.float64), torch.tensor([1.5], dtype=torch.float64)
        bg = torch.tensor([1.0, 0.0, 0.5], dtype=torch.float64)
        out_rgb, opacity, depth = composite(
            sig, rgb, ts, te, torch.zeros(1, dtype=torch.long), background=bg, impl=impl
        )
        alpha = 1 - math.exp(-1.0)
        torch.testing.assert_close(opacity, torch.tensor([alpha], dtype=torch.float64))
        torch.testing.assert_close(depth, torch.tensor([alpha * 1.25], dtype=torch.float64))
        torch.testing.assert_close(out_rgb, alpha * rgb + (1 - alpha) * bg)


@pytest.mark.parametrize("impl", ["torch", "native"])
def test_rejects_unsorted_or_out_of_range_ray_indices(request, impl):
    if impl == "native":
        request.getfixturevalue("native_ops")
    sig = torch.ones(3)
    args = (sig, torch.ones(3, 3), torch.zeros(3), torch.ones(3))
    with pytest.raises(ValueError, match="sorted"):
        composite(*args, torch.tensor([1, 0, 1]), impl=impl)
    with pytest.raises(ValueError):
        composite(*args, torch.tensor([0, 1, 2]), n_rays=2, impl=impl)
    with pytest.raises(ValueError):
        composite(*args, torch.tensor([-1, 0, 0]), impl=impl)


def test_rejects_mismatched_shapes():
    sig = torch.ones(3)
    with pytest.raises(ValueError, match="t_starts"):
        composite(sig, torch.ones(3, 3), torch.zeros(2), torch.ones(3), torch.tensor([0, 0, 1]), impl="torch")


def test_no_native_env_forces_reference(monkeypatch):
    monkeypatch.setenv("GEN3D_NO_NATIVE", "1")
    gen = torch.Generator().manual_seed(0)
    sigmas, rgbs, t_starts, t_ends, ray_indices, n_rays = _packed([3, 2], torch.float64, gen)
    out = composite(sigmas, rgbs, t_starts, t_ends, ray_indices, n_rays)  # auto -> reference
    ref = composite_ref(sigmas, rgbs, t_starts, t_ends, ray_indices, n_rays)
    for a, b in zip(out, ref, strict=True):
        torch.testing.assert_close(a, b, atol=0, rtol=0)
    with pytest.raises(RuntimeError, match="GEN3D_NO_NATIVE"):
        composite(sigmas, rgbs, t_starts, t_ends, ray_indices, n_rays, impl="native")


def test_import_never_compiles(tmp_path):
    env = dict(os.environ, GEN3D_CACHE_DIR=str(tmp_path / "cache"))
    code = "import renderers, renderers.ops, renderers.grid, renderers.native as n\nassert not n._LOADED, n._LOADED\n"
    subprocess.run([sys.executable, "-c", code], check=True, env=env, timeout=120)
    assert not (tmp_path / "cache").exists()


def test_cuda_kernel_choice(monkeypatch):
    monkeypatch.delenv("GEN3D_COMPOSITE_KERNEL", raising=False)
    assert cuda_kernel() == "thread"
    monkeypatch.setenv("GEN3D_COMPOSITE_KERNEL", "group")
    assert cuda_kernel() == "group"
    monkeypatch.setenv("GEN3D_COMPOSITE_KERNEL", "warp")
    with pytest.raises(ValueError, match="GEN3D_COMPOSITE_KERNEL must be one of"):
        cuda_kernel()


def test_cpu_kernels_ignore_the_cooperative_flag(native_ops):
    # The flag picks a CUDA layout; the CPU kernels must give the same bits with it set, forward and backward.
    gen = torch.Generator().manual_seed(3)
    counts = torch.tensor([3, 40, 0, 9])
    n = int(counts.sum())
    sigmas, rgbs = torch.rand(n, generator=gen) * 5, torch.rand(n, 3, generator=gen)
    t_starts = torch.rand(n, generator=gen)
    t_ends = t_starts + 0.1
    starts = torch.cumsum(counts, 0) - counts
    grads = (torch.randn(4, 3, generator=gen), torch.randn(4, generator=gen), torch.randn(4, generator=gen))
    outs = []
    for cooperative in (False, True):
        fwd = native_ops.composite_forward(sigmas, rgbs, t_starts, t_ends, starts, counts, 1e-4, True, cooperative)
        bwd = native_ops.composite_backward(*grads, rgbs, t_starts, t_ends, starts, counts, *fwd, cooperative)
        outs.append([*fwd, *bwd])
    for a, b in zip(*outs, strict=True):
        assert torch.equal(a, b)
