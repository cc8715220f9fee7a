"""``gen3d demo``: the end-to-end demonstration on the built-in procedural shapes.

:func:`run_demo` runs the stages in order, each a function ``stage_<name>(out, ...) -> dict`` whose result is
stored under its name in ``<out>/demo_summary.json``:

1. ``data``: build the procedural dataset into ``<out>/data`` (PC15k layout), print its statistics, render
   ``<out>/shapes.png`` (a grid of shapes, one column per class) and write ``<out>/ply/<class>_<i>.ply``;
2. ``lion``: train LION, sample and evaluate it (:mod:`gen3d.pipelines.lion_demo`, ``<out>/metrics.json``);
3. ``graf``: train the 3D-aware GAN (a triplane field), render a turntable, export a mesh, report FID/KID,
   consistency and geometry (:mod:`gen3d.pipelines.graf_demo`, ``<out>/graf``).

Every stage runs for step counts from its preset, so the same seed prints the same tables on any machine with
the same number of cores; the time taken is printed on its own line.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from gen3d.pipelines.graf_demo import GrafDemoConfig
    from gen3d.pipelines.lion_demo import LionDemoConfig

GRID_POINTS = 2048


@dataclass(frozen=True)
class DataOptions:
    """The data stage's settings.

    Attributes:
        classes: comma-separated procedural classes, or ``"all"``.
        per_class: shapes per class over all splits.
        seed: dataset seed.
        points: points per shape.
        preview: shapes per class in the PNG grid and as PLY files.
    """

    classes: str = "all"
    per_class: int = 20
    seed: int = 0
    points: int = 15000
    preview: int = 2


def stage_data(out: Path, opts: DataOptions) -> dict[str, Any]:
    """Build the procedural dataset into ``<out>/data`` and write its previews.

    Returns:
        ``{"root", "seconds", "stats", "grid", "ply"}``: the dataset folder, build time, the statistics
        of :func:`gen3d.data.stats.dataset_stats`, the PNG path and the PLY paths.
    """
    import numpy as np
    from rich.console import Console

    from gen3d.data import shapes
    from gen3d.data.io import load_points, save_points
    from gen3d.data.stats import dataset_stats, stats_table
    from gen3d.export.grid import render_point_grid

    console, root = Console(), out / "data"
    start = time.perf_counter()
    manifest = shapes.build_dataset(root, opts.classes, opts.per_class, opts.seed, opts.points)
    seconds = time.perf_counter() - start
    stats = dataset_stats(root, manifest["classes"])
    console.print(stats_table(stats, title=f"procedural shapes in {root}"))
    console.print(f"built in {seconds:.1f} s", highlight=False)

    names = manifest["classes"]
    preview = min(opts.preview, min(c["train"] for c in manifest["counts"].values()))
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


def stage_lion(out: Path, cfg: LionDemoConfig, accelerator: str = "cpu") -> dict[str, Any]:
    """Train LION on the procedural shapes, sample, evaluate against the held-out split (``<out>/metrics.json``)."""
    from gen3d.pipelines.lion_demo import run_lion_demo

    result = run_lion_demo(out, cfg, accelerator=accelerator)
    return {
        "metrics": str(out / "metrics.json"),
        "steps": result["steps"],
        "1-NNA-CD": result["lion"].get("1-NNA-CD"),
        "1-NNA-CD mean of draws": result["draws"]["mean"]["1-NNA-CD"],
        "1-NNA-CD standard error of the mean": result["draws"]["sem"]["1-NNA-CD"],
    }


def stage_graf(out: Path, cfg: GrafDemoConfig) -> dict[str, Any]:
    """Train the 3D-aware GAN on multi-view renders, render a turntable, export a mesh, report FID/KID, consistency
    and geometry (``<out>/graf``)."""
    from gen3d.pipelines.graf_demo import run_graf_demo, summary_line

    result = run_graf_demo(out / "graf", cfg)
    print(summary_line(result))
    return {
        "metrics": str(out / "graf" / "metrics.json"),
        "iterations": result["iterations"],
        "FID": result.get("FID"),
        "KID": result.get("KID"),
    }


def run_demo(
    out: str | Path,
    data: DataOptions,
    lion: LionDemoConfig | None,
    graf: GrafDemoConfig | None,
    lion_accelerator: str = "cpu",
) -> dict[str, Any]:
    """Run the data stage, then LION and GRAF (each skipped when its config is None); write
    ``<out>/demo_summary.json`` and return what it holds."""
    from gen3d.utils import atomic_write_text

    out, start = Path(out), time.perf_counter()
    summary: dict[str, Any] = {"data": stage_data(out, data)}
    if lion is not None:
        summary["lion"] = stage_lion(out, lion, lion_accelerator)
    if graf is not None:
        summary["graf"] = stage_graf(out, graf)
    summary["seconds"] = round(time.perf_counter() - start, 1)
    atomic_write_text(out / "demo_summary.json", json.dumps(summary, indent=2) + "\n")
    print(f"gen3d demo took {summary['seconds'] / 60:.1f} min; summary in {out / 'demo_summary.json'}")
    return summary
