"""The CUDA compositing kernels, run on the CPU under a warp emulator (tests/renderers/simt), match the CPU kernels.

The kernels in ``renderers/csrc/composite/composite_kernels.cuh`` are compiled with the host compiler against
``simt/warp_emulator.h``: every lane is a thread and the warp intrinsics exchange values among exactly the lanes
their masks name, so group masks, scans, votes and tile bookkeeping are exercised without a GPU (a lane outside its
mask, or lanes diverging around a shuffle, count as errors). What this cannot check is the GPU's own arithmetic and
memory behaviour: the ``cuda`` tests do, on a GPU.
"""

from __future__ import annotations

import ctypes
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from test_renderers_cuda import LONG_RAYS, SHORT_RAYS

from renderers.ops._backend import CSRC_DIR

SIMT_DIR = Path(__file__).resolve().parent / "simt"
RANDOM_RAYS = [int(n) for n in np.random.default_rng(5).integers(0, 120, 40)]  # several warps of rays
LAYOUTS = {"thread": (0, 0), "group8": (1, 8), "group32": (1, 32)}


@pytest.fixture(scope="module")
def emulated(tmp_path_factory):
    """The kernels under the emulator, as a ctypes library (skips without a C++ compiler, or off Linux)."""
    if not sys.platform.startswith("linux"):
        pytest.skip("the warp emulator's fibers use glibc's ucontext")
    compiler = shutil.which(os.environ.get("CXX", "c++")) or shutil.which("g++")
    if compiler is None:
        pytest.skip("no C++ compiler")
    out = tmp_path_factory.mktemp("simt") / "composite_emulated.so"
    cmd = [compiler, "-std=c++17", "-O1", "-shared", "-fPIC", "-pthread", f"-I{CSRC_DIR / 'composite'}"]
    cmd += [str(SIMT_DIR / "composite_emulated.cpp"), "-o", str(out)]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return ctypes.CDLL(str(out))


def _ptr(x: np.ndarray | None) -> ctypes.c_void_p:
    return ctypes.c_void_p(None if x is None else x.ctypes.data)


def _scalar(dtype):
    return ctypes.c_float if dtype == np.float32 else ctypes.c_double


def _suffix(dtype) -> str:
    return "f32" if dtype == np.float32 else "f64"


def _emulated_forward(lib, layout: str, s, alphas, v, ts, te, starts, cnts, eps):
    kind, group = LAYOUTS[layout]
    n_rays, n_ch, dt = len(starts), v.shape[1], s.dtype
    out = {
        "values": np.zeros((n_rays, n_ch), dt),
        "opacity": np.zeros(n_rays, dt),
        "depth": np.zeros(n_rays, dt),
        "trans": np.full(len(s), np.nan, dt),  # poisoned: only live samples are written
        "alphas": np.full(len(s), np.nan, dt),
        "live": np.full(n_rays, -1, np.int64),
    }
    fn = getattr(lib, f"composite_forward_{_suffix(dt)}")
    fn.restype = ctypes.c_int
    errors = fn(
        ctypes.c_int(kind), ctypes.c_int(group), _ptr(s), _ptr(alphas), _ptr(v), _ptr(ts), _ptr(te), _ptr(starts),
        _ptr(cnts), ctypes.c_int64(n_rays), ctypes.c_int64(n_ch), _scalar(dt)(eps), _ptr(out["values"]),
        _ptr(out["opacity"]), _ptr(out["depth"]), _ptr(out["trans"]), _ptr(out["alphas"]), _ptr(out["live"]),
    )  # fmt: skip
    return errors, out


def _emulated_backward(lib, layout: str, grads, v, ts, te, starts, cnts, fwd):
    kind, group = LAYOUTS[layout]
    n_rays, n_ch, dt = len(starts), v.shape[1], v.dtype
    grad_sigmas = np.full(len(v), np.nan, dt)  # poisoned: every sample must be written
    grad_vals = np.full(v.shape, np.nan, dt)
    fn = getattr(lib, f"composite_backward_{_suffix(dt)}")
    fn.restype = ctypes.c_int
    errors = fn(
        ctypes.c_int(kind), ctypes.c_int(group), _ptr(grads[0]), _ptr(grads[1]), _ptr(grads[2]), _ptr(v), _ptr(ts),
        _ptr(te), _ptr(starts), _ptr(cnts), _ptr(fwd[0]), _ptr(fwd[1]), _ptr(fwd[2]), _ptr(fwd[3]), _ptr(fwd[4]),
        _ptr(fwd[5]), ctypes.c_int64(n_rays), ctypes.c_int64(n_ch), _ptr(grad_sigmas), _ptr(grad_vals),
    )  # fmt: skip
    return errors, grad_sigmas, grad_vals


def _np(*tensors: torch.Tensor) -> list[np.ndarray]:
    return [t.numpy() for t in tensors]


def _case(counts, channels, dtype, seed):
    gen = torch.Generator().manual_seed(seed)
    counts = torch.tensor(counts)
    n = int(counts.sum())
    sigmas = torch.rand(n, generator=gen, dtype=dtype) * 20
    rgbs = torch.rand(n, channels, generator=gen, dtype=dtype)
    t_starts = torch.rand(n, generator=gen, dtype=dtype)
    t_ends = t_starts + torch.rand(n, generator=gen, dtype=dtype) * 0.2
    starts = torch.cumsum(counts, 0) - counts
    grads = (
        torch.randn(len(counts), channels, generator=gen, dtype=dtype),
        torch.randn(len(counts), generator=gen, dtype=dtype),
        torch.randn(len(counts), generator=gen, dtype=dtype),
    )
    return sigmas, rgbs, t_starts, t_ends, starts, counts, grads


@pytest.mark.parametrize("layout", list(LAYOUTS))
@pytest.mark.parametrize("channels", [3, 1])
@pytest.mark.parametrize("counts", [SHORT_RAYS, LONG_RAYS, RANDOM_RAYS], ids=["short", "long", "random"])
@pytest.mark.parametrize("eps", [1e-4, 0.0, 0.2])  # 0.2: early termination inside most rays
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_emulated_cuda_composite_matches_cpu(native_ops, emulated, layout, channels, counts, eps, dtype):
    sigmas, rgbs, t_starts, t_ends, starts, cnts, grads = _case(counts, channels, dtype, seed=len(counts) + channels)
    cpu = native_ops.composite_forward(sigmas, rgbs, t_starts, t_ends, starts, cnts, eps, True, False)
    alphas = cpu[4]  # the thread layout reads alphas computed beforehand (CompositeAlphas), as on the GPU
    errors, out = _emulated_forward(emulated, layout, *_np(sigmas, alphas, rgbs, t_starts, t_ends, starts, cnts), eps)
    assert errors == 0
    tol = dict(atol=1e-5, rtol=1e-4) if dtype == torch.float32 else dict(atol=1e-10, rtol=1e-10)
    for name, ref in zip(("values", "opacity", "depth"), cpu[:3], strict=True):
        torch.testing.assert_close(torch.from_numpy(out[name]), ref, **tol, msg=name)
    assert np.array_equal(out["live"], cpu[5].numpy())
    live = torch.cat([torch.arange(s, s + n) for s, n in zip(starts.tolist(), cpu[5].tolist(), strict=True)]).long()
    torch.testing.assert_close(torch.from_numpy(out["trans"])[live], cpu[3][live], **tol)
    if layout != "thread":  # the group layout computes alpha itself
        torch.testing.assert_close(torch.from_numpy(out["alphas"])[live], cpu[4][live], **tol)
    # Backward from the CPU forward's saved tensors: the same inputs for both.
    ref_gs, ref_gv = native_ops.composite_backward(*grads, rgbs, t_starts, t_ends, starts, cnts, *cpu, False)
    errors, gs, gv = _emulated_backward(
        emulated, layout, _np(*grads), *_np(rgbs, t_starts, t_ends, starts, cnts), _np(*cpu)
    )
    assert errors == 0
    torch.testing.assert_close(torch.from_numpy(gs), ref_gs, **tol)
    torch.testing.assert_close(torch.from_numpy(gv), ref_gv, **tol)


def test_emulated_group_layout_needs_one_or_three_channels(emulated):
    v = np.zeros((4, 5), np.float32)
    z = np.zeros(4, np.float32)
    starts, cnts = np.array([0], np.int64), np.array([4], np.int64)
    assert _emulated_forward(emulated, "group32", z, z, v, z, z, starts, cnts, 1e-4)[0] == -1
    assert _emulated_forward(emulated, "thread", z, z, v, z, z, starts, cnts, 1e-4)[0] == 0
