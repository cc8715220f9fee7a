"""``gen3d sample``: draw shapes from a trained LION (or PVD) checkpoint, or images from a GRAF checkpoint.

LION / PVD: writes ``<out>/samples.npz`` (key ``points``, ``(N, P, 3)`` in the data's original frame), one PLY per shape
(``<out>/ply/sample_<i>.ply``), a PNG grid (``<out>/samples.png``) and the sampler's configuration
(``<out>/sampler.json``). The same checkpoint, seed and options give the same samples.

GRAF (recognised from the checkpoint's hyperparameters): ``sample_XX.png`` renders at random training poses (or
``--u/--v``), ``grid.png``, a turntable GIF and a marching-cubes mesh of the first sample
(:func:`gen3d.lit.graf_eval.sample_graf`).
"""

from __future__ import annotations

import argparse

SAMPLERS = ("ddpm", "ddim", "dpm", "dpm-sde")  # gen3d.diffusion.SAMPLERS (not imported: --help stays fast)


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``sample`` command."""
    parser = subparsers.add_parser(
        "sample",
        help="generate shapes from a trained LION, PVD or GRAF checkpoint",
        description="Generate point clouds from a LION checkpoint (the 'prior' stage of gen3d train lion) or a "
        "PVD baseline checkpoint (gen3d train pvd), or rendered images, a turntable and a mesh from a GRAF "
        "checkpoint (gen3d train graf). The kind is read from the checkpoint.",
    )
    parser.add_argument("--ckpt", required=True, help="checkpoint (.ckpt) of the prior stage")
    parser.add_argument("--n", type=int, default=16, help="number of shapes (default 16)")
    parser.add_argument(
        "--sampler",
        choices=SAMPLERS,
        default="ddpm",
        help="reverse-process sampler (default ddpm, LION's; dpm-sde at 50 steps matched ddpm at 1000 on the demo "
        "model, the deterministic ddim/dpm need a longer-trained prior; see docs/lion.md)",
    )
    parser.add_argument(
        "--steps",
        type=int,
        default=None,
        help="sampling steps (default: 1000 for ddpm, 50 otherwise; on the demo model ddpm 300 scored as well)",
    )
    parser.add_argument("--eta", type=float, default=0.0, help="DDIM stochasticity (default 0: deterministic)")
    parser.add_argument(
        "--code-temperature",
        type=float,
        default=1.0,
        help="LION: factor on the sampled shape codes (default 1, LION's; the demo uses 1.3, see docs/lion.md)",
    )
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    parser.add_argument("--points", type=int, default=None, help="points per shape (default: the model's)")
    parser.add_argument("--batch-size", type=int, default=32, help="shapes generated at once (default 32)")
    parser.add_argument("--no-ema", action="store_true", help="use the raw weights instead of their EMA")
    parser.add_argument(
        "--device",
        default=None,
        help="torch device to sample on (default: cuda if available, else cpu); the noise is drawn on the CPU, "
        "so a seed gives the same shapes on any device up to floating-point rounding",
    )
    parser.add_argument("--out", required=True, help="output folder")
    parser.add_argument("--no-ply", action="store_true", help="skip the per-shape PLY files")
    graf = parser.add_argument_group(
        "GRAF checkpoints (--sampler, --steps, --eta, --code-temperature, --points are not used)"
    )
    graf.add_argument("--size", type=int, default=None, help="image side (default: the training size)")
    graf.add_argument("--u", type=float, default=None, help="camera azimuth as a fraction of a turn")
    graf.add_argument("--v", type=float, default=None, help="camera polar v = (1 - cos(polar)) / 2")
    graf.add_argument("--no-gif", action="store_true", help="skip the turntable GIF")
    graf.add_argument("--no-mesh", action="store_true", help="skip the mesh")
    graf.add_argument("--frames", type=int, default=40, help="turntable frames (default 40)")
    parser.set_defaults(func=run)


def is_graf_checkpoint(ckpt: str) -> bool:
    """Whether ``ckpt`` holds a GRAF module (its hyperparameters name a radiance field); raises InputError for
    a missing or unreadable file."""
    from gen3d.lit.lion_module import read_checkpoint

    hp = read_checkpoint(ckpt)["hyper_parameters"]
    return "field" in hp and "image_size" in hp and "config" not in hp


def sample_checkpoint(
    ckpt: str,
    n: int,
    sampler: str = "ddpm",
    steps: int | None = None,
    seed: int = 0,
    points: int | None = None,
    batch_size: int = 32,
    eta: float = 0.0,
    use_ema: bool = True,
    progress: bool = True,
    code_temperature: float = 1.0,
    device: str | None = None,
):
    """Generate ``n`` shapes from a checkpoint; returns ``(points (n, P, 3) float32 numpy, sampler)``.

    Batches draw from one CPU generator seeded with ``seed`` in order, so the result depends only on the
    arguments (on another ``device`` too, up to floating-point rounding). ``device=None`` picks CUDA when it
    is available.
    """
    import numpy as np
    import torch

    from gen3d.errors import InputError
    from gen3d.lit.lion_module import SAMPLING_STAGES, load_lion
    from gen3d.utils import progress as progress_bar
    from gen3d.utils.device import resolve_device

    if n < 1 or batch_size < 1:
        raise InputError(f"--n and --batch-size must be positive, got {n} and {batch_size}")
    device = resolve_device(device)
    loaded = load_lion(ckpt, use_ema=use_ema)
    if loaded.stage not in SAMPLING_STAGES:
        raise InputError("this checkpoint is from the 'vae' stage; sample from the 'prior' stage's checkpoint", ckpt)
    steps = steps if steps is not None else (loaded.net.schedule.num_train_timesteps if sampler == "ddpm" else 50)
    if not 1 <= steps <= loaded.net.schedule.num_train_timesteps:
        raise InputError(f"--steps must be in [1, {loaded.net.schedule.num_train_timesteps}], got {steps}")
    if not code_temperature > 0:
        raise InputError(f"--code-temperature must be positive, got {code_temperature}")
    if code_temperature != 1.0 and loaded.stage == "pvd":
        raise InputError("--code-temperature applies to LION checkpoints: the PVD baseline has no shape code", ckpt)
    kwargs = {"eta": eta} if sampler == "ddim" else {}
    smp = loaded.net.make_sampler(sampler, steps, **kwargs)
    loaded.net.to(device)
    g = torch.Generator().manual_seed(seed)
    chunks = []
    sizes = [min(batch_size, n - i) for i in range(0, n, batch_size)]
    for b in progress_bar(sizes, "sampling", disable=None if progress else True):
        x = loaded.net.sample(b, smp, generator=g, num_points=points, code_temperature=code_temperature)
        chunks.append(loaded.denormalize(x.cpu()).numpy().astype(np.float32))
    return np.concatenate(chunks), smp


def run(args: argparse.Namespace) -> int:
    """Sample and write the outputs."""
    from pathlib import Path

    if is_graf_checkpoint(args.ckpt):
        from gen3d.lit.graf_eval import run_graf_sample

        return run_graf_sample(args)

    import numpy as np

    from gen3d.data.io import save_points
    from gen3d.export.grid import render_point_grid
    from gen3d.utils import atomic_path

    points, smp = sample_checkpoint(
        args.ckpt,
        args.n,
        args.sampler,
        args.steps,
        args.seed,
        args.points,
        args.batch_size,
        args.eta,
        not args.no_ema,
        code_temperature=args.code_temperature,
        device=args.device,
    )
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    with atomic_path(out / "samples.npz") as tmp:
        np.savez(tmp, points=points)
    if not args.no_ply:
        width = max(4, len(str(len(points) - 1)))
        for i, cloud in enumerate(points):
            save_points(out / "ply" / f"sample_{i:0{width}d}.ply", cloud)
    render_point_grid(points[:64], out / "samples.png")
    smp.save_config(out / "sampler.json")
    print(f"gen3d sample: {len(points)} shapes of {points.shape[1]} points -> {out}")
    return 0
