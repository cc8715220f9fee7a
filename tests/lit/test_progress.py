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


def test_one_batch_per_epoch_moves_one_bar_by_steps_with_an_eta(tmp_path):
    """Eight samples in one batch: every step is a new epoch, yet the bar is one for the run, counting steps."""
    from gen3d.lit.progress import StepSpeedColumn, StepTimeColumn, remaining_seconds

    bar = StepProgressBar()
    seen = []

    class OneBatch(_Tiny):
        def train_dataloader(self):
            return torch.utils.data.DataLoader(torch.utils.data.TensorDataset(torch.randn(8, 2)), batch_size=8)

    class Spy(L.Callback):
        def on_train_batch_end(self, trainer, *args):
            task = bar.train_progress_bar
            seen.append((bar.train_progress_bar_id, task.completed, task.total))

    trainer = L.Trainer(
        accelerator="cpu",
        max_steps=5,
        callbacks=[Spy(), bar],
        logger=False,
        enable_checkpointing=False,
        enable_model_summary=False,
        default_root_dir=tmp_path,
    )
    trainer.fit(OneBatch())
    assert trainer.current_epoch == 5
    assert len({i for i, _, _ in seen}) == 1  # one task for the whole run, not one per epoch
    assert [c for _, c, _ in seen][1:] == [1, 2, 3, 4] and {t for _, _, t in seen} == {5}  # spy runs first
    task = bar.train_progress_bar
    assert task.completed == 5 and task.fields["first_step"] == 0
    assert remaining_seconds(task) == 0.0
    columns = bar.configure_columns(trainer)
    assert any(isinstance(c, StepTimeColumn) for c in columns) and any(isinstance(c, StepSpeedColumn) for c in columns)
    assert str(StepSpeedColumn(style="").render(task)).endswith(("steps/s", "s/step"))


def test_eta_follows_the_mean_step_time():
    from types import SimpleNamespace

    from gen3d.lit.progress import remaining_seconds, step_rate

    task = SimpleNamespace(completed=120, total=220, elapsed=40.0, finished=False, fields={"first_step": 100})
    assert step_rate(task) == 0.5 and remaining_seconds(task) == 200.0  # resumed at step 100: 20 steps in 40 s
    task.completed, task.elapsed = 100, 3.0
    assert remaining_seconds(task) is None  # no step yet
    done = SimpleNamespace(
        completed=220, total=220, elapsed=99.0, finished=True, finished_time=60.0, fields=task.fields
    )
    assert step_rate(done) == 2.0 and remaining_seconds(done) == 0.0
