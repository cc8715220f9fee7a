"""OFF parsing (including ModelNet's malformed header) and mesh loading in every supported format."""

from __future__ import annotations

import numpy as np
import pytest
import trimesh

from gen3d.data.meshes import list_mesh_files, load_mesh
from gen3d.data.off import parse_off, read_off
from gen3d.errors import InputError

CUBE_V = [(0, 0, 0), (1, 0, 0), (1, 1, 0), (0, 1, 0), (0, 0, 1), (1, 0, 1), (1, 1, 1), (0, 1, 1)]
CUBE_QUADS = [(0, 3, 2, 1), (4, 5, 6, 7), (0, 1, 5, 4), (2, 3, 7, 6), (1, 2, 6, 5), (0, 4, 7, 3)]


def _off_text(header="OFF\n", quads=True, eol="\n", extra_vertex="", extra_face="") -> str:
    lines = []
    lines += [" ".join(map(str, v)) + extra_vertex for v in CUBE_V]
    if quads:
        faces = [f"4 {' '.join(map(str, q))}{extra_face}" for q in CUBE_QUADS]
    else:
        faces = [
            f"3 {a} {b} {c}{extra_face}" for q in CUBE_QUADS for (a, b, c) in ((q[0], q[1], q[2]), (q[0], q[2], q[3]))
        ]
    counts = f"{len(CUBE_V)} {len(faces)} 0"
    head = header.replace("{counts}", counts) if "{counts}" in header else header + counts + "\n"
    return (head + "\n".join(lines + faces) + "\n").replace("\n", eol)


def _area(v, f):
    tri = v[f]
    return 0.5 * np.linalg.norm(np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0]), axis=1).sum()


def test_plain_off_matches_trimesh_reader(tmp_path):
    path = tmp_path / "cube.off"
    path.write_text(_off_text(quads=False))
    v, f = read_off(path)
    ref = trimesh.load(str(path), process=False)  # trimesh's own OFF reader as the reference
    np.testing.assert_array_equal(v, np.asarray(ref.vertices))
    np.testing.assert_array_equal(f, np.asarray(ref.faces))


@pytest.mark.parametrize(
    "text",
    [
        _off_text(header="OFF{counts}\n"),  # ModelNet: "OFF8 6 0" on one line
        _off_text(header="OFF {counts}\n"),
        _off_text(eol="\r\n"),
        _off_text(header="# made by hand\nOFF\n\n# counts follow\n"),
        _off_text(header="COFF\n", extra_vertex=" 255 0 0 255", extra_face=" 10 20 30"),
        _off_text(header="NOFF\n", extra_vertex=" 0 0 1"),
    ],
    ids=["modelnet-header", "header-space", "crlf", "comments", "coff-colours", "noff-normals"],
)
def test_off_variants_parse_to_the_cube(text):
    v, f = parse_off(text, "cube.off")
    np.testing.assert_array_equal(v, np.asarray(CUBE_V, dtype=np.float64))
    assert f.shape == (12, 3)  # six quads fan-triangulated
    assert _area(v, f) == pytest.approx(6.0)  # closed form: unit cube


def test_modelnet_header_file_loads_as_mesh(tmp_path):
    path = tmp_path / "chair_0001.off"
    path.write_text(_off_text(header="OFF{counts}\n"))
    assert path.read_text().startswith("OFF8 6 0\n")
    mesh = load_mesh(path)
    assert mesh.area == pytest.approx(6.0) and len(mesh.faces) == 12


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("", "empty OFF"),
        ("PLY\n3 1 0\n", "expected an 'OFF' header"),
        ("OFF\n", "no vertex/face counts"),
        ("OFF\nthree one zero\n", "integer counts"),
        ("OFF\n3 1 0\n0 0 0\n1 0 0\n", "truncated OFF file"),
        ("OFF\n3 1 0\n0 0 0\n1 0\n0 1 0\n3 0 1 2\n", "malformed vertex line"),
        ("OFF\n3 1 0\n0 0 0\n1 0 nan\n0 1 0\n3 0 1 2\n", "NaN or Inf"),
        ("OFF\n3 1 0\n0 0 0\n1 0 0\n0 1 0\n3 0 1 7\n", "face index out of range"),
        ("OFF\n3 1 0\n0 0 0\n1 0 0\n0 1 0\n4 0 1 2\n", "expected 4 vertex indices"),
    ],
)
def test_malformed_off_raises(text, match):
    with pytest.raises(InputError, match=match) as info:
        parse_off(text, "bad.off")
    assert "bad.off" in str(info.value)


def test_binary_off_is_rejected(tmp_path):
    path = tmp_path / "b.off"
    path.write_bytes(b"OFF BINARY\n\xff\xfe\x00\x01")
    with pytest.raises(InputError, match="binary OFF"):
        read_off(path)


BOX = trimesh.creation.box(extents=[2.0, 3.0, 4.0])  # area 2 * (6 + 8 + 12) = 52


@pytest.mark.parametrize("suffix", [".obj", ".ply", ".stl", ".glb", ".off"])
def test_load_mesh_formats(tmp_path, suffix):
    path = tmp_path / f"box{suffix}"
    BOX.export(str(path))
    mesh = load_mesh(path)
    assert isinstance(mesh, trimesh.Trimesh)
    assert mesh.area == pytest.approx(52.0)
    np.testing.assert_allclose(mesh.bounds, [[-1, -1.5, -2], [1, 1.5, 2]], atol=1e-6)


def test_glb_scene_is_flattened_with_transforms(tmp_path):
    scene = trimesh.Scene()
    scene.add_geometry(
        trimesh.creation.box(extents=[1, 1, 1]),
        node_name="a",
        transform=trimesh.transformations.translation_matrix([5, 0, 0]),
    )
    scene.add_geometry(
        trimesh.creation.box(extents=[2, 2, 2]),
        node_name="b",
        transform=trimesh.transformations.translation_matrix([0, -3, 0]),
    )
    path = tmp_path / "scene.glb"
    scene.export(str(path))
    mesh = load_mesh(path)
    assert mesh.area == pytest.approx(6.0 + 24.0)
    np.testing.assert_allclose(mesh.bounds, [[-1, -4, -1], [5.5, 0.5, 1]], atol=1e-6)


def _write_bad_mesh(path, case):
    if case == "empty.obj":
        path.write_text("")
    elif case == "bad.glb":
        path.write_bytes(b"glTF\x02\x00\x00\x00garbage")
    elif case == "points.ply":
        trimesh.PointCloud(np.random.default_rng(0).normal(size=(10, 3))).export(str(path))
    elif case == "cut.ply":
        full = path.with_name("box.ply")
        BOX.export(str(full))
        path.write_bytes(full.read_bytes()[:-30])
    elif case == "flat.off":
        path.write_text("OFF\n3 1 0\n0 0 0\n1 0 0\n2 0 0\n3 0 1 2\n")
    elif case == "x.3ds":
        path.write_bytes(b"")


@pytest.mark.parametrize(
    ("case", "match"),
    [
        ("empty.obj", "empty.obj: no geometry"),
        ("bad.glb", "bad.glb: not a readable .glb mesh"),
        ("points.ply", "points.ply: holds a PointCloud without faces"),
        ("cut.ply", "cut.ply: not a readable .ply mesh"),
        ("flat.off", "zero surface area"),
        ("x.3ds", "unsupported mesh format"),
        ("none.obj", "none.obj: no such file"),
    ],
)
def test_bad_mesh_files(tmp_path, case, match):
    _write_bad_mesh(tmp_path / case, case)
    with pytest.raises(InputError, match=match):
        load_mesh(tmp_path / case)


def test_list_mesh_files_sorted_recursive(tmp_path):
    for rel in ["b/z.obj", "a/y.STL", "a/x.off", "top.glb", "notes.txt"]:
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_bytes(b"")
    assert [f.relative_to(tmp_path).as_posix() for f in list_mesh_files(tmp_path)] == [
        "a/x.off",
        "a/y.STL",
        "b/z.obj",
        "top.glb",
    ]
    with pytest.raises(InputError, match="holds no mesh files"):
        list_mesh_files(tmp_path / "a", suffixes=(".ply",))
