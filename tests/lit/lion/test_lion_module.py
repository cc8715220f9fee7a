"""LionModule: one fast_dev_run per stage, checkpoints that load with weights_only, sampling from them."""

from __future__ import annotations

import pytest
import torch

from gen3d.inference.checkpoint import read_checkpoint
from gen3d.inference.lion import load_lion
from gen3d.lit.lion_module import LionModule


def test_fast_dev_run_both_stages(make_trainer, tmp_path, datamodule, tiny_config):
    vae = LionModule(config=tiny_config, stage="vae", val_samples=4, val_steps=3)
    make_trainer(fast_dev_run=True).fit(vae, datamodule=datamodule)
    ckpt = tmp_path / "vae.ckpt"
    trainer = make_trainer(max_steps=2, limit_val_batches=0, enable_checkpointing=False)
    trainer.fit(vae, datamodule=datamodule)
    trainer.save_checkpoint(ckpt)
    # the normalisation of the data module was recorded for de-normalising samples
    assert torch.allclose(vae.norm_mean, torch.as_tensor(datamodule.norm.mean, dtype=torch.float32))
    prior = LionModule(config=tiny_config, stage="prior", vae_ckpt=str(ckpt), val_samples=4, val_steps=3)
    vae_before = {k: v.clone() for k, v in prior.net.vae.state_dict().items()}
    make_trainer(fast_dev_run=True).fit(prior, datamodule=datamodule)
    # the VAE came from the checkpoint (EMA weights) and stayed frozen
    saved = read_checkpoint(ckpt)["state_dict"]
    assert not all(torch.equal(vae_before[k], prior.net.vae.state_dict()[k]) for k in vae_before)
    assert all(not p.requires_grad for p in prior.net.vae.parameters())
    assert saved["norm_std"].shape == (1,)


def test_checkpoint_loads_with_weights_only_and_samples(make_trainer, tmp_path, datamodule, tiny_config):
    module = LionModule(config=tiny_config, stage="prior", ema_decay=0.9)
    trainer = make_trainer(max_steps=3, limit_val_batches=0, enable_checkpointing=False)
    trainer.fit(module, datamodule=datamodule)
    path = tmp_path / "m.ckpt"
    trainer.save_checkpoint(path)
    raw = torch.load(path, map_location="cpu", weights_only=True)
    assert raw["hyper_parameters"]["config"]["num_points"] == 48
    loaded = load_lion(path)
    assert loaded.stage == "prior"
    torch.testing.assert_close(loaded.mean, module.norm_mean)
    # EMA weights were applied to the priors, raw weights kept for the VAE
    with module.ema_weights():
        expected = {k: v.clone() for k, v in module.net.state_dict().items()}
    for k, v in loaded.net.state_dict().items():
        torch.testing.assert_close(v, expected[k])
    a = loaded.net.sample(2, "ddim", 4, generator=torch.Generator().manual_seed(0))
    b = module.generate(2, "ddim", 4, seed=0)
    torch.testing.assert_close(loaded.denormalize(a), b)


def test_bad_arguments(tiny_config):
    with pytest.raises(ValueError, match="stage"):
        LionModule(config=tiny_config, stage="decoder")
    with pytest.raises(ValueError, match="lr_schedule"):
        LionModule(config=tiny_config, lr_schedule="step")


def test_read_checkpoint_errors(tmp_path):
    from gen3d.errors import InputError

    with pytest.raises(InputError, match="no such file"):
        read_checkpoint(tmp_path / "missing.ckpt")
    bad = tmp_path / "bad.ckpt"
    bad.write_bytes(b"not a checkpoint")
    with pytest.raises(InputError, match="cannot read checkpoint"):
        read_checkpoint(bad)
    torch.save({"a": 1}, tmp_path / "other.ckpt")
    with pytest.raises(InputError, match="not a gen3d Lightning checkpoint"):
        read_checkpoint(tmp_path / "other.ckpt")


def test_pvd_module_trains_and_samples(make_trainer, tmp_path, datamodule, tiny_config):
    from gen3d.lit.lion_module import PVDModule

    module = PVDModule(config=tiny_config, val_samples=4, val_steps=3)
    trainer = make_trainer(max_steps=2, limit_val_batches=1, enable_checkpointing=False)
    trainer.fit(module, datamodule=datamodule)
    path = tmp_path / "pvd.ckpt"
    trainer.save_checkpoint(path)
    loaded = load_lion(path)
    assert loaded.stage == "pvd"
    a = loaded.denormalize(loaded.net.sample(2, "dpm", 4, generator=torch.Generator().manual_seed(0)))
    torch.testing.assert_close(a, module.generate(2, "dpm", 4, seed=0))
    assert a.shape == (2, 48, 3)
    with pytest.raises(ValueError, match="no shape code"):
        module.generate(2, "dpm", 4, seed=0, code_temperature=1.3)


def test_prior_stage_standardizes_latents(make_trainer, tmp_path, datamodule, tiny_config):
    cfg = dict(tiny_config, standardize_latents=True)
    module = LionModule(config=cfg, stage="prior", cache_latents=True)
    make_trainer(max_steps=2, limit_val_batches=0, enable_checkpointing=False).fit(module, datamodule=datamodule)
    assert not torch.equal(module.net.glb_std, torch.ones_like(module.net.glb_std))
    # every training shape's posterior was cached once (8 train shapes)
    assert len(module._latent_cache) == len(datamodule.dataset("train"))
    z_g, h = module.cached_latents(next(iter(datamodule.train_dataloader())))
    zs, hs = module.net.standardize(z_g, h)
    assert zs.abs().mean() < 5 and hs.abs().mean() < 5


@pytest.mark.parametrize("stage", ["vae", "prior"])
def test_sample_callback_logs_metrics_and_writes_grid(make_trainer, tmp_path, data_args, tiny_config, stage):
    from lightning.pytorch.loggers import CSVLogger

    from gen3d.data.datamodules import PointCloudDataModule
    from gen3d.lit.callbacks import PointCloudSampleCallback

    dm = PointCloudDataModule(**dict(data_args, per_class=30))  # 3 val shapes
    module = LionModule(config=tiny_config, stage=stage, val_samples=3, val_sampler="ddim", val_steps=3)
    trainer = make_trainer(
        max_steps=2,
        limit_val_batches=1,
        num_sanity_val_steps=0,
        val_check_interval=2,
        logger=CSVLogger(str(tmp_path), name="csv", version=""),
        callbacks=[PointCloudSampleCallback()],
        enable_checkpointing=False,
    )
    trainer.fit(module, datamodule=dm)
    prefix = "val/rec_" if stage == "vae" else "val/"
    for key in ("1-NNA-CD", "COV-CD", "MMD-CD"):
        value = float(trainer.callback_metrics[prefix + key])
        assert value == value  # finite, logged
    assert 0.0 <= float(trainer.callback_metrics[prefix + "1-NNA-CD"]) <= 100.0
    assert 0.0 <= float(trainer.callback_metrics[prefix + "JSD"]) <= 1.0  # the divergence itself, not x 100
    grids = sorted((tmp_path / "samples").glob("step_*.png"))
    assert grids and grids[-1].stat().st_size > 0
