"""``gen3d sample``: draw shapes from a trained LION, PVD or point-flow checkpoint, or images from a GRAF checkpoint.

LION / PVD: writes ``<out>/samples.npz`` (key ``points``, ``(N, P, 3)`` in the data's original frame; key ``meta``, the
sampling record as JSON), one PLY per shape (``<out>/ply/sample_<i>.ply``), a PNG grid (``<out>/samples.png``) and the
sampling record (``<out>/sampler.json``: checkpoint and its SHA-256, sampler, steps, seed and the other options, device,
gen3d version, time). The same checkpoint, seed and options give the same samples.

Point flow (``gen3d train flow``): the same files, with any ``--points`` (every point is drawn independently from one
shape code). The flow samples in one pass: ``--sampler``, ``--steps`` and ``--eta`` do not apply and are refused;
``--code-temperature`` scales its sampling noise.

GRAF (recognised from the checkpoint's hyperparameters): ``images/sample_XX.png`` renders at random training poses (or
``--u/--v``), ``grid.png``, ``sampler.json`` (the sampling record), a turntable GIF and a marching-cubes mesh of the
first sample. The work is done by :mod:`gen3d.pipelines.sample`.
"""

from __future__ import annotations

import argparse

from gen3d.cli._options import count, device, fraction, positive, seed

SAMPLERS = ("ddpm", "ddim", "dpm", "dpm-sde")  # gen3d.diffusion.SAMPLERS (not imported: --help stays fast)


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``sample`` command."""
    parser = subparsers.add_parser(
        "sample",
        help="generate shapes from a trained LION, PVD, point-flow or GRAF checkpoint",
        description="Generate point clouds from a LION checkpoint (the 'prior' stage of gen3d train lion), a "
        "PVD baseline checkpoint (gen3d train pvd) or a point-flow checkpoint (gen3d train flow; any --points, "
        "no --sampler/--steps/--eta), or rendered images, a turntable and a mesh from a GRAF "
        "checkpoint (gen3d train graf). The kind is read from the checkpoint.",
    )
    parser.add_argument("--ckpt", required=True, help="checkpoint (.ckpt) of the prior stage")
    parser.add_argument("--n", type=count(), default=16, help="number of shapes (default 16)")
    parser.add_argument(
        "--sampler",
        choices=SAMPLERS,
        default=None,
        help="reverse-process sampler of LION/PVD (default ddpm, LION's; dpm-sde at 50 steps matched ddpm at 1000 on "
        "the demo model, the deterministic ddim/dpm need a longer-trained prior; see docs/lion.md)",
    )
    parser.add_argument(
        "--steps",
        type=count(1, 100000),
        default=None,
        help="sampling steps (default: 1000 for ddpm, 50 otherwise; on the demo model ddpm 300 scored as well)",
    )
    parser.add_argument("--eta", type=fraction(), default=0.0, help="DDIM stochasticity (default 0: deterministic)")
    parser.add_argument(
        "--code-temperature",
        type=positive(),
        default=1.0,
        help="LION: factor on the sampled shape codes (default 1, LION's; the demo uses 1.3, see docs/lion.md); "
        "point flow: scale of its sampling noise (default 1)",
    )
    parser.add_argument("--seed", type=seed(), default=0, help="random seed (default 0)")
    parser.add_argument("--points", type=count(1, 10**7), default=None, help="points per shape (default: the model's)")
    parser.add_argument("--batch-size", type=count(), default=32, help="shapes generated at once (default 32)")
    parser.add_argument("--no-ema", action="store_true", help="use the raw weights instead of their EMA")
    parser.add_argument(
        "--device",
        type=device,
        default=None,
        help="torch device to sample on (default: cuda if available, else cpu); the noise is drawn on the CPU, "
        "so a seed gives the same shapes on any device up to floating-point rounding",
    )
    parser.add_argument("--out", required=True, help="output folder")
    parser.add_argument("--no-ply", action="store_true", help="skip the per-shape PLY files")
    graf = parser.add_argument_group(
        "GRAF checkpoints (--sampler, --steps, --eta, --code-temperature, --points are not used)"
    )
    graf.add_argument("--size", type=count(8, 4096), default=None, help="image side (default: the training size)")
    graf.add_argument("--u", type=fraction(), default=None, help="camera azimuth as a fraction of a turn")
    graf.add_argument("--v", type=fraction(), default=None, help="camera polar v = (1 - cos(polar)) / 2")
    graf.add_argument("--no-gif", action="store_true", help="skip the turntable GIF")
    graf.add_argument("--no-mesh", action="store_true", help="skip the mesh")
    graf.add_argument("--frames", type=count(1, 3600), default=40, help="turntable frames (default 40)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Sample and write the outputs (the checkpoint's kind picks the pipeline)."""
    from gen3d.errors import InputError
    from gen3d.inference.checkpoint import is_flow_checkpoint, is_graf_checkpoint, read_checkpoint
    from gen3d.pipelines import sample
    from gen3d.utils.fs import check_output_dir

    check_output_dir(args.out, "--out")
    ckpt = read_checkpoint(args.ckpt)
    if is_flow_checkpoint(ckpt):
        given = [f for f, v in (("--sampler", args.sampler), ("--steps", args.steps)) if v is not None]
        given += ["--eta"] if args.eta != 0.0 else []
        if given:
            raise InputError(
                f"{' and '.join(given)} {'does' if len(given) == 1 else 'do'} not apply to a point-flow checkpoint: "
                "the flow samples in one pass",
                args.ckpt,
            )
        sample.sample_flow_to_files(
            args.ckpt, args.out, args.n, ply=not args.no_ply, seed=args.seed, points=args.points,
            batch_size=args.batch_size, temperature=args.code_temperature, use_ema=not args.no_ema, device=args.device,
        )  # fmt: skip
        return 0
    if is_graf_checkpoint(ckpt):
        res = sample.sample_graf_to_files(
            args.ckpt, args.out, args.n, args.size, args.seed, args.u, args.v, not args.no_gif, not args.no_mesh,
            args.frames, device=args.device,
        )  # fmt: skip
        print(
            f"wrote {len(res['images'])} images, {res['grid']}"
            + "".join(f", {res[k]}" for k in ("record", "gif", "mesh") if k in res)
        )
        return 0
    from gen3d.inference.lion import DEFAULT_SAMPLER

    sample.sample_lion_to_files(
        args.ckpt, args.out, args.n, ply=not args.no_ply, sampler=args.sampler or DEFAULT_SAMPLER, steps=args.steps,
        seed=args.seed, points=args.points, batch_size=args.batch_size, eta=args.eta, use_ema=not args.no_ema,
        code_temperature=args.code_temperature, device=args.device,
    )  # fmt: skip
    return 0
