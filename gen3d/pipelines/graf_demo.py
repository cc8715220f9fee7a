"""The GRAF stage of ``gen3d demo``: render data, train a few minutes on the CPU, sample, export, evaluate.

:func:`run_graf_demo` writes into ``out_dir``:

- ``data/train`` and ``data/heldout``: multi-view renders of the procedural shapes (disjoint shapes);
- ``train/``: Lightning logs and periodic sample grids; ``graf.ckpt``: the trained model;
- ``samples_trained.png`` / ``samples_untrained.png``: the moving-average generator after / before training;
- ``turntable.gif`` (rendered through the occupancy grid at twice the training resolution) and
  ``mesh.ply`` (marching cubes on the density) of the first sample;
- ``metrics.json``: FID / KID of the trained generator and of two baselines measured in the same run with the
  same number of images against the same reference (the training images): held-out real renders (the
  oracle, the best a generator can do at this sample size) and the untrained generator.
"""

from __future__ import annotations

import copy
import json
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import torch

DEMO_CLASSES = "chair,car,mug"


def _config() -> dict[str, Any]:
    import yaml

    import gen3d

    path = Path(gen3d.__file__).parent / "configs" / "graf_shapes.yaml"
    return yaml.safe_load(path.read_text())


def run_graf_demo(
    out_dir: str | Path,
    budget_minutes: float = 4.0,
    *,
    threads: int = 2,
    seed: int = 0,
    per_class: int = 32,
    heldout_per_class: int = 8,
    views: int = 8,
    n_eval: int = 100,
) -> dict[str, Any]:
    """Run the GRAF demo (see the module docstring) and return what ``metrics.json`` holds.

    Args:
        out_dir: output folder (e.g. ``runs/demo/graf``).
        budget_minutes: wall-clock training budget.
        threads: torch CPU threads.
        seed: seed of the data, the initialisation and the evaluation.
        per_class: training shapes per class (3 classes, ``views`` images each).
        heldout_per_class: held-out shapes per class (the oracle baseline's images).
        views: rendered views per shape.
        n_eval: images per FID/KID evaluation (generated, held-out and reference alike).

    Returns:
        The metrics and the paths written.
    """
    t_start = time.perf_counter()
    previous_threads = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        return _run(out_dir, budget_minutes, threads, seed, per_class, heldout_per_class, views, n_eval, t_start)
    finally:
        torch.set_num_threads(previous_threads)


def _run(
    out_dir: str | Path,
    budget_minutes: float,
    threads: int,
    seed: int,
    per_class: int,
    heldout_per_class: int,
    views: int,
    n_eval: int,
    t_start: float,
) -> dict[str, Any]:
    """The body of :func:`run_graf_demo` (run with the requested number of threads)."""
    import lightning.pytorch as pl
    from rich.console import Console
    from rich.table import Table

    from gen3d.data.datamodules import GRAFDataModule
    from gen3d.data.multiview import render_multiview
    from gen3d.export.field import extract_mesh, render_turntable, save_gif, save_mesh
    from gen3d.export.images import image_grid, save_png
    from gen3d.lit.callbacks import AtomicCheckpointIO
    from gen3d.lit.graf_module import GRAFModule
    from gen3d.lit.progress import StepProgressBar
    from gen3d.pipelines.graf_eval import generate_images, load_real_images, reference_statistics, score_against
    from gen3d.utils import atomic_write_text

    console = Console()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    cfg = _config()
    size = int(cfg["data"]["image_size"])

    # 1. Data: training renders and held-out renders of other shapes (same classes, views and cameras).
    t0 = time.perf_counter()
    train_dir = render_multiview(out / "data" / "train", DEMO_CLASSES, per_class, views, size, seed)
    held_dir = render_multiview(
        out / "data" / "heldout", DEMO_CLASSES, heldout_per_class, views, size, seed, first_index=per_class
    )
    t_data = time.perf_counter() - t0
    console.print(f"[graf] rendered {3 * per_class * views} training and {3 * heldout_per_class * views} held-out "
                  f"images ({size}x{size}) in {t_data:.1f} s")  # fmt: skip

    # 2. Train for the budget.
    pl.seed_everything(seed, workers=True, verbose=False)
    model_args = dict(cfg["model"], image_size=size, sample_every=100)
    module = GRAFModule(**model_args)
    untrained = copy.deepcopy(module.generator_ema).eval()
    data = GRAFDataModule(str(train_dir), "shapes", size, batch_size=int(cfg["data"]["batch_size"]), num_workers=0)
    trainer = pl.Trainer(
        accelerator="cpu",
        devices=1,
        max_time=timedelta(seconds=int(budget_minutes * 60)),
        max_steps=-1,
        default_root_dir=str(out / "train"),
        logger=pl.loggers.CSVLogger(str(out / "train"), name="logs"),
        plugins=[AtomicCheckpointIO()],
        enable_checkpointing=False,
        enable_model_summary=False,
        enable_progress_bar=console.is_terminal,
        callbacks=[StepProgressBar()] if console.is_terminal else [],
        log_every_n_steps=20,
    )
    t0 = time.perf_counter()
    trainer.fit(module, datamodule=data)
    t_train = time.perf_counter() - t0
    ckpt = out / "graf.ckpt"
    trainer.save_checkpoint(ckpt, weights_only=False)  # full state: resumable
    iterations = int(module.iteration)
    console.print(f"[graf] trained {iterations} iterations in {t_train:.0f} s -> {ckpt}")

    # 3. Samples, turntable, mesh.
    gen = module.generator_ema.eval()
    g = torch.Generator().manual_seed(seed + 1)
    z = gen.field.sample_z(16, generator=g)
    c2w = gen.sample_poses(16, generator=g)
    with torch.no_grad():
        save_png(out / "samples_trained.png", image_grid(gen.render(z, c2w)["rgb"]))
        save_png(out / "samples_untrained.png", image_grid(untrained.render(z, c2w)["rgb"]))
    frames = render_turntable(gen, z[0], n_frames=36, size=2 * size, fast=True)
    gif = save_gif(frames, out / "turntable.gif")
    mesh_info: dict[str, Any] = {}
    try:
        mesh = extract_mesh(gen.field, z[0], resolution=96, bound=gen.max_radius - gen.near)
        mesh_info = {
            "mesh": str(save_mesh(mesh, out / "mesh.ply")),
            "mesh_vertices": len(mesh.vertices),
            "mesh_faces": len(mesh.faces),
            "mesh_level": mesh.metadata["level"],
        }
    except Exception as exc:  # an untrained-looking field can be empty: report, do not fail the demo
        mesh_info = {"mesh_error": str(exc)}

    # 4. FID / KID of the trained generator and the two baselines, all against the same reference statistics.
    t0 = time.perf_counter()
    reference = reference_statistics(load_real_images(train_dir, "shapes", size, n_eval, seed))
    heldout = load_real_images(held_dir, "shapes", size, n_eval, seed + 1)
    kid_subset = max(2, n_eval // 2)
    rows = {
        "oracle (held-out renders)": score_against(heldout, reference, kid_subset_size=kid_subset),
        "GRAF trained (EMA)": score_against(
            generate_images(gen, n_eval, seed=seed + 2), reference, kid_subset_size=kid_subset
        ),
        "GRAF untrained": score_against(
            generate_images(untrained, n_eval, seed=seed + 2), reference, kid_subset_size=kid_subset
        ),
    }
    t_eval = time.perf_counter() - t0

    table = Table(title=f"GRAF on procedural multi-view renders ({size}x{size}, {n_eval} images per row, "
                  f"{iterations} iterations in {t_train / 60:.1f} min)")  # fmt: skip
    for col in ("images", "FID", "KID x100", "KID std x100"):
        table.add_column(col, justify="right" if col != "images" else "left")
    for name, m in rows.items():
        table.add_row(name, f"{m['FID']:.1f}", f"{100 * m['KID']:.2f}", f"{100 * m['KID_std']:.2f}")
    console.print(table)

    trained = rows["GRAF trained (EMA)"]
    result: dict[str, Any] = {
        "FID": trained["FID"],
        "KID": trained["KID"],
        "KID_std": trained["KID_std"],
        "baselines": {"oracle": rows["oracle (held-out renders)"], "untrained": rows["GRAF untrained"]},
        "protocol": {
            "reference": f"{n_eval} training renders",
            "n_images": n_eval,
            "image_size": size,
            "kid_subset_size": kid_subset,
            "poses": "random from the training pose distribution",
        },
        "iterations": iterations,
        "train_seconds": round(t_train, 1),
        "data_seconds": round(t_data, 1),
        "eval_seconds": round(t_eval, 1),
        "total_seconds": round(time.perf_counter() - t_start, 1),
        "threads": threads,
        "checkpoint": str(ckpt),
        "gif": str(gif),
        "samples": [str(out / "samples_trained.png"), str(out / "samples_untrained.png")],
        **mesh_info,
    }
    atomic_write_text(out / "metrics.json", json.dumps(result, indent=2) + "\n")
    return result


def summary_line(result: dict[str, Any]) -> str:
    """One line for the demo's overall summary."""
    b = result["baselines"]
    return (
        f"GRAF FID {result['FID']:.1f} (oracle {b['oracle']['FID']:.1f}, untrained {b['untrained']['FID']:.1f}), "
        f"{result['iterations']} iterations"
    )


if __name__ == "__main__":  # python -m gen3d.pipelines.graf_demo [OUT] [MINUTES]
    import sys

    run_graf_demo(
        Path(sys.argv[1] if len(sys.argv) > 1 else "runs/demo/graf"), float(sys.argv[2]) if len(sys.argv) > 2 else 4.0
    )
