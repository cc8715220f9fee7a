"""The GRAF demo stage end to end, for a few iterations (slow: Inception features and three FIDs on the CPU)."""

from __future__ import annotations

import dataclasses
import json

import pytest
import trimesh


def test_graf_demo_config_from_the_preset():
    from gen3d.pipelines.graf_demo import load_graf_demo_config

    cfg = load_graf_demo_config(iterations=7, seed=None)  # None keeps the preset's seed
    assert cfg.iterations == 7 and cfg.seed == 0 and cfg.image_size == cfg.model["image_size"] == 32
    assert cfg.num_classes == 3 and cfg.per_class == 32 and cfg.views == 8
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.iterations = 3
    with pytest.raises(ValueError, match="iterations=0"):
        dataclasses.replace(cfg, iterations=0)


@pytest.mark.slow
def test_run_graf_demo_writes_everything(tmp_path):
    from gen3d.pipelines.graf_demo import load_graf_demo_config, run_graf_demo, summary_line

    out = tmp_path / "graf"
    cfg = load_graf_demo_config(
        iterations=3, per_class=2, heldout_per_class=1, views=2, n_eval=6, n_consistency=2, geometry_per_class=1,
        turntable_size=16,
    )  # fmt: skip
    res = run_graf_demo(out, cfg)
    saved = json.loads((out / "metrics.json").read_text())
    assert saved["FID"] == pytest.approx(res["FID"]) and set(saved["baselines"]) == {"oracle", "untrained"}
    assert saved["iterations"] == 3 and saved["protocol"]["n_images"] == 6  # two optimiser steps an iteration
    assert len(saved["protocol"]["checkpoint_sha256"]) == 64 and "gen3d_version" in saved["protocol"]
    assert saved["config"]["iterations"] == 3 and set(saved["seconds"]) >= {"data", "train", "eval", "total"}
    for key in ("checkpoint", "gif"):
        assert (out / saved[key].split("/")[-1]).exists()
    assert (out / "samples_trained.png").exists() and (out / "samples_untrained.png").exists()
    if "mesh" in saved:
        mesh = trimesh.load(saved["mesh"], force="mesh")
        assert len(mesh.faces) == saved["mesh_faces"] > 0
    assert len(list((out / "data" / "train").glob("*.png"))) == 12
    assert len(list((out / "data" / "heldout").glob("*.png"))) == 6
    for row in (saved, saved["baselines"]["oracle"], saved["baselines"]["untrained"]):
        assert row["geometry"]["clouds"] == 3 and "1-NNA-CD" in row["geometry"]
        assert row["consistency"]["n"] >= 2
    assert saved["baselines"]["oracle"]["consistency"]["consistency"] < 0.05  # ground truth is consistent
    assert "FID" in summary_line(res) and "1-NNA-CD" in summary_line(res)
