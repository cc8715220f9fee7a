"""scripts/graf_fields.py: the fields table's recipes build the fields they name, and the table reads the runs."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "graf_fields.py"


@pytest.fixture(scope="module")
def script():
    spec = importlib.util.spec_from_file_location("graf_fields_script", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_each_recipe_builds_its_field_with_the_demo_settings(script):
    from gen3d.lit.graf_module import GRAFModule
    from gen3d.models.graf.field import GRAFField
    from gen3d.models.graf.pigan import PiGANField
    from gen3d.models.graf.triplane import TriplaneField
    from gen3d.models.graf.voxel import VoxelField
    from gen3d.pipelines.graf_demo import load_graf_demo_config

    demo = load_graf_demo_config()
    kinds = {"graf": GRAFField, "pigan": PiGANField, "voxel": VoxelField, "triplane": TriplaneField}
    assert set(script.RECIPES) == set(kinds)
    for name, kind in kinds.items():
        cfg = script.demo_config(name, None)
        # everything but the model is the demo's; the model differs from the preset only where the recipe says
        assert {k: v for k, v in vars(cfg).items() if k != "model"} == {
            k: v for k, v in vars(demo).items() if k != "model"
        }
        changed = {k for k in cfg.model if cfg.model[k] != demo.model.get(k)}
        assert changed == {k for k, v in script.RECIPES[name][1].items() if demo.model.get(k) != v}
        module = GRAFModule(**cfg.model)
        assert type(module.generator.field) is kind, name
    voxel = GRAFModule(**script.demo_config("voxel", None).model).generator.field
    assert voxel.channels == 4 and voxel.decoder.hidden == 0  # direct colour: density and colour read from the grid
    pigan_cfg = script.demo_config("pigan", None).model
    pigan = GRAFModule(**pigan_cfg).generator.field
    assert pigan.input_scale * pigan_cfg["bound"] == pytest.approx(1.0)  # the field's cube warped to [-1, 1]^3
    assert script.demo_config("triplane", 5).iterations == 5


def _metrics(fid: float, seconds: float = 420.0) -> dict:
    row = {
        "FID": fid, "KID": 0.0751, "KID_std": 0.0074, "consistency": {"consistency": 0.0376},
        "geometry": {"1-NNA-CD": 97.9, "COV-CD": 29.17, "MMD-CD": 0.02540},
    }  # fmt: skip
    return {**row, "iterations": 1300, "seconds": {"train": seconds},
            "baselines": {"untrained": {**row, "FID": 304.0}, "oracle": {**row, "FID": 72.9}}}  # fmt: skip


def test_fields_table_rows_in_recipe_order_with_the_baselines(script):
    table = script.fields_table({"triplane": _metrics(195.5), "graf": _metrics(230.54, 600.0)})
    lines = table.splitlines()
    assert lines[0].startswith("| field (sampler) | iterations | training min | FID |") and len(lines) == 6
    assert lines[2] == (
        "| GRAF MLP, 4 x 64, z 32 + 32 (dense 12 + 12) | 1300 | 10.0 | 230.5 | 7.51 (0.74) | 3.76 | 97.9 | 29.2 "
        "| 25.40 |"
    )
    assert lines[3].startswith("| triplane, 3 x 16 x 32^2 (marched): the preset | 1300 | 7.0 | 195.5 |")
    assert lines[4].startswith("| untrained triplane |  |  | 304.0 |")
    assert lines[5].startswith("| real data (held-out) |  |  | 72.9 |")


def test_unknown_field_is_refused_before_any_training(script, tmp_path, capsys):
    with pytest.raises(SystemExit) as exc:
        script.main(["--fields", "triplane,nerf", "--out", str(tmp_path / "out")])
    assert exc.value.code == 2 and "unknown nerf" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exc:
        script.main(["--iterations", "0", "--out", str(tmp_path / "out")])
    assert exc.value.code == 2
    assert not (tmp_path / "out").exists()
