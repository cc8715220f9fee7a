"""The 3D-aware GAN stage of ``gen3d demo``: render data, train for a number of iterations on the CPU, sample, export,
evaluate in 2D and 3D.

Every setting comes from one :class:`GrafDemoConfig`: the model, image size, batch, classes, shapes, views and
seed of the preset ``gen3d/configs/graf_shapes.yaml`` (:func:`load_graf_demo_config`), and the demo's own
iterations, held-out shapes, evaluation size and threads. Training runs for a number of iterations, never for a
wall-clock time, so a seed gives the same numbers on a fast or a slow machine.

:func:`run_graf_demo` writes into ``out_dir``:

- ``data/train`` and ``data/heldout``: multi-view renders of the procedural shapes (disjoint shapes);
- ``train/``: Lightning logs and periodic sample grids; ``graf.ckpt``: the trained model;
- ``samples_trained.png`` / ``samples_untrained.png``: the moving-average generator after / before training;
- ``turntable.gif`` (rendered through the occupancy grid at ``turntable_size`` pixels) and ``mesh.ply``
  (marching cubes on the density) of the first sample;
- ``metrics.json``: for the trained generator and two baselines measured in the same run (the untrained
  generator, and the real data: held-out renders and shapes, the best a generator can do at this sample size):
  FID / KID against the training images (:mod:`gen3d.pipelines.graf_eval`), the multi-view consistency error
  (:mod:`gen3d.pipelines.graf_consistency`; for the real data, ground-truth renders of the held-out shapes) and
  the point-cloud metrics of the extracted surfaces against the training shapes
  (:mod:`gen3d.pipelines.graf_geometry`).
"""

from __future__ import annotations

import copy
import dataclasses
import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

PRESET = Path(__file__).resolve().parent.parent / "configs" / "graf_shapes.yaml"
TRAINED, ORACLE, UNTRAINED = "trained (EMA)", "real data (held-out)", "untrained"


@dataclass(frozen=True)
class GrafDemoConfig:
    """Every setting of the GRAF demo stage.

    Attributes:
        model: :class:`~gen3d.lit.graf_module.GRAFModule` arguments (the preset's ``model`` section).
        image_size: rendered and generated image size.
        batch_size: images per iteration.
        classes: comma-separated procedural classes.
        per_class: training shapes per class (``views`` images each).
        views: rendered views per shape.
        seed: seed of the data, the initialisation and the evaluation.
        iterations: training iterations (two optimiser steps each: discriminator, generator).
        heldout_per_class: held-out shapes per class (the oracle baseline's images).
        n_eval: images per FID/KID evaluation (generated, held-out and reference alike).
        n_consistency: scenes (view pairs) of the consistency score.
        geometry_per_class: reference shapes per class of the 3D metrics, at most ``per_class`` (as many generated and
            held-out).
        turntable_size: side of the turntable GIF's frames.
        threads: torch CPU threads.
    """

    model: dict[str, Any]
    image_size: int
    batch_size: int
    classes: str
    per_class: int
    views: int
    seed: int
    iterations: int = 1300
    heldout_per_class: int = 8
    n_eval: int = 100
    n_consistency: int = 32
    geometry_per_class: int = 8
    turntable_size: int = 128
    threads: int = 2

    def __post_init__(self) -> None:
        counts = ("image_size", "batch_size", "per_class", "views", "iterations", "heldout_per_class", "threads",
                  "n_consistency", "geometry_per_class", "turntable_size")  # fmt: skip
        bad = [f"{k}={getattr(self, k)}" for k in counts if int(getattr(self, k)) < 1]
        if bad or self.n_eval < 2:
            raise ValueError(f"GrafDemoConfig: counts must be at least 1 (n_eval at least 2): {', '.join(bad)}")

    @property
    def num_classes(self) -> int:
        return len([c for c in self.classes.split(",") if c.strip()])


def load_graf_demo_config(path: str | Path | None = None, **overrides: Any) -> GrafDemoConfig:
    """The :class:`GrafDemoConfig` of a GRAF preset (default ``gen3d/configs/graf_shapes.yaml``).

    Args:
        path: a ``gen3d train graf`` preset (its ``model``, ``data`` and ``seed_everything``).
        **overrides: fields to replace (``None`` values are ignored), e.g. ``iterations=5``.
    """
    import yaml

    preset = yaml.safe_load(Path(path or PRESET).read_text(encoding="utf-8"))
    data = preset["data"]
    fields: dict[str, Any] = {
        "model": preset["model"],
        "image_size": data["image_size"],
        "batch_size": data["batch_size"],
        "classes": data["classes"],
        "per_class": data["per_class"],
        "views": data["views"],
        "seed": preset.get("seed_everything", 0),
    }
    fields.update({k: v for k, v in overrides.items() if v is not None})
    return GrafDemoConfig(**fields)


def run_graf_demo(out_dir: str | Path, cfg: GrafDemoConfig | None = None) -> dict[str, Any]:
    """Run the GRAF demo (see the module docstring) and return what ``metrics.json`` holds.

    Args:
        out_dir: output folder (e.g. ``runs/demo/graf``).
        cfg: the settings (default: :func:`load_graf_demo_config` of the shipped preset).

    Returns:
        The metrics, the step count, the time of each stage and the paths written.
    """
    from rich.console import Console

    cfg = cfg or load_graf_demo_config()
    out, console, start = Path(out_dir), Console(), time.perf_counter()
    out.mkdir(parents=True, exist_ok=True)
    previous_threads = torch.get_num_threads()
    torch.set_num_threads(cfg.threads)
    seconds: dict[str, float] = {}

    def timed(stage: str, fn: Any, *args: Any) -> Any:
        t0 = time.perf_counter()
        value = fn(*args)
        seconds[stage] = time.perf_counter() - t0
        return value

    try:
        train_dir, held_dir = timed("data", render_data, out, cfg, console)
        module, untrained = timed("train", train, out, cfg, train_dir, console)
        gen = module.generator_ema.eval()
        exported = timed("export", export_samples, out, cfg, gen, untrained)
        rows = timed("eval", evaluate, cfg, gen, untrained, train_dir, held_dir)
        seconds["total"] = time.perf_counter() - start
        return report(out, cfg, console, rows, int(module.iteration), seconds, exported)
    finally:
        torch.set_num_threads(previous_threads)


def render_data(out: Path, cfg: GrafDemoConfig, console: Any) -> tuple[Path, Path]:
    """Training renders and held-out renders of other shapes (same classes, views and cameras)."""
    from gen3d.data.multiview import render_multiview

    size, t0 = cfg.image_size, time.perf_counter()
    train_dir = render_multiview(out / "data" / "train", cfg.classes, cfg.per_class, cfg.views, size, cfg.seed)
    held_dir = render_multiview(
        out / "data" / "heldout",
        cfg.classes,
        cfg.heldout_per_class,
        cfg.views,
        size,
        cfg.seed,
        first_index=cfg.per_class,
    )
    n_train, n_held = (cfg.num_classes * k * cfg.views for k in (cfg.per_class, cfg.heldout_per_class))
    console.print(
        f"[graf] rendered {n_train} training and {n_held} held-out images ({size}x{size}) in "
        f"{time.perf_counter() - t0:.1f} s",
        markup=False,
        highlight=False,
    )
    return Path(train_dir), Path(held_dir)


def train(out: Path, cfg: GrafDemoConfig, train_dir: Path, console: Any) -> tuple[Any, Any]:
    """Train for ``cfg.iterations`` iterations and save ``graf.ckpt``; the module and the untrained EMA generator."""
    import lightning.pytorch as pl

    from gen3d.data.datamodules import GRAFDataModule
    from gen3d.lit.callbacks import AtomicCheckpointIO
    from gen3d.lit.graf_module import GRAFModule
    from gen3d.lit.progress import StepProgressBar

    pl.seed_everything(cfg.seed, workers=True, verbose=False)
    module = GRAFModule(**dict(copy.deepcopy(cfg.model), image_size=cfg.image_size))
    untrained = copy.deepcopy(module.generator_ema).eval()
    data = GRAFDataModule(str(train_dir), "shapes", cfg.image_size, batch_size=cfg.batch_size, num_workers=0)
    trainer = pl.Trainer(
        accelerator="cpu",
        devices=1,
        max_steps=2 * cfg.iterations,  # manual optimisation: a discriminator and a generator step per iteration
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
    trainer.save_checkpoint(out / "graf.ckpt", weights_only=False)  # full state: resumable
    seconds = time.perf_counter() - t0
    console.print(
        f"[graf] trained {int(module.iteration)} iterations in {seconds:.0f} s", markup=False, highlight=False
    )
    return module, untrained


def export_samples(out: Path, cfg: GrafDemoConfig, gen: Any, untrained: Any) -> dict[str, Any]:
    """Sample grids of the trained and the untrained generator, a turntable GIF and a mesh of the first sample."""
    from gen3d.export.field import extract_mesh, render_turntable, save_gif, save_mesh
    from gen3d.export.images import image_grid, save_png

    g = torch.Generator().manual_seed(cfg.seed + 1)
    z = gen.field.sample_z(16, generator=g)
    c2w = gen.sample_poses(16, generator=g)
    with torch.no_grad():
        save_png(out / "samples_trained.png", image_grid(gen.render(z, c2w)["rgb"]))
        save_png(out / "samples_untrained.png", image_grid(untrained.render(z, c2w)["rgb"]))
    frames = render_turntable(gen, z[0], n_frames=36, size=cfg.turntable_size, fast=True)
    exported: dict[str, Any] = {"gif": str(save_gif(frames, out / "turntable.gif"))}
    try:
        mesh = extract_mesh(gen.field, z[0], resolution=96, bound=gen.scene_bound)
        exported.update(
            mesh=str(save_mesh(mesh, out / "mesh.ply")),
            mesh_vertices=len(mesh.vertices),
            mesh_faces=len(mesh.faces),
            mesh_level=mesh.metadata["level"],
        )
    except Exception as exc:  # an untrained-looking field can be empty: report, do not fail the demo
        exported["mesh_error"] = str(exc)
    return exported


def evaluate(
    cfg: GrafDemoConfig, gen: Any, untrained: Any, train_dir: Path, held_dir: Path
) -> dict[str, dict[str, Any]]:
    """FID / KID, consistency and 3D metrics of the trained generator and the two baselines (see the module
    docstring); one dict of figures per row."""
    from gen3d.pipelines.graf_consistency import data_consistency, generator_consistency
    from gen3d.pipelines.graf_eval import generate_images, load_real_images, reference_statistics, score_against
    from gen3d.pipelines.graf_geometry import GeometryProtocol, geometry_metrics

    n, size, seed = cfg.n_eval, cfg.image_size, cfg.seed
    reference = reference_statistics(load_real_images(train_dir, "shapes", size, n, seed))
    heldout = load_real_images(held_dir, "shapes", size, n, seed + 1)
    kid_subset = max(2, n // 2)
    rows: dict[str, dict[str, Any]] = {
        TRAINED: score_against(generate_images(gen, n, seed=seed + 2), reference, kid_subset_size=kid_subset),
        UNTRAINED: score_against(generate_images(untrained, n, seed=seed + 2), reference, kid_subset_size=kid_subset),
        ORACLE: score_against(heldout, reference, kid_subset_size=kid_subset),
    }
    for name, g in ((TRAINED, gen), (UNTRAINED, untrained)):
        rows[name]["consistency"] = generator_consistency(g, cfg.n_consistency, size, seed=seed + 3)
    per = min(cfg.heldout_per_class, max(1, cfg.n_consistency // cfg.num_classes))
    rows[ORACLE]["consistency"] = data_consistency(
        cfg.classes, per, cfg.per_class, seed, size, pose_seed=seed + 3, range_u=gen.range_u, range_v=gen.range_v
    )
    per_geo = min(cfg.geometry_per_class, cfg.per_class)  # references among the training shapes
    protocol = GeometryProtocol(cfg.classes, per_class=per_geo, heldout_first=cfg.per_class, data_seed=seed)
    geometry = geometry_metrics(gen, untrained, protocol, seed=seed + 4)
    for name, key in ((TRAINED, "trained"), (UNTRAINED, "untrained"), (ORACLE, "oracle")):
        rows[name]["geometry"] = geometry["rows"][key]
    rows[TRAINED]["geometry_protocol"] = geometry["protocol"]
    return rows


def _fmt(value: float, scale: float = 1.0, digits: int = 2) -> str:
    return "n/a" if value is None or value != value else f"{scale * value:.{digits}f}"


def report(
    out: Path,
    cfg: GrafDemoConfig,
    console: Any,
    rows: dict[str, dict[str, Any]],
    iterations: int,
    seconds: dict[str, float],
    exported: dict[str, Any],
) -> dict[str, Any]:
    """Print the table (2D, consistency, 3D) and the time taken; write ``metrics.json``."""
    from rich.table import Table

    from gen3d.pipelines.sample import file_sha256, provenance
    from gen3d.utils import atomic_write_text

    size, field = cfg.image_size, cfg.model.get("field", "graf")
    table = Table(
        title=f"3D-aware GAN ({field} field) on procedural multi-view renders: {size}x{size}, {iterations} "
        f"iterations; FID/KID {cfg.n_eval} images, consistency {cfg.n_consistency} view pairs, geometry "
        f"{min(cfg.geometry_per_class, cfg.per_class) * cfg.num_classes} shapes per row"
    )
    columns = ("", "FID", "KID x100", "KID std x100", "consistency err x100", "1-NNA-CD %", "COV-CD %", "MMD-CD x1e3")
    for col in columns:
        table.add_column(col, justify="right" if col else "left")
    for name, m in rows.items():
        c, g = m["consistency"], m["geometry"]
        table.add_row(
            name, _fmt(m["FID"], digits=1), _fmt(m["KID"], 100), _fmt(m["KID_std"], 100),
            _fmt(c["consistency"], 100), _fmt(g["1-NNA-CD"], digits=1), _fmt(g["COV-CD"], digits=1),
            _fmt(g["MMD-CD"], 1e3),
        )  # fmt: skip
    console.print(table)
    console.print(f"GAN stage took {seconds['total'] / 60:.1f} min", highlight=False)
    trained = rows[TRAINED]
    result: dict[str, Any] = {
        "field": field,
        "FID": trained["FID"],
        "KID": trained["KID"],
        "KID_std": trained["KID_std"],
        "consistency": trained["consistency"],
        "geometry": trained["geometry"],
        "baselines": {"oracle": rows[ORACLE], "untrained": rows[UNTRAINED]},
        "protocol": {
            "reference": f"{cfg.n_eval} training renders",
            "n_images": cfg.n_eval,
            "image_size": size,
            "kid_subset_size": max(2, cfg.n_eval // 2),
            "poses": "random from the training pose distribution",
            "consistency": "symmetric warp error of view pairs 10-30 degrees of azimuth apart (colour in [0, 1])",
            "geometry": trained["geometry_protocol"],
            "checkpoint": str(out / "graf.ckpt"),
            "checkpoint_sha256": file_sha256(out / "graf.ckpt"),
            "seed": cfg.seed,
            **provenance(),
        },
        "iterations": iterations,
        "seconds": {k: round(v, 1) for k, v in seconds.items()},
        "threads": cfg.threads,
        "config": dataclasses.asdict(cfg),
        "checkpoint": str(out / "graf.ckpt"),
        "samples": [str(out / "samples_trained.png"), str(out / "samples_untrained.png")],
        **exported,
    }
    atomic_write_text(out / "metrics.json", json.dumps(result, indent=2, default=float) + "\n")
    return result


def summary_line(result: dict[str, Any]) -> str:
    """One line for the demo's overall summary."""
    b = result["baselines"]
    return (
        f"GAN ({result['field']}) FID {result['FID']:.1f} (oracle {b['oracle']['FID']:.1f}, untrained "
        f"{b['untrained']['FID']:.1f}), KID x100 {100 * result['KID']:.2f}, geometry 1-NNA-CD "
        f"{result['geometry']['1-NNA-CD']:.1f} %, {result['iterations']} iterations"
    )
