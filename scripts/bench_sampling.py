"""Sampling speed and quality of a trained LION: DDPM 1000 steps vs DDIM / DPM-Solver++ (ODE and SDE) at 50 and
20 steps.

For each sampler and each of ``--seeds`` seeds it generates as many shapes as the reference split (the val
split of the demo's data), times it (seconds per shape, wall clock, one thread per process) and computes
1-NNA / COV / MMD (Chamfer) with :func:`gen3d.metrics.point_cloud_metrics`; the table shows the mean over the
seeds and the per-seed 1-NNA (with 60 references it moves by several points from seed to seed, so one seed
cannot resolve a 2-point difference). Seeds run side by side in forked processes (``--processes``).

    python scripts/bench_sampling.py                                   # the demo's checkpoint
    python scripts/bench_sampling.py --ckpt runs/lion_shapes/prior/checkpoints/last.ckpt --seeds 4

Target: a walk of at most 50 steps at least 20x faster than 1000, with a 1-NNA-CD at most 2 points above DDPM-1000's.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

DEFAULT_CKPT = "runs/demo/prior/checkpoints/last.ckpt"  # what `make demo` trains
# (sampler, steps, DDIM eta): DDPM at 1000, 300 and 100 steps; deterministic DDIM / DPM-Solver++,
# stochastic DDIM (eta 1) and SDE-DPM-Solver++ at 50 and 20 steps (and SDE-DPM-Solver++ at 40: at 50 steps the
# fixed costs of a draw, the decoder and the shape-latent prior, keep the speed-up just under 1000 / 50 = 20x)
RUNS = (
    ("ddpm", 1000, None),
    ("ddpm", 300, None),
    ("ddpm", 100, None),
    ("ddim", 50, 0.0),
    ("ddim", 50, 1.0),
    ("dpm", 50, None),
    ("dpm-sde", 50, None),
    ("dpm-sde", 40, None),
    ("ddim", 20, 0.0),
    ("ddim", 20, 1.0),
    ("dpm", 20, None),
    ("dpm-sde", 20, None),
)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--ckpt", default=DEFAULT_CKPT, help=f"LION prior-stage checkpoint (default {DEFAULT_CKPT})")
    parser.add_argument("--data-root", default=None, help="PC15k-layout root of the references (default: procedural)")
    parser.add_argument("--classes", default=None, help="comma-separated classes (default: the demo's)")
    parser.add_argument("--per-class", type=int, default=None, help="procedural shapes per class (default: the demo's)")
    parser.add_argument("--seed", type=int, default=1, help="first sampling seed (default 1)")
    parser.add_argument("--seeds", type=int, default=2, help="sampling seeds per sampler (default 2)")
    parser.add_argument("--processes", type=int, default=None, help="sampling processes (default: min(seeds, cores))")
    parser.add_argument(
        "--code-temperature",
        type=float,
        default=1.0,
        help="factor on the sampled shape codes, for every sampler (default 1, LION's; the demo samples at 1.3)",
    )
    parser.add_argument("--json", default=None, help="also write the results as JSON")
    args = parser.parse_args(argv)
    if args.seeds < 1:
        parser.error(f"--seeds must be >= 1, got {args.seeds}")
    if not args.code_temperature > 0:
        parser.error(f"--code-temperature must be positive, got {args.code_temperature}")
    return args


def references(args: argparse.Namespace) -> Any:
    """The reference clouds of the demo's data (its val split), with the classes and shapes per class asked for."""
    from gen3d.pipelines.lion_demo import demo_datamodule, load_lion_demo_config, reference_clouds

    classes = tuple(args.classes.split(",")) if args.classes else None
    cfg = load_lion_demo_config(classes=classes, per_class=args.per_class, seed=0)
    return reference_clouds(demo_datamodule(cfg, args.data_root))


def sample_all(args: argparse.Namespace, refs: Any, seeds: list[int], procs: int) -> dict[tuple, tuple[Any, float]]:
    """``{(sampler, steps, eta, seed): (samples, seconds)}`` for every run of :data:`RUNS` and seed."""
    import torch

    from gen3d.inference.lion import load_lion
    from gen3d.utils.parallel import fork_map

    loaded = load_lion(args.ckpt)

    def sample(name: str, steps: int, eta: float | None, seed: int) -> tuple[torch.Tensor, float]:
        torch.set_num_threads(1)
        sampler = loaded.net.make_sampler(name, steps, **({"eta": eta} if eta is not None else {}))
        start = time.perf_counter()
        g = torch.Generator().manual_seed(seed)
        x = loaded.net.sample(
            len(refs), sampler, generator=g, num_points=refs.shape[1], code_temperature=args.code_temperature
        )
        return loaded.denormalize(x), time.perf_counter() - start

    jobs = [(name, steps, eta, seed) for name, steps, eta in RUNS for seed in seeds]
    return dict(zip(jobs, fork_map(sample, jobs, procs), strict=True))


def score_all(args: argparse.Namespace, refs: Any, seeds: list[int], done: dict) -> list[dict[str, Any]]:
    """One row per run of :data:`RUNS`: seconds per shape and the Chamfer metrics, means over the seeds."""
    from gen3d.metrics import point_cloud_metrics

    n, results = len(refs), []
    for name, steps, eta in RUNS:
        label = f"{name} {steps}" + (f" eta={eta:g}" if eta is not None else "")
        per_seed = [point_cloud_metrics(done[(name, steps, eta, s)][0], refs, emd=False) for s in seeds]
        seconds = sum(done[(name, steps, eta, s)][1] for s in seeds) / len(seeds)
        row = {"sampler": name, "steps": steps, "eta": eta, "sec_per_shape": seconds / n, "seeds": seeds}
        row["code_temperature"] = args.code_temperature
        row.update({k: sum(float(m[k]) for m in per_seed) / len(seeds) for k in per_seed[0]})
        row["1-NNA-CD per seed"] = [float(m["1-NNA-CD"]) for m in per_seed]
        results.append(row)
        print(f"{label}: {seconds / n:.3f} s/shape, 1-NNA-CD {row['1-NNA-CD']:.1f} %", file=sys.stderr)
    return results


def results_table(results: list[dict[str, Any]], title: str) -> Any:
    """A rich table of the rows, with the speed-up and the 1-NNA-CD change against the first (DDPM-1000)."""
    from rich.table import Table

    base = results[0]
    table = Table(title=title)
    columns = ("sampler", "steps", "eta", "s / shape", "speed-up", "1-NNA-CD %", "per seed", "delta vs DDPM-1000")
    for col in (*columns, "COV-CD %", "MMD-CD x1e3"):
        table.add_column(col, justify="right")
    for r in results:
        table.add_row(
            r["sampler"],
            str(r["steps"]),
            "-" if r["eta"] is None else f"{r['eta']:g}",
            f"{r['sec_per_shape']:.3f}",
            f"{base['sec_per_shape'] / r['sec_per_shape']:.1f}x",
            f"{r['1-NNA-CD']:.1f}",
            " / ".join(f"{v:.1f}" for v in r["1-NNA-CD per seed"]),
            f"{r['1-NNA-CD'] - base['1-NNA-CD']:+.1f}",
            f"{r['COV-CD']:.1f}",
            f"{1e3 * r['MMD-CD']:.3f}",
        )
    return table


def target_line(results: list[dict[str, Any]], seeds: list[int], n: int) -> str:
    """Which samplers meet the target (<= 50 steps, >= 20x faster than DDPM-1000, at most 2 points worse)."""
    base = results[0]
    met = [
        r
        for r in results[1:]
        if r["steps"] <= 50
        and base["sec_per_shape"] / r["sec_per_shape"] >= 20
        and r["1-NNA-CD"] - base["1-NNA-CD"] <= 2  # at most 2 points worse (lower 1-NNA is better)
    ]
    names = ", ".join(f"{r['sampler']} {r['steps']}" + ("" if r["eta"] is None else f" eta={r['eta']:g}") for r in met)
    return (
        "target (<= 50 steps, >= 20x faster than DDPM-1000, 1-NNA-CD at most 2 points above it): "
        + (f"met by {names}" if met else "not met")
        + f" (means over {len(seeds)} seeds; 1-NNA with {n} references moves by several points between seeds)"
    )


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    import os

    from rich.console import Console

    from gen3d.utils import check_exists

    check_exists(args.ckpt, "file")
    refs = references(args)
    seeds = list(range(args.seed, args.seed + args.seeds))
    procs = args.processes or max(1, min(len(seeds), os.cpu_count() or 1))
    results = score_all(args, refs, seeds, sample_all(args, refs, seeds, procs))
    n = len(refs)
    console = Console()
    console.print(
        results_table(
            results,
            f"LION sampling: {n} shapes vs {n} references, mean of seeds {seeds} ({Path(args.ckpt)}, "
            f"shape-code temperature {args.code_temperature:g}, {procs} processes of one thread)",
        )
    )
    console.print(target_line(results, seeds, n))
    if args.json:
        from gen3d.utils import atomic_write_text

        atomic_write_text(args.json, json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
