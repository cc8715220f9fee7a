"""Training history: metrics.csv keeps earlier runs' rows when a run resumes, and loss.png is drawn from it."""

from __future__ import annotations

import csv

import lightning as L
import torch
from PIL import Image

from gen3d.lit.callbacks import LossPlotCallback
from gen3d.lit.logs import HistoryCSVLogger, chart_names, plot_history, read_history


def rows(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def log(logger, steps, **keys):
    for s in steps:
        logger.log_metrics({k: v + s for k, v in keys.items()}, step=s)
    logger.save()


def test_resumed_run_keeps_earlier_rows_before_its_first_step(tmp_path):
    first = HistoryCSVLogger(tmp_path, name="csv", version="")
    log(first, range(5), **{"train/loss": 10.0})  # rows 3 and 4 were logged after the checkpoint at step 3
    resumed = HistoryCSVLogger(tmp_path, name="csv", version="")
    log(resumed, range(3, 6), **{"train/loss": 100.0})
    log(resumed, [6], **{"train/loss": 100.0, "val/loss": 1.0})  # a new column: the file is rewritten
    path = tmp_path / "csv" / "metrics.csv"
    got = [(int(r["step"]), float(r["train/loss"])) for r in rows(path)]
    assert got == [(0, 10), (1, 11), (2, 12), (3, 103), (4, 104), (5, 105), (6, 106)]
    assert rows(path)[-1]["val/loss"] == "7.0"
    fresh = HistoryCSVLogger(tmp_path, name="csv", version="")  # a run from step 0 replaces the history
    log(fresh, range(2), **{"train/loss": 0.0})
    assert [int(r["step"]) for r in rows(path)] == [0, 1]


def test_an_interrupted_resume_leaves_the_file_alone(tmp_path):
    first = HistoryCSVLogger(tmp_path, name="csv", version="")
    log(first, range(3), **{"train/loss": 1.0})
    before = (tmp_path / "csv" / "metrics.csv").read_text()
    assert HistoryCSVLogger(tmp_path, name="csv", version="").experiment is not None  # opened, nothing logged yet
    assert (tmp_path / "csv" / "metrics.csv").read_text() == before


def test_plot_history_draws_losses_then_validation(tmp_path):
    logger = HistoryCSVLogger(tmp_path, name="csv", version="")
    for s in range(30):
        logger.log_metrics({"train/loss": 1000.0 / (s + 1), "train/kl": 1.0, "lr-Adam": 1e-3}, step=s)
        if s % 10 == 9:
            logger.log_metrics({"val/loss": 5.0 - s / 10, "val/1-NNA-CD": 80.0}, step=s)
    logger.save()
    csv_path = tmp_path / "csv" / "metrics.csv"
    series = read_history(csv_path)
    assert series["val/loss"] == ([9.0, 19.0, 29.0], [4.1, 3.1, 2.1])
    assert chart_names(list(series)) == ["train/loss", "val/loss", "val/1-NNA-CD"]
    png = plot_history(csv_path, tmp_path / "loss.png")
    with Image.open(png) as im:
        im.verify()
    with Image.open(png) as im:
        assert im.format == "PNG" and im.size == (3 * 360, 220)
    (tmp_path / "empty.csv").write_text("epoch,step\n")
    assert plot_history(tmp_path / "empty.csv", tmp_path / "none.png") is None and not (tmp_path / "none.png").exists()


class _Tiny(L.LightningModule):
    def __init__(self):
        super().__init__()
        self.lin = torch.nn.Linear(2, 1)

    def training_step(self, batch, batch_idx):
        loss = self.lin(batch[0]).pow(2).mean()
        self.log("train/loss", loss)
        return loss

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.1)

    def train_dataloader(self):
        return torch.utils.data.DataLoader(torch.utils.data.TensorDataset(torch.randn(8, 2)), batch_size=2)


def test_loss_plot_is_written_when_training_ends(tmp_path):
    trainer = L.Trainer(
        accelerator="cpu",
        max_steps=6,
        log_every_n_steps=1,
        logger=HistoryCSVLogger(tmp_path, name="csv", version=""),
        callbacks=[LossPlotCallback()],
        enable_checkpointing=False,
        enable_model_summary=False,
        enable_progress_bar=False,
        default_root_dir=tmp_path,
    )
    trainer.fit(_Tiny())
    with Image.open(tmp_path / "loss.png") as im:
        im.verify()
    assert [int(r["step"]) for r in rows(tmp_path / "csv" / "metrics.csv")] == list(range(6))
