"""Point-cloud conversion: every format round trip, checked with independent readers (open3d, numpy)."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from gen3d.errors import InputError
from gen3d.export.points import convert_points, read_clouds, write_clouds


def _clouds(n: int = 3, p: int = 257, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=(n, p, 3)).astype(np.float32)  # (N, P, 3)


@pytest.mark.parametrize(("src_fmt", "dst_fmt"), list(itertools.permutations([".npz", ".npy"], 2)))
def test_set_round_trip_between_numpy_formats(tmp_path, src_fmt, dst_fmt):
    clouds = _clouds()
    src = tmp_path / f"in{src_fmt}"
    (written,) = write_clouds(clouds, src)
    assert written == src
    (dst,) = convert_points(src, tmp_path / f"out{dst_fmt}")
    if dst_fmt == ".npz":
        with np.load(dst) as data:
            back = data["points"]
    else:
        back = np.load(dst)
    np.testing.assert_array_equal(back, clouds)


def test_set_to_ply_writes_one_file_per_cloud_readable_by_open3d(tmp_path):
    import open3d as o3d

    clouds = _clouds(n=3, p=100)
    np.savez(tmp_path / "set.npz", points=clouds)
    written = convert_points(tmp_path / "set.npz", tmp_path / "cloud.ply")
    assert [w.name for w in written] == ["cloud_000.ply", "cloud_001.ply", "cloud_002.ply"]
    for cloud, path in zip(clouds, written, strict=True):
        pcd = o3d.io.read_point_cloud(str(path))
        np.testing.assert_allclose(np.asarray(pcd.points), cloud.astype(np.float64), rtol=0, atol=0)


@pytest.mark.parametrize("binary", [True, False])
def test_ply_to_npz_round_trip(tmp_path, binary):
    import open3d as o3d

    cloud = _clouds(n=1, p=64)[0].astype(np.float64)
    # Written by open3d, an independent PLY writer.
    pcd = o3d.geometry.PointCloud(o3d.utility.Vector3dVector(cloud))
    o3d.io.write_point_cloud(str(tmp_path / "in.ply"), pcd, write_ascii=not binary)
    (dst,) = convert_points(tmp_path / "in.ply", tmp_path / "out.npz")
    with np.load(dst) as data:  # open3d's ASCII writer keeps about 6 significant digits
        np.testing.assert_allclose(data["points"], cloud, rtol=0, atol=1e-6 if binary else 2e-5)


def test_ascii_ply_output_is_text_and_exact_to_float32_precision(tmp_path):
    cloud = _clouds(n=1, p=50)[0]
    (dst,) = write_clouds(cloud, tmp_path / "a.ply", binary=False)
    assert dst.read_bytes().startswith(b"ply\nformat ascii 1.0")
    np.testing.assert_allclose(read_clouds(dst), cloud, rtol=1e-6, atol=1e-7)


def test_index_picks_one_cloud_and_folder_input_is_a_set(tmp_path):
    clouds = _clouds(n=4, p=20)
    np.save(tmp_path / "set.npy", clouds)
    (one,) = convert_points(tmp_path / "set.npy", tmp_path / "third.ply", index=2)
    np.testing.assert_array_equal(read_clouds(one), clouds[2])
    (last,) = convert_points(tmp_path / "set.npy", tmp_path / "last.npy", index=-1)
    np.testing.assert_array_equal(np.load(last), clouds[3])

    folder = tmp_path / "folder"
    folder.mkdir()
    for i, c in enumerate(clouds):
        np.save(folder / f"{i:02d}.npy", c)
    (stacked,) = convert_points(folder, tmp_path / "stacked.npz")
    with np.load(stacked) as data:
        np.testing.assert_array_equal(data["points"], clouds)


def test_errors_are_input_errors(tmp_path):
    clouds = _clouds(n=2, p=10)
    np.save(tmp_path / "s.npy", clouds)
    with pytest.raises(InputError, match="out of range"):
        convert_points(tmp_path / "s.npy", tmp_path / "x.npz", index=2)
    with pytest.raises(InputError, match="same file"):
        convert_points(tmp_path / "s.npy", tmp_path / "s.npy")
    with pytest.raises(InputError, match="unsupported"):
        convert_points(tmp_path / "s.npy", tmp_path / "x.xyz")
    with pytest.raises(InputError, match="no such"):
        convert_points(tmp_path / "missing.npz", tmp_path / "x.npz")
    (tmp_path / "corrupt.npz").write_bytes(b"PK\x03\x04 truncated")
    with pytest.raises(InputError):
        convert_points(tmp_path / "corrupt.npz", tmp_path / "x.npy")
    bad = clouds.copy()
    bad[0, 0, 0] = np.nan
    with pytest.raises(InputError, match="NaN"):
        write_clouds(bad, tmp_path / "nan.npz")
    assert not (tmp_path / "x.npz").exists() and not (tmp_path / "nan.npz").exists()
