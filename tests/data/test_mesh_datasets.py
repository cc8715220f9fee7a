"""ModelNet40 (OFF, malformed headers included) and mesh-folder datasets on fixtures in their real formats."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import trimesh

from gen3d.data.datasets import MeshFolderDataset, ModelNet40Dataset
from gen3d.data.modelnet import modelnet_files
from gen3d.errors import InputError


def _box_off(extents, header_quirk: bool) -> str:
    box = trimesh.creation.box(extents=extents)
    v, f = box.vertices, box.faces
    counts = f"{len(v)} {len(f)} 0"
    head = f"OFF{counts}\n" if header_quirk else f"OFF\n{counts}\n"
    body = "\n".join(f"{a:.6f} {b:.6f} {c:.6f}" for a, b, c in v) + "\n" + "\n".join(f"3 {a} {b} {c}" for a, b, c in f)
    return head + body + "\n"


@pytest.fixture
def modelnet(tmp_path):
    root = tmp_path / "ModelNet40"
    specs = {"chair": [1.0, 2.0, 3.0], "table": [4.0, 1.0, 2.0]}
    for name, ext in specs.items():
        for split, n in (("train", 2), ("test", 1)):
            (root / name / split).mkdir(parents=True)
            for i in range(n):
                quirk = i == 0  # ModelNet's "OFF8 12 0" first line on half the files
                (root / name / split / f"{name}_{i + 1:04d}.off").write_text(_box_off(ext, quirk))
    return root, specs


def _on_box_surface(points: np.ndarray, extents) -> bool:
    """Every point on the surface of an origin-centred box: inside it, with one coordinate on a face."""
    half = np.asarray(extents) / 2
    inside = (np.abs(points) <= half + 1e-5).all(axis=1)
    on_face = (np.abs(np.abs(points) - half) < 1e-5).any(axis=1)
    return bool((inside & on_face).all())


def test_modelnet_listing(modelnet):
    root, _ = modelnet
    files = modelnet_files(root, None, "train")
    assert [(c, f.name) for c, f in files] == [
        ("chair", "chair_0001.off"),
        ("chair", "chair_0002.off"),
        ("table", "table_0001.off"),
        ("table", "table_0002.off"),
    ]
    with pytest.raises(InputError, match="no ModelNet class folder 'sofa'"):
        modelnet_files(root, "sofa", "train")
    with pytest.raises(InputError, match="unknown ModelNet split 'val'"):
        modelnet_files(root, None, "val")


def test_modelnet_points_lie_on_the_meshes(modelnet):
    root, specs = modelnet
    ds = ModelNet40Dataset(root, split="test", num_points=500, normalize="none")
    assert len(ds) == 2 and ds.classes == ["chair", "table"]
    for i, name in enumerate(["chair", "table"]):
        item = ds[i]
        assert item["class"] == name and item["class_idx"] == i and item["points"].shape == (500, 3)
        assert _on_box_surface(item["points"].numpy().astype(np.float64), specs[name])
    assert torch.equal(ds[0]["points"], ds[0]["points"])  # the test split is deterministic


def test_modelnet_train_resamples_and_box_normalizes(modelnet):
    root, _ = modelnet
    ds = ModelNet40Dataset(root, classes=["table"], split="train", num_points=400)
    a, b = ds[0], ds[0]
    assert not torch.equal(a["points"], b["points"])  # fresh samples per access in training
    pts = a["points"].numpy()
    lo, hi = pts.min(axis=0), pts.max(axis=0)
    assert (hi - lo).max() == pytest.approx(1.0, abs=1e-6)
    restored = a["points"] * a["std"] + a["mean"]
    assert _on_box_surface(restored.numpy().astype(np.float64), [4.0, 1.0, 2.0])


def test_mesh_folder_all_formats(tmp_path):
    box = trimesh.creation.box(extents=[1.0, 2.0, 3.0])
    for rel in ["animals/a.obj", "animals/b.ply", "c.stl", "d.glb", "shapes/e.off"]:
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        box.export(str(tmp_path / rel))
    ds = MeshFolderDataset(tmp_path, num_points=300, normalize="none")
    assert [f.relative_to(tmp_path).as_posix() for f in ds.files] == [
        "animals/a.obj",
        "animals/b.ply",
        "c.stl",
        "d.glb",
        "shapes/e.off",
    ]
    assert ds.labels == ["animals", "animals", ".", ".", "shapes"]
    for i in range(len(ds)):
        item = ds[i]
        assert item["points"].shape == (300, 3)
        assert _on_box_surface(item["points"].numpy().astype(np.float64), [1.0, 2.0, 3.0]), ds.files[i]


def test_mesh_folder_reports_the_bad_file(tmp_path):
    trimesh.creation.box().export(str(tmp_path / "a.obj"))
    (tmp_path / "b.off").write_text("OFF\n3 1 0\n0 0 0\n1 0 0\n")  # truncated
    ds = MeshFolderDataset(tmp_path, num_points=10)
    assert ds[0]["points"].shape == (10, 3)
    with pytest.raises(InputError, match="b.off: truncated OFF file"):
        ds[1]


def test_mesh_datasets_reject_global_normalization_and_empty_folders(tmp_path):
    with pytest.raises(InputError, match="holds no mesh files"):
        MeshFolderDataset(tmp_path)
    trimesh.creation.box().export(str(tmp_path / "a.obj"))
    with pytest.raises(InputError, match="'global'"):
        MeshFolderDataset(tmp_path, normalize="global")
