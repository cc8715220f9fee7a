"""``gen3d data multiview --meshes ROOT``: GRAF's training images rendered from an imported folder of meshes."""

from __future__ import annotations

import contextlib
import io
import json
import math
from pathlib import Path

import numpy as np
import pytest
import trimesh
from PIL import Image

from gen3d.cli.main import main
from gen3d.data.multiview import DEFAULT_FOV, DEFAULT_RANGE_V, graf_image_dataset, render_mesh_dataset
from gen3d.errors import InputError

BOX_EXTENTS = (1.0, 0.6, 0.8)  # largest side 1: the unit-box import keeps the box as it is (centred already)


def _off(mesh: trimesh.Trimesh) -> str:
    head = f"OFF\n{len(mesh.vertices)} {len(mesh.faces)} 0\n"
    v = "\n".join(" ".join(f"{c:.6f}" for c in row) for row in mesh.vertices)
    f = "\n".join("3 " + " ".join(map(str, row)) for row in mesh.faces)
    return head + v + "\n" + f + "\n"


def write_sources(folder: Path) -> Path:
    """Three meshes in three formats, plus a point cloud (imported, but with no surface to render)."""
    folder.mkdir(parents=True)
    trimesh.creation.box(extents=BOX_EXTENTS).export(folder / "box.obj")
    (folder / "ball.off").write_text(_off(trimesh.creation.icosphere(subdivisions=2, radius=0.7)))
    trimesh.creation.cylinder(radius=0.4, height=1.2).export(folder / "can.stl")
    np.save(folder / "scan.npy", np.random.default_rng(0).normal(size=(300, 3)).astype(np.float32))
    return folder


def run(argv: list[str]) -> tuple[int, str, str]:
    """``gen3d ARGV`` through the entry point; returns (exit code, stdout, stderr)."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(argv)
    return code, out.getvalue(), err.getvalue()


def import_folder(src: Path, root: Path, *extra: str) -> None:
    argv = ["data", "import", str(src), "--out", str(root), "--class", "things", "--points", "256", "--split", "1,0,0"]
    code, _, err = run([*argv, *extra])
    assert code == 0, err


def render(root: Path, out: Path, *extra: str) -> str:
    code, printed, err = run(
        ["data", "multiview", "--meshes", str(root), "--out", str(out), "--views", "2", "--size", "16", *extra]
    )
    assert code == 0, err
    return printed


def tree(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir()) if p.is_file()}


@pytest.fixture(scope="module")
def rendered(tmp_path_factory) -> dict:
    base = tmp_path_factory.mktemp("meshes")
    src, root, views = write_sources(base / "src"), base / "root", base / "views"
    import_folder(src, root)
    printed = render(root, views)
    return {"base": base, "src": src, "root": root, "views": views, "printed": printed}


def manifest_of(folder: Path) -> dict:
    return json.loads((folder / "multiview.json").read_text())


# ------------------------------------------------------------------------------------------------ renders


def test_every_mesh_is_rendered_and_listed_with_its_cameras(rendered):
    views = rendered["views"]
    names = ["things_ball_00.png", "things_ball_01.png", "things_box_00.png", "things_box_01.png"]
    names += ["things_can_00.png", "things_can_01.png"]
    assert sorted(p.name for p in views.glob("*.png")) == names
    for name in names:
        img = np.asarray(Image.open(views / name))
        background = (img == 255).all(-1)
        assert img.shape == (16, 16, 3)
        assert 10 < (~background).sum() < 200 and background[0].all()  # the shape in the middle, white around it
    manifest = manifest_of(views)
    assert [im["file"] for im in manifest["images"]] == names
    v0, v1 = DEFAULT_RANGE_V
    for im in manifest["images"]:
        c2w = np.asarray(im["c2w"])
        assert c2w.shape == (3, 4) and abs(np.linalg.norm(c2w[:, 3]) - 2.5) < 1e-5
        assert v0 <= im["v"] <= v1 and im["class"] == "things" and im["split"] == "train"
    assert {im["source"] for im in manifest["images"]} == {"ball.off", "box.obj", "can.stl"}
    assert manifest["config"]["split"] == "train" and manifest["config"]["classes"] == ["things"]
    assert manifest["config"]["root"] == str(rendered["root"].resolve())
    dataset = manifest["dataset"]
    assert dataset["meshes"] == 3 and dataset["skipped_point_clouds"] == 1 and not dataset["rescaled_to_unit_box"]
    assert dataset["import"]["normalize"] == "unit-box" and dataset["import"]["points"] == 256
    printed = rendered["printed"]
    assert "wrote 6 images of 3 meshes" in printed and "skipped 1 point cloud" in printed
    assert "rescaled" not in printed


def test_the_same_command_gives_byte_identical_files(rendered, tmp_path):
    views, root = rendered["views"], rendered["root"]
    before = tree(views)
    again = tmp_path / "again"
    render(root, again)
    assert tree(again) == before  # images, multiview.json and the build record
    render(root, views)  # the same folder: already built, left as it is
    assert tree(views) == before
    other = tmp_path / "seed1"
    render(root, other, "--seed", "1")
    assert tree(other)["things_box_00.png"] != before["things_box_00.png"]  # another camera and colour


def _ray_hits(origins: np.ndarray, directions: np.ndarray, triangles: np.ndarray) -> np.ndarray:
    """Whether each ray (R, 3) hits any triangle (T, 3, 3) in front of its origin (Moller-Trumbore, numpy)."""
    a, b, c = triangles[:, 0], triangles[:, 1], triangles[:, 2]  # (T, 3) each
    e1, e2 = b - a, c - a
    p = np.cross(directions[:, None], e2[None])  # (R, T, 3)
    det = np.einsum("rtk,tk->rt", p, e1)
    ok = np.abs(det) > 1e-12
    inv = np.where(ok, 1.0 / np.where(ok, det, 1.0), 0.0)
    s = origins[:, None] - a[None]  # (R, T, 3)
    u = np.einsum("rtk,rtk->rt", s, p) * inv
    q = np.cross(s, e1[None])
    v = np.einsum("rk,rtk->rt", directions, q) * inv
    t = np.einsum("rtk,tk->rt", q, e2) * inv
    return (ok & (u >= 0) & (v >= 0) & (u + v <= 1) & (t > 0)).any(axis=1)


def _pixel_coverage(vertices: np.ndarray, faces: np.ndarray, c2w: np.ndarray, size: int, fov: float) -> np.ndarray:
    """Fraction of the 2 x 2 rays per pixel (pinhole camera, OpenGL axes) that hit the mesh."""
    n = 2 * size
    focal = 0.5 * n / math.tan(math.radians(fov) / 2)
    rows, cols = np.meshgrid(np.arange(n) + 0.5, np.arange(n) + 0.5, indexing="ij")
    camera = np.stack([(cols - n / 2) / focal, -(rows - n / 2) / focal, -np.ones_like(cols)], -1).reshape(-1, 3)
    directions = camera @ c2w[:3, :3].T
    origins = np.broadcast_to(c2w[:3, 3], directions.shape)
    hits = _ray_hits(origins, directions, vertices[faces]).reshape(size, 2, size, 2)
    return hits.mean(axis=(1, 3))


def test_box_silhouette_matches_an_independent_ray_cast(rendered):
    dataset = json.loads((rendered["root"] / "dataset.json").read_text())
    (box,) = [s for s in dataset["shapes"] if s["id"] == "box"]
    np.testing.assert_allclose(box["center"], 0.0, atol=1e-6)  # a box's samples reach its faces
    assert abs(box["scale"] - max(BOX_EXTENTS)) < 1e-6
    mesh = trimesh.creation.box(extents=BOX_EXTENTS)
    x, y, z = ((np.asarray(mesh.vertices) - box["center"]) / box["scale"]).T
    z_up = np.stack([x, -z, y], 1)  # gen3d's y-up frame turned z-up, as GRAF's cameras see it
    for view in ("things_box_00.png", "things_box_01.png"):
        (entry,) = [im for im in manifest_of(rendered["views"])["images"] if im["file"] == view]
        coverage = _pixel_coverage(z_up, np.asarray(mesh.faces), np.asarray(entry["c2w"]), 16, DEFAULT_FOV)
        assert (coverage == 0).any() and (coverage == 1).sum() >= 10
        img = np.asarray(Image.open(rendered["views"] / view))
        np.testing.assert_array_equal((img == 255).all(-1), coverage == 0)


def test_graf_loads_the_renders(rendered):
    from gen3d.data.datamodules import GRAFDataModule

    views = rendered["views"]
    dataset = graf_image_dataset(views, "shapes", size=16)
    assert len(dataset) == 6
    item = dataset[0]
    assert tuple(item.shape) == (3, 16, 16) and -1.0 <= float(item.min()) < float(item.max()) <= 1.0
    before = tree(views)
    dm = GRAFDataModule(root=str(views), kind="shapes", image_size=16, batch_size=2, num_workers=0)
    dm.prepare_data()  # images are there: nothing is rendered
    dm.setup("fit")
    batch = next(iter(dm.train_dataloader()))
    assert tuple(batch.shape) == (2, 3, 16, 16)
    assert tree(views) == before


def test_unnormalized_import_is_rescaled_to_the_unit_box(rendered, tmp_path):
    root, views = tmp_path / "raw", tmp_path / "raw_views"
    import_folder(rendered["src"], root, "--normalize", "none")  # the ball (diameter 1.4) would overflow the box
    printed = render(root, views)
    assert "rescaled every mesh to the unit box" in printed and "--normalize none" in printed
    manifest = manifest_of(views)
    assert manifest["dataset"]["rescaled_to_unit_box"] and manifest["dataset"]["import"]["normalize"] == "none"
    unit = tree(rendered["views"])
    for name, data in tree(views).items():
        if name.endswith(".png"):  # the same cameras, the same shapes in the unit box: (nearly) the same silhouettes
            a = (np.asarray(Image.open(io.BytesIO(data))) == 255).all(-1)
            b = (np.asarray(Image.open(io.BytesIO(unit[name]))) == 255).all(-1)
            assert (a != b).sum() <= 8, name


def test_split_and_classes_select_the_shapes(rendered, tmp_path):
    code, _, err = run(
        ["data", "multiview", "--meshes", str(rendered["root"]), "--out", str(tmp_path / "v"), "--split", "val"]
    )
    assert code == 2 and "no mesh to render in split val" in err and len(err.strip().splitlines()) == 1
    out = render_mesh_dataset(tmp_path / "all", rendered["root"], "all", "things", views=1, size=8)
    assert len(list(out.glob("*.png"))) == 3
    with pytest.raises(InputError, match="unknown imported class 'chair'"):
        render_mesh_dataset(tmp_path / "x", rendered["root"], "train", "chair", views=1, size=8)
    with pytest.raises(InputError, match="split must be one of"):
        render_mesh_dataset(tmp_path / "x", rendered["root"], "training", views=1, size=8)
    assert not (tmp_path / "v").exists() and not (tmp_path / "x").exists()


# ------------------------------------------------------------------------------------------------ bad input


def _refused(tmp_path: Path, argv: list[str], *expected: str) -> None:
    out = tmp_path / "out"
    code, printed, err = run(["data", "multiview", *argv, "--out", str(out), "--views", "1", "--size", "8"])
    assert code == 2 and printed == ""
    assert len(err.strip().splitlines()) == 1 and err.startswith("gen3d: error: "), err
    for text in expected:
        assert text in err, err
    assert not out.exists() and not (tmp_path / ".out.lock").exists()


def test_a_root_that_is_not_an_import_is_refused(rendered, tmp_path):
    _refused(
        tmp_path, ["--meshes", str(rendered["src"])], "holds 3 mesh files but no dataset.json", "gen3d data import"
    )
    _refused(tmp_path, ["--meshes", str(tmp_path / "nowhere")], "no such folder")
    procedural = tmp_path / "procedural"
    procedural.mkdir()
    (procedural / "dataset.json").write_text(json.dumps({"generator": "gen3d.procedural", "classes": ["mug"]}))
    _refused(tmp_path, ["--meshes", str(procedural)], "not written by 'gen3d data import'")
    (procedural / "dataset.json").write_text("{not json")
    _refused(tmp_path, ["--meshes", str(procedural)], "dataset.json is unreadable")
    _refused(tmp_path, ["--split", "val"], "--split", "needs --meshes")
    _refused(tmp_path, ["--meshes", str(rendered["root"]), "--per-class", "2"], "--per-class")


def test_a_missing_source_file_is_refused(tmp_path):
    src, root = write_sources(tmp_path / "src"), tmp_path / "root"
    import_folder(src, root)
    (src / "can.stl").unlink()
    _refused(tmp_path, ["--meshes", str(root)], "can.stl", "source file of shape things/can is missing")


def test_output_folder_of_other_files_is_refused_but_partial_renders_are_redone(rendered, tmp_path):
    photos = tmp_path / "photos"
    photos.mkdir()
    (photos / "IMG_0001_01.png").write_bytes(b"mine")
    with pytest.raises(InputError, match="not empty"):
        render_mesh_dataset(photos, rendered["root"], views=2, size=16)
    assert tree(photos) == {"IMG_0001_01.png": b"mine"}
    partial = tmp_path / "partial"
    partial.mkdir()
    (partial / "things_box_00.png").write_bytes(b"partial")
    render_mesh_dataset(partial, rendered["root"], views=2, size=16)
    assert tree(partial) == tree(rendered["views"])
