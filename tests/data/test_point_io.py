"""Point-cloud files: PLY/NPY/NPZ round trips, interoperability with open3d and trimesh, bad input."""

from __future__ import annotations

import io
import zipfile

import numpy as np
import pytest

from gen3d.data.io import load_point_set, load_points, save_points
from gen3d.errors import InputError


@pytest.fixture
def cloud():
    return np.random.default_rng(0).normal(size=(257, 3)).astype(np.float32)


@pytest.mark.parametrize("name", ["c.npy", "c.npz", "c_bin.ply", "c_ascii.ply"])
def test_round_trip_single_cloud(tmp_path, cloud, name):
    path = save_points(tmp_path / name, cloud, binary="ascii" not in name)
    out = load_points(path)
    assert out.dtype == np.float32 and out.shape == cloud.shape
    if "ascii" in name:
        np.testing.assert_allclose(out, cloud, rtol=1e-6)  # decimal text
        assert b"format ascii" in path.read_bytes()[:200]
    else:
        np.testing.assert_array_equal(out, cloud)


@pytest.mark.parametrize("binary", [True, False])
def test_written_ply_opens_in_open3d_and_trimesh(tmp_path, cloud, binary):
    import open3d as o3d
    import trimesh

    path = save_points(tmp_path / "c.ply", cloud, binary=binary)
    pcd = o3d.io.read_point_cloud(str(path))
    np.testing.assert_allclose(np.asarray(pcd.points), cloud, rtol=1e-6)
    tm = trimesh.load(str(path))
    assert isinstance(tm, trimesh.PointCloud)
    np.testing.assert_allclose(np.asarray(tm.vertices), cloud, rtol=1e-6)


@pytest.mark.parametrize("ascii_", [False, True])
def test_reads_ply_written_by_open3d(tmp_path, cloud, ascii_):
    import open3d as o3d

    pcd = o3d.geometry.PointCloud(o3d.utility.Vector3dVector(cloud.astype(np.float64)))
    path = tmp_path / "o3d.ply"
    assert o3d.io.write_point_cloud(str(path), pcd, write_ascii=ascii_)
    # open3d's ASCII PLY keeps 6 significant digits; its binary PLY stores doubles.
    np.testing.assert_allclose(load_points(path), cloud, rtol=1e-5 if ascii_ else 1e-7, atol=1e-5 if ascii_ else 0)


def test_sets_in_npy_npz_and_folders(tmp_path):
    clouds = np.random.default_rng(1).normal(size=(4, 100, 3)).astype(np.float32)
    save_points(tmp_path / "s.npy", clouds)
    save_points(tmp_path / "s.npz", clouds)
    np.testing.assert_array_equal(load_point_set(tmp_path / "s.npy"), clouds)
    np.testing.assert_array_equal(load_point_set(tmp_path / "s.npz"), clouds)
    folder = tmp_path / "folder"
    for i, c in enumerate(clouds):  # mixed formats, read in sorted name order
        save_points(folder / f"{i:02d}.{'ply' if i % 2 else 'npy'}", c)
    (folder / "readme.txt").write_text("ignored")
    np.testing.assert_array_equal(load_point_set(folder), clouds)


def test_ply_holds_one_cloud(tmp_path):
    with pytest.raises(InputError, match="shape"):
        save_points(tmp_path / "s.ply", np.zeros((2, 10, 3)))
    assert not (tmp_path / "s.ply").exists()


def _write(path, data: bytes):
    path.write_bytes(data)
    return path


def _bad_files(tmp_path):
    good = save_points(tmp_path / "good.npy", np.ones((20, 3), np.float32)).read_bytes()
    ply = save_points(tmp_path / "good.ply", np.ones((20, 3), np.float32)).read_bytes()
    return {
        "missing": (tmp_path / "missing.npy", "no such file"),
        "empty npy": (_write(tmp_path / "empty.npy", b""), "not a readable .npy"),
        "truncated npy": (_write(tmp_path / "trunc.npy", good[:-17]), "not a readable .npy"),
        "empty ply": (_write(tmp_path / "empty.ply", b""), "not a readable PLY"),
        "truncated ply": (_write(tmp_path / "trunc.ply", ply[:-10]), "not a readable PLY"),
        "corrupt npz": (_write(tmp_path / "bad.npz", b"PK\x03\x04garbage"), "not a readable .npz"),
        "unsupported": (_write(tmp_path / "c.xyz", b"1 2 3\n"), "unsupported point-cloud format"),
        "forged npy": (_write(tmp_path / "forged.npy", _header((2**40, 3)) + b"\0" * 64), r"announces shape"),
        "forged npz": (
            _forged_npz(tmp_path / "forged.npz"),
            r"header of 'points' announces shape \(1099511627776, 3\)",
        ),
        "npy named npz": (_write(tmp_path / "a.npz", good), "found a bare .npy array"),
        "npz named npy": (_renamed_npz(tmp_path / "b.npy"), "found an .npz archive"),
    }


def _header(shape) -> bytes:
    """An .npy header announcing ``shape`` float32 (the data itself is not written)."""
    buf = io.BytesIO()
    np.lib.format.write_array_header_1_0(buf, {"descr": "<f4", "fortran_order": False, "shape": shape})
    return buf.getvalue()


def _forged_npz(path):
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("points.npy", _header((2**40, 3)) + b"\0" * 64)
    return path


def _renamed_npz(path):
    np.savez(path.with_suffix(".npz"), points=np.ones((2, 20, 3), np.float32))
    path.with_suffix(".npz").rename(path)
    return path


@pytest.mark.parametrize(
    "case",
    [
        "missing", "empty npy", "truncated npy", "empty ply", "truncated ply", "corrupt npz", "unsupported",
        "forged npy", "forged npz", "npy named npz", "npz named npy",
    ],
)  # fmt: skip
def test_bad_files_raise_input_error_naming_the_file(tmp_path, case):
    path, match = _bad_files(tmp_path)[case]
    with pytest.raises(InputError, match=match) as info:
        load_points(path)
    assert path.name in str(info.value)


@pytest.mark.parametrize(
    ("array", "match"),
    [
        (np.array([[0.0, 1.0, np.nan]] * 5), "NaN or Inf"),
        (np.array([[0.0, np.inf, 1.0]] * 5), "NaN or Inf"),
        (np.zeros((10, 2)), r"shape \(P, 3\) or \(N, P, 3\), got shape \(10, 2\)"),
        (np.zeros(9), "got shape"),
        (np.zeros((0, 3)), "at least one point"),
        (np.array(["a", "b", "c"]), "numeric"),
    ],
)
def test_bad_arrays(tmp_path, array, match):
    path = tmp_path / "bad.npy"
    np.save(path, array)
    with pytest.raises(InputError, match=match) as info:
        load_points(path)
    assert "bad.npy" in str(info.value)


def test_npz_without_points_key(tmp_path):
    np.savez(tmp_path / "k.npz", xyz=np.zeros((5, 3)))
    with pytest.raises(InputError, match=r"named 'points'.*\['xyz'\]"):
        load_points(tmp_path / "k.npz")


def test_ply_without_vertices(tmp_path):
    path = _write(
        tmp_path / "f.ply",
        b"ply\nformat ascii 1.0\nelement face 0\nproperty list uchar int vertex_indices\nend_header\n",
    )
    with pytest.raises(InputError, match="no 'vertex' element"):
        load_points(path)


def test_fewer_points_than_requested(tmp_path):
    path = save_points(tmp_path / "c.npy", np.zeros((100, 3), np.float32))
    with pytest.raises(InputError, match="100 points per cloud, fewer than the 2048 requested"):
        load_points(path, min_points=2048)


def test_point_set_errors(tmp_path):
    save_points(tmp_path / "one.npy", np.zeros((10, 3)))
    with pytest.raises(InputError, match=r"\(N, P, 3\)"):
        load_point_set(tmp_path / "one.npy")
    with pytest.raises(InputError, match="one cloud"):
        load_point_set(save_points(tmp_path / "one.ply", np.zeros((10, 3))))
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match="no point-cloud files"):
        load_point_set(tmp_path / "empty")
    ragged = tmp_path / "ragged"
    save_points(ragged / "a.npy", np.zeros((10, 3)))
    save_points(ragged / "b.npy", np.zeros((11, 3)))
    with pytest.raises(InputError, match=r"b.npy: has 11 points but \S*a.npy has 10"):
        load_point_set(ragged)
    with pytest.raises(InputError, match="no such file or folder"):
        load_point_set(tmp_path / "nowhere")
