"""The LION stage of ``gen3d demo``: train LION on procedural shapes on a CPU in minutes and evaluate it.

Everything the stage does comes from one :class:`LionDemoConfig`, loaded from the preset
``gen3d/configs/lion_demo.yaml`` by :func:`load_lion_demo_config`. :func:`run_lion_demo` runs the stages in
order: data, baselines (scored on the spare core while the VAE trains), VAE, latent priors, sampling, evaluation,
more sampling draws, report. Both trainings run for step counts, so a seed gives the same numbers on a fast or
a slow machine (with the same number of cores, which sets the priors' data-parallel processes).

The evaluation follows the PointFlow/LION protocol (:func:`gen3d.metrics.point_cloud_metrics`: global
normalisation fitted on train, metrics in the de-normalised frame, reference = val split). One evaluation of
1-NNA over a few dozen references moves by several points with the sampling seed alone, so the samples are
drawn ``draws - 1`` more times with other seeds, scored with the Chamfer metrics, and their mean is reported too.
Two baselines are scored against the same references: the training split itself (an oracle: a perfect generator
would score like it, 1-NNA near 50 %) and Gaussian blobs with the data's mean and spread (a useless generator,
1-NNA near 100 %).

The demo's clouds have ``points`` points (fewer than the 2048 of the paper protocol, which a 2-core CPU cannot
train in minutes); the table says so.
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import json
import math
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
import torch

MIN_REFS = 10  # fewer references make 1-NNA too noisy to mean anything
METRIC_KEYS = ("1-NNA-CD", "1-NNA-EMD", "COV-CD", "COV-EMD", "MMD-CD", "MMD-EMD", "JSD")
DRAW_KEYS = ("1-NNA-CD", "COV-CD", "MMD-CD", "JSD")
PRESET = Path(__file__).resolve().parent.parent / "configs" / "lion_demo.yaml"
OURS, ORACLE, BLOBS = "LION (ours)", "train split (oracle)", "Gaussian blobs"
IN_MEMORY = "procedural shapes generated in memory"


@dataclass(frozen=True)
class LionDemoConfig:
    """Every setting of the LION demo stage (the preset ``gen3d/configs/lion_demo.yaml``).

    Attributes:
        config: the network's configuration mapping (:class:`gen3d.models.lion.LION`); treat it as read-only.
        classes: procedural classes trained on.
        points: points per cloud (must equal ``config["num_points"]``).
        per_class: procedural shapes per class over all splits (80/10/10).
        batch: clouds per optimiser step (split over the priors' data-parallel processes).
        seed: seed of the data, the training and the first sampling draw.
        vae_steps: optimiser steps of the VAE.
        prior_steps: optimiser steps of the latent priors.
        lr: peak learning rate of both stages.
        warmup_steps: the priors' linear learning-rate warm-up.
        lr_floor: the priors' final rate as a fraction of ``lr`` (cosine decay over ``prior_steps``).
        ema_decay: EMA decay of the priors' weights used for sampling.
        sampler: sampler name (:meth:`gen3d.models.lion.LION.make_sampler`).
        steps: sampler steps.
        code_temperature: factor on the sampled standardised shape codes.
        draws: sampling draws scored against the references.
    """

    config: dict[str, Any]
    classes: tuple[str, ...]
    points: int
    per_class: int
    batch: int
    seed: int
    vae_steps: int
    prior_steps: int
    lr: float
    warmup_steps: int
    lr_floor: float
    ema_decay: float
    sampler: str
    steps: int
    code_temperature: float
    draws: int

    def __post_init__(self) -> None:
        object.__setattr__(self, "classes", tuple(self.classes))
        counts = ("per_class", "batch", "vae_steps", "prior_steps", "steps", "draws")
        bad = [f"{k}={getattr(self, k)}" for k in counts if int(getattr(self, k)) < 1]
        if bad:
            raise ValueError(f"LionDemoConfig: these must be at least 1: {', '.join(bad)}")
        if int(self.config.get("num_points", -1)) != self.points:
            raise ValueError(
                f"LionDemoConfig: points={self.points} but config.num_points={self.config.get('num_points')}"
            )
        if not 0.0 < self.lr_floor <= 1.0 or not self.code_temperature > 0 or self.warmup_steps < 0:
            raise ValueError("LionDemoConfig: lr_floor must be in (0, 1], code_temperature > 0, warmup_steps >= 0")


def load_lion_demo_config(path: str | Path | None = None, **overrides: Any) -> LionDemoConfig:
    """The :class:`LionDemoConfig` of a preset (default ``gen3d/configs/lion_demo.yaml``).

    Args:
        path: a YAML file with a ``config`` mapping (the network) and a ``demo`` mapping (the other fields).
        **overrides: fields to replace (``None`` values are ignored), e.g. ``prior_steps=40``.
    """
    import yaml

    data = yaml.safe_load(Path(path or PRESET).read_text(encoding="utf-8"))
    fields = dict(data["demo"], config=data["config"])
    fields.update({k: v for k, v in overrides.items() if v is not None})
    return LionDemoConfig(**fields)


def demo_datamodule(cfg: LionDemoConfig, data_root: str | Path | None = None) -> Any:
    """The demo's :class:`~gen3d.data.datamodules.PointCloudDataModule` (set up for fitting)."""
    from gen3d.data.datamodules import PointCloudDataModule

    dm = PointCloudDataModule(
        root=None if data_root is None else str(data_root),
        classes=list(cfg.classes),
        tr_sample_size=cfg.points,
        te_sample_size=cfg.points,
        batch_size=cfg.batch,
        num_workers=0,
        normalize="global",
        per_class=cfg.per_class,
        seed=cfg.seed,
        points=3 * cfg.points,
        drop_last=True,
    )
    dm.setup("fit")
    return dm


def reference_clouds(dm: Any) -> torch.Tensor:
    """The val split's held-out points in the data frame, ``(R, N, 3)``: the reference set of the metrics."""
    val = dm.dataset("val")
    refs = torch.stack([val[i]["test_points"] for i in range(len(val))])  # (R, N, 3) normalised
    return refs * float(dm.norm.std) + torch.as_tensor(dm.norm.mean, dtype=refs.dtype)


def _trainer(root: Path, max_steps: int, progress: bool, processes: int = 1, accelerator: str = "cpu") -> L.Trainer:
    """A Lightning trainer that stops after ``max_steps`` optimiser steps (no validation, a ``last.ckpt``)."""
    from lightning.pytorch.callbacks import ModelCheckpoint
    from lightning.pytorch.loggers import CSVLogger

    from gen3d.lit.progress import StepProgressBar

    parallel = {"devices": processes, "strategy": "ddp_fork"} if processes > 1 else {"devices": 1}
    return L.Trainer(
        accelerator=accelerator,
        **parallel,
        max_steps=max_steps,
        default_root_dir=str(root),
        logger=CSVLogger(str(root), name="csv", version=""),
        callbacks=[
            ModelCheckpoint(dirpath=str(root / "checkpoints"), save_last=True, save_top_k=0),
            *((OneThreadPerProcess(),) if processes > 1 else ()),
            *((StepProgressBar(),) if progress else ()),
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

    The demo's networks are small: a step is many small operations that a second thread speeds up little, so two
    single-threaded processes (Lightning DDP over gloo) keep two cores busier than one process with two threads.
    """
    return 2 if (os.cpu_count() or 1) >= 2 else 1


def choose_threads() -> int:
    """Intra-op threads for the demo: one on a machine of up to 2 cores, else half the cores (at most 8).

    A function of the core count only, so that a seed gives the same numbers whatever else the machine runs.
    """
    cpus = os.cpu_count() or 1
    return 1 if cpus <= 2 else min(cpus // 2, 8)


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
    return {ORACLE: score(train_clouds), BLOBS: score(blobs)}, ref_distances


def metrics_table(rows: dict[str, dict[str, float]], title: str) -> Any:
    """A rich table: one row per method, one column per metric, in the papers' scales with the factor in the header.

    The values are :func:`gen3d.metrics.point_cloud_metrics`'s (1-NNA and COV in %, MMD raw, JSD as the
    divergence); the table multiplies them by :data:`gen3d.metrics.point_cloud.PAPER_SCALES` (MMD-CD x 1e3,
    MMD-EMD and JSD x 1e2), as the papers print them.
    """
    from rich.table import Table

    from gen3d.metrics.point_cloud import PAPER_SCALES

    table = Table(title=title)
    table.add_column("method")
    keys = [k for k in METRIC_KEYS if any(k in r for r in rows.values())]
    scale = {k: PAPER_SCALES.get(k, 1.0) for k in keys}
    digits = {k: 1 if scale[k] == 1.0 else 3 if k.startswith("MMD") else 2 for k in keys}
    for k in keys:
        table.add_column(k + (" %" if scale[k] == 1.0 else f" x1e{round(math.log10(scale[k]))}"), justify="right")
    for name, r in rows.items():
        table.add_row(name, *(f"{scale[k] * float(r.get(k, float('nan'))):.{digits[k]}f}" for k in keys))
    return table


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


def run_lion_demo(
    out_dir: str | Path,
    cfg: LionDemoConfig | None = None,
    *,
    data_root: str | Path | None = None,
    emd: bool = True,
    progress: bool = True,
    processes: int | None = None,
    accelerator: str = "cpu",
) -> dict[str, Any]:
    """Train, sample and evaluate LION as ``cfg`` says, on a CPU (or one GPU).

    Args:
        out_dir: output folder: ``metrics.json``, ``samples.png``, ``samples.npz``, ``vae/``, ``prior/``.
        cfg: the settings (default: :func:`load_lion_demo_config` of the shipped preset).
        data_root: a PC15k-layout root holding the demo classes, or None to generate the procedural shapes
            in memory (also done when the root has fewer than :data:`MIN_REFS` val shapes of them).
        emd: also compute the EMD metrics.
        progress: show progress bars.
        processes: data-parallel training and sampling processes (None: :func:`demo_processes`).
        accelerator: Lightning accelerator of both stages: ``"cpu"``, or ``"gpu"`` to train and sample on one
            GPU (one process, the same configuration and step counts).

    Returns:
        ``{"lion": metrics, "train_split": metrics, "gaussian": metrics, "num_samples", "num_points",
        "draws": {...}, "seconds": {...}, "steps": {...}, "paths": {...}}``; the same dict is written to
        ``metrics.json``. ``lion`` scores the first sampling draw; ``draws`` (:func:`summarize_draws`) has the
        Chamfer metrics of all ``cfg.draws`` draws and their mean.
    """
    if accelerator not in ("cpu", "gpu"):
        raise ValueError(f"accelerator must be 'cpu' or 'gpu', got {accelerator!r}")
    if accelerator == "gpu" and not torch.cuda.is_available():
        raise ValueError("accelerator='gpu' needs a CUDA GPU, and none is available")
    cfg = cfg or load_lion_demo_config()
    # the metrics' native kernels are built on first use (about a minute on 2 cores from a clean clone): build or
    # load them here, so that the build does not hold up the baselines' worker beside the VAE stage
    from gen3d.metrics._native import load_native

    load_native()
    procs = 1 if accelerator == "gpu" else demo_processes() if processes is None else max(1, int(processes))
    run = _Run(Path(out_dir), cfg, data_root, emd, progress, procs, accelerator)
    threads_before = torch.get_num_threads()
    torch.set_num_threads(choose_threads())
    try:
        return run.all()
    finally:
        torch.set_num_threads(threads_before)


@dataclass
class _Data:
    """What the data stage hands on: the datamodule, the references and the two baselines' clouds."""

    dm: Any
    refs: torch.Tensor  # (R, N, 3) data frame
    train_clouds: torch.Tensor  # (R, N, 3) data frame, the oracle
    blobs: torch.Tensor  # (R, N, 3) the useless generator
    source: str = IN_MEMORY  # where the shapes came from: the data root, or IN_MEMORY


@dataclass
class _Run:
    """One run of the LION demo: the stages as methods, the time each took in ``seconds``."""

    out: Path
    cfg: LionDemoConfig
    data_root: str | Path | None
    emd: bool
    progress: bool
    procs: int
    accelerator: str
    seconds: dict[str, float] = dataclasses.field(default_factory=dict)

    @contextlib.contextmanager
    def timed(self, stage: str) -> Iterator[None]:
        t0 = time.perf_counter()
        yield
        self.seconds[stage] = time.perf_counter() - t0

    def all(self) -> dict[str, Any]:
        """Every stage in order; returns what ``metrics.json`` holds."""
        from rich.console import Console

        console, start = Console(), time.perf_counter()
        self.out.mkdir(parents=True, exist_ok=True)
        with self.timed("data"):
            data = self.data(console)
        # the baselines do not depend on the model: they are scored while the VAE trains, on the cores it leaves idle
        baselines = self.start_baselines(data)
        with self.timed("vae"):
            vae_steps = self.train_vae(data.dm)
        with self.timed("baselines_wait"):  # the priors take every core: the baselines finish first
            base = baselines.result() if baselines is not None else None
        with self.timed("prior"):
            prior, prior_steps = self.train_priors(data.dm)
        with self.timed("sample"):
            samples = self.draw(prior, len(data.refs), self.cfg.seed)
        with self.timed("evaluate"):
            rows, score = self.evaluate(data, base, samples)
        with self.timed("draws"):
            draws = self.more_draws(prior, len(data.refs), rows[OURS], score)
        self.seconds["total"] = time.perf_counter() - start
        return self.report(console, samples, rows, draws, {"vae": vae_steps, "prior": prior_steps}, data, prior)

    def data(self, console: Any) -> _Data:
        """The datamodule (procedural in memory unless ``data_root`` has enough references), the references, and
        the clouds of the two baselines (as many as references)."""
        cfg = self.cfg
        dm = demo_datamodule(cfg, self.data_root)
        source = IN_MEMORY if self.data_root is None else str(self.data_root)
        if self.data_root is not None and len(dm.dataset("val")) < MIN_REFS:
            console.print(
                f"[yellow]{self.data_root} has {len(dm.dataset('val'))} val shapes of {', '.join(cfg.classes)}; the "
                f"demo needs at least {MIN_REFS}: generating {cfg.per_class} procedural shapes per class in memory "
                "instead[/yellow]"
            )
            dm, source = demo_datamodule(cfg, None), IN_MEMORY
        refs, train, norm = reference_clouds(dm), dm.dataset("train"), dm.norm
        pick = torch.randperm(len(train), generator=torch.Generator().manual_seed(cfg.seed))[: len(refs)]
        train_clouds = torch.stack([torch.from_numpy(train.points[int(i)][: cfg.points]) for i in pick])
        train_clouds = train_clouds * float(norm.std) + torch.as_tensor(norm.mean, dtype=train_clouds.dtype)
        flat = refs.reshape(-1, 3)
        spread = float(flat.std(dim=0).mean())
        blobs = gaussian_blobs(len(refs), cfg.points, flat.mean(0).numpy(), spread, cfg.seed)
        return _Data(dm, refs, train_clouds, torch.from_numpy(blobs), source)

    def start_baselines(self, data: _Data) -> Any:
        """The baselines scored in a forked process on the cores the VAE leaves idle (None if there are none)."""
        from gen3d.utils.parallel import ForkedCall

        spare = (os.cpu_count() or 1) - torch.get_num_threads()
        if spare < 1:
            return None
        return ForkedCall(baseline_metrics, data.train_clouds, data.blobs, data.refs, self.emd, spare)

    def train_vae(self, dm: Any) -> int:
        """Train the VAE for ``cfg.vae_steps`` steps (one process); returns the steps taken."""
        from gen3d.lit.lion_module import LionModule

        cfg = self.cfg
        L.seed_everything(cfg.seed, verbose=False)
        module = LionModule(config=copy.deepcopy(cfg.config), stage="vae", lr=cfg.lr, ema_decay=0.0, seed=cfg.seed)
        trainer = _trainer(self.out / "vae", cfg.vae_steps, self.progress, accelerator=self.accelerator)
        trainer.fit(module, datamodule=dm)
        return int(module.global_step)

    def train_priors(self, dm: Any) -> tuple[Any, int]:
        """Train both latent priors for ``cfg.prior_steps`` steps, data-parallel over ``procs`` processes, with a
        linear warm-up and a cosine decay to ``lr_floor x lr``; returns the module and the steps taken."""
        from gen3d.inference.checkpoint import read_checkpoint
        from gen3d.lit.lion_module import LionModule

        cfg, root = self.cfg, self.out / "prior"
        module = LionModule(
            config=copy.deepcopy(cfg.config),
            stage="prior",
            vae_ckpt=str(self.out / "vae" / "checkpoints" / "last.ckpt"),
            lr=cfg.lr,
            warmup_steps=cfg.warmup_steps,
            lr_schedule="cosine",
            lr_min_ratio=cfg.lr_floor,
            ema_decay=cfg.ema_decay,
            seed=cfg.seed,
            cache_latents=True,
        )
        dm.batch_size = max(1, cfg.batch // self.procs)  # per process: the optimiser steps on cfg.batch clouds
        _trainer(root, cfg.prior_steps, self.progress, self.procs, self.accelerator).fit(module, datamodule=dm)
        if self.accelerator == "gpu":
            module.to("cuda")  # Lightning hands the module back on the CPU
        # data-parallel training ran in forked processes: the weights came back, the step count is in the checkpoint
        return module, int(read_checkpoint(root / "checkpoints" / "last.ckpt")["global_step"])

    def draw(self, prior: Any, n: int, seed: int) -> torch.Tensor:
        """One sampling draw of ``n`` shapes with ``seed`` (on the CPU, data frame)."""
        cfg = self.cfg
        kw = {"code_temperature": cfg.code_temperature}
        return generate_parallel(prior, n, cfg.sampler, cfg.steps, seed, self.procs, **kw).cpu()

    def evaluate(self, data: _Data, base: tuple | None, samples: torch.Tensor) -> tuple[dict, Callable]:
        """The table's rows (the samples, then the baselines: scored here if no spare core scored them during the
        VAE stage) and ``score(samples, emd)``, which reuses the references' distances."""
        from gen3d.metrics import point_cloud_metrics

        # the metrics' kernels solve pairs in parallel, one thread per core the training used (all on a GPU machine)
        torch.set_num_threads(self.procs if self.accelerator == "cpu" else choose_threads())
        base_rows, ref_distances = base or baseline_metrics(data.train_clouds, data.blobs, data.refs, self.emd)

        def score(x: torch.Tensor, emd: bool) -> dict[str, float]:
            return point_cloud_metrics(x, data.refs, emd=emd, ref_distances=ref_distances)

        return {OURS: score(samples, self.emd), **base_rows}, score

    def more_draws(self, prior: Any, n: int, first: dict[str, float], score: Callable) -> dict[str, Any]:
        """Draws 2 to ``cfg.draws`` with derived seeds, scored with the Chamfer metrics; the summary of all."""
        from gen3d.lit.lion_module import derived_seed

        seeds = [self.cfg.seed] + [derived_seed(self.cfg.seed, "draw", i) for i in range(1, self.cfg.draws)]
        scores = [first] + [score(self.draw(prior, n, s), False) for s in seeds[1:]]
        return summarize_draws(seeds, scores)  # keeps the DRAW_KEYS of each

    def sampling_record(self, prior: Any, n: int, points: int) -> dict[str, Any]:
        """The record of the first sampling draw (:func:`gen3d.pipelines.sample.sampling_record`), stored in
        ``samples.npz``; the checkpoint is the priors' ``last.ckpt`` (the weights the draw used)."""
        from gen3d.pipelines.sample import sampling_record

        cfg = self.cfg
        return sampling_record(
            self.out / "prior" / "checkpoints" / "last.ckpt",
            "lion",
            sampler=cfg.sampler,
            steps=cfg.steps,
            seed=cfg.seed,
            n=n,
            code_temperature=cfg.code_temperature,
            eta=0.0,
            ema=cfg.ema_decay > 0,
            points=points,
            device="cuda" if self.accelerator == "gpu" else "cpu",
            processes=self.procs,
            sampler_config=prior.net.make_sampler(cfg.sampler, cfg.steps).to_dict(),
        )

    def protocol(self, data: _Data, record: dict[str, Any]) -> dict[str, Any]:
        """What the metrics compared (``metrics.json``'s ``protocol``)."""
        from gen3d.pipelines.sample import provenance

        refs = data.refs
        return {
            "samples": {
                "path": str(self.out / "samples.npz"),
                "clouds": record["n"],
                "points": record["points"],
                "checkpoint": record["checkpoint"],
                "checkpoint_sha256": record["checkpoint_sha256"],
            },
            "refs": {
                "source": f"val split of {data.source}: held-out points of each shape",
                "classes": list(self.cfg.classes),
                "clouds": int(refs.shape[0]),
                "points": int(refs.shape[1]),
            },
            "baselines": {
                "train_split": "as many train-split clouds as references (an oracle)",
                "gaussian": "as many Gaussian clouds with the data's mean and spread (a useless generator)",
            },
            "resample": None,  # the references have the model's point count
            "normalisation": "global (PointFlow), fitted on the train split; metrics in the data's original frame",
            "emd": "approx" if self.emd else "none",
            "seed": self.cfg.seed,
            "impl": "auto",
            **provenance(),
        }

    def report(
        self, console: Any, samples: torch.Tensor, rows: dict, draws: dict, steps: dict, data: _Data, prior: Any
    ) -> dict[str, Any]:
        """Print the table, the draws and the time; write ``samples.png``, ``samples.npz`` and ``metrics.json``."""
        from gen3d.export.grid import render_point_grid
        from gen3d.pipelines.sample import save_samples
        from gen3d.utils import atomic_write_text

        cfg, out, n = self.cfg, self.out, len(samples)
        render_point_grid(samples[:16].numpy(), out / "samples.png")
        record = self.sampling_record(prior, n, int(samples.shape[1]))
        save_samples(out / "samples.npz", samples.numpy(), record)
        title = (
            f"LION demo: {', '.join(cfg.classes)}, {n} samples vs {n} val shapes, {cfg.points} points per cloud "
            f"(paper protocol: 2048), {cfg.sampler} {cfg.steps} steps, shape-code temperature "
            f"{cfg.code_temperature:g}, VAE {steps['vae']} + priors {steps['prior']} steps"
        )
        console.print(metrics_table(rows, title))
        console.print(draws_line(draws, n))
        console.print(f"LION stage took {self.seconds['total'] / 60:.1f} min", highlight=False)
        result: dict[str, Any] = {
            "lion": {k: float(v) for k, v in rows[OURS].items()},
            "train_split": {k: float(v) for k, v in rows[ORACLE].items()},
            "gaussian": {k: float(v) for k, v in rows[BLOBS].items()},
            "num_samples": n,
            "num_points": cfg.points,
            "classes": list(cfg.classes),
            "sampler": {"name": cfg.sampler, "steps": cfg.steps, "code_temperature": cfg.code_temperature},
            "draws": draws,
            "steps": steps,
            "seconds": {k: round(v, 1) for k, v in self.seconds.items()},
            "processes": self.procs,
            "accelerator": self.accelerator,
            "config": dataclasses.asdict(cfg),
            "protocol": self.protocol(data, record),
            "paths": {
                "grid": str(out / "samples.png"),
                "samples": str(out / "samples.npz"),
                "checkpoint": str(out / "prior" / "checkpoints" / "last.ckpt"),
            },
        }
        result.update(result["lion"])  # top-level metric keys, as the metrics code
        atomic_write_text(out / "metrics.json", json.dumps(result, indent=2))
        if not math.isfinite(result["lion"].get("1-NNA-CD", float("nan"))):
            console.print("[yellow]warning: 1-NNA-CD is not finite[/yellow]")
        return result
