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


def _steps_trainer(max_steps):
    import lightning.pytorch as pl

    return pl.Trainer(
        max_steps=max_steps,
        accelerator="cpu",
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        num_sanity_val_steps=0,
    )


@pytest.mark.parametrize("drop_last", [False, True])
def test_batch_size_is_capped_at_a_small_train_split(capsys, drop_last):
    """3 training shapes and batch_size=16: batches of 3 with one notice, so max_steps steps really run."""
    from gen3d.data.datamodules import PointCloudDataModule

    dm = PointCloudDataModule(None, **{**KW, "classes": "mug", "batch_size": 16, "drop_last": drop_last})
    model = _tiny_module()("points")
    _steps_trainer(5).fit(model, datamodule=dm)
    train = [s for s in model.seen if s == (3, 128, 3)]
    assert len(train) == 5 and len(dm.dataset("train")) == 3
    err = capsys.readouterr().err
    assert (
        err.count("the train split has 3 shapes per device, fewer than batch_size=16; training with batches of 3") == 1
    )


def test_empty_val_split_skips_validation(tmp_path, capsys):
    from gen3d.data.datamodules import PointCloudDataModule

    shapes.build_dataset(tmp_path / "d", "mug", per_class=4, points=600, split=(1.0, 0.0, 0.0))
    kw = {k: v for k, v in KW.items() if k not in ("per_class", "points", "classes")}
    dm = PointCloudDataModule(tmp_path / "d", "mug", **kw)
    model = _tiny_module()("points")
    trainer = _steps_trainer(3)
    trainer.fit(model, datamodule=dm)
    assert trainer.global_step == 3 and model.seen == [(4, 128, 3)] * 3  # no validation batch
    assert dm.val_dataloader() == [] and dm.test_dataloader() == []
    assert capsys.readouterr().err.count("the val split holds no shapes; validation is skipped") == 1
    import shutil

    shutil.rmtree(tmp_path / "d" / "mug" / "val")  # a missing val folder (e.g. ModelNet's train/test) is empty too
    assert PointCloudDataModule(tmp_path / "d", "mug", **kw).split_size("val") == 0


def test_a_mesh_folder_as_root_suggests_import(tmp_path):
    import trimesh

    from gen3d.data.datamodules import PointCloudDataModule
    from gen3d.errors import InputError

    trimesh.creation.box().export(tmp_path / "a.stl")
    with pytest.raises(InputError, match="gen3d data import"):
        PointCloudDataModule(tmp_path, batch_size=2).setup("fit")
