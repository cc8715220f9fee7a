"""CUDA twins: every .cu file compiles with nvcc; on a GPU the CUDA kernels match the CPU ones."""

from __future__ import annotations

import shutil
import subprocess
import sysconfig
from pathlib import Path

import pytest
import torch

from renderers import composite, raymarch
from renderers.ops._backend import CUDA_SOURCES
from renderers.ops.composite import CUDA_KERNELS

NVCC = shutil.which("nvcc")
needs_gpu = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")


@pytest.fixture
def cuda_kernels(native_ops):
    """Skips the test unless ``renderers_ops`` was built with its CUDA kernels."""
    if not native_ops.with_cuda():
        pytest.skip("renderers_ops was built without CUDA kernels")


def _nvcc_command(source: Path, out: Path, shim: Path) -> list[str]:
    from torch.utils.cpp_extension import include_paths

    includes = [*include_paths(), sysconfig.get_paths()["include"], str(shim)]
    # C++20, as torch.utils.cpp_extension compiles CUDA sources for this torch.
    return [NVCC, "-c", "-std=c++20", "-DWITH_CUDA", *(f"-I{p}" for p in includes), str(source), "-o", str(out)]


@pytest.mark.slow
@pytest.mark.skipif(NVCC is None, reason="nvcc not found")
def test_cuda_sources_compile(tmp_path):
    # A CPU-only torch wheel omits one generated CUDA config header; supply it (last on the include path,
    # so a CUDA torch's own copy wins).
    shim = tmp_path / "shim"
    (shim / "c10" / "cuda" / "impl").mkdir(parents=True)
    (shim / "c10" / "cuda" / "impl" / "cuda_cmake_macros.h").write_text("#pragma once\n")
    procs = []
    for source in CUDA_SOURCES:
        cmd = _nvcc_command(source, tmp_path / f"{source.stem}.o", shim)
        procs.append((source, subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)))
    for source, proc in procs:
        output, _ = proc.communicate(timeout=600)
        errors = [line for line in output.splitlines() if "error" in line]
        assert proc.returncode == 0, f"nvcc failed on {source.name}:\n" + "\n".join(errors or output.splitlines()[-30:])
        assert (tmp_path / f"{source.stem}.o").stat().st_size > 0


# Ray lengths: empty, single-sample, shorter and longer than a warp, exact multiples of the group widths (8, 32).
SHORT_RAYS = [5, 0, 17, 1, 40, 0, 3]  # 9.4 samples per ray on average: groups of 8 lanes
LONG_RAYS = [64, 0, 100, 33, 1, 32, 31, 8, 250, 16]  # 53.5 per ray: a warp per ray


@pytest.mark.cuda
@needs_gpu
@pytest.mark.parametrize("kernel", CUDA_KERNELS)
@pytest.mark.parametrize("channels", [3, 1, 5])
@pytest.mark.parametrize("counts", [SHORT_RAYS, LONG_RAYS], ids=["short", "long"])
@pytest.mark.parametrize("eps", [1e-4, 0.0, 0.2])  # 0.2: early termination inside most rays
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_composite_cuda_matches_cpu(cuda_kernels, monkeypatch, kernel, channels, counts, eps, dtype):
    monkeypatch.setenv("GEN3D_COMPOSITE_KERNEL", kernel)
    gen = torch.Generator().manual_seed(len(counts) * 10 + channels)
    counts = torch.tensor(counts)
    ray_indices = torch.repeat_interleave(torch.arange(len(counts)), counts)
    n = int(counts.sum())
    sigmas = torch.rand(n, generator=gen, dtype=dtype) * 20
    rgbs = torch.rand(n, channels, generator=gen, dtype=dtype)
    t_starts = torch.rand(n, generator=gen, dtype=dtype)
    t_ends = t_starts + torch.rand(n, generator=gen, dtype=dtype) * 0.2
    upstream = [torch.randn(len(counts), channels, dtype=dtype, generator=gen), torch.randn(len(counts), dtype=dtype)]
    results = []
    for device in ("cpu", "cuda"):
        s = sigmas.detach().to(device).requires_grad_()  # a fresh leaf on each device
        c = rgbs.detach().to(device).requires_grad_()
        rgb, opacity, depth = composite(
            s, c, t_starts.to(device), t_ends.to(device), ray_indices.to(device), eps=eps, impl="native"
        )
        loss = (rgb * upstream[0].to(device)).sum() + (opacity * upstream[1].to(device)).sum() + depth.sum()
        loss.backward()
        results.append([x.detach().cpu() for x in (rgb, opacity, depth, s.grad, c.grad)])
    tol = dict(atol=1e-5, rtol=1e-4) if dtype == torch.float32 else dict(atol=1e-10, rtol=1e-10)
    for a, b in zip(*results, strict=True):
        torch.testing.assert_close(b, a, **tol)


@pytest.mark.cuda
@needs_gpu
@pytest.mark.parametrize("kernel", CUDA_KERNELS)
@pytest.mark.parametrize("channels", [3, 1])
def test_composite_cuda_gradcheck(cuda_kernels, monkeypatch, kernel, channels):
    monkeypatch.setenv("GEN3D_COMPOSITE_KERNEL", kernel)
    gen = torch.Generator().manual_seed(channels)
    counts = torch.tensor([40, 0, 6, 1, 33])  # 16 per ray: a warp per ray, two tiles on the longest rays
    ray_indices = torch.repeat_interleave(torch.arange(len(counts)), counts).cuda()
    n = int(counts.sum())
    sigmas = (torch.rand(n, generator=gen, dtype=torch.float64) * 3).cuda().requires_grad_()
    rgbs = torch.rand(n, channels, generator=gen, dtype=torch.float64).cuda().requires_grad_()
    t_starts = torch.rand(n, generator=gen, dtype=torch.float64).cuda()
    t_ends = t_starts + 0.1

    def fn(s, c):
        return composite(s, c, t_starts, t_ends, ray_indices, background=0.3, eps=1e-4, impl="native")

    assert torch.autograd.gradcheck(fn, (sigmas, rgbs), eps=1e-6, atol=1e-8)


@pytest.mark.cuda
@needs_gpu
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_raymarch_cuda_matches_cpu(cuda_kernels, dtype):
    gen = torch.Generator().manual_seed(1)
    occupancy = torch.rand(3, 64, 48, 32, generator=gen) > 0.8
    aabbs = torch.tensor([[-1.0, -1, -1, 1, 1, 1], [-0.5, -1, -0.2, 1, 0.5, 0.8], [0, 0, 0, 2, 1, 1]], dtype=dtype)
    origins = (torch.rand(2000, 3, generator=gen, dtype=dtype) * 2 - 1) * 2
    dirs = torch.randn(2000, 3, generator=gen, dtype=dtype)
    dirs[::7, 0] = 0.0
    dirs = dirs / dirs.norm(dim=-1, keepdim=True)
    scene = torch.randint(0, 3, (2000,), generator=gen)
    cpu = raymarch(origins, dirs, aabbs, occupancy, 0.01, ray_scene=scene, max_samples=64, impl="native")
    gpu = raymarch(
        origins.cuda(),
        dirs.cuda(),
        aabbs.cuda(),
        occupancy.cuda(),
        0.01,
        ray_scene=scene.cuda(),
        max_samples=64,
        impl="native",
    )
    for a, b in zip(cpu, gpu, strict=True):
        assert torch.equal(a, b.cpu())
