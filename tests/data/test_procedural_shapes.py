"""Procedural shapes: canonical frame, determinism, variety, the PC15k build and its splits."""

from __future__ import annotations

import json

import numpy as np
import pytest
import trimesh

from gen3d.data import shapes
from gen3d.data.io import load_points
from gen3d.errors import InputError


@pytest.mark.parametrize("name", list(shapes.CLASSES))
def test_every_class_is_a_canonical_closed_mesh(name):
    for index in range(4):
        mesh = shapes.make_shape(name, index, seed=5)
        assert isinstance(mesh, trimesh.Trimesh) and len(mesh.faces) > 0
        lo, hi = mesh.bounds
        np.testing.assert_allclose((lo + hi) / 2, 0.0, atol=1e-9)  # box centred at the origin
        assert abs((hi - lo).max() - 1.0) < 1e-9  # largest side exactly 1: fits the unit cube
        # Every part is closed: each edge is shared by exactly two faces of its part.
        for part in mesh.split(only_watertight=False):
            assert part.is_watertight


@pytest.mark.parametrize("name", list(shapes.CLASSES))
def test_classes_vary_in_proportions_and_parts(name):
    meshes = [shapes.make_shape(name, i, seed=0) for i in range(12)]
    extents = np.array([m.bounding_box.primitive.extents for m in meshes])  # (12, 3)
    assert np.ptp(extents, axis=0).max() > 0.05  # proportions differ
    assert len({len(m.faces) for m in meshes}) > 1  # optional parts / styles differ


def test_upright_classes_have_y_up():
    # Tall classes are taller than wide in y; airplanes are flat in y.
    for name in ("chair", "lamp", "bottle"):
        for i in range(5):
            ext = shapes.make_shape(name, i).extents
            assert ext[1] == pytest.approx(1.0), (name, i, ext)
    for i in range(5):
        ext = shapes.make_shape("airplane", i).extents
        assert ext[1] < 0.5 * max(ext[0], ext[2])


def test_shapes_depend_only_on_seed_class_and_index():
    a = shapes.shape_points("chair", 3, seed=7, points=500)
    shapes.shape_points("table", 0, seed=7, points=500)  # building other shapes in between changes nothing
    np.random.seed(99)  # nor does the global random state
    b = shapes.shape_points("chair", 3, seed=7, points=500)
    np.testing.assert_array_equal(a, b)
    assert a.dtype == np.float32 and a.shape == (500, 3)
    assert not np.array_equal(a, shapes.shape_points("chair", 4, seed=7, points=500))
    assert not np.array_equal(a, shapes.shape_points("chair", 3, seed=8, points=500))
    # The mesh does not depend on the number of points drawn from it.
    np.testing.assert_array_equal(shapes.make_shape("mug", 2, 1).vertices, shapes.make_shape("mug", 2, 1).vertices)


def test_points_lie_on_the_mesh_surface():
    mesh = shapes.make_shape("lamp", 1, seed=2)
    pts = shapes.shape_points("lamp", 1, seed=2, points=300)
    import open3d as o3d

    scene = o3d.t.geometry.RaycastingScene()  # an independent point-to-mesh distance
    scene.add_triangles(
        o3d.core.Tensor(mesh.vertices.astype(np.float32)), o3d.core.Tensor(mesh.faces.astype(np.uint32))
    )
    dist = scene.compute_distance(o3d.core.Tensor(pts)).numpy()
    assert dist.max() < 1e-5


@pytest.mark.parametrize("fractions", [(0.8, 0.1, 0.1), (0.7, 0.15, 0.15), (0.5, 0.5, 0.0), (1.0, 0.0, 0.0)])
def test_split_counts(fractions):
    for n in range(1, 60):
        counts = shapes.split_counts(n, fractions)
        assert sum(counts) == n
        for c, f in zip(counts, fractions, strict=True):
            if f == 0:
                assert c == 0
            elif n >= sum(x > 0 for x in fractions):
                assert c >= 1
            assert abs(c - n * f) <= 2


@pytest.mark.parametrize("bad", ["0.8,0.1", "0.5,0.5,0.5", "a,b,c", "-0.1,0.6,0.5"])
def test_bad_split_strings(bad):
    with pytest.raises(InputError, match="split"):
        shapes.parse_split(bad)


def test_unknown_class():
    with pytest.raises(InputError, match="unknown procedural class 'spoon'"):
        shapes.check_classes("chair,spoon")


def _tree(root):
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_build_dataset_layout_determinism_and_normalization(tmp_path):
    kwargs = {"classes": "chair,mug", "per_class": 5, "seed": 11, "points": 300, "split": "0.6,0.2,0.2"}
    manifest = shapes.build_dataset(tmp_path / "a", **kwargs)
    shapes.build_dataset(tmp_path / "b", **kwargs)
    a, b = _tree(tmp_path / "a"), _tree(tmp_path / "b")
    assert a == b  # byte-identical
    assert manifest["counts"] == {"chair": {"train": 3, "val": 1, "test": 1}, "mug": {"train": 3, "val": 1, "test": 1}}
    npy = sorted(k for k in a if k.endswith(".npy"))
    assert npy == [
        f"{c}/{s}/{i:05d}.npy"
        for c in ("chair", "mug")
        for s, i in (("test", 4), ("train", 0), ("train", 1), ("train", 2), ("val", 3))
    ]
    cloud = np.load(tmp_path / "a" / "mug" / "val" / "00003.npy")
    assert cloud.dtype == np.float32 and cloud.shape == (300, 3)
    np.testing.assert_array_equal(cloud, shapes.shape_points("mug", 3, seed=11, points=300))
    # normalization.json: PointFlow statistics of the train split, recomputed here in float64 with fsum.
    train = np.stack(
        [load_points(tmp_path / "a" / c / "train" / f"{i:05d}.npy") for c in ("chair", "mug") for i in range(3)]
    ).astype(np.float64)
    flat = train.reshape(-1)
    m_all = float(np.sum(flat)) / flat.size
    want_std = (float(np.sum((flat - m_all) ** 2)) / flat.size) ** 0.5
    norm = json.loads((tmp_path / "a" / "normalization.json").read_text())
    np.testing.assert_allclose(norm["mean"], [train[..., k].mean() for k in range(3)], rtol=1e-10, atol=1e-12)
    assert norm["std"] == pytest.approx(want_std, rel=1e-10)
    # generate_split gives the same clouds in memory.
    val = shapes.generate_split("chair,mug", "val", 5, 11, 300, (0.6, 0.2, 0.2))
    assert val.ids == ["00003", "00003"] and val.classes == ["chair", "mug"]
    np.testing.assert_array_equal(val.points[1], cloud)


def test_rebuild_replaces_an_earlier_build_and_refuses_foreign_folders(tmp_path):
    root = tmp_path / "d"
    shapes.build_dataset(root, "chair,table", per_class=6, points=50)
    shapes.build_dataset(root, "chair", per_class=3, points=50)
    files = sorted(p.relative_to(root).as_posix() for p in root.rglob("*.npy"))
    assert files == ["chair/test/00002.npy", "chair/train/00000.npy", "chair/val/00001.npy"]
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("mine")
    with pytest.raises(InputError, match="not empty"):
        shapes.build_dataset(foreign, "chair", per_class=2, points=10)
    assert (foreign / "notes.txt").read_text() == "mine"


@pytest.mark.parametrize(
    ("kwargs", "match"), [({"per_class": 0}, "per-class"), ({"points": 0}, "points"), ({"seed": -1}, "seed")]
)
def test_build_rejects_bad_arguments(tmp_path, kwargs, match):
    with pytest.raises(InputError, match=match):
        shapes.build_dataset(tmp_path / "x", "chair", **{"per_class": 2, "points": 10, **kwargs})
