"""``gen3d export ...``: outputs and exit codes."""

from __future__ import annotations

import numpy as np
import pytest

from gen3d.cli.main import main
from gen3d.export.grid import LABEL_BAND


@pytest.fixture()
def sphere_set(tmp_path):
    rng = np.random.default_rng(0)
    v = rng.normal(size=(3, 500, 3))
    clouds = (v / np.linalg.norm(v, axis=-1, keepdims=True)).astype(np.float32)  # (3, 500, 3) unit spheres
    path = tmp_path / "samples.npz"
    np.savez(path, points=clouds)
    return path, clouds


def test_export_points_and_exit_codes(tmp_path, sphere_set, capsys):
    src, clouds = sphere_set
    assert main(["export", "points", str(src), str(tmp_path / "c.ply"), "--index", "1"]) == 0
    assert "wrote" in capsys.readouterr().out
    assert main(["export", "points", str(tmp_path / "c.ply"), str(tmp_path / "c.npy")]) == 0
    np.testing.assert_array_equal(np.load(tmp_path / "c.npy"), clouds[1])

    assert main(["export", "points", str(tmp_path / "missing.npz"), str(tmp_path / "x.ply")]) == 2
    assert "missing.npz" in capsys.readouterr().err
    assert main(["export", "points", str(src), str(tmp_path / "x.txt")]) == 2
    (tmp_path / "bad.npy").write_bytes(b"\x93NUMPY garbage")
    assert main(["export", "points", str(tmp_path / "bad.npy"), str(tmp_path / "x.npz")]) == 2
    assert main(["export"]) == 2


def test_export_mesh_from_points(tmp_path, sphere_set):
    import trimesh

    src, _ = sphere_set
    out = tmp_path / "sphere.glb"
    assert main(["export", "mesh", str(src), str(out), "--index", "0", "--depth", "5", "--trim", "0"]) == 0
    mesh = trimesh.load(str(out), force="mesh", process=False)
    assert mesh.is_watertight
    assert np.abs(np.linalg.norm(mesh.vertices, axis=1) - 1.0).mean() < 0.02

    assert main(["export", "mesh", str(src), str(tmp_path / "bp.stl"), "--method", "ball_pivot"]) == 0
    written = sorted(p.name for p in tmp_path.glob("bp_*.stl"))
    assert written == ["bp_000.stl", "bp_001.stl", "bp_002.stl"]
    assert main(["export", "mesh", str(src), str(tmp_path / "m.fbx")]) == 2
    assert main(["export", "mesh", str(src), str(tmp_path / "m.obj"), "--index", "7"]) == 2


def test_export_mesh_from_an_unknown_checkpoint_is_an_input_error(tmp_path):
    import torch

    torch.save({"state_dict": {"w": torch.zeros(2)}}, tmp_path / "model.ckpt")
    assert main(["export", "mesh", str(tmp_path / "model.ckpt"), str(tmp_path / "m.obj")]) == 2
    (tmp_path / "broken.ckpt").write_bytes(b"not a checkpoint")
    assert main(["export", "mesh", str(tmp_path / "broken.ckpt"), str(tmp_path / "m.obj")]) == 2
    assert not (tmp_path / "m.obj").exists()


def test_export_turntable_and_grid(tmp_path, sphere_set):
    from PIL import Image

    src, _ = sphere_set
    gif = tmp_path / "t.gif"
    assert main(["export", "turntable", str(src), str(gif), "--frames", "5", "--size", "40", "--index", "2"]) == 0
    with Image.open(gif) as im:
        assert (im.size, im.n_frames) == ((40, 40), 5)

    png = tmp_path / "g.png"
    assert main(["export", "grid", str(src), str(png), "--size", "32", "--ncols", "2"]) == 0
    with Image.open(png) as im:
        assert im.format == "PNG" and im.size == (2 * 32, 2 * 32)  # 3 clouds in 2 columns -> 2 rows
    assert main(["export", "grid", str(src), str(png), "--size", "32", "--labels"]) == 0
    with Image.open(png) as im:  # captions add a band above each row
        assert im.size == (2 * 32, 2 * (32 + LABEL_BAND))
    assert main(["export", "grid", str(src), str(tmp_path / "g.jpg")]) == 2
    assert main(["export", "turntable", str(src), str(tmp_path / "t.webm")]) == 2


def test_export_turntable_of_a_mesh(tmp_path):
    import trimesh
    from PIL import Image

    trimesh.creation.icosphere(subdivisions=2).export(tmp_path / "ico.ply")
    out = tmp_path / "ico.gif"
    assert main(["export", "turntable", str(tmp_path / "ico.ply"), str(out), "--frames", "2", "--size", "32"]) == 0
    with Image.open(out) as im:
        assert (im.size, im.n_frames) == ((32, 32), 2)
