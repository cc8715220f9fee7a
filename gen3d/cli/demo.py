"""``gen3d demo``: the end-to-end demonstration on the built-in procedural shapes (argparse only).

The stages live in :mod:`gen3d.pipelines.demo`; their settings come from the presets
``gen3d/configs/lion_demo.yaml`` (LION) and ``gen3d/configs/graf_shapes.yaml`` (GRAF), which the step options
here override.
"""

from __future__ import annotations

import argparse

from gen3d.cli._options import count, seed


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``demo`` command."""
    parser = subparsers.add_parser(
        "demo",
        help="run the end-to-end demo on the built-in procedural shapes",
        description="Build the procedural shapes dataset and write previews (PNG grid, PLY files); train, sample "
        "and evaluate LION on chairs; train GRAF on multi-view renders and report FID/KID. Training runs for step "
        "counts (defaults from gen3d/configs/lion_demo.yaml and graf_shapes.yaml), so a seed gives the same numbers "
        "on a fast or a slow machine.",
    )
    parser.add_argument("--out", default="runs/demo", help="output folder (default runs/demo)")
    parser.add_argument("--classes", default="all", help="comma-separated procedural classes, or 'all' (default)")
    parser.add_argument("--per-class", type=count(3), default=20, help="shapes per class over all splits (default 20)")
    parser.add_argument(
        "--seed", type=seed(), default=None, help="seed of the data and of every stage (default: the presets', 0)"
    )
    parser.add_argument("--points", type=count(64, 10**6), default=15000, help="points per shape (default 15000)")
    parser.add_argument(
        "--preview", type=count(0), default=2, help="shapes per class in the PNG grid and as PLY files (default 2)"
    )
    parser.add_argument("--vae-steps", type=count(), default=None, help="LION VAE steps (default: lion_demo.yaml's)")
    parser.add_argument(
        "--prior-steps", type=count(), default=None, help="LION latent-prior steps (default: lion_demo.yaml's)"
    )
    parser.add_argument(
        "--graf-iterations",
        type=count(),
        default=None,
        help="3D-aware GAN iterations, two optimiser steps each (default 1300, gen3d/pipelines/graf_demo.py)",
    )
    parser.add_argument(
        "--lion-accelerator",
        choices=("cpu", "gpu"),
        default="cpu",
        help="where the LION stage trains and samples (default cpu; gpu: one CUDA GPU, same model and steps)",
    )
    parser.add_argument("--skip-lion", action="store_true", help="skip the LION stage")
    parser.add_argument("--skip-graf", action="store_true", help="skip the 3D-aware GAN (GRAF stage)")
    parser.set_defaults(func=run)


def check_args(args: argparse.Namespace) -> None:
    """Reject, before anything is written, an output folder that cannot be written and a GPU that is not there."""
    from gen3d.errors import InputError
    from gen3d.utils.fs import check_output_dir

    check_output_dir(args.out, "--out")
    if args.lion_accelerator == "gpu" and not args.skip_lion:
        import torch

        if not torch.cuda.is_available():  # before anything is written
            raise InputError("--lion-accelerator gpu: CUDA is not available on this machine")


def run(args: argparse.Namespace) -> int:
    """Run every demo stage and write ``<out>/demo_summary.json``."""
    check_args(args)
    from gen3d.pipelines.demo import DataOptions, run_demo
    from gen3d.pipelines.graf_demo import load_graf_demo_config
    from gen3d.pipelines.lion_demo import load_lion_demo_config

    lion = load_lion_demo_config(vae_steps=args.vae_steps, prior_steps=args.prior_steps, seed=args.seed)
    graf = load_graf_demo_config(iterations=args.graf_iterations, seed=args.seed)
    data = DataOptions(args.classes, args.per_class, lion.seed, args.points, args.preview)
    run_demo(
        args.out,
        data,
        None if args.skip_lion else lion,
        None if args.skip_graf else graf,
        lion_accelerator=args.lion_accelerator,
    )
    return 0
