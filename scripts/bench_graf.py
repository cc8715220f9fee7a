"""Benchmark GRAF's generator: training throughput (native vs torch compositing) and fast rendering.

Measured in one run, with the model of ``gen3d/configs/graf_shapes.yaml`` (or a checkpoint's):

1. Training rays/s: forward + backward of the generator on a batch of K x K patches (field, sampling,
   hierarchical resampling and compositing), with ``composite_impl="native"`` and ``"torch"``; also the
   compositing alone (forward + backward of the same number of samples), where the native kernel matters.
2. Training samplers of triplane and voxel fields (``--field-ckpt`` checkpoints, else fresh fields of the
   preset): generator forward + backward on the same batch of patches with the dense sampler at the marched
   step and with the marched sampler (per-scene occupancy grids, batched ray marching), patches/s and rays/s,
   and the mean absolute difference of the two renders. A fresh field is dense everywhere (nothing to skip);
   trained ones show what marching saves.
3. The feature lookup of triplane and voxel fields (``linear_lookup``) at the preset's sizes: the fused
   corner sum (one ``embedding_bag`` gather, own backward) against gathering each corner and summing (the reference
   formulation, autograd's backward), forward and forward + backward, on the same corners.
4. High-resolution rendering of B fixed samples at ``--size`` pixels: dense stratified sampling
   (:meth:`Generator.render`) vs marching one occupancy grid per sample (:func:`render_fast`, grid build time
   included), and the mean absolute difference between the two images.

Rendering uses ``--ckpt`` (a GRAF checkpoint, e.g. the demo's) when given and present; otherwise an
analytic field with compact support (smooth blobs) stands in, because a freshly initialised GRAF MLP has
density everywhere and would give the occupancy grid nothing to skip. The table says which was used.

Usage: ``python scripts/bench_graf.py [--threads 2 --ckpt runs/demo/graf/graf.ckpt --size 128]
[--field-ckpt A.ckpt B.ckpt]``.
"""

from __future__ import annotations

import argparse
import math
import os
import time
from pathlib import Path

# Idle OpenMP threads sleep instead of spinning: on a shared 2-core machine spinning threads of concurrent
# processes slow every kernel down several times. Must be set before torch starts its thread pool.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import torch  # noqa: E402

import renderers  # noqa: E402
from gen3d.models.graf.fast import build_occupancy_grid, render_fast
from gen3d.models.graf.feature_fields import lookup_corners, weighted_row_sum
from gen3d.models.graf.field import RadianceField
from gen3d.models.graf.generator import Generator


def _best(fn, repeats: int, warmup: bool = True) -> float:
    """Best wall time of ``repeats`` calls (after one warm-up call unless ``warmup`` is False)."""
    if warmup:
        fn()
    best = math.inf
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


class _BlobField(RadianceField):
    """Stand-in field: three smooth blobs per scene (density 20 at their centres), colour varying in space."""

    def __init__(self):
        super().__init__()
        self.z_dim = 9
        self.dummy = torch.nn.Parameter(torch.zeros(()))

    def condition(self, z):
        return (z,)

    def query(self, x, d, cond, noise_std=0.0):
        sigma = 0.0
        for k in range(3):
            q = ((x - cond[0][..., 3 * k : 3 * k + 3]) ** 2).sum(-1) / 0.3**2
            sigma = sigma + 20.0 * torch.clamp(1 - q, min=0) ** 2
        rgb = torch.sigmoid(torch.stack([3 * x[..., 0], 3 * x[..., 1] + 1, -3 * x[..., 2]], -1))
        return sigma, rgb

    def sample_z(self, batch_size, generator=None, device=None):
        return (torch.rand(batch_size, 9, generator=generator) - 0.5).to(device)


def _model_from_config():
    import yaml

    from gen3d.lit.graf_module import GRAFModule

    cfg = yaml.safe_load((Path(__file__).resolve().parents[1] / "gen3d/configs/graf_shapes.yaml").read_text())
    return GRAFModule(**cfg["model"])


def bench_training(module, batch: int, repeats: int) -> list[tuple[str, float, float]]:
    """Rays/s of generator forward+backward and samples/s of compositing alone, native and torch."""
    gen = module.generator
    hp = module.hparams
    z = gen.field.sample_z(batch, generator=torch.Generator().manual_seed(0))
    c2w = gen.sample_poses(batch, generator=torch.Generator().manual_seed(1))
    grid, _ = renderers.sample_patch_grid(batch, hp.patch_size, 0.5, 1.0, generator=torch.Generator().manual_seed(2))
    n_rays = batch * hp.patch_size**2
    n_per_ray = gen.n_samples + gen.n_importance
    rows = []
    for impl in ("native", "torch"):
        gen.composite_impl = impl

        def step():
            gen.zero_grad(set_to_none=True)
            gen(z, c2w, grid, generator=torch.Generator().manual_seed(3)).square().mean().backward()

        t_g = _best(step, repeats)
        sig = torch.rand(n_rays, n_per_ray, generator=torch.Generator().manual_seed(4)) * 5
        rgb = torch.rand(n_rays, n_per_ray, 3, generator=torch.Generator().manual_seed(5))
        t = torch.linspace(1.5, 3.5, n_per_ray + 1).expand(n_rays, -1)
        t_s, t_e = t[:, :-1].contiguous(), t[:, 1:].contiguous()

        def comp(sig=sig, rgb=rgb, t_s=t_s, t_e=t_e, impl=impl):
            s, c = sig.clone().requires_grad_(), rgb.clone().requires_grad_()
            out, op, dep = renderers.composite(s, c, t_s, t_e, background=1.0, impl=impl)
            (out.sum() + op.sum() + dep.sum()).backward()

        t_c = _best(comp, repeats)
        rows.append((impl, n_rays / t_g, n_rays * n_per_ray / t_c))
    return rows


def _generators_for_fields(ckpts: list[str]) -> list[tuple[str, Generator]]:
    """(label, generator) pairs: each GRAF checkpoint's EMA generator, else fresh triplane and voxel fields of the
    preset ``gen3d/configs/graf_shapes.yaml``."""
    if ckpts:
        from gen3d.inference.graf import load_graf_generator

        loaded = [(load_graf_generator(c), Path(c)) for c in ckpts]
        return [(f"{hp['field']} ({path.parent.name}/{path.name})", gen) for (gen, hp), path in loaded]
    from gen3d.models.graf.build import build_generator

    hp = dict(_model_from_config().hparams)
    return [(f"{f} (untrained)", build_generator({**hp, "field": f})) for f in ("triplane", "voxel")]


def bench_samplers(gen: Generator, batch: int, patch: int, repeats: int) -> tuple[list[tuple[str, float]], float]:
    """Training throughput of one generator: seconds per generator forward + backward on the same batch of patches
    with the dense sampler at the model's own samples per ray, the dense sampler at the marched step (equal
    image quality) and the marched sampler; and the mean |difference| of the last two renders (colour in [0, 1])."""
    import copy

    from gen3d.models.graf.marched import march_step

    gen.requires_grad_(True)
    marched = copy.copy(gen)
    marched.sampler = "marched"
    own = copy.copy(gen)
    own.sampler = "dense"
    dense = copy.copy(own)
    dense.n_importance = 0
    dense.n_samples = max(1, round((gen.far - gen.near) / march_step(marched)))
    z = gen.field.sample_z(batch, generator=torch.Generator().manual_seed(0))
    c2w = gen.sample_poses(batch, generator=torch.Generator().manual_seed(1))
    grid, _ = renderers.sample_patch_grid(batch, patch, 0.5, 1.0, generator=torch.Generator().manual_seed(2))
    out: dict[str, torch.Tensor] = {}
    rows = []
    runs = (
        (f"dense, {own.n_samples}+{own.n_importance} samples/ray (own)", own),
        (f"dense, {dense.n_samples} samples/ray (marched step)", dense),
        ("marched", marched),
    )
    for name, g in runs:

        def step(g=g, name=name):
            g.zero_grad(set_to_none=True)
            img = g(z, c2w, grid, generator=torch.Generator().manual_seed(3))
            img.square().mean().backward()
            out[name] = img.detach()

        rows.append((name, _best(step, repeats)))
    a, b = out[runs[1][0]], out[runs[2][0]]
    return rows, float(((a - b) / 2).abs().mean())


def bench_render(gen: Generator, z: torch.Tensor, size: int, grid_res: int, repeats: int) -> list[tuple[str, float]]:
    """Seconds to render B images: dense sampling (the model's own, and at the grid's step) vs the grid."""
    import copy

    c2w = gen.sample_poses(z.shape[0], generator=torch.Generator().manual_seed(7))
    step = 2 * gen.scene_bound / grid_res  # the grid's cell edge = the fast path's step
    dense_eq = copy.copy(gen)  # same field, uniform samples at the grid's step
    dense_eq.n_samples, dense_eq.n_importance = max(1, round((gen.far - gen.near) / step)), 0
    out: dict[str, torch.Tensor] = {}
    rows = []
    with torch.no_grad():
        gen.render(z[:1], c2w[:1], 8)  # warm-up: native extension, allocator
        t = _best(lambda: out.__setitem__("dense", gen.render(z, c2w, size)["rgb"]), repeats, warmup=False)
        rows.append((f"dense, the model's {gen.n_samples}+{gen.n_importance} samples/ray", t))
        t = _best(lambda: out.__setitem__("dense_eq", dense_eq.render(z, c2w, size)["rgb"]), repeats, warmup=False)
        rows.append((f"dense, {dense_eq.n_samples} samples/ray (step {step:.3f})", t))
        grid = build_occupancy_grid(gen, z, grid_res)
        t_build = _best(lambda: build_occupancy_grid(gen, z, grid_res), repeats, warmup=False)
        t = _best(lambda: out.__setitem__("fast", render_fast(gen, z, c2w, grid, size)["rgb"]), repeats)
        rows.append((f"occupancy grid {grid_res}^3, step {step:.3f}: build", t_build))
        rows.append(("occupancy grid: render (grid reused)", t))
        rows.append(("occupancy grid: build + render", t_build + t))
    diff = ((out["fast"] - out["dense_eq"]) / 2).abs().mean().item()
    return rows, diff, grid.occupancy.float().mean().item()


def _corner_sum_ref(table: torch.Tensor, rows: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """The per-corner formulation: gather each corner's rows, weight them and add."""
    out = table.new_zeros(rows.shape[0], table.shape[1])
    for k in range(rows.shape[1]):
        out = out + table[rows[:, k]] * weights[:, k, None]
    return out


def bench_lookup(points: int, repeats: int) -> list[tuple[str, float, float, float, float, float]]:
    """(label, fused fwd, reference fwd, fused fwd+bwd, reference fwd+bwd, max |fused - reference|) per grid."""
    g = torch.Generator().manual_seed(3)
    out = []
    # the triplane preset: 8 scenes x 3 planes of 32^2 x 16; a voxel field: 8 scenes of 32^3 x 4
    for label, shape in (("triplane 24 x 32^2 x 16", (24, 32, 32, 16)), ("voxel 8 x 32^3 x 4", (8, 32, 32, 32, 4))):
        table = torch.randn(*shape, generator=g).reshape(-1, shape[-1]).requires_grad_()
        coords = (torch.rand(points, len(shape) - 2, generator=g) * 2 - 1).requires_grad_()
        index = torch.randint(0, shape[0], (points,), generator=g)
        rows, weights = lookup_corners(shape[1:-1], coords, index)
        weights = weights.detach().requires_grad_()
        diff = (weighted_row_sum(table, rows, weights) - _corner_sum_ref(table, rows, weights)).abs().max().item()
        args, times = (table, rows, weights), []
        for fn in (weighted_row_sum, _corner_sum_ref):
            with torch.no_grad():
                times.append(_best(lambda fn=fn, args=args: fn(*args), repeats))
        for fn in (weighted_row_sum, _corner_sum_ref):
            times.append(_best(lambda fn=fn, args=args: fn(*args).sum().backward(), repeats))
        out.append((label, *times, diff))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads (default 2)")
    parser.add_argument("--batch", type=int, default=8, help="patches per training batch (default 8)")
    parser.add_argument("--ckpt", default="runs/demo/graf/graf.ckpt", help="GRAF checkpoint for the render benchmark")
    parser.add_argument("--size", type=int, default=128, help="rendered image side (default 128)")
    parser.add_argument("--scenes", type=int, default=4, help="samples rendered at once (default 4)")
    parser.add_argument("--grid", type=int, default=64, help="occupancy grid resolution (default 64)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument(
        "--field-ckpt",
        nargs="*",
        default=[],
        help="triplane / voxel GRAF checkpoints whose samplers are timed (default: untrained fields of the preset)",
    )
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    from rich.console import Console
    from rich.table import Table

    console = Console(width=110)
    policy = os.environ.get("OMP_WAIT_POLICY")
    console.print(f"torch {torch.__version__}, {args.threads} threads, OMP_WAIT_POLICY={policy}")
    module = _model_from_config()
    rows = bench_training(module, args.batch, args.repeats)
    hp = module.hparams
    table = Table(title=f"GRAF training step ({args.batch} patches of {hp.patch_size}x{hp.patch_size}, "
                  f"{hp.n_samples}+{hp.n_importance} samples/ray, {args.threads} threads)")  # fmt: skip
    for col in ("compositing", "G fwd+bwd rays/s", "composite fwd+bwd samples/s"):
        table.add_column(col, justify="right")
    for impl, rays, samples in rows:
        table.add_row(impl, f"{rays:,.0f}", f"{samples:,.0f}")
    table.add_row("native / torch", f"{rows[0][1] / rows[1][1]:.2f}x", f"{rows[0][2] / rows[1][2]:.2f}x")
    console.print(table)

    table = Table(title=f"Training samplers ({args.batch} patches of {hp.patch_size}x{hp.patch_size}, generator "
                  f"forward + backward, {args.threads} threads)")  # fmt: skip
    for col in ("field", "sampler", "patches/s", "rays/s", "vs dense at the marched step", "mean |dense - marched|"):
        table.add_column(col, justify="right")
    n_rays = args.batch * hp.patch_size**2
    for label, g in _generators_for_fields(args.field_ckpt):
        times, diff = bench_samplers(g, args.batch, hp.patch_size, args.repeats)
        for k, (name, t) in enumerate(times):
            table.add_row(label if k == 0 else "", name, f"{args.batch / t:.1f}", f"{n_rays / t:,.0f}",
                          f"{times[1][1] / t:.2f}x", f"{diff:.4f}" if k == 2 else "")  # fmt: skip
    console.print(table)

    points = 200_000
    table = Table(title=f"Feature lookup of {points:,} points, 2^D corners each ({args.threads} threads)")
    for col in ("grids", "fused fwd s", "per-corner fwd s", "fwd speed-up", "fused fwd+bwd s", "per-corner fwd+bwd s",
                "fwd+bwd speed-up", "max |diff|"):  # fmt: skip
        table.add_column(col, justify="right")
    for label, f, r, fb, rb, diff in bench_lookup(points, args.repeats):
        table.add_row(label, f"{f:.4f}", f"{r:.4f}", f"{r / f:.2f}x", f"{fb:.4f}", f"{rb:.4f}", f"{rb / fb:.2f}x",
                      f"{diff:.1e}")  # fmt: skip
    console.print(table)

    ckpt = Path(args.ckpt)
    if ckpt.is_file():
        from gen3d.inference.graf import load_graf_generator

        gen = load_graf_generator(ckpt)[0]
        source = f"checkpoint {ckpt}"
    else:
        gen = Generator(_BlobField(), image_size=64, n_samples=hp.n_samples, n_importance=hp.n_importance)
        source = "analytic blobs (no checkpoint found)"
    gen.composite_impl = "auto"
    z = gen.field.sample_z(args.scenes, generator=torch.Generator().manual_seed(6))
    rows, diff, occ = bench_render(gen, z, args.size, args.grid, 1)
    table = Table(title=f"Rendering {args.scenes} samples at {args.size}x{args.size} ({source})")
    for col in ("renderer", "seconds", "images/s", "vs dense at equal step"):
        table.add_column(col, justify="right")
    t_eq = rows[1][1]
    for name, t in rows:
        table.add_row(name, f"{t:.2f}", f"{args.scenes / t:.2f}", f"{t_eq / t:.2f}x")
    console.print(table)
    console.print(f"occupied cells {100 * occ:.1f}%, mean |grid - dense at equal step| = {diff:.4f} (colour in [0, 1])")


if __name__ == "__main__":
    main()
