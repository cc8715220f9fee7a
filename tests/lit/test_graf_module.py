"""GRAF training with Lightning: a few steps on tiny rendered images, checkpoint round trip, resume."""

from __future__ import annotations

from pathlib import Path

import lightning.pytorch as pl
import numpy as np
import pytest
import torch

from gen3d.data.datamodules import GRAFDataModule
from gen3d.errors import InputError
from gen3d.inference.graf import load_graf_generator
from gen3d.lit.callbacks import AtomicCheckpointIO
from gen3d.lit.graf_module import GRAFModule
from tests.conftest import TINY_GRAF as TINY
from tests.conftest import TINY_TRIPLANE


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
    for ema in (True, False):  # both generators come back exactly, without the training module
        back, hp = load_graf_generator(ckpt, ema=ema)
        trained = model.generator_ema if ema else model.generator
        for (n, a), b in zip(trained.state_dict().items(), back.state_dict().values(), strict=True):
            assert torch.equal(a, b), n
        assert hp["z_dim"] == TINY["z_dim"]
    # Resume: the iteration counter and optimiser states continue.
    model2 = GRAFModule(**TINY)
    _trainer(tmp_path, 3).fit(model2, datamodule=data, ckpt_path=ckpt, weights_only=True)
    assert int(model2.iteration) == 3


def test_triplane_marched_training_and_its_checkpoint_in_every_consumer(tmp_path):
    """A triplane field trained through the marched sampler: the checkpoint loads, renders, samples, meshes and
    serves the viewer's field source like GRAF's."""
    from gen3d.inference.graf import GrafFieldSource
    from gen3d.pipelines.sample import sample_graf_to_files

    data = GRAFDataModule(
        str(tmp_path / "imgs"), "shapes", 16, batch_size=4, num_workers=0, classes="mug,chair", per_class=2, views=2
    )
    model = GRAFModule(**TINY_TRIPLANE)
    planes0 = model.generator.field.condition(torch.zeros(1, 8))[0].detach().clone()
    _trainer(tmp_path, 2).fit(model, datamodule=data)
    assert int(model.iteration) == 2
    assert not torch.equal(planes0, model.generator.field.condition(torch.zeros(1, 8))[0])  # the planes learned
    gen, hp = load_graf_generator(tmp_path / "ckpt" / "last.ckpt")
    assert hp["field"] == "triplane" and gen.sampler == "marched" and gen.scene_bound == pytest.approx(0.6)
    c2w = gen.pose_at(0.2, 0.3)
    with torch.no_grad():
        img = gen.render(gen.field.sample_z(1), c2w, size=12)["rgb"]
    assert img.shape == (1, 3, 12, 12) and torch.isfinite(img).all()
    source = GrafFieldSource(gen)
    assert source.render(c2w[0].numpy(), 8, 8).shape == (8, 8, 3)
    assert source.density(torch.zeros(5, 3)).shape == (5,)
    sample_graf_to_files(
        tmp_path / "ckpt" / "last.ckpt", tmp_path / "samples", n=2, size=16, frames=2, mesh_resolution=16
    )
    assert len(list((tmp_path / "samples" / "images").glob("*.png"))) == 2


def test_load_graf_generator_rejects_bad_files(tmp_path):
    with pytest.raises(InputError):
        load_graf_generator(tmp_path / "missing.ckpt")
    bad = tmp_path / "bad.ckpt"
    bad.write_bytes(b"not a checkpoint")
    with pytest.raises(InputError):
        load_graf_generator(bad)
    torch.save({"state_dict": {}, "hyper_parameters": {"no_such_arg": 1}}, tmp_path / "other.ckpt")
    with pytest.raises(InputError, match="not a GRAF checkpoint"):
        load_graf_generator(tmp_path / "other.ckpt")
    state = {"generator_ema.x": torch.zeros(1)}
    torch.save({"state_dict": state, "hyper_parameters": {"field": "graf"}}, tmp_path / "partial.ckpt")
    with pytest.raises(InputError, match="not a GRAF checkpoint"):
        load_graf_generator(tmp_path / "partial.ckpt")


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
    from lightning.pytorch.cli import LightningCLI

    import gen3d

    config = Path(gen3d.__file__).parent / "configs" / f"{name}.yaml"
    argv = ["--config", str(config), "--trainer.logger", "false", "--trainer.default_root_dir", str(tmp_path)]
    cli = LightningCLI(GRAFModule, GRAFDataModule, args=argv, run=False, parser_kwargs={"default_env": False})
    model, data = cli.model, cli.datamodule
    assert model.generator.image_size == data.hparams.image_size
    assert model.discriminator.patch_size == model.hparams.patch_size
    z = model.generator.field.sample_z(1)
    with torch.no_grad():
        sigma, rgb = model.generator.field(torch.zeros(1, 2, 3), torch.tensor([[[0.0, 0.0, -1.0]] * 2]), z)
    assert sigma.shape == (1, 2) and rgb.shape == (1, 2, 3)
    if name == "graf_carla":  # GRAF's paper settings
        hp = model.hparams
        assert (hp.z_dim, hp.net_depth, hp.net_width, hp.patch_size, hp.n_samples) == (256, 8, 256, 32, 64)
        assert (hp.radius, hp.near, hp.far, hp.fov, hp.r1_gamma) == (10.0, 7.5, 12.5, 30.0, 20.0)


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_graf_trains_on_gpu_and_renders_alike_on_cpu(tmp_path):
    """Lightning on ``accelerator="gpu"``; the trained generator renders the same images on CUDA as on the CPU,
    densely and through the occupancy-grid path (the CUDA ray-marching and compositing kernels)."""
    from PIL import Image

    from gen3d.models.graf.fast import build_occupancy_grid, render_fast
    from gen3d.pipelines.sample import sample_graf_to_files

    # A folder of small images written here (the procedural renders need open3d, which a GPU image may lack).
    rng = np.random.default_rng(0)
    (tmp_path / "imgs").mkdir()
    yy, xx = np.mgrid[:16, :16]
    for i in range(8):
        disc = (yy - 8 - rng.normal()) ** 2 + (xx - 8 - rng.normal()) ** 2 < rng.uniform(9, 36)
        img = np.where(disc[..., None], rng.integers(0, 255, 3), 255).astype(np.uint8)
        Image.fromarray(img).save(tmp_path / "imgs" / f"{i}.png")
    data = GRAFDataModule(str(tmp_path / "imgs"), "folder", 16, batch_size=4, num_workers=0)
    model = GRAFModule(**TINY)
    trainer = pl.Trainer(
        default_root_dir=tmp_path / "run", max_steps=6, accelerator="gpu", devices=1, logger=False,
        enable_progress_bar=False, enable_model_summary=False, enable_checkpointing=False,
    )  # fmt: skip
    trainer.fit(model, datamodule=data)
    assert int(model.iteration) == 3 and trainer.strategy.root_device.type == "cuda"
    assert all(torch.isfinite(p).all() for p in model.parameters())
    trainer.save_checkpoint(tmp_path / "graf.ckpt")

    tf32 = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False
    try:
        gen = load_graf_generator(tmp_path / "graf.ckpt")[0]
        z = gen.field.sample_z(2, generator=torch.Generator().manual_seed(0))
        c2w = gen.sample_poses(2, generator=torch.Generator().manual_seed(1))
        outs = {}
        with torch.no_grad():
            for device in ("cpu", "cuda"):
                gen.to(device)
                dense = gen.render(z.to(device), c2w.to(device), 12)
                grid = build_occupancy_grid(gen, z.to(device), resolution=16, threshold=-1.0)  # every cell occupied
                fast = render_fast(gen, z.to(device), c2w.to(device), grid, 12)
                outs[device] = {k: v.cpu() for k, v in dense.items()}, {k: v.cpu() for k, v in fast.items()}
        for cpu, gpu in zip(outs["cpu"], outs["cuda"], strict=True):
            for key in ("rgb", "opacity", "depth"):
                torch.testing.assert_close(gpu[key], cpu[key], atol=1e-4, rtol=1e-4)
        # `gen3d sample` on a GRAF checkpoint renders on the GPU: the same images as on the CPU.
        a = sample_graf_to_files(tmp_path / "graf.ckpt", tmp_path / "s_cpu", 2, 12, gif=False, mesh=False, device="cpu")
        b = sample_graf_to_files(
            tmp_path / "graf.ckpt", tmp_path / "s_gpu", 2, 12, gif=False, mesh=False, device="cuda"
        )
        for pa, pb in zip(a["images"], b["images"], strict=True):
            diff = np.abs(np.asarray(Image.open(pa), dtype=int) - np.asarray(Image.open(pb), dtype=int))
            assert diff.max() <= 1  # uint8 rounding
    finally:
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = tf32
