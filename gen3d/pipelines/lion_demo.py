"""The LION stage of ``gen3d demo``: train LION on procedural shapes on a CPU in minutes and evaluate it.

:func:`run_lion_demo` trains the VAE, then both latent priors, samples as many shapes as the held-out
reference split has, and evaluates them with :func:`gen3d.metrics.point_cloud_metrics` (PointFlow/LION
protocol: global normalisation fitted on train, metrics in the de-normalised frame, reference = val split).
The samples are then drawn ``DEMO_DRAWS - 1`` more times with other seeds and scored with the Chamfer metrics,
and their mean is reported too (one 1-NNA evaluation over 60 + 60 clouds moves by +-4-6 points with the seed).
Two baselines are measured in the same run against the same references: the training split itself (an
oracle: a perfect generator would score like it, 1-NNA near 50 %) and Gaussian blobs with the data's mean
and spread (a useless generator, 1-NNA near 100 %).

The demo's data: one procedural class with ``DEMO_POINTS`` points per cloud (fewer than the 2048 of the
paper protocol, which a 2-core CPU cannot train in the budget); the table says so.
"""

from __future__ import annotations

import json
import math
import os
import time
from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
import torch

DEMO_CLASSES = ["chair"]
DEMO_POINTS = 512
DEMO_PER_CLASS = 600  # 480 train, 60 val, 60 test (60 references: 1-NNA's sampling noise ~ +-6 points)
DEMO_BATCH = 16  # clouds per optimiser step (split over the data-parallel processes of the priors)
MIN_REFS = 10  # fewer references make 1-NNA too noisy to mean anything
# SDE-DPM-Solver++ 2M: as good as ancestral sampling on 300 respaced steps on the demo's short-trained priors, at a
# fifteenth of the cost (docs/lion.md, "Measured results"); deterministic solvers need longer-trained priors
DEMO_SAMPLER = "dpm-sde"
DEMO_STEPS = 20
# sampling draws scored against the references: one evaluation of 1-NNA over 60 + 60 clouds moves by +-4-6 points
# with the sampling seed alone, so the demo also reports the mean of the CD metrics over this many draws (a mean of 8
# has a standard error of ~2 points: one checkpoint scored 59.6 % on the demo's 8 draws and 64.5 % on 16 others)
DEMO_DRAWS = 16
SAMPLE_SECONDS = 2.5e-3  # seconds per shape and sampling step in one process (measured, the demo model)
DEMO_ETA = 1.0  # used when DEMO_SAMPLER is "ddim" (deterministic samplers need a longer-trained prior)
# factor on the sampled (standardised) shape codes: the short-trained priors shrink the spread of shapes, and
# 1.2-1.4 scored best against the test split (docs/lion.md, "Shape-code temperature"); LION samples at 1
DEMO_CODE_TEMPERATURE = 1.3
DEMO_LR = 1e-3  # peak learning rate of both stages; the priors' decays to DEMO_LR_FLOOR x over the budget
DEMO_LR_FLOOR = 0.05
DEMO_EMA = 0.995  # EMA decay of the priors' weights used for sampling
METRIC_KEYS = ("1-NNA-CD", "1-NNA-EMD", "COV-CD", "COV-EMD", "MMD-CD", "MMD-EMD", "JSD")

# sizes that train in the budget on 2 CPU cores (see docs/lion.md for the measurements)
DEMO_CONFIG: dict[str, Any] = {
    "num_points": DEMO_POINTS,
    "latent_dim": 1,
    "style_dim": 64,
    "vae_channels": [32, 64],
    "vae_resolutions": [8, 8],
    "vae_voxel_channels": [16, 16],
    "enc_channels": [32, 64],
    "enc_resolutions": [8, 8],
    "enc_voxel_channels": [16, 16],
    "vae_dropout": 0.0,
    "skip_weight": 0.01,
    "log_sigma_offset": 6.0,
    "kl_weight_min": 1e-7,
    "kl_weight_max": 0.01,
    "kl_anneal_portion": 0.5,
    "glb_prior_channels": 256,
    "glb_prior_blocks": 4,
    "glb_prior_dropout": 0.1,
    "glb_time_dim": 64,
    "loc_prior_channels": [64, 128, 64],
    "loc_prior_resolutions": [8, 8, 8],
    "loc_prior_voxel_channels": [16, 32, 16],
    "loc_prior_voxel_frame": "box",
    "loc_prior_dropout": 0.0,
    "loc_time_dim": 32,
    "schedule": {"kind": "linear", "num_train_timesteps": 1000, "beta_start": 1e-4, "beta_end": 0.02},
    "prediction_type": "epsilon",
    "standardize_latents": True,
}
# fraction of the training budget given to the VAE (the rest goes to the priors)
VAE_SHARE = 0.1
# step caps (the budget usually stops the priors first on a 2-core machine)
VAE_STEPS = 200
PRIOR_STEPS = 10000


def demo_datamodule(
    data_root: str | Path | None = None,
    classes: list[str] | None = None,
    per_class: int = DEMO_PER_CLASS,
    seed: int = 0,
) -> Any:
    """The demo's :class:`~gen3d.data.datamodules.PointCloudDataModule` (set up for fitting)."""
    from gen3d.data.datamodules import PointCloudDataModule

    dm = PointCloudDataModule(
        root=None if data_root is None else str(data_root),
        classes=classes or list(DEMO_CLASSES),
        tr_sample_size=DEMO_POINTS,
        te_sample_size=DEMO_POINTS,
        batch_size=DEMO_BATCH,
        num_workers=0,
        normalize="global",
        per_class=per_class,
        seed=seed,
        points=3 * DEMO_POINTS,
        drop_last=True,
    )
    dm.setup("fit")
    return dm


def reference_clouds(dm: Any) -> torch.Tensor:
    """The val split's held-out points in the data frame, ``(R, N, 3)``: the reference set of the metrics."""
    val = dm.dataset("val")
    refs = torch.stack([val[i]["test_points"] for i in range(len(val))])  # (R, N, 3) normalised
    return refs * float(dm.norm.std) + torch.as_tensor(dm.norm.mean, dtype=refs.dtype)


def _trainer(
    root: Path,
    max_steps: int,
    seconds: float,
    progress: bool,
    extra_callbacks: tuple = (),
    processes: int = 1,
    accelerator: str = "cpu",
) -> Any:
    from lightning.pytorch.callbacks import ModelCheckpoint
    from lightning.pytorch.loggers import CSVLogger

    from gen3d.lit.progress import StepProgressBar

    parallel = {"devices": processes, "strategy": "ddp_fork"} if processes > 1 else {"devices": 1}
    return L.Trainer(
        accelerator=accelerator,
        **parallel,
        max_steps=max_steps,
        max_time={"seconds": max(1, int(seconds))},
        default_root_dir=str(root),
        logger=CSVLogger(str(root), name="csv", version=""),
        callbacks=[
            ModelCheckpoint(dirpath=str(root / "checkpoints"), save_last=True, save_top_k=0),
            *((OneThreadPerProcess(),) if processes > 1 else ()),
            *((StepProgressBar(),) if progress else ()),
            *extra_callbacks,
        ],
        limit_val_batches=0,
        num_sanity_val_steps=0,
        enable_progress_bar=progress,
        enable_model_summary=False,
        log_every_n_steps=10,
        gradient_clip_val=1.0,
    )


class OneThreadPerProcess(L.Callback):
    """Give every data-parallel process one intra-op thread (the processes share the cores)."""

    def setup(self, trainer: Any, pl_module: Any, stage: str) -> None:
        torch.set_num_threads(1)


def demo_processes() -> int:
    """Data-parallel processes for the demo: one per core, at most 2 (the demo's models are small).

    Two single-threaded processes (Lightning DDP over gloo) keep two cores busier than one process with two
    threads: on 2 cores a prior step of the demo model took 0.157 s with one thread, 0.12 s with two, and 0.18 s
    in each of two processes running side by side (1.7x the throughput of one thread).
    """
    return 2 if (os.cpu_count() or 1) >= 2 else 1


def generate_parallel(
    module: Any, n: int, sampler: str, steps: int, seed: int, processes: int, **kwargs: Any
) -> torch.Tensor:
    """``n`` samples of a trained LION/PVD module, drawn by ``processes`` forked workers side by side.

    Worker ``i`` draws its share with the seed ``derived_seed(seed, "share", i)``, so the same seed and process
    count give the same samples. One process samples in this one with ``seed`` itself.
    """
    from gen3d.lit.lion_module import derived_seed
    from gen3d.utils.parallel import fork_map

    if processes <= 1 or n < 2:
        return module.generate(n, sampler, steps, seed=seed, **kwargs)

    def share(k: int, share_seed: int) -> torch.Tensor:
        torch.set_num_threads(1)
        return module.generate(k, sampler, steps, seed=share_seed, **kwargs)

    shares = [n // processes + (i < n % processes) for i in range(processes)]
    jobs = [(k, derived_seed(seed, "share", i)) for i, k in enumerate(shares) if k > 0]
    return torch.cat(fork_map(share, jobs, len(jobs)))


class TimeBudgetCosine(L.Callback):
    """A Lightning callback that decays the learning rate with a cosine over a wall-clock budget.

    The demo trains for a time, not a step count, so a step-based schedule cannot know where it ends. Before
    each step this sets every parameter group's rate to ``base * f``: ``f`` ramps linearly over the first
    ``warmup_steps`` steps, then follows ``floor + (1 - floor) (1 + cos(pi p)) / 2`` with ``p`` the fraction of
    ``seconds`` elapsed since training started. Measured on the demo (2 cores): decaying the priors' rate
    over the last fifth of a run took 1-NNA-CD from 72-75 % to 66 % where a constant rate had flattened out.

    Args:
        seconds: the training budget.
        floor: final fraction of the base rate.
        warmup_steps: linear warm-up steps.
    """

    def __init__(self, seconds: float, floor: float = 0.05, warmup_steps: int = 0):
        self.seconds, self.floor, self.warmup_steps = max(float(seconds), 1e-6), float(floor), int(warmup_steps)
        self.start: float | None = None
        self.base: list[float] = []

    def factor(self, step: int, elapsed: float) -> float:
        """The learning-rate multiplier at ``step`` after ``elapsed`` seconds."""
        warm = min(1.0, (step + 1) / self.warmup_steps) if self.warmup_steps > 0 else 1.0
        p = min(max(elapsed / self.seconds, 0.0), 1.0)
        return warm * (self.floor + (1.0 - self.floor) * 0.5 * (1.0 + math.cos(math.pi * p)))

    def on_train_start(self, trainer: Any, pl_module: Any) -> None:
        self.start = time.perf_counter()
        self.base = [g["lr"] for opt in trainer.optimizers for g in opt.param_groups]

    def on_train_batch_start(self, trainer: Any, pl_module: Any, batch: Any, batch_idx: int) -> None:
        f = self.factor(trainer.global_step, time.perf_counter() - (self.start or time.perf_counter()))
        if getattr(trainer, "world_size", 1) > 1:  # every data-parallel process must step with the same rate
            f = trainer.strategy.broadcast(f, src=0)
        groups = [g for opt in trainer.optimizers for g in opt.param_groups]
        for g, base in zip(groups, self.base, strict=True):
            g["lr"] = base * f


def choose_threads() -> int:
    """Intra-op threads for the demo: half the cores (one on a 2-core machine), one on a busy machine.

    When the machine is busier than its core count, torch's spinning worker threads wait for each other and a
    step can get an order of magnitude slower than with a single thread (measured on 2 shared cores: a VAE
    step took 5.8 s with 2 threads and 0.6 s with 1); the load of other jobs can also rise after the start.
    """
    cpus = os.cpu_count() or 1
    try:
        load = os.getloadavg()[0]
    except OSError:
        load = 0.0
    if cpus <= 2 or load >= cpus - 1:
        return 1
    return min(cpus // 2, 8)


def gaussian_blobs(n: int, num_points: int, mean: np.ndarray, std: float, seed: int) -> np.ndarray:
    """``n`` isotropic Gaussian clouds with the given mean and per-axis spread, ``(n, num_points, 3)``."""
    rng = np.random.default_rng(seed)
    return (mean + std * rng.standard_normal((n, num_points, 3))).astype(np.float32)


def baseline_metrics(
    train_clouds: torch.Tensor, blobs: torch.Tensor, refs: torch.Tensor, emd: bool, threads: int | None = None
) -> tuple[dict[str, dict[str, float]], Any]:
    """The two baseline rows of the table, and the references' own distance matrices for scoring the samples.

    Args:
        train_clouds: training clouds (the oracle), data frame.
        blobs: Gaussian blobs (the useless generator).
        refs: the reference clouds.
        emd: also the EMD metrics.
        threads: intra-op threads to use (None: leave as set).

    Returns:
        ``({"train split (oracle)": metrics, "Gaussian blobs": metrics}, ReferenceDistances of refs)``.
    """
    from gen3d.metrics import ReferenceDistances, point_cloud_metrics

    if threads is not None:
        torch.set_num_threads(max(1, threads))
    ref_distances = ReferenceDistances(refs)
    score = lambda x: point_cloud_metrics(x, refs, emd=emd, ref_distances=ref_distances, progress=False)  # noqa: E731
    return {"train split (oracle)": score(train_clouds), "Gaussian blobs": score(blobs)}, ref_distances


def metrics_table(rows: dict[str, dict[str, float]], title: str) -> Any:
    """A rich table: one row per method, one column per metric (as :mod:`gen3d.metrics` reports them: 1-NNA and
    COV in %, JSD x 100; MMD shown x 1e3)."""
    from rich.table import Table

    table = Table(title=title)
    table.add_column("method")
    keys = [k for k in METRIC_KEYS if any(k in r for r in rows.values())]
    for k in keys:
        unit = " %" if k.startswith(("1-NNA", "COV")) else (" x1e3" if k.startswith("MMD") else " x1e2")
        table.add_column(k + unit, justify="right")
    for name, r in rows.items():
        cells = []
        for k in keys:
            v = float(r.get(k, float("nan")))
            cells.append(
                f"{1e3 * v:.3f}" if k.startswith("MMD") else f"{v:.1f}" if not k.startswith("JSD") else f"{v:.2f}"
            )
        table.add_row(name, *cells)
    return table


def run_lion_demo(
    out_dir: str | Path,
    data_root: str | Path | None = None,
    budget_minutes: float = 11.0,
    classes: list[str] | None = None,
    per_class: int = DEMO_PER_CLASS,
    seed: int = 0,
    emd: bool = True,
    progress: bool = True,
    processes: int | None = None,
    accelerator: str = "cpu",
) -> dict[str, Any]:
    """Train, sample and evaluate LION within ``budget_minutes`` on a CPU (or one GPU).

    Args:
        out_dir: output folder: ``metrics.json``, ``samples.png``, ``samples.npz``, ``vae/``, ``prior/``.
        data_root: a PC15k-layout root holding the demo classes, or None to generate the procedural shapes
            in memory (also done when the root has fewer than :data:`MIN_REFS` val shapes of them).
        budget_minutes: total wall-clock budget; training gets what is left after data, sampling and
            evaluation (estimated).
        classes: classes to train on (default :data:`DEMO_CLASSES`).
        per_class: procedural shapes per class over all splits (80/10/10).
        seed: seed of the data, the training and the samples.
        emd: also compute the EMD metrics.
        progress: show progress bars.
        processes: data-parallel training and sampling processes (None: :func:`demo_processes`).
        accelerator: Lightning accelerator of both stages: ``"cpu"``, or ``"gpu"`` to train and sample on one
            GPU (one process, the same configuration and budget; the time kept back for sampling and metrics is
            the 2-core CPU's estimate, so a GPU run ends early: docs/lion.md, "On a GPU").

    Returns:
        ``{"lion": metrics, "train_split": metrics, "gaussian": metrics, "num_samples", "num_points",
        "draws": {...}, "seconds": {...}, "steps": {...}, "paths": {...}}``; the same dict is written to
        ``metrics.json``. ``lion`` scores the first sampling draw; ``draws`` (:func:`summarize_draws`) has the
        Chamfer metrics of all :data:`DEMO_DRAWS` draws and their mean.
    """
    from rich.console import Console

    if accelerator not in ("cpu", "gpu"):
        raise ValueError(f"accelerator must be 'cpu' or 'gpu', got {accelerator!r}")
    if accelerator == "gpu" and not torch.cuda.is_available():
        raise ValueError("accelerator='gpu' needs a CUDA GPU, and none is available")
    console = Console()
    # the metrics' native kernels are built on first use (a minute on 2 cores from a clean clone): build or load them
    # before the budget's clock starts, so that the build is setup, not the first minute of the baselines' worker
    # beside the VAE stage (measured from a clean clone: the VAE got 128 of its 200 steps and the priors waited 54 s)
    from gen3d.metrics._native import load_native

    load_native()
    threads_before = torch.get_num_threads()
    torch.set_num_threads(choose_threads())
    try:
        return _run(
            console, out_dir, data_root, budget_minutes, classes, per_class, seed, emd, progress, processes, accelerator
        )
    finally:
        torch.set_num_threads(threads_before)


DRAW_KEYS = ("1-NNA-CD", "COV-CD", "MMD-CD", "JSD")


def summarize_draws(seeds: list[int], scores: list[dict[str, float]]) -> dict[str, Any]:
    """The CD metrics of several sampling draws: per-draw values, their mean, sample standard deviation and the
    standard error of the mean (``std / sqrt(draws)``).

    Args:
        seeds: the sampling seed of each draw.
        scores: ``point_cloud_metrics`` of each draw (at least the keys of :data:`DRAW_KEYS`).

    Returns:
        ``{"seeds": [...], "<key>": [...], "mean": {key: ...}, "std": {key: ...}, "sem": {key: ...}}`` (std and
        sem 0 for one draw).
    """
    out: dict[str, Any] = {"seeds": [int(s) for s in seeds]}
    out.update({k: [float(sc[k]) for sc in scores] for k in DRAW_KEYS})
    out["mean"] = {k: float(np.mean(out[k])) for k in DRAW_KEYS}
    out["std"] = {k: float(np.std(out[k], ddof=1)) if len(scores) > 1 else 0.0 for k in DRAW_KEYS}
    out["sem"] = {k: out["std"][k] / math.sqrt(len(scores)) for k in DRAW_KEYS}
    return out


def draws_line(summary: dict[str, Any], n: int) -> str:
    """One line for the console: 1-NNA-CD over the sampling draws."""
    vals = summary["1-NNA-CD"]
    if len(vals) == 1:
        return f"1-NNA-CD of the one sampling draw of {n} shapes: {vals[0]:.1f} %"
    mean, sd, sem = (summary[k]["1-NNA-CD"] for k in ("mean", "std", "sem"))
    return (
        f"1-NNA-CD over {len(vals)} sampling draws of {n} shapes (the table shows the first): mean {mean:.1f} % "
        f"(standard error {sem:.1f}), sd {sd:.1f}, range {min(vals):.1f}-{max(vals):.1f}"
    )


def _run(
    console: Any,
    out_dir: str | Path,
    data_root: str | Path | None,
    budget_minutes: float,
    classes: list[str] | None,
    per_class: int,
    seed: int,
    emd: bool,
    progress: bool,
    processes: int | None,
    accelerator: str = "cpu",
) -> dict[str, Any]:
    from gen3d.export.grid import render_point_grid
    from gen3d.inference.checkpoint import read_checkpoint
    from gen3d.lit.lion_module import LionModule, derived_seed
    from gen3d.metrics import point_cloud_metrics
    from gen3d.utils import atomic_path, atomic_write_text
    from gen3d.utils.parallel import ForkedCall

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    classes = classes or list(DEMO_CLASSES)
    start = time.perf_counter()
    seconds: dict[str, float] = {}

    # ---------------------------------------------------------------------------------------- data
    dm = demo_datamodule(data_root, classes, per_class, seed)
    if data_root is not None and len(dm.dataset("val")) < MIN_REFS:
        console.print(
            f"[yellow]{data_root} has {len(dm.dataset('val'))} val shapes of {', '.join(classes)}; the demo needs "
            f"at least {MIN_REFS}: generating {per_class} procedural shapes per class in memory instead[/yellow]"
        )
        dm = demo_datamodule(None, classes, per_class, seed)
    train = dm.dataset("train")
    refs = reference_clouds(dm)  # (R, N, 3) data frame
    norm = dm.norm
    denorm = lambda x: x * float(norm.std) + torch.as_tensor(norm.mean, dtype=x.dtype)  # noqa: E731
    seconds["data"] = time.perf_counter() - start

    # ---------------------------------------------------------------------------------------- train
    n_ref = len(refs)
    procs = demo_processes() if processes is None else max(1, int(processes))
    if accelerator == "gpu":
        procs = 1  # one GPU, one process
    # the baselines do not depend on the model: they are scored while the VAE trains, on the cores it leaves idle
    spare = (os.cpu_count() or 1) - torch.get_num_threads()
    # sampling and metrics time (measured: one process, and their speed-up with two on two cores)
    draws = max(1, DEMO_DRAWS)
    sample_cost = draws * n_ref * DEMO_STEPS * SAMPLE_SECONDS / (1.0 + 0.7 * (procs - 1))
    # one scored set in one thread: 1.5 n^2 pairs (n^2 samples x refs, half of n^2 among the samples); the
    # references' own pairs add a third of that once; EMD pairs cost 4.7 ms at 512 points, Chamfer 0.07 ms
    row_cost = (7e-3 if emd else 1e-4) * n_ref**2
    metrics_cost = row_cost * (1.0 if spare >= 1 else 3.0 + 1.0 / 3.0) / procs
    metrics_cost += (draws - 1) * 3e-4 * n_ref**2  # Chamfer-only scoring of the extra draws (1.1 s at 60 + 60)
    reserve = 15.0 + sample_cost + metrics_cost
    train_seconds = max(60.0, budget_minutes * 60.0 - (time.perf_counter() - start) - reserve)
    g = torch.Generator().manual_seed(seed)
    pick = torch.randperm(len(train), generator=g)[:n_ref]
    train_clouds = denorm(torch.stack([torch.from_numpy(train.points[int(i)][:DEMO_POINTS]) for i in pick]))
    spread = float(refs.reshape(-1, 3).std(dim=0).mean())
    blobs = torch.from_numpy(gaussian_blobs(n_ref, DEMO_POINTS, refs.reshape(-1, 3).mean(0).numpy(), spread, seed))
    baselines = ForkedCall(baseline_metrics, train_clouds, blobs, refs, emd, spare) if spare >= 1 else None

    L.seed_everything(seed, verbose=False)
    t0 = time.perf_counter()
    vae_module = LionModule(
        config=DEMO_CONFIG, stage="vae", lr=DEMO_LR, ema_decay=0.0, seed=seed, kl_anneal_steps=VAE_STEPS
    )
    vae_trainer = _trainer(out / "vae", VAE_STEPS, VAE_SHARE * train_seconds, progress, accelerator=accelerator)
    vae_trainer.fit(vae_module, datamodule=dm)
    vae_steps = vae_module.global_step
    seconds["vae"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    if baselines is not None:  # the priors take every core: wait for the baselines first (out of the priors' time)
        base_rows, ref_distances = baselines.result()
        seconds["baselines_wait"] = time.perf_counter() - t0
    prior_module = LionModule(
        config=DEMO_CONFIG,
        stage="prior",
        vae_ckpt=str(out / "vae" / "checkpoints" / "last.ckpt"),
        lr=DEMO_LR,
        warmup_steps=0,  # TimeBudgetCosine warms up
        lr_schedule="constant",
        ema_decay=DEMO_EMA,
        seed=seed,
        cache_latents=True,
    )
    left = train_seconds - (time.perf_counter() - t0) - seconds["vae"]
    decay = TimeBudgetCosine(left, floor=DEMO_LR_FLOOR, warmup_steps=50)
    dm.batch_size = max(1, DEMO_BATCH // procs)  # per process: the optimiser steps on DEMO_BATCH clouds
    prior_trainer = _trainer(out / "prior", PRIOR_STEPS, left, progress, (decay,), procs, accelerator)
    prior_trainer.fit(prior_module, datamodule=dm)
    # data-parallel training ran in forked processes: the weights came back, the step count is in the checkpoint
    prior_steps = int(read_checkpoint(out / "prior" / "checkpoints" / "last.ckpt")["global_step"])
    seconds["prior"] = time.perf_counter() - t0

    # ---------------------------------------------------------------------------------------- sample
    t0 = time.perf_counter()
    kwargs: dict[str, Any] = {"eta": DEMO_ETA} if DEMO_SAMPLER == "ddim" else {}
    if accelerator == "gpu":
        prior_module.to("cuda")  # Lightning hands the module back on the CPU

    def draw(draw_seed: int) -> torch.Tensor:
        return generate_parallel(
            prior_module,
            n_ref,
            DEMO_SAMPLER,
            DEMO_STEPS,
            draw_seed,
            procs,
            code_temperature=DEMO_CODE_TEMPERATURE,
            **kwargs,
        ).cpu()

    samples = draw(seed)
    seconds["sample"] = time.perf_counter() - t0

    # ---------------------------------------------------------------------------------------- evaluate
    t0 = time.perf_counter()
    # the metrics' kernels solve pairs in parallel, one thread per core the training used (all on a GPU machine)
    torch.set_num_threads(procs if accelerator == "cpu" else choose_threads())
    if baselines is None:  # no spare core while the VAE trained: score the baselines now
        base_rows, ref_distances = baseline_metrics(train_clouds, blobs, refs, emd)
    score = lambda x, e: point_cloud_metrics(x, refs, emd=e, ref_distances=ref_distances)  # noqa: E731
    rows = {"LION (ours)": score(samples, emd), **base_rows}
    seconds["evaluate"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    draw_seeds = [seed] + [derived_seed(seed, "draw", i) for i in range(1, draws)]
    scores = [rows["LION (ours)"]] + [score(draw(s), False) for s in draw_seeds[1:]]
    draw_summary = summarize_draws(draw_seeds, scores)  # keeps the DRAW_KEYS of each
    seconds["draws"] = time.perf_counter() - t0
    seconds["total"] = time.perf_counter() - start

    # ---------------------------------------------------------------------------------------- report
    grid = out / "samples.png"
    render_point_grid(samples[:16].numpy(), grid)
    with atomic_path(out / "samples.npz") as tmp:
        np.savez(tmp, points=samples.numpy())
    sampler_label = DEMO_SAMPLER + (f" eta={DEMO_ETA:g}" if DEMO_SAMPLER == "ddim" else "")
    sampler_label += f" {DEMO_STEPS} steps, shape-code temperature {DEMO_CODE_TEMPERATURE:g}"
    title = (
        f"LION demo: {', '.join(classes)}, {n_ref} samples vs {n_ref} val shapes, {DEMO_POINTS} points per "
        f"cloud (paper protocol: 2048), {sampler_label}, VAE {vae_steps} + priors "
        f"{prior_steps} steps, {seconds['total'] / 60:.1f} min"
    )
    console.print(metrics_table(rows, title))
    console.print(draws_line(draw_summary, n_ref))
    result: dict[str, Any] = {
        "lion": {k: float(v) for k, v in rows["LION (ours)"].items()},
        "train_split": {k: float(v) for k, v in rows["train split (oracle)"].items()},
        "gaussian": {k: float(v) for k, v in rows["Gaussian blobs"].items()},
        "num_samples": n_ref,
        "num_points": DEMO_POINTS,
        "classes": classes,
        "sampler": {"name": DEMO_SAMPLER, "steps": DEMO_STEPS, "code_temperature": DEMO_CODE_TEMPERATURE, **kwargs},
        "draws": draw_summary,
        "steps": {"vae": vae_steps, "prior": prior_steps},
        "seconds": {k: round(v, 1) for k, v in seconds.items()},
        "processes": procs,
        "accelerator": accelerator,
        "paths": {
            "grid": str(grid),
            "samples": str(out / "samples.npz"),
            "checkpoint": str(out / "prior" / "checkpoints" / "last.ckpt"),
        },
    }
    result.update({k: v for k, v in result["lion"].items()})  # top-level metric keys, as the metrics code
    atomic_write_text(out / "metrics.json", json.dumps(result, indent=2))
    if not math.isfinite(result["lion"].get("1-NNA-CD", float("nan"))):
        console.print("[yellow]warning: 1-NNA-CD is not finite[/yellow]")
    return result
