"""The training bar's title for step- and time-bounded runs (Lightning's default reads ``Epoch 3/-2`` there)."""

from __future__ import annotations

import lightning as L
import torch

from gen3d.lit.progress import StepProgressBar, train_description


def test_train_description():
    assert train_description(3, -1, 420, 5000) == "Epoch 3 · step 420/5000"
    assert train_description(3, None, 420, -1) == "Epoch 3 · step 420"
    assert train_description(3, 10, 420, -1) == "Epoch 3/9 · step 420"


class _Tiny(L.LightningModule):
    def __init__(self):
        super().__init__()
        self.lin = torch.nn.Linear(2, 1)

    def training_step(self, batch, batch_idx):
        return self.lin(batch[0]).pow(2).mean()

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.1)

    def train_dataloader(self):
        data = torch.utils.data.TensorDataset(torch.randn(8, 2))
        return torch.utils.data.DataLoader(data, batch_size=2)


def test_step_bounded_run_shows_steps_not_minus_two(tmp_path):
    bar = StepProgressBar()
    seen = []

    class Spy(L.Callback):
        def on_train_batch_end(self, trainer, *args):
            seen.append(bar._get_train_description(trainer.current_epoch))

    trainer = L.Trainer(
        accelerator="cpu",
        max_steps=6,
        callbacks=[bar, Spy()],
        logger=False,
        enable_checkpointing=False,
        enable_model_summary=False,
        default_root_dir=tmp_path,
    )
    trainer.fit(_Tiny())
    assert trainer.max_epochs == -1 and trainer.global_step == 6
    assert seen[-1].strip() == "Epoch 1 · step 6/6"
    assert not any("-2" in s for s in seen)


def test_lion_demo_trainers_use_it(tmp_path):
    from gen3d.pipelines.lion_demo import _trainer

    assert isinstance(_trainer(tmp_path, 5, progress=True).progress_bar_callback, StepProgressBar)
    assert _trainer(tmp_path, 5, progress=False).progress_bar_callback is None
