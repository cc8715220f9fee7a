"""LION and PVD on a GPU: both stages train with Lightning's ``accelerator="gpu"``, the validation callback samples
and scores there, and a checkpoint trained on the GPU samples the same shapes on CUDA as on the CPU."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from gen3d.inference.lion import load_lion
from gen3d.lit.lion_module import LionModule, PVDModule, batch_points
from gen3d.pipelines.sample import sample_lion

pytestmark = [
    pytest.mark.cuda,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU"),
]


@pytest.fixture
def exact_float32():
    """No TF32 in matrix products and convolutions, so that CUDA and CPU agree to float32 rounding."""
    before = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    yield
    torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = before


@pytest.fixture
def gpu_trainer(make_trainer):
    """Trainers on one GPU without checkpoint callbacks."""
    return lambda **kw: make_trainer(accelerator="gpu", enable_checkpointing=False, **kw)


def test_both_stages_train_on_gpu_and_sample_alike_on_cpu(tmp_path, data_args, tiny_config, exact_float32, gpu_trainer):
    from gen3d.data.datamodules import PointCloudDataModule
    from gen3d.lit.callbacks import PointCloudSampleCallback

    datamodule = PointCloudDataModule(**dict(data_args, per_class=30))  # 3 val shapes for the sample metrics
    vae = LionModule(config=tiny_config, stage="vae", val_samples=3, val_sampler="ddim", val_steps=3)
    gpu_trainer(fast_dev_run=True).fit(vae, datamodule=datamodule)
    trainer = gpu_trainer(max_steps=3, limit_val_batches=0)
    trainer.fit(vae, datamodule=datamodule)
    assert trainer.strategy.root_device.type == "cuda"  # (Lightning moves the module back to the CPU after fit)
    trainer.save_checkpoint(tmp_path / "vae.ckpt")

    cfg = dict(tiny_config, standardize_latents=True)
    prior = LionModule(
        config=cfg, stage="prior", vae_ckpt=str(tmp_path / "vae.ckpt"), cache_latents=True, val_samples=3,
        val_sampler="dpm-sde", val_steps=4,
    )  # fmt: skip
    trainer = gpu_trainer(
        max_steps=4,
        limit_val_batches=1,
        num_sanity_val_steps=0,
        val_check_interval=2,
        callbacks=[PointCloudSampleCallback()],
    )
    trainer.fit(prior, datamodule=datamodule)
    assert all(torch.isfinite(p).all() for p in prior.parameters())
    for key in ("1-NNA-CD", "COV-CD", "MMD-CD"):
        assert np.isfinite(float(trainer.callback_metrics["val/" + key]))
    assert sorted((tmp_path / "samples").glob("step_*.png"))
    trainer.save_checkpoint(tmp_path / "prior.ckpt")

    # A checkpoint written on the GPU loads on the CPU; sampling on CUDA gives the CPU's shapes (same noise).
    for sampler, steps in (("ddim", 6), ("dpm-sde", 6)):
        cpu, _ = sample_lion(str(tmp_path / "prior.ckpt"), 3, sampler, steps, seed=3, progress=False, device="cpu")
        gpu, _ = sample_lion(str(tmp_path / "prior.ckpt"), 3, sampler, steps, seed=3, progress=False, device="cuda")
        assert np.isfinite(gpu).all() and gpu.shape == cpu.shape == (3, 48, 3)
        np.testing.assert_allclose(gpu, cpu, rtol=1e-3, atol=1e-3 * float(np.abs(cpu).max()))


def test_prior_losses_match_between_cpu_and_cuda(datamodule, tiny_config, exact_float32):
    """The same weights, clouds, latents and noise give the same losses of both priors on the two devices."""
    net = LionModule(config=tiny_config, stage="prior").net.eval()
    x = batch_points(next(iter(datamodule.train_dataloader())))
    latents = net.encode_latents(x)  # posterior samples, drawn once on the CPU
    losses = []
    for device in ("cpu", "cuda"):
        net.to(device)
        on_device = tuple(t.to(device) for t in latents)
        loss_g, loss_l = net.prior_losses(x.to(device), generator=torch.Generator().manual_seed(5), latents=on_device)
        losses.append((loss_g.item(), loss_l.item()))
    assert losses[1] == pytest.approx(losses[0], rel=1e-4)


def test_pvd_trains_on_gpu(tmp_path, datamodule, tiny_config, gpu_trainer):
    module = PVDModule(config=tiny_config, val_samples=3, val_steps=3)
    trainer = gpu_trainer(max_steps=3, limit_val_batches=1)
    trainer.fit(module, datamodule=datamodule)
    trainer.save_checkpoint(tmp_path / "pvd.ckpt")
    loaded = load_lion(tmp_path / "pvd.ckpt")
    x = loaded.net.to("cuda").sample(2, "dpm", 4, generator=torch.Generator().manual_seed(0))
    assert x.device.type == "cuda" and x.shape == (2, 48, 3) and torch.isfinite(x).all()
