"""``gen3d demo``: the end-to-end demonstration on the built-in procedural shapes.

Stages run in order from :func:`run`, each a function ``stage_<name>(out, args) -> dict`` whose result is
stored under its name in ``<out>/demo_summary.json``:

1. ``data``: build the procedural dataset into ``<out>/data`` (PC15k layout), print its statistics, render
   ``<out>/shapes.png`` (a grid of shapes, one column per class) and write ``<out>/ply/<class>_<i>.ply``.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

GRID_POINTS = 2048


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``demo`` command."""
    parser = subparsers.add_parser(
        "demo",
        help="run the end-to-end demo on the built-in procedural shapes",
        description="Build the procedural shapes dataset, print its statistics and write previews "
        "(PNG grid, PLY files).",
    )
    parser.add_argument("--out", default="runs/demo", help="output folder (default runs/demo)")
    parser.add_argument("--classes", default="all", help="comma-separated procedural classes, or 'all' (default)")
    parser.add_argument("--per-class", type=int, default=20, help="shapes per class over all splits (default 20)")
    parser.add_argument("--seed", type=int, default=0, help="dataset seed (default 0)")
    parser.add_argument("--points", type=int, default=15000, help="points per shape (default 15000)")
    parser.add_argument(
        "--preview", type=int, default=2, help="shapes per class in the PNG grid and as PLY files (default 2)"
    )
    parser.add_argument("--lion-minutes", type=float, default=11.0, help="LION stage budget (default 11)")
    parser.add_argument("--graf-minutes", type=float, default=4.0, help="GRAF training budget (default 4)")
    parser.add_argument(
        "--lion-accelerator",
        choices=("cpu", "gpu"),
        default="cpu",
        help="where the LION stage trains and samples (default cpu; gpu: one CUDA GPU, same budget and model)",
    )
    parser.add_argument("--skip-lion", action="store_true", help="skip the LION stage")
    parser.add_argument("--skip-graf", action="store_true", help="skip the GRAF stage")
    parser.set_defaults(func=run)


def stage_data(out: Path, args: argparse.Namespace) -> dict[str, Any]:
    """Build the procedural dataset into ``<out>/data`` and write its previews.

    Args:
        out: the demo's output folder.
        args: parsed ``gen3d demo`` arguments (classes, per_class, seed, points, preview).

    Returns:
        ``{"root", "seconds", "stats", "grid", "ply"}``: the dataset folder, build time, the statistics
        of :func:`gen3d.data.stats.dataset_stats`, the PNG path and the PLY paths.
    """
    import numpy as np
    from rich.console import Console

    from gen3d.data import shapes
    from gen3d.data.io import load_points, save_points
    from gen3d.data.stats import dataset_stats, stats_table
    from gen3d.errors import InputError
    from gen3d.export.grid import render_point_grid

    if args.preview < 0:
        raise InputError(f"--preview must be non-negative, got {args.preview}")
    console = Console()
    root = out / "data"
    start = time.perf_counter()
    manifest = shapes.build_dataset(root, args.classes, args.per_class, args.seed, args.points)
    seconds = time.perf_counter() - start
    stats = dataset_stats(root, manifest["classes"])
    console.print(stats_table(stats, title=f"procedural shapes in {root} (built in {seconds:.1f} s)"))

    names = manifest["classes"]
    preview = min(args.preview, min(c["train"] for c in manifest["counts"].values()))
    clouds, labels, ply_paths = [], [], []
    for i in range(preview):  # row i holds the i-th train shape of every class
        for name in names:
            files = sorted((root / name / "train").glob("*.npy"))
            cloud = load_points(files[i])[:GRID_POINTS]  # the points are i.i.d., so a prefix is a uniform subsample
            clouds.append(cloud)
            labels.append(f"{name} {files[i].stem}")
            ply_paths.append(save_points(out / "ply" / f"{name}_{i}.ply", cloud))
    grid = None
    if clouds:
        grid = out / "shapes.png"
        render_point_grid(np.stack(clouds), grid, ncols=len(names), size=128, labels=labels)
        console.print(f"wrote {grid} and {len(ply_paths)} PLY files in {out / 'ply'}", highlight=False)
    return {
        "root": str(root),
        "seconds": round(seconds, 3),
        "stats": stats,
        "grid": None if grid is None else str(grid),
        "ply": [str(p) for p in ply_paths],
    }


def stage_lion(out: Path, args: argparse.Namespace) -> dict[str, Any]:
    """Train LION on the procedural shapes, sample, evaluate against the held-out split (``<out>/metrics.json``)."""
    from gen3d.pipelines.lion_demo import run_lion_demo

    result = run_lion_demo(
        out, data_root=None, budget_minutes=args.lion_minutes, seed=args.seed, accelerator=args.lion_accelerator
    )
    return {
        "metrics": str(out / "metrics.json"),
        "1-NNA-CD": result["lion"].get("1-NNA-CD"),
        "1-NNA-CD mean of draws": result["draws"]["mean"]["1-NNA-CD"],
        "1-NNA-CD standard error of the mean": result["draws"]["sem"]["1-NNA-CD"],
    }


def stage_graf(out: Path, args: argparse.Namespace) -> dict[str, Any]:
    """Train GRAF on multi-view renders, render a turntable, export a mesh, report FID/KID (``<out>/graf``)."""
    from gen3d.pipelines.graf_demo import run_graf_demo, summary_line

    result = run_graf_demo(out / "graf", args.graf_minutes, seed=args.seed)
    print(summary_line(result))
    return {"metrics": str(out / "graf" / "metrics.json"), "FID": result.get("FID"), "KID": result.get("KID")}


def run(args: argparse.Namespace) -> int:
    """Run every demo stage and write ``<out>/demo_summary.json``."""
    from gen3d.utils import atomic_write_text

    if args.lion_accelerator == "gpu" and not args.skip_lion:
        import torch

        from gen3d.errors import InputError

        if not torch.cuda.is_available():  # before anything is written
            raise InputError("--lion-accelerator gpu: CUDA is not available on this machine")
    out = Path(args.out)
    summary: dict[str, Any] = {}
    summary["data"] = stage_data(out, args)
    if not args.skip_lion:
        summary["lion"] = stage_lion(out, args)
    if not args.skip_graf:
        summary["graf"] = stage_graf(out, args)
    atomic_write_text(out / "demo_summary.json", json.dumps(summary, indent=2) + "\n")
    return 0
