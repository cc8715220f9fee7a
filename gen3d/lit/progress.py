"""A rich progress bar for step-budgeted training.

Lightning's :class:`~lightning.pytorch.callbacks.RichProgressBar` draws one bar per epoch over the epoch's batches
and titles it ``Epoch e/E`` with ``E = max_epochs - 1``. Runs bounded by ``max_steps`` have ``max_epochs = -1``
(the title read ``Epoch 3/-2``), and with few batches per epoch the bar starts over every epoch, so it never shows
how far the run is nor when it will end (at one batch per epoch it jumps from empty to full each step).

:class:`StepProgressBar` titles the bar ``Epoch 3 · step 420/5000`` and, when ``max_steps`` bounds the run, draws
one bar for the whole run: it moves by optimiser steps (``trainer.global_step``, resumed runs start where they
stopped), its time column reads ``elapsed • remaining`` with the remaining time from the mean step time of this
run (validation included), and its speed column reads steps per second (or seconds per step when slower).
Epoch-bounded runs keep Lightning's per-epoch bar.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import lightning as L
from lightning.pytorch.callbacks import RichProgressBar
from lightning.pytorch.callbacks.progress.rich_progress import CustomTimeColumn, ProcessingSpeedColumn
from rich.text import Text

# field of the whole-run training task: the step it started from (the bar's ETA is measured from there)
_FIRST = "first_step"


def train_description(epoch: int, max_epochs: int | None, step: int, max_steps: int | None) -> str:
    """The training bar's title: epoch (of the total when bounded) and optimiser step (of the total when bounded)."""
    text = f"Epoch {epoch}" + (f"/{max_epochs - 1}" if max_epochs is not None and max_epochs > 0 else "")
    if max_steps is not None and max_steps > 0:
        return f"{text} · step {step}/{max_steps}"
    return f"{text} · step {step}"


def step_rate(task: Any) -> float | None:
    """Mean optimiser steps per second of a whole-run training task since it started (None before its first step)."""
    done = task.completed - task.fields.get(_FIRST, 0)
    elapsed = task.finished_time if task.finished else task.elapsed  # a finished bar's rate stays put
    if done <= 0 or not elapsed:
        return None
    return done / elapsed


def remaining_seconds(task: Any) -> float | None:
    """Seconds left for a whole-run training task at its mean step rate (None before its first step)."""
    rate = step_rate(task)
    return None if rate is None else max(0.0, task.total - task.completed) / rate


class StepTimeColumn(CustomTimeColumn):
    """``elapsed • remaining``; for the whole-run training bar the remaining time follows the mean step time."""

    def render(self, task: Any) -> Text:
        if _FIRST not in task.fields:
            return super().render(task)
        elapsed = task.finished_time if task.finished else task.elapsed
        remaining = 0.0 if task.finished else remaining_seconds(task)
        fmt = lambda s: "-:--:--" if s is None else str(timedelta(seconds=int(s)))  # noqa: E731
        return Text(f"{fmt(elapsed)} • {fmt(remaining)}", style=self.style)


class StepSpeedColumn(ProcessingSpeedColumn):
    """Steps per second (``s/step`` below one) for the whole-run training bar; Lightning's ``it/s`` otherwise."""

    def render(self, task: Any) -> Text:
        if _FIRST not in task.fields:
            return super().render(task)
        rate = step_rate(task)
        if rate is None:
            text = "-- steps/s"
        elif rate >= 1:
            text = f"{rate:.2f} steps/s"
        else:
            text = f"{1 / rate:.2f} s/step"
        return Text(text, style=self.style)


class StepProgressBar(RichProgressBar):
    """:class:`RichProgressBar` that follows optimiser steps in runs bounded by ``max_steps`` (see the module)."""

    def _counts_steps(self, trainer: L.Trainer) -> bool:
        return trainer.max_steps is not None and trainer.max_steps > 0

    def _get_train_description(self, current_epoch: int) -> str:
        trainer = self.trainer
        text = train_description(current_epoch, trainer.max_epochs, trainer.global_step, trainer.max_steps)
        if len(self.validation_description) > len(text):  # same width as the validation bar's title
            text = f"{text:{len(self.validation_description)}}"
        return text

    def _styled(self, description: str) -> str:
        return f"[{self.theme.description}]{description}" if self.theme.description else description

    def _add_step_task(self, trainer: L.Trainer) -> None:
        assert self.progress is not None
        self.train_progress_bar_id = self.progress.add_task(
            self._styled(self._get_train_description(trainer.current_epoch)),
            total=trainer.max_steps,
            completed=trainer.global_step,
            **{_FIRST: trainer.global_step},
        )

    def configure_columns(self, trainer: L.Trainer) -> list:
        columns = super().configure_columns(trainer)
        swap = {CustomTimeColumn: StepTimeColumn, ProcessingSpeedColumn: StepSpeedColumn}
        return [swap[type(c)](style=c.style) if type(c) in swap else c for c in columns]

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if not self._counts_steps(trainer):
            super().on_train_epoch_start(trainer, pl_module)
            return
        if self.is_disabled:
            return
        if self.progress is None:
            self._init_progress(trainer)
        if self.progress is not None:
            if self.train_progress_bar_id is None:
                self._add_step_task(trainer)
            else:  # one bar for the run: only its title changes with the epoch
                description = self._styled(self._get_train_description(trainer.current_epoch))
                self.progress.update(self.train_progress_bar_id, description=description, visible=True)
        self.refresh()

    def on_train_batch_end(
        self, trainer: L.Trainer, pl_module: L.LightningModule, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        if not self._counts_steps(trainer):
            super().on_train_batch_end(trainer, pl_module, outputs, batch, batch_idx)
            return
        if self.is_disabled:
            return
        if self.train_progress_bar_id is None and self.progress is not None:
            self._add_step_task(trainer)
        if self.progress is not None and self.train_progress_bar_id is not None:
            description = self._styled(self._get_train_description(trainer.current_epoch))
            self.progress.update(self.train_progress_bar_id, completed=trainer.global_step, description=description)
        self._update_metrics(trainer, pl_module)
        self.refresh()
