"""A rich progress bar for step-budgeted training.

Lightning's :class:`~lightning.pytorch.callbacks.RichProgressBar` titles the training bar ``Epoch e/E`` with
``E = max_epochs - 1``; runs bounded by ``max_steps`` or ``max_time`` have ``max_epochs = -1`` and the title
read ``Epoch 3/-2``. :class:`StepProgressBar` shows the epoch alone there, followed by the optimiser step and,
when ``max_steps`` bounds the run, its total: ``Epoch 3 · step 420/5000``.
"""

from __future__ import annotations

from lightning.pytorch.callbacks import RichProgressBar


def train_description(epoch: int, max_epochs: int | None, step: int, max_steps: int | None) -> str:
    """The training bar's title: epoch (of the total when bounded) and optimiser step (of the total when bounded)."""
    text = f"Epoch {epoch}" + (f"/{max_epochs - 1}" if max_epochs is not None and max_epochs > 0 else "")
    if max_steps is not None and max_steps > 0:
        return f"{text} · step {step}/{max_steps}"
    return f"{text} · step {step}"


class StepProgressBar(RichProgressBar):
    """:class:`RichProgressBar` whose training title fits runs bounded by steps or time (see the module)."""

    def _get_train_description(self, current_epoch: int) -> str:
        trainer = self.trainer
        text = train_description(current_epoch, trainer.max_epochs, trainer.global_step, trainer.max_steps)
        if len(self.validation_description) > len(text):  # same width as the validation bar's title
            text = f"{text:{len(self.validation_description)}}"
        return text
