"""``gen3d train``'s argument handling and preset merging (no Lightning run)."""

from __future__ import annotations

import argparse
import subprocess
import sys

import pytest
import yaml

from gen3d.cli import train
from gen3d.errors import InputError

PRESETS = ["lion_shapes.yaml", "lion_airplane.yaml", "lion_chair.yaml", "lion_car.yaml", "pvd_shapes.yaml"]


def test_stage_overrides_are_merged(tmp_path):
    src = tmp_path / "p.yaml"
    src.write_text(
        yaml.safe_dump(
            {
                "trainer": {"max_steps": 10, "devices": 1},
                "model": {"lr": 0.1, "config": {"num_points": 64}},
                "stages": {"prior": {"trainer": {"max_steps": 99}, "model": {"config": {"style_dim": 4}}}},
            }
        )
    )
    preset = train.read_preset(src, ("vae", "prior"))
    vae = yaml.safe_load(train.stage_config(preset, "vae", tmp_path / "vae.yaml").read_text())
    prior = yaml.safe_load(train.stage_config(preset, "prior", tmp_path / "prior.yaml").read_text())
    assert "stages" not in vae and vae["trainer"]["max_steps"] == 10
    assert prior["trainer"] == {"max_steps": 99, "devices": 1}
    assert prior["model"] == {"lr": 0.1, "config": {"num_points": 64, "style_dim": 4}}


def test_resolve_config_and_options(tmp_path):
    entry = train.MODELS["lion"]
    assert train.resolve_config(None, entry).name == "lion_shapes.yaml"
    assert train.resolve_config("lion_chair.yaml", entry).is_file()
    with pytest.raises(InputError, match="no such config"):
        train.resolve_config(tmp_path / "missing.yaml", entry)
    args = argparse.Namespace(
        model="lion",
        config=None,
        name=None,
        out="runs",
        stage="all",
        resume=False,
        lightning_args=["--stage", "vae", "--trainer.max_steps", "5", "--name", "x", "--resume", "--model.lr=1"],
    )
    extra = train._own_options(args)
    assert (args.stage, args.name, args.resume) == ("vae", "x", True)
    assert extra == ["--trainer.max_steps", "5", "--model.lr=1"]


def test_ckpt_path_needs_one_stage(tmp_path):
    args = argparse.Namespace(
        model="lion", config=None, name="r", out=str(tmp_path), stage="all", resume=False,
        lightning_args=["--ckpt_path", "x.ckpt"],
    )  # fmt: skip
    with pytest.raises(InputError, match="--ckpt_path resumes one stage"):
        train.run(args)
    args.lightning_args, args.stage = [], "prior"
    with pytest.raises(InputError, match="previous stage's checkpoint"):
        train.run(args)


def test_presets_are_plain_yaml_with_stages():
    for name in PRESETS:
        data = yaml.safe_load((train.CONFIG_DIR / name).read_text())
        assert {"trainer", "model", "data"} <= set(data), name
        if name.startswith("lion"):
            assert set(data["stages"]) == {"vae", "prior"}, name


@pytest.mark.slow
@pytest.mark.parametrize("name", PRESETS)
def test_presets_parse_with_lightning_cli(tmp_path, name):
    model = "pvd" if name.startswith("pvd") else "lion"
    stage = [] if model == "pvd" else ["--stage", "prior", "--model.vae_ckpt", "none.ckpt"]
    cmd = [sys.executable, "-m", "gen3d.cli.main", "train", model, "--config", name, "--out", str(tmp_path), *stage]
    r = subprocess.run([*cmd, "--print_config"], capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert r.returncode == 0, r.stderr[-2000:]
    printed = yaml.safe_load(r.stdout)
    assert printed["model"]["config"]["num_points"] in (512, 2048)
