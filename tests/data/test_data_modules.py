"""Lightning DataModules: procedural and on-disk point clouds agree, statistics come from the train split,
and a Trainer runs one fast_dev_run epoch over each."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from gen3d.data import shapes

KW = {
    "classes": "chair,table",
    "per_class": 5,
    "points": 600,
    "tr_sample_size": 128,
    "te_sample_size": 64,
    "batch_size": 4,
}


def test_procedural_module_uses_train_statistics_everywhere():
    from gen3d.data.datamodules import PointCloudDataModule

    dm = PointCloudDataModule(None, **KW)
    dm.setup("fit")
    train_raw = shapes.generate_split("chair,table", "train", 5, 0, 600).points.astype(np.float64)
    np.testing.assert_allclose(dm.norm.mean, train_raw.reshape(-1, 3).mean(axis=0), rtol=1e-10)
    assert float(dm.norm.std) == pytest.approx(train_raw.reshape(-1).std(), rel=1e-10)
    batch = next(iter(dm.train_dataloader()))
    assert batch["points"].shape == (4, 128, 3) and batch["test_points"].shape == (4, 64, 3)
    val = next(iter(dm.val_dataloader()))
    val_raw = shapes.generate_split("chair,table", "val", 5, 0, 600).points  # (2, 600, 3)
    restored = val["test_points"] * val["std"] + val["mean"]  # first 64 of the last 200 points, de-normalised
    np.testing.assert_allclose(restored.numpy(), val_raw[:, 400:464], rtol=1e-5, atol=1e-6)
    assert len(dm.test_dataloader().dataset) == 2


def test_disk_and_procedural_modules_agree(tmp_path):
    from gen3d.data.datamodules import PointCloudDataModule

    shapes.build_dataset(tmp_path / "d", "chair,table", per_class=5, points=600)
    on_disk = PointCloudDataModule(tmp_path / "d", **{k: v for k, v in KW.items() if k not in ("per_class", "points")})
    generated = PointCloudDataModule("procedural", **KW)
    for split in ("train", "val", "test"):
        np.testing.assert_array_equal(on_disk.dataset(split).points, generated.dataset(split).points)
    assert on_disk.norm == generated.norm


def _tiny_module():
    import lightning.pytorch as pl

    class Tiny(pl.LightningModule):
        def __init__(self, key):
            super().__init__()
            self.key, self.layer, self.seen = key, torch.nn.Linear(3, 1), []

        def _step(self, batch):
            x = batch[self.key] if isinstance(batch, dict) else batch.flatten(2).transpose(1, 2)  # (B, P, 3)
            self.seen.append(tuple(x.shape))
            return self.layer(x).pow(2).mean()

        def training_step(self, batch, batch_idx):
            return self._step(batch)

        def validation_step(self, batch, batch_idx):
            self._step(batch)

        def configure_optimizers(self):
            return torch.optim.SGD(self.parameters(), lr=0.01)

    return Tiny


def _trainer():
    import lightning.pytorch as pl

    return pl.Trainer(
        fast_dev_run=True,
        accelerator="cpu",
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
    )


def test_fast_dev_run_point_clouds():
    from gen3d.data.datamodules import PointCloudDataModule

    model = _tiny_module()("points")
    _trainer().fit(model, datamodule=PointCloudDataModule(None, **KW))
    assert model.seen == [(4, 128, 3), (2, 128, 3)]  # one train batch, one val batch


@pytest.mark.filterwarnings("ignore:You defined a `validation_step` but have no `val_dataloader`")
def test_fast_dev_run_images(tmp_path):
    from gen3d.data.datamodules import ImageDataModule

    rng = np.random.default_rng(0)
    for i in range(5):
        Image.fromarray(rng.integers(0, 255, (20, 24, 3), dtype=np.uint8)).save(tmp_path / f"{i}.png")
    dm = ImageDataModule(tmp_path, size=16, batch_size=4)
    batch = next(iter(dm.train_dataloader()))
    assert batch.shape == (4, 3, 16, 16) and batch.min() >= -1 and batch.max() <= 1
    model = _tiny_module()(None)
    _trainer().fit(model, datamodule=dm)
    assert model.seen == [(4, 256, 3)]
