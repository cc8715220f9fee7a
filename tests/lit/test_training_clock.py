"""``TrainingClock``: every checkpoint records the training time and steps, summed over resumed runs."""

from __future__ import annotations

import time

import torch

from gen3d.lit.callbacks import TrainingClock
from gen3d.lit.flow_module import FlowModule
from tests.conftest import TINY_FLOW


class _Slow(TrainingClock):
    """The clock, with each training batch taking at least 50 ms (so the recorded time has a known floor)."""

    def on_train_batch_end(self, *args, **kwargs) -> None:
        time.sleep(0.05)


def test_checkpoints_carry_the_training_time_and_resumes_add_to_it(make_trainer, datamodule, tmp_path):
    torch.manual_seed(0)
    trainer = make_trainer(max_steps=3, callbacks=[_Slow()], enable_checkpointing=False, limit_val_batches=0)
    start = time.perf_counter()
    trainer.fit(FlowModule(config=dict(TINY_FLOW)), datamodule=datamodule)
    wall = time.perf_counter() - start
    trainer.save_checkpoint(tmp_path / "a.ckpt")
    first = torch.load(tmp_path / "a.ckpt", weights_only=True)["train_time"]
    assert first["steps"] == 3 and first["world_size"] == 1 and first["threads"] == torch.get_num_threads()
    assert 0.15 <= first["seconds"] <= wall + 0.5  # three sleeping batches, within the fit's wall time

    trainer = make_trainer(max_steps=5, callbacks=[_Slow()], enable_checkpointing=False, limit_val_batches=0)
    trainer.fit(FlowModule(config=dict(TINY_FLOW)), datamodule=datamodule, ckpt_path=tmp_path / "a.ckpt")
    trainer.save_checkpoint(tmp_path / "b.ckpt")
    second = torch.load(tmp_path / "b.ckpt", weights_only=True)["train_time"]
    assert second["steps"] == 5
    assert second["seconds"] >= first["seconds"] + 0.1  # the first run's time plus two more sleeping batches
