"""Lightning callbacks and plugins: validation samples of the point-cloud models (their metrics and a PNG grid),
the training-history chart (:class:`LossPlotCallback`), the resolved config in the run folder
(:class:`RunConfigCallback`), the training time in every checkpoint (:class:`TrainingClock`) and
:class:`AtomicCheckpointIO` (no half-written checkpoint).

:class:`PointCloudSampleCallback` collects the validation clouds (de-normalised), and at the end of every
validation asks the module for as many new shapes (``generate``; in the VAE stage: reconstructions of those
clouds, ``reconstruct``), computes MMD / COV / 1-NNA (Chamfer) and JSD with
:func:`gen3d.metrics.point_cloud_metrics`, logs them as ``val/<metric>`` in that function's units (MMD and JSD raw,
COV and 1-NNA in percent) and writes ``<root>/samples/step_<k>.png``. It runs on rank zero only.
"""

from __future__ import annotations

import time
import warnings
from pathlib import Path
from typing import Any

import lightning as L
import torch
from lightning.pytorch.callbacks import Callback
from lightning.pytorch.cli import SaveConfigCallback
from lightning.pytorch.loggers import CSVLogger
from lightning.pytorch.plugins.io import TorchCheckpointIO

from gen3d.lit.lion_module import batch_points
from gen3d.utils import atomic_path

GRID_NAME = "step_{step:07d}.png"


def reference_points(batch: Any) -> torch.Tensor:
    """The held-out points of a validation batch (``test_points`` when present), normalised."""
    if isinstance(batch, dict) and "test_points" in batch:
        return batch["test_points"]
    return batch_points(batch)


class PointCloudSampleCallback(Callback):
    """Generate, evaluate and draw samples at the end of each validation.

    The module must provide ``denormalize(x)``, ``generate(n, sampler, steps, seed)`` and ``stage``, and for
    ``stage == "vae"`` ``reconstruct(x)``; the number of shapes, the sampler and its steps come from the
    module's hyperparameters ``val_samples``, ``val_sampler``, ``val_steps``.

    Args:
        every_n_validations: evaluate at every n-th validation (the others only log losses).
        emd: also compute the EMD metrics (slower).
        grid_size: at most this many clouds in the PNG.
        seed: seed of the generated samples (fixed, so successive grids are comparable).
    """

    def __init__(self, every_n_validations: int = 1, emd: bool = False, grid_size: int = 16, seed: int = 0):
        self.every = max(1, every_n_validations)
        self.emd = emd
        self.grid_size = grid_size
        self.seed = seed
        self._refs: list[torch.Tensor] = []
        self._inputs: list[torch.Tensor] = []
        self._count = 0

    def on_validation_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._refs, self._inputs = [], []

    def on_validation_batch_end(
        self,
        trainer: L.Trainer,
        pl_module: L.LightningModule,
        outputs: Any,
        batch: Any,
        batch_idx: int,
        dataloader_idx: int = 0,
    ) -> None:
        want = int(pl_module.hparams.get("val_samples", 16))
        have = sum(len(r) for r in self._refs)
        if have < want:
            self._refs.append(pl_module.denormalize(reference_points(batch)).detach().cpu())
            self._inputs.append(batch_points(batch).detach())

    def on_validation_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.sanity_checking or not self._refs:
            return
        self._count += 1
        if (self._count - 1) % self.every or not trainer.is_global_zero:
            return
        hp = pl_module.hparams
        n = int(hp.get("val_samples", 16))
        refs = torch.cat(self._refs)[:n]  # (n, N, 3) data frame
        if pl_module.stage == "vae":
            samples = pl_module.reconstruct(torch.cat(self._inputs)[:n]).cpu()
        else:
            name = hp.get("val_sampler", "dpm-sde")
            extra = {"eta": hp.get("val_eta", 0.0)} if name == "ddim" else {}
            samples = pl_module.generate(len(refs), name, hp.get("val_steps", 20), seed=self.seed, **extra).cpu()
        root = Path(trainer.default_root_dir)
        self._write_grid(samples, root / "samples" / GRID_NAME.format(step=trainer.global_step))
        metrics = self._metrics(samples, refs)
        if metrics:
            prefix = "val/rec_" if pl_module.stage == "vae" else "val/"
            pl_module.log_dict({prefix + k: float(v) for k, v in metrics.items()}, rank_zero_only=True)

    def _write_grid(self, samples: torch.Tensor, path: Path) -> None:
        try:
            from gen3d.export.grid import render_point_grid
        except ImportError:  # pragma: no cover - the export package ships with gen3d
            return
        render_point_grid(samples[: self.grid_size].numpy(), path)

    def _metrics(self, samples: torch.Tensor, refs: torch.Tensor) -> dict[str, float]:
        try:
            from gen3d.metrics import point_cloud_metrics
        except ImportError:
            warnings.warn("gen3d.metrics.point_cloud_metrics is unavailable; skipping sample metrics", stacklevel=2)
            return {}
        if len(refs) < 2:
            return {}
        return dict(point_cloud_metrics(samples, refs, emd=self.emd))


class AtomicCheckpointIO(TorchCheckpointIO):
    """Lightning checkpoint writer that writes to a temporary file and renames it (no half-written .ckpt)."""

    def save_checkpoint(self, checkpoint: dict[str, Any], path, storage_options: Any | None = None) -> None:
        if storage_options is not None:
            raise TypeError("AtomicCheckpointIO does not take storage_options")
        with atomic_path(path) as tmp:
            torch.save(checkpoint, tmp)


class LossPlotCallback(Callback):
    """Write ``<default_root_dir>/loss.png`` when training ends: the CSV logger's training losses and validation
    curves against the step (see :func:`gen3d.lit.logs.plot_history`). Runs on rank zero; needs a
    :class:`~lightning.pytorch.loggers.CSVLogger` among the trainer's loggers (without one it does nothing).

    Args:
        filename: the PNG's name in the trainer's ``default_root_dir``.
    """

    def __init__(self, filename: str = "loss.png"):
        self.filename = filename

    def on_fit_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if not trainer.is_global_zero:
            return
        from gen3d.lit.logs import plot_history

        for logger in trainer.loggers:
            if isinstance(logger, CSVLogger):
                logger.save()  # rows still buffered (Lightning flushes them after this hook)
                csv_path = Path(logger.log_dir) / "metrics.csv"
                if csv_path.is_file():
                    plot_history(csv_path, Path(trainer.default_root_dir) / self.filename)
                return


class ResumedLogStep(Callback):
    """Keep the logged step of a resumed run in line with the run it continues.

    Lightning logs against a counter of optimiser-stepping batches. Restarting from a checkpoint written at the end
    of an epoch (after validation), it adds one to that counter, so every row of the resumed run is logged one step
    late (``metrics.csv`` and TensorBoard skip a step) and ``log_every_n_steps`` picks other steps than an
    uninterrupted run. In automatic optimisation the counter equals ``trainer.global_step``; at the first batch of a
    run this callback puts it back when it is exactly one ahead. Manual optimisation is left alone.
    """

    def __init__(self) -> None:
        self._checked = False

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._checked = False

    def on_train_batch_start(
        self, trainer: L.Trainer, pl_module: L.LightningModule, batch: Any, batch_idx: int
    ) -> None:
        if self._checked:
            return
        self._checked = True
        loop = trainer.fit_loop.epoch_loop
        stepped = getattr(loop, "_batches_that_stepped", None)
        if pl_module.automatic_optimization and stepped == trainer.global_step + 1:
            loop._batches_that_stepped = trainer.global_step


class TrainingClock(Callback):
    """Record the wall-clock time spent training in every checkpoint, under ``checkpoint["train_time"]``.

    The record is ``{"seconds", "steps", "threads", "world_size"}``: seconds from the start of fitting to the save
    (validation included), summed over resumed runs (a resumed run reads the time of the checkpoint it continues);
    the optimiser steps taken; the CPU threads and processes that did the work. ``gen3d report trilemma`` quotes it
    as the model's training time.
    """

    KEY = "train_time"

    def __init__(self) -> None:
        self._before = 0.0  # seconds of the runs this one resumes
        self._start: float | None = None

    def on_fit_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._start = time.perf_counter()

    def seconds(self) -> float:
        return self._before + (time.perf_counter() - self._start if self._start is not None else 0.0)

    def on_save_checkpoint(self, trainer: L.Trainer, pl_module: L.LightningModule, checkpoint: dict[str, Any]) -> None:
        checkpoint[self.KEY] = {
            "seconds": round(self.seconds(), 3),
            "steps": int(trainer.global_step),
            "threads": int(torch.get_num_threads()),
            "world_size": int(trainer.world_size),
        }

    def on_load_checkpoint(self, trainer: L.Trainer, pl_module: L.LightningModule, checkpoint: dict[str, Any]) -> None:
        record = checkpoint.get(self.KEY)
        if isinstance(record, dict) and isinstance(record.get("seconds"), int | float):
            self._before = float(record["seconds"])


class RunConfigCallback(SaveConfigCallback):
    """LightningCLI's config saver writing ``config.yaml`` into the trainer's ``default_root_dir`` (the run or stage
    folder) rather than the first logger's folder; overwrites the file of an earlier run there (atomically)."""

    def __init__(self, *args: Any, **kwargs: Any):
        kwargs["save_to_log_dir"] = False
        super().__init__(*args, **kwargs)

    def save_config(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        from gen3d.utils import atomic_write_text

        text = self.parser.dump(self.config, skip_none=False)
        atomic_write_text(Path(trainer.default_root_dir) / self.config_filename, text)
