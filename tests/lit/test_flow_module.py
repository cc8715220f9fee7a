"""The point flow's LightningModule: a short fit with validation, the checkpoint (family, loading, sampling), and
``gen3d train flow`` (with an exact resume) / ``gen3d sample`` / ``gen3d evaluate nll`` from the command line."""

from __future__ import annotations

import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from gen3d.data.datamodules import PointCloudDataModule
from gen3d.inference.checkpoint import check_resumable, checkpoint_kind, is_flow_checkpoint, is_lion_checkpoint
from gen3d.inference.flow import FlowSampleSource, load_flow
from gen3d.lit.flow_module import FlowModule
from tests.conftest import TINY_FLOW

FLOW_DATA = {
    "root": "procedural",
    "classes": ["mug"],
    "per_class": 10,
    "points": 150,
    "tr_sample_size": 48,
    "te_sample_size": 48,
    "batch_size": 4,
    "num_workers": 0,
}


def fit(make_trainer, steps: int, ckpt_path: str | None = None, **trainer_kw) -> tuple[FlowModule, object]:
    torch.manual_seed(0)  # the same initial weights in every run
    module = FlowModule(config=dict(TINY_FLOW), ema_decay=0.9, val_samples=4, seed=3)
    trainer = make_trainer(**{"max_steps": steps, "limit_val_batches": 1, "num_sanity_val_steps": 0, **trainer_kw})
    trainer.fit(module, datamodule=PointCloudDataModule(**FLOW_DATA), ckpt_path=ckpt_path)
    return module, trainer


def test_fit_validates_and_writes_a_loadable_checkpoint(make_trainer, tmp_path):
    module, trainer = fit(make_trainer, 3, check_val_every_n_epoch=1)
    logged = trainer.callback_metrics
    for key in ("train/loss", "val/loss", "val/nll_bits_per_point", "val/nelbo_bits_per_point"):
        assert key in logged and torch.isfinite(logged[key]), key
    assert float(module.norm_std) != 1.0  # the datamodule's statistics were recorded
    path = tmp_path / "flow.ckpt"
    trainer.save_checkpoint(path)
    ckpt = torch.load(path, map_location="cpu", weights_only=True)
    assert ckpt["gen3d"] == {"model": "flow", "stage": "flow"}
    assert is_flow_checkpoint(ckpt) and not is_lion_checkpoint(ckpt) and checkpoint_kind(ckpt) == ("flow", "flow")
    assert check_resumable(path, "flow")["global_step"] == 3
    loaded = load_flow(path)
    assert torch.equal(loaded.mean, module.norm_mean) and torch.equal(loaded.std, module.norm_std)
    # the module's generate (EMA weights) and the viewer's source draw the same clouds for a seed
    expected = module.generate(2, seed=5).numpy()
    source = FlowSampleSource(loaded)
    np.testing.assert_allclose(source.sample(5, 2), expected, atol=1e-5)
    assert source.interpolate(1, 2, 0.3).shape == (48, 3)
    assert FlowSampleSource(loaded, num_points=7).sample(0, 3).shape == (3, 7, 3)


def test_bad_settings_are_refused():
    with pytest.raises(ValueError, match="lr_schedule"):
        FlowModule(config=dict(TINY_FLOW), lr_schedule="step")
    with pytest.raises(ValueError, match="unknown flow config keys"):
        FlowModule(config={**TINY_FLOW, "depth": 3})


def gen3d(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = dict(os.environ, OMP_NUM_THREADS="1", GEN3D_QUIET="1", PYTHONWARNINGS="ignore")
    return subprocess.run(
        [sys.executable, "-m", "gen3d.cli.main", *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=600
    )


@pytest.mark.slow
def test_train_flow_then_sample_and_score_from_the_cli(tmp_path):
    preset = {
        "seed_everything": 0,
        "trainer": {"accelerator": "cpu", "devices": 1, "max_steps": 50, "num_sanity_val_steps": 0,
                    "limit_val_batches": 1, "check_val_every_n_epoch": 1, "log_every_n_steps": 1},
        "model": {"config": TINY_FLOW, "val_samples": 4, "ema_decay": 0.9},
        "data": FLOW_DATA,
    }  # fmt: skip
    (tmp_path / "tiny.yaml").write_text(yaml.safe_dump(preset))
    r = gen3d("train", "flow", "--config", "tiny.yaml", "--name", "run", "--out", "runs", "--trainer.max_steps", "3",
              "--trainer.enable_progress_bar", "false", cwd=tmp_path)  # fmt: skip
    assert r.returncode == 0, r.stderr[-3000:]
    root = tmp_path / "runs" / "run"
    ckpt = root / "checkpoints" / "last.ckpt"
    assert ckpt.is_file() and (root / "config.yaml").is_file() and (root / "csv" / "metrics.csv").is_file()
    assert torch.load(ckpt, map_location="cpu", weights_only=True)["global_step"] == 3
    assert list((root / "samples").glob("*.png"))  # the validation grid of the sampling callback

    # resuming continues exactly: 3 steps = 2 steps, then --resume to 3 (2 steps per epoch: across an epoch)
    for steps, resume in (("2", ()), ("3", ("--resume",))):
        r = gen3d("train", "flow", "--config", "tiny.yaml", "--name", "cut", "--out", "runs", "--trainer.max_steps",
                  steps, "--trainer.enable_progress_bar", "false", *resume, cwd=tmp_path)  # fmt: skip
        assert r.returncode == 0, r.stderr[-3000:]
    a = torch.load(ckpt, map_location="cpu", weights_only=True)["state_dict"]
    b = torch.load(tmp_path / "runs" / "cut" / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=True)
    assert b["global_step"] == 3
    assert [k for k in a if not torch.equal(a[k], b["state_dict"][k])] == []

    r = gen3d("sample", "--ckpt", str(ckpt), "--n", "4", "--points", "500", "--out", "out", cwd=tmp_path)
    assert r.returncode == 0, r.stderr[-3000:]
    out = tmp_path / "out"
    with np.load(out / "samples.npz", allow_pickle=False) as data:
        assert data["points"].shape == (4, 500, 3) and np.isfinite(data["points"]).all()
        assert "meta" in data.files
    assert (out / "sampler.json").is_file() and (out / "samples.png").is_file()
    assert len(list((out / "ply").glob("*.ply"))) == 4

    r = gen3d("sample", "--ckpt", str(ckpt), "--n", "2", "--sampler", "ddim", "--out", "out2", cwd=tmp_path)
    assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1
    assert "--sampler does not apply to a point-flow checkpoint" in r.stderr and not (tmp_path / "out2").exists()

    np.save(tmp_path / "clouds.npy", np.load(out / "samples.npz")["points"])
    r = gen3d("evaluate", "nll", "--ckpt", str(ckpt), "--data", "clouds.npy", "--json", "nll.json", cwd=tmp_path)
    assert r.returncode == 0, r.stderr[-3000:]
    assert "bits/point" in r.stdout and (tmp_path / "nll.json").is_file()


@pytest.mark.parametrize("name", ["flow_shapes", "flow_shapenet"])
def test_shipped_presets_build(name, tmp_path):
    """Both presets parse with LightningCLI and build the module; the ShapeNet one keeps PointFlow's settings."""
    from lightning.pytorch.cli import LightningCLI

    import gen3d

    config = Path(gen3d.__file__).parent / "configs" / f"{name}.yaml"
    argv = ["--config", str(config), "--trainer.logger", "false", "--trainer.default_root_dir", str(tmp_path)]
    cli = LightningCLI(FlowModule, PointCloudDataModule, args=argv, run=False, parser_kwargs={"default_env": False})
    hp, data = cli.model.hparams, cli.datamodule.hparams
    assert cli.model.cfg.num_points == data.tr_sample_size
    if name == "flow_shapenet":
        assert (cli.model.cfg.z_dim, data.batch_size, hp.lr, tuple(hp.betas)) == (128, 16, 2e-3, (0.9, 0.999))
        assert (data.tr_sample_size, data.te_sample_size, hp.lr_schedule) == (2048, 2048, "linear")
    else:  # the data of LION's demo preset
        assert (data.classes, data.per_class, data.tr_sample_size, data.points) == (["chair"], 600, 512, 1536)


def test_linear_schedule_is_pointflows(make_trainer):
    module = FlowModule(config=dict(TINY_FLOW), lr=1.0, lr_schedule="linear")
    trainer = make_trainer(max_steps=100)
    module.trainer = trainer  # configure_optimizers reads max_steps
    sched = module.configure_optimizers()["lr_scheduler"]["scheduler"]
    factors = [sched.lr_lambdas[0](s) for s in (0, 49, 50, 75, 100)]
    assert factors == pytest.approx([1.0, 1.0, 1.0, 0.5, 0.0])


@pytest.mark.parametrize("schedule", ["constant", "cosine", "linear"])
def test_schedules_with_warmup_against_closed_forms(make_trainer, schedule):
    module = FlowModule(config=dict(TINY_FLOW), lr=1.0, lr_schedule=schedule, warmup_steps=10, lr_min_ratio=0.1)
    module.trainer = make_trainer(max_steps=110)
    out = module.configure_optimizers()
    sched = out["lr_scheduler"]["scheduler"]
    assert out["optimizer"].param_groups[0]["lr"] == pytest.approx(0.1)  # step 0 of the warm-up: 1 / 10
    steps = [0, 4, 9, 60, 100, 110]
    warm = [min(1.0, (s + 1) / 10) for s in steps]
    if schedule == "constant":
        expected = warm
    elif schedule == "cosine":  # from 1 at the end of the warm-up down to 0.1 at step 110
        expected = [
            w * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * max(s - 10, 0) / 100)))
            for w, s in zip(warm, steps, strict=True)
        ]
    else:  # constant for the first 55 steps, then linearly to 0 at 110
        expected = [w * min(1.0, max(0.0, 1 - (s - 55) / 55)) for w, s in zip(warm, steps, strict=True)]
    assert [sched.lr_lambdas[0](s) for s in steps] == pytest.approx(expected)
