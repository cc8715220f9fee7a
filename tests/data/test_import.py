"""``gen3d data import``: a folder of meshes and point clouds in their real formats becomes a PC15k-layout dataset."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import trimesh
import yaml

from gen3d.cli.main import main
from gen3d.data.importer import Z_UP_TO_Y_UP, import_shapes, plan_import
from gen3d.errors import InputError


def _off(mesh: trimesh.Trimesh) -> str:
    head = f"OFF\n{len(mesh.vertices)} {len(mesh.faces)} 0\n"
    v = "\n".join(" ".join(f"{c:.6f}" for c in row) for row in mesh.vertices)
    f = "\n".join("3 " + " ".join(map(str, row)) for row in mesh.faces)
    return head + v + "\n" + f + "\n"


def _cloud_ply(points: np.ndarray) -> bytes:
    """A binary PLY with vertices only (a scan), as trimesh writes a point cloud."""
    return trimesh.PointCloud(points).export(file_type="ply")


def write_cgal_like(folder: Path) -> Path:
    """A flat folder like CGAL's example data: 10 meshes in four formats, a face-less .ply scan and a broken file."""
    folder.mkdir(parents=True)
    c = trimesh.creation
    (folder / "cube.off").write_text(_off(c.box(extents=[1.0, 1.0, 1.0])))
    (folder / "slab.off").write_text(_off(c.box(extents=[2.0, 0.3, 1.0])))
    (folder / "cone.off").write_text(_off(c.cone(radius=0.5, height=1.5)))
    c.icosphere(subdivisions=2).export(folder / "ball.obj")
    c.capsule(height=1.0, radius=0.3).export(folder / "capsule.obj")
    c.annulus(r_min=0.3, r_max=0.6, height=0.4).export(folder / "ring.ply")
    c.torus(major_radius=0.6, minor_radius=0.2).export(folder / "torus.ply")
    c.cylinder(radius=0.4, height=1.2).export(folder / "can.stl")
    c.box(extents=[0.5, 0.5, 2.0]).export(folder / "pillar.stl")
    c.uv_sphere(radius=0.7).export(folder / "globe.stl")
    rng = np.random.default_rng(1)
    (folder / "scan.ply").write_bytes(_cloud_ply(rng.normal(size=(3000, 3))))
    (folder / "broken.off").write_text("OFF\n8 12 0\n0 0 0\n1 0 0\n")
    return folder


def files_of(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def cloud(root: Path, cls: str, sid: str) -> np.ndarray:
    found = list((root / cls).glob(f"*/{sid}.npy"))
    assert len(found) == 1, found
    return np.load(found[0])


# ------------------------------------------------------------------------------------------------ classes


def test_classes_from_subfolders(tmp_path, capsys):
    src = tmp_path / "src"
    (src / "chair" / "old").mkdir(parents=True)
    (src / "table").mkdir()
    trimesh.creation.box().export(src / "chair" / "a.obj")
    trimesh.creation.box().export(src / "chair" / "old" / "a.stl")  # same stem in a sub-folder
    (src / "table" / "t.off").write_text(_off(trimesh.creation.cylinder(0.5, 0.2)))
    np.save(src / "table" / "p.npy", np.random.default_rng(0).normal(size=(500, 3)).astype(np.float32))
    trimesh.creation.box().export(src / "loose.stl")  # directly in SRC: skipped without --class
    (src / ".hidden").mkdir()
    trimesh.creation.box().export(src / ".hidden" / "x.stl")  # hidden: ignored
    out = tmp_path / "root"
    assert main(["data", "import", str(src), "--out", str(out), "--points", "300"]) == 0
    printed = capsys.readouterr().out
    manifest = json.loads((out / "dataset.json").read_text())
    assert manifest["classes"] == ["chair", "table"]
    by_id = {(s["class"], s["id"]): s for s in manifest["shapes"]}
    assert set(by_id) == {("chair", "a_obj"), ("chair", "old-a_stl"), ("table", "t"), ("table", "p")}
    assert by_id["chair", "old-a_stl"]["source"] == "chair/old/a.stl"
    assert by_id["table", "p"]["kind"] == "points" and by_id["table", "t"]["kind"] == "mesh"
    for (cls, sid), shape in by_id.items():
        assert (out / cls / shape["split"] / f"{sid}.npy").is_file()
    for cls in ("chair", "table"):
        assert all((out / cls / s).is_dir() for s in ("train", "val", "test"))
    assert [s["source"] for s in manifest["skipped"]] == ["loose.stl"]
    assert "loose.stl: lies directly in the source folder" in printed
    assert ".hidden" not in printed


def test_flat_folder_needs_class_and_class_takes_everything(tmp_path, capsys):
    src = tmp_path / "src"
    (src / "sub").mkdir(parents=True)
    trimesh.creation.box().export(src / "a.stl")
    trimesh.creation.icosphere().export(src / "b.obj")
    out = tmp_path / "root"
    (src / "sub").rmdir()
    assert main(["data", "import", str(src), "--out", str(out)]) == 2
    assert "no class sub-folders; pass --class NAME" in capsys.readouterr().err
    assert not out.exists()
    (src / "sub").mkdir()
    trimesh.creation.box().export(src / "sub" / "c.off")
    assert main(["data", "import", str(src), "--out", str(out), "--class", "things", "--points", "64"]) == 0
    manifest = json.loads((out / "dataset.json").read_text())
    assert manifest["classes"] == ["things"] and manifest["class_folders"] == {"things": "."}
    assert sorted(s["source"] for s in manifest["shapes"]) == ["a.stl", "b.obj", "sub/c.off"]
    assert manifest["counts"]["things"] == {"train": 1, "val": 1, "test": 1}


# ------------------------------------------------------------------------------------------------ splits, frame


def test_splits_are_seeded_and_reproducible_byte_for_byte(tmp_path):
    src = write_cgal_like(tmp_path / "src")
    a, b, c = (tmp_path / n for n in ("a", "b", "c"))
    import_shapes(src, a, "things", points=256, seed=3)
    import_shapes(src, b, "things", points=256, seed=3)
    import_shapes(src, c, "things", points=256, seed=4)
    files_a = files_of(a)
    assert files_a == files_of(b)  # every cloud, the manifest and the normalisation
    manifest = json.loads(files_a["dataset.json"])
    assert manifest["counts"]["things"] == {"train": 9, "val": 1, "test": 1}
    assert len([f for f in files_a if f.endswith(".npy")]) == 11
    other = json.loads((c / "dataset.json").read_text())
    assert [s["id"] for s in other["shapes"]] != [s["id"] for s in manifest["shapes"]]  # another split
    assert not np.array_equal(cloud(a, "things", "cube"), cloud(c, "things", "cube"))  # other samples
    import_shapes(src, tmp_path / "d", "things", points=256, seed=3, split=(0.5, 0.25, 0.25))
    assert json.loads((tmp_path / "d" / "dataset.json").read_text())["counts"]["things"] == {
        "train": 5,
        "val": 3,
        "test": 3,
    }


def test_up_z_turns_clouds_y_up(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    points = np.array([[0, 0, 1], [1, 0, 0], [0, 1, 0], [2, 3, 4]], dtype=np.float32)
    np.save(src / "p.npy", points)
    trimesh.creation.box(extents=[1.0, 0.5, 4.0]).export(src / "tall.stl")  # z-up: tallest along z
    import_shapes(src, tmp_path / "z", "t", points=4, up="z", normalize="none")
    # by hand: (x, y, z) -> (x, z, -y)
    expected = np.array([[0, 1, 0], [1, 0, 0], [0, 0, -1], [2, 4, -3]], dtype=np.float32)
    got = cloud(tmp_path / "z", "t", "p")
    np.testing.assert_array_equal(got[np.lexsort(got.T)], expected[np.lexsort(expected.T)])
    np.testing.assert_allclose(Z_UP_TO_Y_UP @ [0.0, 0.0, 1.0], [0.0, 1.0, 0.0])
    assert np.linalg.det(Z_UP_TO_Y_UP) == pytest.approx(1.0)  # a rotation, not a mirror
    import_shapes(src, tmp_path / "zbox", "t", points=2000, up="z")  # p.npy has too few points: skipped
    tall = cloud(tmp_path / "zbox", "t", "tall")
    ext = tall.max(0) - tall.min(0)
    assert ext[1] == pytest.approx(1.0, abs=1e-6)  # the tall axis is y
    np.testing.assert_allclose(ext, [0.25, 1.0, 0.125], atol=0.01)
    import_shapes(src, tmp_path / "y", "t", points=4, up="y", normalize="none")
    got = cloud(tmp_path / "y", "t", "p")
    np.testing.assert_array_equal(got[np.lexsort(got.T)], points[np.lexsort(points.T)])


@pytest.mark.parametrize("mode", ["unit-box", "unit-sphere", "none"])
def test_normalization_bounds(tmp_path, mode):
    src = tmp_path / "src"
    src.mkdir()
    mesh = trimesh.creation.box(extents=[10.0, 4.0, 2.0])
    mesh.apply_translation([100.0, -50.0, 7.0])  # arbitrary units and offset
    mesh.export(src / "brick.stl")
    import_shapes(src, tmp_path / "out", "b", points=2000, normalize=mode)
    c = cloud(tmp_path / "out", "b", "brick").astype(np.float64)
    shape = json.loads((tmp_path / "out" / "dataset.json").read_text())["shapes"][0]
    lo, hi = c.min(0), c.max(0)
    if mode == "unit-box":
        assert (hi - lo).max() == pytest.approx(1.0, abs=1e-6)
        np.testing.assert_allclose((hi + lo) / 2, 0.0, atol=1e-6)
        assert lo.min() >= -0.5 - 1e-6 and hi.max() <= 0.5 + 1e-6
    elif mode == "unit-sphere":
        assert np.linalg.norm(c, axis=1).max() == pytest.approx(1.0, abs=1e-6)
        np.testing.assert_allclose(c.mean(0), 0.0, atol=1e-5)
    else:
        assert lo == pytest.approx([95.0, -52.0, 6.0], abs=1e-4) and hi == pytest.approx([105.0, -48.0, 8.0], abs=1e-4)
        assert shape["scale"] == 1.0 and shape["center"] == [0.0, 0.0, 0.0]
    if mode != "none":  # the recorded transform maps the source frame onto the cloud
        assert shape["scale"] == pytest.approx(10.0 if mode == "unit-box" else np.sqrt(25 + 4 + 1), rel=0.02)


# ------------------------------------------------------------------------------------------------ skipped files


def test_skipped_files_are_reported_with_reasons(tmp_path, capsys):
    src = tmp_path / "src"
    src.mkdir()
    rng = np.random.default_rng(0)
    trimesh.creation.box().export(src / "good.obj")
    (src / "empty.obj").write_text("# nothing here\n")
    (src / "novertices.off").write_text("OFF\n0 0 0\n")
    (src / "flat.off").write_text("OFF\n3 1 0\n0 0 0\n1 0 0\n2 0 0\n3 0 1 2\n")  # zero area
    (src / "scan.ply").write_bytes(_cloud_ply(rng.normal(size=(400, 3))))  # enough points: imported
    (src / "sparse.ply").write_bytes(_cloud_ply(rng.normal(size=(50, 3))))  # too few points
    (src / "garbage.glb").write_bytes(b"glTF\x02\x00\x00\x00 not a glb")
    bad = rng.normal(size=(400, 3)).astype(np.float32)
    bad[7, 1] = np.nan
    np.save(src / "nan.npy", bad)
    np.save(src / "set.npy", rng.normal(size=(2, 400, 3)).astype(np.float32))
    (src / "notes.txt").write_text("my meshes")
    (src / "good.mtl").write_text("newmtl a\n")
    out = tmp_path / "root"
    assert main(["data", "import", str(src), "--out", str(out), "--class", "mix", "--points", "200"]) == 0
    lines = capsys.readouterr().out.splitlines()
    manifest = json.loads((out / "dataset.json").read_text())
    assert sorted(s["id"] for s in manifest["shapes"]) == ["good", "scan"]
    assert {s["id"]: s["kind"] for s in manifest["shapes"]} == {"good": "mesh", "scan": "points"}
    reasons = {s["source"]: s["reason"] for s in manifest["skipped"]}
    expected = {
        "empty.obj": "no geometry",
        "novertices.off": "empty mesh",
        "flat.off": "zero surface area",
        "sparse.ply": "point set of 50 points, fewer than the 200 requested",
        "garbage.glb": "not a readable .glb mesh",
        "nan.npy": "NaN or Inf",
        "set.npy": "holds 2 clouds",
        "notes.txt": "unsupported suffix '.txt'",
    }
    assert set(reasons) == set(expected)
    for name, part in expected.items():
        assert part in reasons[name], (name, reasons[name])
        assert sum(line.strip().startswith(f"{name}: ") for line in lines) == 1  # one line each
    assert "skipped 8 files:" in lines
    assert any("ignored 1 file" in line and ".mtl" in line for line in lines)
    assert lines[0].startswith("read 2 shapes (1 mesh, 1 point cloud) from") and lines[-1].startswith(f"wrote {out}")


def test_nothing_written_on_a_bad_source(tmp_path, capsys):
    out = tmp_path / "root"
    (tmp_path / "file.obj").write_text("v 0 0 0\n")
    (tmp_path / "empty").mkdir()
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "readme.txt").write_text("x")
    (tmp_path / "unreadable").mkdir()
    (tmp_path / "unreadable" / "a.off").write_text("OFF\n")
    for src, message in (
        ("missing", "no such folder"),
        ("file.obj", "expected a folder"),
        ("empty", "holds no shape files"),
        ("other", "holds no shape files"),
        ("unreadable", "none of the 1 shape files could be read (first: a.off: truncated OFF file"),
    ):
        assert main(["data", "import", str(tmp_path / src), "--out", str(out), "--class", "x"]) == 2
        err = capsys.readouterr().err
        assert message in err and err.count("\n") == 1, err
        assert not out.exists()
        assert not list(tmp_path.glob(".root.build-*"))


def test_existing_foreign_output_is_refused(tmp_path, capsys):
    src = tmp_path / "src"
    src.mkdir()
    trimesh.creation.box().export(src / "a.stl")
    out = tmp_path / "root"
    out.mkdir()
    (out / "mine.txt").write_text("keep me")
    assert main(["data", "import", str(src), "--out", str(out), "--class", "x"]) == 2
    assert "holds no gen3d import" in capsys.readouterr().err
    assert files_of(out) == {"mine.txt": b"keep me"}
    assert main(["data", "shapes", "--out", str(tmp_path / "proc"), "--classes", "mug", "--per-class", "3",
                 "--points", "30"]) == 0  # fmt: skip
    before = files_of(tmp_path / "proc")
    assert main(["data", "import", str(src), "--out", str(tmp_path / "proc"), "--class", "x"]) == 2
    assert files_of(tmp_path / "proc") == before
    assert main(["data", "import", str(src), "--out", str(src / "inside"), "--class", "x"]) == 2
    assert "must not contain each other" in capsys.readouterr().err
    # an earlier import is replaced as a whole; the same command finds it built
    assert main(["data", "import", str(src), "--out", str(tmp_path / "imp"), "--class", "x", "--points", "40"]) == 0
    assert main(["data", "import", str(src), "--out", str(tmp_path / "imp"), "--class", "y", "--points", "40"]) == 0
    assert sorted(p.name for p in (tmp_path / "imp").iterdir() if p.is_dir()) == ["y"]
    capsys.readouterr()
    assert main(["data", "import", str(src), "--out", str(tmp_path / "imp"), "--class", "y", "--points", "40"]) == 0
    captured = capsys.readouterr()
    assert "already built" in captured.err and "read 1 shapes" in captured.out


@pytest.mark.parametrize(
    "option",
    [
        ["--points", "0"],
        ["--seed", "-1"],
        ["--split", "0.8,0.1"],
        ["--split", "0.5,0.5,0.5"],
        ["--class", "a/b"],
        ["--class", ".x"],
        ["--up", "x"],
        ["--normalize", "cube"],
    ],
)
def test_options_are_checked_where_parsed(tmp_path, capsys, option):
    assert main(["data", "import", str(tmp_path / "missing"), "--out", str(tmp_path / "o"), *option]) == 2
    err = capsys.readouterr().err
    assert f"argument {option[0]}" in err and err.count("\n") == 1
    assert not (tmp_path / "o").exists()


def test_plan_rejects_classes_that_collide(tmp_path):
    for name in ("a b", "a_b"):
        (tmp_path / name).mkdir()
        trimesh.creation.box().export(tmp_path / name / "m.stl")
    with pytest.raises(InputError, match="both give class name 'a_b'"):
        plan_import(tmp_path)


def test_info_on_a_mesh_folder_suggests_import(tmp_path, capsys):
    src = write_cgal_like(tmp_path / "src")
    assert main(["data", "info", str(src)]) == 2
    assert f"convert it first with 'gen3d data import {src} --out DATASET'" in capsys.readouterr().err


# ------------------------------------------------------------------------------------------------ end to end


def test_import_train_sample_evaluate(tmp_path, capsys, tiny_config, monkeypatch):
    """The issue's "done when": a CGAL-like flat folder -> import -> LION (two stages) -> sample -> evaluate (~10 s)."""
    monkeypatch.chdir(tmp_path)
    src = write_cgal_like(tmp_path / "cgal")
    assert main(["data", "import", str(src), "--out", "data", "--class", "things", "--points", "512"]) == 0
    printed = capsys.readouterr().out
    assert "things  train     9  val     1  test     1" in printed and "broken.off: truncated OFF file" in printed
    assert main(["data", "info", "data"]) == 0
    preset = {
        "seed_everything": 0,
        "trainer": {"accelerator": "cpu", "devices": 1, "max_steps": 3, "check_val_every_n_epoch": 1,
                    "log_every_n_steps": 1, "num_sanity_val_steps": 0, "limit_val_batches": 1},
        "model": {"config": tiny_config, "val_samples": 2, "val_steps": 2, "ema_decay": 0.9},
        # batch_size above the 9 training shapes, with drop_last: the batches are capped, not dropped
        "data": {"tr_sample_size": 48, "te_sample_size": 48, "batch_size": 16, "drop_last": True, "num_workers": 0},
        "stages": {"prior": {"trainer": {"max_steps": 2}}},
    }  # fmt: skip
    Path("tiny.yaml").write_text(yaml.safe_dump(preset))
    capsys.readouterr()
    args = ["train", "lion", "--config", "tiny.yaml", "--name", "mine", "--data.root", "data"]
    assert main([*args, "--data.classes", "things", "--trainer.enable_progress_bar", "false"]) == 0
    captured = capsys.readouterr()
    assert "fewer than batch_size=16; training with batches of 9" in captured.err
    import torch

    for stage, steps in (("vae", 3), ("prior", 2)):
        ckpt = Path("runs/mine") / stage / "checkpoints" / "last.ckpt"
        assert f"checkpoint {ckpt}" in captured.out
        assert torch.load(ckpt, map_location="cpu", weights_only=True)["global_step"] == steps
    ckpt = "runs/mine/prior/checkpoints/last.ckpt"
    assert main(["sample", "--ckpt", ckpt, "--n", "4", "--sampler", "ddim", "--steps", "3", "--out", "gen"]) == 0
    assert np.load("gen/samples.npz")["points"].shape == (4, 48, 3)
    code = main(["evaluate", "points", "--samples", "gen/samples.npz", "--refs", "data/things/test", "--emd", "none",
                 "--json", "metrics.json"])  # fmt: skip
    assert code == 0
    metrics = json.loads(Path("metrics.json").read_text())
    assert all(np.isfinite(metrics[k]) for k in ("MMD-CD", "COV-CD", "1-NNA-CD", "JSD"))
