"""Benchmark the native rendering ops against their PyTorch references on a fixed batched scene.

Scene: ``--scenes`` occupancy grids (one random ellipsoid each, ``--res``^3 cells, box [-1, 1]^3) and
``--rays`` rays per scene from cameras on a sphere of radius 3 aimed at the box; the step is chosen for about
96 samples per ray through the ellipsoid. Measured, native and reference in the same run:

- ``raymarch``: packed samples from the occupancy grids (samples/s of output);
- ``composite fwd+bwd``: forward and backward of the packed compositing of those samples (samples/s).

On a GPU both CUDA layouts of ``composite`` are timed (``GEN3D_COMPOSITE_KERNEL=thread`` and ``group``), each
with its effective memory bandwidth (:data:`BYTES_PER_SAMPLE`) against a device-to-device copy measured in the same
run, and so is nerfacc's packed rendering (``render_weight_from_density`` + ``accumulate_along_rays``, its results
checked against ours) when nerfacc is installed.
Usage: ``python scripts/bench_render.py [--scenes 64 --rays 4096 --threads 2] [--device cuda]``.
"""

from __future__ import annotations

import argparse
import math
import os
import time
from unittest.mock import patch

import torch

from renderers import composite, look_at, raymarch
from renderers.ops._backend import load_ops
from renderers.ops.composite import CUDA_KERNELS

# Device-memory traffic of one packed compositing forward + backward per sample (float32, 3 channels), each
# array read or written once per pass: the per-ray offsets read ray_indices (8 B); the forward pass reads sigma,
# t_start, t_end and the colour (24 B) and saves transmittance and alpha (8 B); the backward pass reads the colour,
# t_start, t_end, transmittance and alpha (28 B) and writes the gradients of sigma and colour (16 B).
BYTES_PER_SAMPLE = 8 + 24 + 8 + 28 + 16


def _scene(n_scenes: int, n_rays: int, res: int, gen: torch.Generator, device: torch.device):
    """Ellipsoid occupancy grids and rays aimed at them."""
    centres = (torch.rand(n_scenes, 1, 3, generator=gen) - 0.5) * 0.4  # (B, 1, 3)
    radii = 0.45 + 0.35 * torch.rand(n_scenes, 1, 3, generator=gen)
    cells = (torch.stack(torch.meshgrid(*[torch.arange(res)] * 3, indexing="ij"), -1).reshape(-1, 3) + 0.5) / res
    x = cells * 2 - 1  # (L, 3) cell centres in [-1, 1]^3
    occupancy = (((x[None] - centres) / radii) ** 2).sum(-1) <= 1.0  # (B, L)
    occupancy = occupancy.reshape(n_scenes, res, res, res)
    eye_dir = torch.randn(n_scenes, 3, generator=gen)
    eye = 3.0 * eye_dir / eye_dir.norm(dim=-1, keepdim=True)  # (B, 3)
    c2w = look_at(eye)
    targets = (torch.rand(n_scenes, n_rays, 3, generator=gen) - 0.5) * 1.0 + centres  # (B, R, 3)
    dirs = targets - eye[:, None]
    dirs = dirs / dirs.norm(dim=-1, keepdim=True)
    origins = c2w[:, None, :3, 3].expand(n_scenes, n_rays, 3)
    ray_scene = torch.arange(n_scenes)[:, None].expand(n_scenes, n_rays)
    aabbs = torch.tensor([-1.0, -1.0, -1.0, 1.0, 1.0, 1.0]).expand(n_scenes, 6)
    to = dict(device=device)
    return (
        origins.reshape(-1, 3).contiguous().to(**to),
        dirs.reshape(-1, 3).contiguous().to(**to),
        ray_scene.reshape(-1).contiguous().to(**to),
        aabbs.contiguous().to(**to),
        occupancy.to(**to),
    )


def _time(fn, repeats: int, device: torch.device) -> tuple[float, float]:
    """Best wall time and best process CPU time (user + system, all threads) of ``repeats`` calls after a warm-up.

    On a shared machine the CPU time is the steadier figure: other processes stretch the wall time.
    """
    fn()
    best_wall = best_cpu = math.inf
    for _ in range(repeats):
        if device.type == "cuda":
            torch.cuda.synchronize()
        start, cpu_start = time.perf_counter(), time.process_time()
        fn()
        if device.type == "cuda":
            torch.cuda.synchronize()
        best_wall = min(best_wall, time.perf_counter() - start)
        best_cpu = min(best_cpu, time.process_time() - cpu_start)
    return best_wall, best_cpu


def _composite_step(impl: str, sigmas, rgbs, t_starts, t_ends, ray_indices, n_rays, upstream):
    s = sigmas.detach().requires_grad_()
    c = rgbs.detach().requires_grad_()
    rgb, opacity, depth = composite(s, c, t_starts, t_ends, ray_indices, n_rays, impl=impl)
    ((rgb * upstream).sum() + opacity.sum() + depth.sum()).backward()


def _nerfacc_step(nerfacc, sigmas, rgbs, t_starts, t_ends, ray_indices, n_rays, upstream):
    s = sigmas.detach().requires_grad_()
    c = rgbs.detach().requires_grad_()
    weights, _, _ = nerfacc.render_weight_from_density(t_starts, t_ends, s, ray_indices=ray_indices, n_rays=n_rays)
    rgb = nerfacc.accumulate_along_rays(weights, values=c, ray_indices=ray_indices, n_rays=n_rays)
    opacity = nerfacc.accumulate_along_rays(weights, values=None, ray_indices=ray_indices, n_rays=n_rays)
    depth = nerfacc.accumulate_along_rays(
        weights, values=((t_starts + t_ends) * 0.5)[:, None], ray_indices=ray_indices, n_rays=n_rays
    )
    ((rgb * upstream).sum() + opacity.sum() + depth.sum()).backward()


def _copy_bandwidth(device: torch.device, repeats: int) -> float:
    """Bytes per second of a 1 GiB device-to-device copy (read + written), best of ``repeats``."""
    src = torch.rand(2**28, device=device)
    dst = torch.empty_like(src)
    wall, _ = _time(lambda: dst.copy_(src), repeats, device)
    return 2 * src.numel() * src.element_size() / wall


def _nerfacc_rows(data, repeats: int, device: torch.device, ours: dict[str, tuple[float, float]]) -> list[str]:
    """nerfacc's packed rendering timed on the same samples and checked against ``composite`` (or why not)."""
    sigmas, rgbs, t_starts, t_ends, ray_indices, n_rays, _ = data
    start = time.perf_counter()
    try:  # nerfacc builds its CUDA extension on its first call
        import nerfacc

        weights, _, _ = nerfacc.render_weight_from_density(
            t_starts, t_ends, sigmas, ray_indices=ray_indices, n_rays=n_rays
        )
        theirs = nerfacc.accumulate_along_rays(weights, values=rgbs, ray_indices=ray_indices, n_rays=n_rays)
    except Exception as error:  # absent, or its build failed: say so and go on
        return [f"nerfacc unavailable: {type(error).__name__}: {error}"]
    first_call = time.perf_counter() - start
    mine = composite(sigmas, rgbs, t_starts, t_ends, ray_indices, n_rays, eps=0.0, impl="native")[0]
    diff = float((mine - theirs).abs().max())
    wall = _time(lambda: _nerfacc_step(nerfacc, *data), repeats, device)[0]
    n = sigmas.numel()
    speedups = ", ".join(f"{kernel} {wall / t[0]:.2f}x" for kernel, t in ours.items())
    return [
        f"nerfacc {nerfacc.__version__} composite fwd+bwd: {wall:.4f} s ({n / wall / 1e6:.2f} Ms/s); "
        f"first call {first_call:.1f} s; largest |rgb - composite(eps=0)| {diff:.2e}",
        f"composite against nerfacc (its time / ours): {speedups}",
    ]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scenes", type=int, default=64)
    parser.add_argument("--rays", type=int, default=4096, help="rays per scene")
    parser.add_argument("--res", type=int, default=64, help="occupancy grid resolution")
    parser.add_argument("--samples", type=int, default=96, help="target samples per ray through the object")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = parser.parse_args(argv)

    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    if load_ops() is None:
        raise SystemExit("the native extension renderers_ops could not be built; nothing to compare")
    gen = torch.Generator().manual_seed(0)
    origins, dirs, ray_scene, aabbs, occupancy = _scene(args.scenes, args.rays, args.res, gen, device)
    step = 1.2 / args.samples  # the mean chord through the ellipsoids is about 1.2
    n_rays = origins.shape[0]

    rows = []
    march = lambda impl: raymarch(origins, dirs, aabbs, occupancy, step, ray_scene=ray_scene, impl=impl)
    ray_indices, t_starts, t_ends = march("native")
    n_samples = ray_indices.numel()
    t_native = _time(lambda: march("native"), args.repeats, device)
    t_ref = _time(lambda: march("torch"), args.repeats, device)
    rows.append(("raymarch", n_samples, t_native, t_ref))

    sigmas = torch.rand(n_samples, generator=gen).to(device) * 2.0  # ~1 optical depth per ray: no early stop
    rgbs = torch.rand(n_samples, 3, generator=gen).to(device)
    upstream = torch.randn(n_rays, 3, generator=gen).to(device)
    data = (sigmas, rgbs, t_starts, t_ends, ray_indices, n_rays, upstream)
    t_ref = _time(lambda: _composite_step("torch", *data), args.repeats, device)
    kernels = CUDA_KERNELS if device.type == "cuda" else CUDA_KERNELS[:1]
    composite_times = {}
    for kernel in kernels:
        name = "composite fwd+bwd" if device.type != "cuda" else f"composite {kernel}"
        with patch.dict(os.environ, {"GEN3D_COMPOSITE_KERNEL": kernel}):
            composite_times[kernel] = _time(lambda: _composite_step("native", *data), args.repeats, device)
        rows.append((name, n_samples, composite_times[kernel], t_ref))

    extra = []
    if device.type == "cuda":
        copy = _copy_bandwidth(device, args.repeats)
        extra.append(f"device-to-device copy: {copy / 1e12:.2f} TB/s (read + written)")
        for kernel, (wall, _) in composite_times.items():
            moved = n_samples * BYTES_PER_SAMPLE / wall
            extra.append(
                f"composite {kernel}: {moved / 1e12:.2f} TB/s at {BYTES_PER_SAMPLE} B/sample, "
                f"{moved / copy:.0%} of the copy's bandwidth"
            )
        extra += _nerfacc_rows(data, args.repeats, device, composite_times)

    print(
        f"device={device.type} threads={torch.get_num_threads()} scenes={args.scenes} rays/scene={args.rays} "
        f"grid={args.res}^3 step={step:.4g} samples={n_samples} ({n_samples / n_rays:.1f}/ray)"
    )
    header = f"{'op':<18} {'samples':>9} {'native s':>9} {'torch s':>9} {'native Ms/s':>12} {'torch Ms/s':>11} "
    header += f"{'ratio':>6} {'native cpu s':>13} {'torch cpu s':>12} {'cpu ratio':>10}"
    print(header)
    print("-" * len(header))
    for name, n, (w_nat, c_nat), (w_tor, c_tor) in rows:
        print(
            f"{name:<18} {n:>9d} {w_nat:>9.3f} {w_tor:>9.3f} {n / w_nat / 1e6:>12.2f} {n / w_tor / 1e6:>11.2f} "
            f"{w_tor / w_nat:>5.1f}x {c_nat:>13.3f} {c_tor:>12.3f} {c_tor / c_nat:>9.1f}x"
        )
    print("Ms/s: million samples per second (wall clock); cpu: process CPU time of all threads.")
    for line in extra:
        print(line)


if __name__ == "__main__":
    main()
