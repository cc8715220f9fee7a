"""The GRAF demo stage end to end, on a tiny budget (slow: Inception features and three FIDs on the CPU)."""

from __future__ import annotations

import json

import pytest
import trimesh


@pytest.mark.slow
def test_run_graf_demo_writes_everything(tmp_path):
    from gen3d.pipelines.graf_demo import run_graf_demo, summary_line

    out = tmp_path / "graf"
    res = run_graf_demo(out, budget_minutes=0.1, threads=2, per_class=2, heldout_per_class=1, views=2, n_eval=6)
    saved = json.loads((out / "metrics.json").read_text())
    assert saved["FID"] == pytest.approx(res["FID"]) and set(saved["baselines"]) == {"oracle", "untrained"}
    assert saved["iterations"] >= 1 and saved["protocol"]["n_images"] == 6
    for key in ("checkpoint", "gif"):
        assert (out / saved[key].split("/")[-1]).exists()
    assert (out / "samples_trained.png").exists() and (out / "samples_untrained.png").exists()
    if "mesh" in saved:
        mesh = trimesh.load(saved["mesh"], force="mesh")
        assert len(mesh.faces) == saved["mesh_faces"] > 0
    assert len(list((out / "data" / "train").glob("*.png"))) == 12
    assert len(list((out / "data" / "heldout").glob("*.png"))) == 6
    assert "GRAF FID" in summary_line(res)
