"""Meshing: marching cubes, Poisson and ball pivoting against analytic shapes; mesh files in every format."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from gen3d.errors import InputError
from gen3d.export.mesh import (
    MESH_SUFFIXES,
    ball_pivot_mesh,
    check_surface_points,
    estimate_normals,
    evaluate_grid,
    marching_cubes_field,
    marching_cubes_grid,
    poisson_mesh,
    save_mesh,
)

R = 0.5
UNIT_BOX = (-1.0, -1.0, -1.0, 1.0, 1.0, 1.0)


def sphere_density(xyz: torch.Tensor) -> torch.Tensor:
    """Positive inside a sphere of radius R (a signed distance, negated)."""
    return R - xyz.norm(dim=-1)  # (M,)


def sphere_points(n: int, radius: float = 1.0, seed: int = 0) -> np.ndarray:
    v = np.random.default_rng(seed).normal(size=(n, 3))
    return radius * v / np.linalg.norm(v, axis=1, keepdims=True)  # (n, 3)


@pytest.fixture(scope="module")
def mc_sphere():
    return marching_cubes_field(sphere_density, UNIT_BOX, resolution=40, threshold=0.0)


def test_evaluate_grid_matches_a_numpy_lattice():
    aabb = (-1.0, 0.0, 2.0, 1.0, 0.5, 3.0)
    res = (5, 4, 3)
    # density = x + 10 y + 100 z identifies each lattice point's position.
    grid = evaluate_grid(lambda p: p[:, 0] + 10 * p[:, 1] + 100 * p[:, 2], aabb, res, chunk=7)
    xs, ys, zs = (np.linspace(aabb[i], aabb[3 + i], res[i]) for i in range(3))
    expected = xs[:, None, None] + 10 * ys[None, :, None] + 100 * zs[None, None, :]
    np.testing.assert_allclose(grid, expected, rtol=0, atol=1e-4)


def test_marching_cubes_sphere_is_watertight_outward_and_accurate(mc_sphere):
    mesh = mc_sphere
    assert mesh.is_watertight
    assert mesh.volume > 0  # outward-facing triangles
    radii = np.linalg.norm(mesh.vertices, axis=1)
    spacing = 2.0 / 39
    assert np.abs(radii - R).mean() < 0.05 * spacing
    assert np.abs(radii - R).max() < 0.5 * spacing
    assert mesh.volume == pytest.approx(4.0 / 3.0 * math.pi * R**3, rel=0.01)
    # Normals agree with the analytic (radial) normals.
    cos = np.sum(mesh.face_normals * mesh.triangles_center / np.linalg.norm(mesh.triangles_center, axis=1)[:, None], 1)
    assert cos.min() > 0.8


def test_marching_cubes_is_independent_of_chunking(mc_sphere):
    other = marching_cubes_field(sphere_density, UNIT_BOX, resolution=40, threshold=0.0, chunk=999)
    np.testing.assert_array_equal(other.vertices, mc_sphere.vertices)
    np.testing.assert_array_equal(other.faces, mc_sphere.faces)


def test_surface_cut_by_the_box_is_capped_and_matches_the_cut_sphere_volume():
    cut = -0.3  # plane x = cut
    mesh = marching_cubes_field(sphere_density, (cut, -1, -1, 1, 1, 1), resolution=60, threshold=0.0)
    assert mesh.is_watertight
    spacing = (1 - cut) / 59
    assert cut - 1e-3 * spacing <= mesh.vertices[:, 0].min() <= cut  # the cap lies on the box face
    h = R + cut  # height of the removed cap
    expected = 4.0 / 3.0 * math.pi * R**3 - math.pi * h**2 * (3 * R - h) / 3.0
    assert mesh.volume == pytest.approx(expected, rel=0.01)
    open_mesh = marching_cubes_field(sphere_density, (cut, -1, -1, 1, 1, 1), resolution=60, threshold=0.0, close=False)
    assert not open_mesh.is_watertight


def test_marching_cubes_grid_edge_cases():
    assert len(marching_cubes_grid(np.zeros((4, 4, 4)), UNIT_BOX, threshold=1.0).faces) == 0
    with pytest.raises(InputError, match="aabb"):
        marching_cubes_grid(np.zeros((4, 4, 4)), (0, 0, 0, 0, 1, 1), threshold=0.5)
    with pytest.raises(InputError, match="3-D"):
        marching_cubes_grid(np.zeros((4, 4)), UNIT_BOX, threshold=0.5)
    with pytest.raises(InputError, match="empty mesh"):
        save_mesh(marching_cubes_grid(np.zeros((4, 4, 4)), UNIT_BOX, threshold=1.0), "never.obj")


def test_normals_are_consistent_and_outward_on_a_torus():
    # A torus is not star-shaped around its centroid, so orientation needs real propagation.
    rng = np.random.default_rng(1)
    major, minor = 1.0, 0.35
    u, v = rng.uniform(0, 2 * np.pi, (2, 3000))
    ring = np.stack([np.cos(u), np.zeros_like(u), np.sin(u)], 1)
    tube_dir = np.cos(v)[:, None] * ring + np.sin(v)[:, None] * np.array([0.0, 1.0, 0.0])
    points = major * ring + minor * tube_dir
    normals = estimate_normals(points, k=20)
    cos = np.sum(normals * tube_dir, axis=1)  # analytic outward normal = tube_dir
    assert np.allclose(np.linalg.norm(normals, axis=1), 1.0)
    assert np.mean(cos > 0.9) > 0.99


def test_poisson_sphere_is_watertight_before_trimming_and_accurate():
    points = sphere_points(2000)
    mesh = poisson_mesh(points, depth=6, trim=0.0)
    assert mesh.is_watertight
    radii = np.linalg.norm(mesh.vertices, axis=1)
    assert np.abs(radii - 1.0).mean() < 0.01
    assert mesh.volume == pytest.approx(4.0 / 3.0 * math.pi, rel=0.02)
    trimmed = poisson_mesh(points, depth=6, trim=0.1)
    assert 0.85 * len(mesh.vertices) < len(trimmed.vertices) < 0.95 * len(mesh.vertices)


def test_ball_pivoting_uses_the_input_points():
    points = sphere_points(1500, radius=2.0)
    mesh = ball_pivot_mesh(points)
    np.testing.assert_allclose(mesh.vertices, points)
    # A closed triangulated sphere has F = 2V - 4; ball pivoting should come close.
    assert len(mesh.faces) > 0.95 * (2 * len(points) - 4)
    centroid_r = np.linalg.norm(mesh.triangles_center, axis=1)
    assert np.all(centroid_r > 2.0 * 0.95)


def test_mesh_errors():
    with pytest.raises(InputError, match="at least 4"):
        poisson_mesh(np.zeros((3, 3)))
    with pytest.raises(InputError, match="trim"):
        poisson_mesh(sphere_points(100), trim=1.5)
    with pytest.raises(InputError, match="radii"):
        ball_pivot_mesh(sphere_points(100), radii=[0.0])


@pytest.mark.parametrize("suffix", MESH_SUFFIXES)
def test_mesh_files_reload_in_trimesh_and_open3d(tmp_path, mc_sphere, suffix):
    import open3d as o3d
    import trimesh

    path = save_mesh(mc_sphere, tmp_path / f"sphere{suffix}")
    assert [p.name for p in tmp_path.iterdir()] == [path.name]  # no temporary file left behind
    n_v, n_f = len(mc_sphere.vertices), len(mc_sphere.faces)

    loaded = trimesh.load(str(path), force="mesh", process=suffix == ".stl")  # STL stores unshared corners
    assert (len(loaded.vertices), len(loaded.faces)) == (n_v, n_f)
    assert loaded.is_watertight
    assert loaded.volume == pytest.approx(mc_sphere.volume, rel=1e-5)

    o3d_mesh = o3d.io.read_triangle_mesh(str(path))
    if suffix == ".stl":
        o3d_mesh.remove_duplicated_vertices()
    assert (len(o3d_mesh.vertices), len(o3d_mesh.triangles)) == (n_v, n_f)
    if suffix != ".stl":  # formats with shared vertices keep vertex order
        np.testing.assert_allclose(np.asarray(o3d_mesh.vertices), mc_sphere.vertices, atol=1e-6)
        np.testing.assert_array_equal(np.asarray(o3d_mesh.triangles), mc_sphere.faces)


def test_save_mesh_rejects_unknown_suffix(tmp_path, mc_sphere):
    with pytest.raises(InputError, match="unsupported mesh format"):
        save_mesh(mc_sphere, tmp_path / "x.fbx")


@pytest.mark.parametrize(
    ("points", "message"),
    [
        (np.repeat(np.eye(3)[:2], 10, axis=0), "at least 4 distinct points to build a surface, got 2"),
        (np.c_[np.linspace(-1, 1, 50), np.zeros((50, 2))], "collinear"),
        (np.c_[np.random.default_rng(0).uniform(-1, 1, (50, 2)), np.zeros(50)], "coplanar"),
        (np.repeat(np.eye(4, 3, k=-1), 16, axis=0), "cannot orient the normals"),  # 4 points, each 16 times
    ],
    ids=["two-points", "line", "plane", "four-points-repeated"],
)
@pytest.mark.parametrize("mesher", [poisson_mesh, ball_pivot_mesh])
def test_degenerate_clouds_are_refused_naming_their_source(points, message, mesher):
    """No reconstruction starts on points that cannot define a surface; the error names the points' file."""
    with pytest.raises(InputError, match=message) as info:
        mesher(points, source="shape.npy")
    assert info.value.path == "shape.npy"
    with pytest.raises(InputError, match=message):
        check_surface_points(points) if "orient" not in message else estimate_normals(points)


def test_ball_pivoting_default_radii_ignore_repeated_points():
    points = np.repeat(sphere_points(300, seed=2), 2, axis=0)  # every point twice: nearest distances of 0
    mesh = ball_pivot_mesh(points)
    assert len(mesh.faces) > 0
