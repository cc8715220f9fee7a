"""``gen3d train lion`` end to end: both stages, exact resume (with the whole metrics history), extending the VAE
under a trained prior, and two DDP processes (gloo on CPU)."""

from __future__ import annotations

import csv
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml
from PIL import Image

pytestmark = pytest.mark.slow


@pytest.fixture
def tiny_preset(tmp_path, tiny_config, data_args) -> Path:
    preset = {
        "seed_everything": 0,
        "trainer": {
            "accelerator": "cpu",
            "devices": 1,
            "max_steps": 4,
            "check_val_every_n_epoch": 1,
            "log_every_n_steps": 1,
            "num_sanity_val_steps": 0,
            "limit_val_batches": 1,
        },
        "model": {"config": tiny_config, "val_samples": 4, "val_steps": 3, "ema_decay": 0.9},
        "data": data_args,
        "stages": {"vae": {"model": {"lr": 1e-3}}, "prior": {"trainer": {"max_steps": 3}, "model": {"lr": 2e-4}}},
    }
    path = tmp_path / "tiny.yaml"
    path.write_text(yaml.safe_dump(preset))
    return path


def gen3d(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = dict(os.environ, OMP_NUM_THREADS="1", GEN3D_QUIET="1", PYTHONWARNINGS="ignore")
    return subprocess.run(
        [sys.executable, "-m", "gen3d.cli.main", *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=600
    )


def train_lion(preset: Path, out: Path, name: str, *extra: str) -> subprocess.CompletedProcess:
    """``gen3d train lion`` with ``preset``, run ``name`` under ``out`` (working folder: ``out``'s parent)."""
    args = [
        "--config",
        str(preset),
        "--name",
        name,
        "--out",
        str(out),
        *extra,
        "--trainer.enable_progress_bar",
        "false",
    ]
    return gen3d("train", "lion", *args, cwd=out.parent)


def weights(path: Path) -> dict[str, torch.Tensor]:
    return torch.load(path, map_location="cpu", weights_only=True)["state_dict"]


def test_train_both_stages_then_sample(tmp_path, tiny_preset):
    r = train_lion(tiny_preset, tmp_path / "runs", "run")
    assert r.returncode == 0, r.stderr[-3000:]
    root = tmp_path / "runs" / "run"
    for stage, steps in (("vae", 4), ("prior", 3)):
        ckpt = torch.load(root / stage / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=True)
        assert ckpt["global_step"] == steps and ckpt["hyper_parameters"]["stage"] == stage
        assert (root / stage / "csv" / "metrics.csv").is_file()
        assert any((root / stage / "tb").glob("events.out.tfevents.*"))
        assert any((root / stage / "samples").glob("step_*.png"))
        config = yaml.safe_load((root / stage / "config.yaml").read_text())  # the resolved config, in the stage
        assert config["model"]["stage"] == stage and config["trainer"]["max_steps"] == steps
        assert not (root / stage / "tb" / "config.yaml").exists()
        with Image.open(root / stage / "loss.png") as im:
            im.verify()
    # stage two started from stage one's VAE (EMA weights) and left it unchanged
    vae, prior = (
        weights(root / "vae" / "checkpoints" / "last.ckpt"),
        weights(root / "prior" / "checkpoints" / "last.ckpt"),
    )
    from gen3d.inference.lion import load_lion

    vae_net = load_lion(root / "vae" / "checkpoints" / "last.ckpt").net.vae.state_dict()
    for k, v in vae_net.items():
        assert torch.equal(prior[f"net.vae.{k}"], v), k
    assert not torch.equal(vae["net.vae.decoder.out.weight"], vae_net["decoder.out.weight"])  # EMA != raw weights
    out = tmp_path / "samples"
    ckpt = root / "prior" / "checkpoints" / "last.ckpt"
    r = gen3d("sample", "--ckpt", str(ckpt), "--n", "2", "--steps", "3", "--out", str(out), cwd=tmp_path)
    assert r.returncode == 0, r.stderr[-2000:]
    assert (out / "samples.npz").is_file() and len(list((out / "ply").glob("*.ply"))) == 2


def test_resume_is_exact(tmp_path, tiny_preset):
    runs = tmp_path / "runs"
    # 10 procedural shapes per class -> 8 train shapes, batch 4: 2 steps per epoch; validation every epoch.
    # The KL schedule is pinned to 6 steps (by default it follows max_steps, which differs between the runs).
    vae = ("--stage", "vae", "--model.kl_anneal_steps", "6")
    for name, steps, resume in (("full", 6, ()), ("cut", 4, ()), ("cut", 6, ("--resume",))):
        r = train_lion(tiny_preset, runs, name, *vae, "--trainer.max_steps", str(steps), *resume)
        assert r.returncode == 0, r.stderr[-3000:]
    a = weights(runs / "full" / "vae" / "checkpoints" / "last.ckpt")
    b = weights(runs / "cut" / "vae" / "checkpoints" / "last.ckpt")
    assert a.keys() == b.keys()
    diff = [k for k in a if not torch.equal(a[k], b[k])]
    assert not diff, diff[:5]
    # the resumed run's metrics.csv holds both runs' rows, at the same steps: the uninterrupted run's history
    full, cut = (metrics(runs / name / "vae") for name in ("full", "cut"))
    assert {int(r["step"]) for r in cut} == set(range(6))
    assert cut == full
    assert len(list((runs / "cut" / "vae" / "tb").glob("events.out.tfevents.*"))) == 2  # both runs for TensorBoard


def metrics(stage_dir: Path) -> list[dict[str, str]]:
    with open(stage_dir / "csv" / "metrics.csv", newline="") as f:
        return list(csv.DictReader(f))


def test_extending_the_vae_keeps_its_history_and_flags_the_prior(tmp_path, tiny_preset):
    runs = tmp_path / "runs"
    r = train_lion(tiny_preset, runs, "x", "--vae-steps", "3", "--prior-steps", "2", "--trainer.max_steps", "5")
    assert r.returncode == 0, r.stderr[-3000:]
    assert "note:" not in r.stderr
    for stage, steps in (("vae", 3), ("prior", 2)):  # the stage options win over --trainer.max_steps
        assert torch.load(runs / "x" / stage / "checkpoints" / "last.ckpt", weights_only=True)["global_step"] == steps
    r = train_lion(tiny_preset, runs, "x", "--stage", "vae", "--resume", "--vae-steps", "6")
    assert r.returncode == 0, r.stderr[-3000:]
    notes = [line for line in r.stderr.splitlines() if "note:" in line]
    assert len(notes) == 1 and "prior" in notes[0] and "--stage prior --name x" in notes[0], r.stderr[-2000:]
    vae = runs / "x" / "vae"
    assert {int(row["step"]) for row in metrics(vae)} == set(range(6))  # steps 0-2 of the first run, 3-5 of this
    assert yaml.safe_load((vae / "config.yaml").read_text())["trainer"]["max_steps"] == 6
    with Image.open(vae / "loss.png") as im:
        im.verify()


def test_ddp_two_processes(tmp_path, tiny_preset):
    ddp = ("--trainer.devices", "2", "--trainer.strategy", "ddp", "--trainer.accelerator", "cpu")
    r = train_lion(tiny_preset, tmp_path / "runs", "ddp", "--stage", "vae", *ddp, "--trainer.max_steps", "2")
    log = r.stdout + r.stderr
    assert r.returncode == 0, log[-3000:]
    assert "GLOBAL_RANK: 0, MEMBER: 1/2" in log and "GLOBAL_RANK: 1, MEMBER: 2/2" in log
    ckpt = torch.load(
        tmp_path / "runs" / "ddp" / "vae" / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=True
    )
    assert ckpt["global_step"] == 2
