"""``gen3d report``: reports that compare trained models.

``gen3d report trilemma RUN... --refs R --out DIR``: every model family on the same references, judged on quality,
diversity, speed and likelihood (:mod:`gen3d.pipelines.trilemma`); writes ``trilemma.json``, ``trilemma.md`` and
``trilemma.png``.
"""

from __future__ import annotations

import argparse

from gen3d.cli._options import count, positive, seed
from gen3d.cli.main import add_command_group
from gen3d.cli.sample import SAMPLERS


def register(subparsers: argparse._SubParsersAction) -> None:
    sub = add_command_group(
        subparsers,
        "report",
        "report commands",
        "WHAT",
        help="compare trained models: the generative-trilemma report",
        description="Reports that put several trained models side by side on the same references.",
    )
    p = sub.add_parser(
        "trilemma",
        help="quality, diversity, speed and likelihood of every model family on the same shapes",
        description="Generate shapes from each checkpoint (LION with DDPM and its fast sampler, LION's VAE from its "
        "own prior, PVD, the point flow, the 3D-aware GAN through its extracted geometry) and score them against "
        "the same references: 1-NNA and COV (Chamfer, EMD), P-FID, the share classified as the references' class, "
        "seconds per shape, training time and bits per point. Writes trilemma.json, trilemma.md and trilemma.png "
        "into --out. See docs/trilemma.md.",
    )
    p.add_argument("runs", nargs="+", metavar="RUN", help="checkpoint files or run folders of gen3d train")
    p.add_argument("--refs", required=True, help="reference clouds: a split folder (ROOT/chair/test), .npz or .npy")
    p.add_argument("--out", required=True, help="folder of the report (created)")
    p.add_argument("--oracle", default=None, help="other real clouds scored as a row (e.g. ROOT/chair/val)")
    p.add_argument("--n", type=count(2), default=None, help="shapes per row (default: as many as references)")
    p.add_argument(
        "--points",
        type=count(16, 10**6),
        default=None,
        help="points per cloud (default: the point models' training count, else 2048)",
    )
    p.add_argument("--seed", type=seed(), default=0, help="seed of the sampling and the metrics (default 0)")
    p.add_argument(
        "--emd", choices=("approx", "exact", "none"), default="approx", help="EMD of 1-NNA and COV (default approx)"
    )
    p.add_argument("--fast-sampler", choices=SAMPLERS, default="dpm-sde", help="LION's fast sampler (default dpm-sde)")
    p.add_argument("--fast-steps", type=count(1, 100000), default=20, help="its steps (default 20)")
    p.add_argument("--code-temperature", type=positive(), default=1.0, help="LION's shape-code temperature (default 1)")
    p.add_argument("--batch-size", type=count(), default=32, help="shapes per generation call (default 32)")
    p.add_argument("--gan-resolution", type=count(16, 256), default=64, help="GAN surface extraction grid (default 64)")
    p.add_argument("--no-pfid", action="store_true", help="skip P-FID (needs no Inception weights then)")
    p.add_argument("--weights", default=None, help="Inception-v3 TorchScript file of P-FID (see docs/metrics.md)")
    p.add_argument("--no-classifier", action="store_true", help="skip the shape classifier's scores")
    p.add_argument("--classes", default=None, help="classes of the references (default: their parent folder's name)")
    p.set_defaults(func=run_trilemma_command)


def run_trilemma_command(args: argparse.Namespace) -> int:
    from pathlib import Path

    from gen3d.errors import InputError
    from gen3d.pipelines.trilemma import TrilemmaOptions, run_trilemma
    from gen3d.utils.fs import check_output_dir

    check_output_dir(args.out, "--out")
    for option, path in (("--refs", args.refs), ("--oracle", args.oracle), ("--weights", args.weights)):
        if path is not None and not Path(path).exists():
            raise InputError(f"does not exist (given as {option})", path)
    classes = tuple(c.strip() for c in args.classes.split(",") if c.strip()) if args.classes else None
    opts = TrilemmaOptions(
        refs=args.refs,
        oracle=args.oracle,
        n=args.n,
        points=args.points,
        seed=args.seed,
        emd=args.emd,
        fast_sampler=args.fast_sampler,
        fast_steps=args.fast_steps,
        code_temperature=args.code_temperature,
        batch_size=args.batch_size,
        gan_resolution=args.gan_resolution,
        pfid=not args.no_pfid,
        weights=args.weights,
        classifier=not args.no_classifier,
        classes=classes,
    )
    report = run_trilemma(args.runs, args.out, opts)
    _print(report)
    print(f"wrote {Path(args.out) / 'trilemma.json'}, trilemma.md and trilemma.png")
    return 0


def _print(report: dict) -> None:
    from rich.console import Console
    from rich.table import Table

    from gen3d.pipelines.trilemma import table_rows

    header, cells = table_rows(report)
    table = Table(title="generative trilemma")
    for name in header:
        table.add_column(name)
    for row in cells:
        table.add_row(*row)
    Console().print(table)
