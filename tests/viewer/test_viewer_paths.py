"""The viewer's input handling and path rules: what it reads, and that it never leaves the run directory."""

from __future__ import annotations

import os

import numpy as np
import pytest

from gen3d.cli.main import main
from gen3d.errors import InputError
from gen3d.viewer.content import open_input, ply_has_faces
from gen3d.viewer.paths import resolve_inside, run_dir_for, safe_file_name


def _cloud(p: int = 64, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=(p, 3)).astype(np.float32)


def test_resolve_inside_accepts_nested_paths_and_refuses_escapes(tmp_path):
    run = tmp_path / "run"
    (run / "viewer").mkdir(parents=True)
    assert resolve_inside(run, "viewer/a.ply") == (run / "viewer" / "a.ply").resolve()
    assert resolve_inside(run, run / "x" / ".." / "b.obj") == (run / "b.obj").resolve()
    for bad in ("../outside.ply", "viewer/../../outside.ply", str(tmp_path / "outside.ply"), "/etc/passwd"):
        with pytest.raises(InputError, match="outside the run directory"):
            resolve_inside(run, bad)
    # A symlink inside the run directory that points out of it is refused too.
    (tmp_path / "elsewhere").mkdir()
    os.symlink(tmp_path / "elsewhere", run / "link")
    with pytest.raises(InputError, match="outside the run directory"):
        resolve_inside(run, "link/file.ply")
    # A sibling whose name merely starts with the run directory's name is outside.
    with pytest.raises(InputError):
        resolve_inside(run, tmp_path / "run2" / "a.ply")


def test_safe_file_name():
    assert safe_file_name(" chair ", ".ply") == "chair.ply"
    assert safe_file_name("chair.PLY", ".ply") == "chair.ply"
    for bad in ("", "  ", ".", "..", "a\x00b", "../x", "a/b", ".hidden"):
        with pytest.raises(InputError):
            safe_file_name(bad, ".obj")


def test_run_dir_for(tmp_path):
    (tmp_path / "run" / "samples").mkdir(parents=True)
    (tmp_path / "run" / "samples" / "s.npz").touch()
    (tmp_path / "loose.npz").touch()
    assert run_dir_for(tmp_path / "run") == (tmp_path / "run").resolve()
    assert run_dir_for(tmp_path / "run" / "samples" / "s.npz") == (tmp_path / "run").resolve()
    assert run_dir_for(tmp_path / "loose.npz") == tmp_path.resolve()


def test_open_input_reads_a_run_directory(tmp_path):
    import trimesh

    run = tmp_path / "run"
    (run / "samples").mkdir(parents=True)
    clouds = np.stack([_cloud(seed=i) for i in range(3)])
    np.savez(run / "samples" / "set.npz", points=clouds)
    np.save(run / "one.npy", clouds[0])
    trimesh.creation.box().export(run / "box.ply")  # a PLY with faces is a mesh
    (run / "notes.txt").write_text("ignored")
    content = open_input(run)
    assert content.run_dir == run.resolve()
    labels = [item.label for item in content.items]
    # one.npy repeats the set's first cloud: it is listed once, from the set; meshes come after the samples
    assert labels == ["samples/set.npz [0]", "samples/set.npz [1]", "samples/set.npz [2]", "box.ply"]
    assert content.copies == ["one.npy: the same shape as samples/set.npz [0]"]
    assert content.items[-1].kind == "mesh" and len(content.items[-1].mesh.faces) == 12
    np.testing.assert_array_equal(content.items[1].points, clouds[1])
    assert ply_has_faces(run / "box.ply")


def test_open_input_never_reads_files_linked_from_outside(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    np.save(run / "inside.npy", _cloud())
    secret = tmp_path / "secret.npy"
    np.save(secret, _cloud(seed=1))
    os.symlink(secret, run / "leak.npy")
    content = open_input(run)
    assert [item.label for item in content.items] == ["inside.npy"]
    assert any("leak.npy" in s for s in content.skipped)


def test_missing_empty_and_corrupt_inputs_are_input_errors(tmp_path):
    with pytest.raises(InputError, match="no such file"):
        open_input(tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match="holds no samples"):
        open_input(tmp_path / "empty")
    (tmp_path / "bad.npz").write_bytes(b"PK\x03\x04 not really a zip")
    with pytest.raises(InputError, match="bad.npz"):
        open_input(tmp_path / "bad.npz")
    (tmp_path / "bad.ply").write_bytes(b"garbage")
    with pytest.raises(InputError, match="bad.ply"):
        open_input(tmp_path / "bad.ply")
    np.save(tmp_path / "nan.npy", np.full((4, 3), np.nan))
    with pytest.raises(InputError, match="NaN"):
        open_input(tmp_path / "nan.npy")
    (tmp_path / "model.ckpt").write_bytes(b"")
    with pytest.raises(InputError, match="empty"):
        open_input(tmp_path / "model.ckpt")
    (tmp_path / "x.xyz").write_text("1 2 3")
    with pytest.raises(InputError, match="unsupported file type"):
        open_input(tmp_path / "x.xyz")


def test_view_cli_exit_codes(tmp_path, capsys):
    assert main(["view", str(tmp_path / "missing")]) == 2
    assert "no such file" in capsys.readouterr().err
    (tmp_path / "bad.npy").write_bytes(b"junk")
    assert main(["view", str(tmp_path / "bad.npy")]) == 2
    import torch

    torch.save({"state_dict": {}}, tmp_path / "unknown.ckpt")
    assert main(["view", str(tmp_path / "unknown.ckpt")]) == 2
    assert "no viewer adapter" in capsys.readouterr().err
    assert main(["view", str(tmp_path), "--port", "70000"]) == 2
