"""Train the 3D-aware GAN once per radiance field with the demo's recipe and print docs/graf.md's fields table.

Each field is trained and evaluated by the GAN stage of ``gen3d demo`` (:func:`gen3d.pipelines.graf_demo.run_graf_demo`:
the preset ``gen3d/configs/graf_shapes.yaml``, the same renders, iterations, seed and evaluation), with the model
settings of :data:`RECIPES` replacing the preset's, one process per field. The triplane row is the preset itself,
so it equals the demo's table. Training is reproducible for a seed and thread count, so the table is too; the
training minutes depend on the machine.

Usage: ``python scripts/graf_fields.py [--out runs/graf_fields] [--fields triplane,voxel,graf,pigan]
[--iterations 1300]`` (7-14 minutes per field on 2 cores, about 45 in all). ``<out>/<field>/`` holds each run
(checkpoint, samples, ``metrics.json``); a field whose ``metrics.json`` is there is read, not trained again.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # idle OpenMP threads sleep (before torch starts)

# name -> (table label, model settings replacing the preset's)
RECIPES: dict[str, tuple[str, dict[str, Any]]] = {
    "graf": ("GRAF MLP, 4 x 64, z 32 + 32 (dense 12 + 12)", {"field": "graf", "sampler": "dense"}),
    "pigan": (
        "pi-GAN, 4 x 64 FiLM (dense 12 + 12)",
        # pi-GAN's own learning rates and betas (CelebA's); UniformBoxWarp maps the field's cube (side 2 x bound =
        # 1.2) to [-1, 1]^3, as pi-GAN's 0.24 maps CelebA's face box
        {"field": "pigan", "sampler": "dense", "lr_g": 6e-5, "lr_d": 2e-4, "betas": [0.0, 0.9], "box_side": 1.2},
    ),
    "voxel": (
        "voxel, 4 x 32^3 direct colour (marched)",
        {"field": "voxel", "feature_channels": 4, "feature_resolution": 32, "decoder_width": 0},
    ),
    "triplane": ("triplane, 3 x 16 x 32^2 (marched): the preset", {}),
}


def demo_config(field: str, iterations: int | None) -> Any:
    """The demo's :class:`~gen3d.pipelines.graf_demo.GrafDemoConfig` with ``field``'s model settings."""
    import dataclasses

    from gen3d.pipelines.graf_demo import load_graf_demo_config

    cfg = load_graf_demo_config(iterations=iterations)
    return dataclasses.replace(cfg, model={**cfg.model, **RECIPES[field][1]})


def train_one(field: str, out: Path, iterations: int | None) -> None:
    """Run the demo's GAN stage with ``field`` into ``out/field`` (in this process)."""
    from gen3d.pipelines.graf_demo import run_graf_demo

    run_graf_demo(out / field, demo_config(field, iterations))


def table_row(label: str, m: dict[str, Any], iterations: Any = "", minutes: Any = "") -> str:
    """One markdown row: FID, KID x100 (std), consistency x100, 1-NNA-CD %, COV-CD %, MMD-CD x1e3."""
    from gen3d.pipelines.graf_demo import _fmt  # the demo table's number format

    g = m["geometry"]
    cells = [
        label, str(iterations), str(minutes), _fmt(m["FID"], digits=1),
        f"{_fmt(m['KID'], 100)} ({_fmt(m['KID_std'], 100)})", _fmt(m["consistency"]["consistency"], 100),
        _fmt(g["1-NNA-CD"], digits=1), _fmt(g["COV-CD"], digits=1), _fmt(g["MMD-CD"], 1e3),
    ]  # fmt: skip
    return "| " + " | ".join(cells) + " |"


def fields_table(results: dict[str, dict[str, Any]]) -> str:
    """The markdown table of the runs' ``metrics.json`` (field name -> contents), in :data:`RECIPES` order, with the
    untrained triplane and the real data as the last rows."""
    head = (
        "| field (sampler) | iterations | training min | FID | KID x100 (std) | consistency err x100 | 1-NNA-CD % "
        "| COV-CD % | MMD-CD x1e3 |\n|---|---|---|---|---|---|---|---|---|"
    )
    lines = [head]
    for name, (label, _) in RECIPES.items():
        if name in results:
            r = results[name]
            lines.append(table_row(label, r, r["iterations"], f"{r['seconds']['train'] / 60:.1f}"))
    if results:
        first = "triplane" if "triplane" in results else next(iter(results))
        base = results[first]["baselines"]
        lines.append(table_row(f"untrained {first}", base["untrained"]))
        lines.append(table_row("real data (held-out)", base["oracle"]))
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=Path("runs/graf_fields"), help="output folder")
    parser.add_argument("--fields", default=",".join(RECIPES), help=f"comma-separated, of {', '.join(RECIPES)}")
    parser.add_argument("--iterations", type=int, default=None, help="GAN iterations (default: the demo's 1300)")
    parser.add_argument("--one", help=argparse.SUPPRESS)  # the child process: train this field only
    args = parser.parse_args(argv)
    if args.iterations is not None and args.iterations < 1:
        parser.error(f"--iterations must be at least 1, got {args.iterations}")
    if args.one:
        train_one(args.one, args.out, args.iterations)
        return 0
    names = [f.strip() for f in args.fields.split(",") if f.strip()]
    unknown = [f for f in names if f not in RECIPES]
    if unknown or not names:
        parser.error(f"--fields: unknown {', '.join(unknown) or '(none given)'}; expected some of {', '.join(RECIPES)}")
    results: dict[str, dict[str, Any]] = {}
    for name in names:
        metrics = args.out / name / "metrics.json"
        if not metrics.is_file():
            print(f"=== {name}: training into {args.out / name}", flush=True)
            cmd = [sys.executable, __file__, "--one", name, "--out", str(args.out)]
            cmd += [] if args.iterations is None else ["--iterations", str(args.iterations)]
            if subprocess.run(cmd).returncode != 0:
                print(f"graf_fields: the {name} run failed", file=sys.stderr)
                return 1
        results[name] = json.loads(metrics.read_text(encoding="utf-8"))
    print(fields_table(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
