"""GRAF training with Lightning: a few steps on tiny rendered images, checkpoint round trip, resume."""

from __future__ import annotations

from pathlib import Path

import lightning.pytorch as pl
import pytest
import torch

from gen3d.errors import InputError
from gen3d.lit.graf_module import AtomicCheckpointIO, GRAFDataModule, GRAFModule, load_graf_module

TINY = dict(
    z_dim=8, z_app_dim=4, net_depth=2, net_width=16, skips=(), pos_freqs=2, dir_freqs=1, image_size=16, patch_size=8,
    n_samples=4, n_importance=4, ndf=4, sample_every=2, n_grid=2, noise_steps=10,
)  # fmt: skip


def _trainer(tmp_path, steps: int) -> pl.Trainer:
    return pl.Trainer(
        default_root_dir=tmp_path / "run",
        max_steps=2 * steps,  # manual optimisation: two optimiser steps per iteration
        accelerator="cpu",
        logger=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        plugins=[AtomicCheckpointIO()],
        callbacks=[pl.callbacks.ModelCheckpoint(dirpath=tmp_path / "ckpt", save_last=True)],
    )


def test_graf_training_smoke_and_resume(tmp_path):
    data = GRAFDataModule(
        str(tmp_path / "imgs"), "shapes", 16, batch_size=4, num_workers=0, classes="mug,chair", per_class=2, views=2
    )
    model = GRAFModule(**TINY)
    ema0 = [p.detach().clone() for p in model.generator_ema.parameters()]
    trainer = _trainer(tmp_path, 2)
    trainer.fit(model, datamodule=data)
    assert len(list((tmp_path / "imgs").glob("*.png"))) == 8  # rendered on demand
    assert int(model.iteration) == 2
    # Both networks and the moving average moved.
    assert any(not torch.equal(a, b) for a, b in zip(ema0, model.generator_ema.parameters(), strict=True))
    assert all(torch.isfinite(p).all() for p in model.parameters())
    assert (tmp_path / "run" / "samples" / "it_0000002.png").exists()
    ckpt = tmp_path / "ckpt" / "last.ckpt"
    back = load_graf_module(ckpt)
    for (n, a), b in zip(model.state_dict().items(), back.state_dict().values(), strict=True):
        assert torch.equal(a, b), n
    # Resume: the iteration counter and optimiser states continue.
    model2 = GRAFModule(**TINY)
    _trainer(tmp_path, 3).fit(model2, datamodule=data, ckpt_path=ckpt, weights_only=True)
    assert int(model2.iteration) == 3


def test_load_graf_module_rejects_bad_files(tmp_path):
    with pytest.raises(InputError):
        load_graf_module(tmp_path / "missing.ckpt")
    bad = tmp_path / "bad.ckpt"
    bad.write_bytes(b"not a checkpoint")
    with pytest.raises(InputError):
        load_graf_module(bad)
    torch.save({"state_dict": {}, "hyper_parameters": {"no_such_arg": 1}}, tmp_path / "other.ckpt")
    with pytest.raises(InputError):
        load_graf_module(tmp_path / "other.ckpt")


def test_annealing_schedules():
    m = GRAFModule(**TINY, min_scale=0.25, scale_anneal=0.0025, noise_std=1.0)
    assert m.current_min_scale() == 0.9 and m.current_noise_std() == 1.0
    m.iteration.fill_(5)
    assert m.current_noise_std() == pytest.approx(0.5)
    m.iteration.fill_(200_000)
    assert m.current_min_scale() == 0.25 and m.current_noise_std() == 0.0


@pytest.mark.parametrize("name", ["graf_shapes", "graf_carla", "graf_celeba", "pigan_celeba"])
def test_shipped_configs_build(name, tmp_path):
    """Every preset parses with LightningCLI (data.image_size linked to the model) and builds its networks."""
    import gen3d
    from gen3d.lit.graf_module import main

    config = Path(gen3d.__file__).parent / "configs" / f"{name}.yaml"
    cli = main(
        ["--config", str(config), "--trainer.logger", "false", "--trainer.default_root_dir", str(tmp_path)], run=False
    )
    model, data = cli.model, cli.datamodule
    assert model.generator.image_size == data.hparams.image_size
    assert any(type(c).__name__ == "ModelCheckpoint" for c in cli.trainer.callbacks)
    assert model.discriminator.patch_size == model.hparams.patch_size
    z = model.generator.field.sample_z(1)
    with torch.no_grad():
        sigma, rgb = model.generator.field(torch.zeros(1, 2, 3), torch.tensor([[[0.0, 0.0, -1.0]] * 2]), z)
    assert sigma.shape == (1, 2) and rgb.shape == (1, 2, 3)
    if name == "graf_carla":  # GRAF's paper settings
        hp = model.hparams
        assert (hp.z_dim, hp.net_depth, hp.net_width, hp.patch_size, hp.n_samples) == (256, 8, 256, 32, 64)
        assert (hp.radius, hp.near, hp.far, hp.fov, hp.r1_gamma) == (10.0, 7.5, 12.5, 30.0, 20.0)
