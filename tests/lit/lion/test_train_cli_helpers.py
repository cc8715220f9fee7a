"""``gen3d train``'s argument handling and preset merging (no Lightning run)."""

from __future__ import annotations

import argparse

import pytest
import yaml

from gen3d.cli import train
from gen3d.errors import InputError

PRESETS = [
    "lion_shapes.yaml",
    "lion_airplane.yaml",
    "lion_chair.yaml",
    "lion_car.yaml",
    "pvd_shapes.yaml",
    "flow_shapes.yaml",
    "flow_shapenet.yaml",
]


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


@pytest.mark.parametrize("name", PRESETS)
def test_presets_parse_with_lightning_cli(tmp_path, monkeypatch, capsys, name):
    from gen3d.cli.main import main

    monkeypatch.chdir(tmp_path)  # presets are found by name from any folder
    model = name.split("_")[0]
    stage = ["--stage", "prior", "--model.vae_ckpt", "none.ckpt"] if model == "lion" else []
    with pytest.raises(SystemExit) as info:  # LightningCLI prints the merged config and exits
        main(["train", model, "--config", name, "--out", str(tmp_path / "runs"), *stage, "--print_config"])
    assert info.value.code == 0, capsys.readouterr().err[-2000:]
    printed = yaml.safe_load(capsys.readouterr().out)
    assert printed["model"]["config"]["num_points"] in (512, 2048)
    assert not (tmp_path / "runs").exists()  # printing the config writes nothing


def _args(tmp_path, *lightning_args, **kw):
    base = dict(model="lion", config=None, name="r", out=str(tmp_path / "runs"), stage="all", resume=False)
    return argparse.Namespace(**{**base, **kw, "lightning_args": list(lightning_args)})


def test_config_by_preset_name_from_any_folder(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    entry = train.MODELS["lion"]
    assert train.resolve_config("lion_shapes", entry) == train.CONFIG_DIR / "lion_shapes.yaml"
    assert train.resolve_config("lion_shapes.yaml", entry) == train.CONFIG_DIR / "lion_shapes.yaml"
    (tmp_path / "lion_shapes").write_text("trainer: {}\n")  # a file of that name in the working folder comes first
    assert train.resolve_config("lion_shapes", entry) == train.Path("lion_shapes")
    with pytest.raises(InputError, match="no such config"):
        train.resolve_config("lion_nothing", entry)


def test_stage_step_options(tmp_path):
    args = _args(tmp_path, "--trainer.max_steps", "9", "--vae-steps", "5", "--prior-steps=7", "--model.lr=1")
    extra = train._own_options(args)
    assert extra == ["--trainer.max_steps", "9", "--model.lr=1"]
    steps = train._stage_steps(args, train.MODELS["lion"])
    assert steps == {"vae": 5, "prior": 7}
    # the stage's count comes last, so it wins over --trainer.max_steps; stages without one keep the user's flags
    assert train._with_steps(extra, steps, "vae")[-1] == "--trainer.max_steps=5"
    assert train._with_steps(extra, {"prior": 7}, "vae") == extra
    with pytest.raises(SystemExit):
        train._own_options(_args(tmp_path, "--vae-steps", "0"))
    pvd = _args(tmp_path, "--vae-steps", "5", model="pvd")
    train._own_options(pvd)
    with pytest.raises(InputError, match="--vae-steps does not apply to pvd"):
        train._stage_steps(pvd, train.MODELS["pvd"])


def test_train_help_lists_the_stage_step_options(capsys):
    from gen3d.cli.main import main

    assert main(["train", "--help"]) == 0
    text = " ".join(capsys.readouterr().out.split())
    assert "--vae-steps N" in text and "--prior-steps N" in text and "--trainer.max_steps N gives each stage" in text


@pytest.mark.parametrize("flag", ["--help", "--print_config"])
def test_help_and_print_config_write_nothing(tmp_path, monkeypatch, capsys, flag):
    monkeypatch.chdir(tmp_path)
    args = _args(tmp_path, flag, "--vae-steps", "7", config="lion_shapes", stage="vae")
    with pytest.raises(SystemExit) as exc:
        train.run(args)
    assert exc.value.code in (0, None)
    assert list(tmp_path.iterdir()) == []  # no run folder under --out, nothing in the working folder
    out = capsys.readouterr().out
    assert ("max_steps: 7" in out) if flag == "--print_config" else ("--trainer.max_steps" in out)
