"""Area-weighted surface sampling: distribution, placement on faces, seeding, bad meshes."""

from __future__ import annotations

import math

import numpy as np
import pytest

from gen3d.data.sampling import face_areas, sample_surface
from gen3d.errors import InputError


def _sigma_bound(p: float, n: int, k: float = 5.0) -> float:
    """k standard deviations of a binomial proportion."""
    return k * math.sqrt(p * (1 - p) / n)


def test_faces_are_chosen_in_proportion_to_area():
    # Two disjoint right triangles with legs (1, 2) and (3, 2): areas 1 and 3.
    vertices = np.array([[0, 0, 0], [1, 0, 0], [0, 2, 0], [5, 0, 0], [8, 0, 0], [5, 2, 0]], dtype=np.float64)
    faces = np.array([[0, 1, 2], [3, 4, 5]])
    np.testing.assert_allclose(face_areas(vertices, faces), [1.0, 3.0])
    n = 40000
    _, face_idx = sample_surface(vertices, faces, n, np.random.default_rng(1), return_faces=True)
    frac = float((face_idx == 1).mean())
    assert abs(frac - 0.75) < _sigma_bound(0.75, n)


def test_points_lie_on_their_faces():
    import trimesh

    mesh = trimesh.creation.icosphere(subdivisions=2)
    v, f = np.asarray(mesh.vertices), np.asarray(mesh.faces)
    pts, face_idx = sample_surface(v, f, 2000, np.random.default_rng(3), return_faces=True)
    assert pts.dtype == np.float32 and pts.shape == (2000, 3)
    tri = v[f[face_idx]]  # (P, 3, 3)
    # Independent barycentric solve in float64: p = a + s (b - a) + t (c - a).
    for p, (a, b, c) in zip(pts.astype(np.float64), tri, strict=True):
        m = np.stack([b - a, c - a], axis=1)  # (3, 2)
        (s, t), *_ = np.linalg.lstsq(m, p - a, rcond=None)
        assert np.linalg.norm(a + m @ [s, t] - p) < 1e-5
        assert s >= -1e-5 and t >= -1e-5 and s + t <= 1 + 1e-5


def test_uniform_inside_a_triangle():
    vertices = np.array([[0, 0, 0], [1, 0, 0], [0, 1, 0]], dtype=np.float64)
    n = 100000
    pts = sample_surface(vertices, np.array([[0, 1, 2]]), n, np.random.default_rng(7)).astype(np.float64)
    # The sub-triangle x + y < 0.5 holds a quarter of the area; the centroid is (1/3, 1/3).
    frac = float((pts[:, 0] + pts[:, 1] < 0.5).mean())
    assert abs(frac - 0.25) < _sigma_bound(0.25, n)
    sd_x = math.sqrt(1 / 18)  # variance of x for the uniform distribution on this triangle
    np.testing.assert_allclose(pts[:, :2].mean(axis=0), [1 / 3, 1 / 3], atol=5 * sd_x / math.sqrt(n))


def test_zero_area_faces_are_never_chosen():
    vertices = np.array([[0, 0, 0], [1, 0, 0], [0, 1, 0], [2, 2, 2]], dtype=np.float64)
    faces = np.array([[0, 1, 1], [0, 1, 2], [3, 3, 3]])  # degenerate, real, degenerate
    _, face_idx = sample_surface(vertices, faces, 5000, np.random.default_rng(0), return_faces=True)
    assert set(face_idx.tolist()) == {1}


def test_seeded_and_independent_of_global_state():
    import trimesh

    mesh = trimesh.creation.box()
    np.random.seed(123)
    state = np.random.get_state()[1].copy()
    a = sample_surface(mesh.vertices, mesh.faces, 500, np.random.default_rng(42))
    b = sample_surface(mesh.vertices, mesh.faces, 500, np.random.default_rng(42))
    c = sample_surface(mesh.vertices, mesh.faces, 500, np.random.default_rng(43))
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    np.testing.assert_array_equal(np.random.get_state()[1], state)  # the global generator was not touched


@pytest.mark.parametrize(
    ("vertices", "faces", "match"),
    [
        (np.zeros((3, 3)), np.array([[0, 1, 2]]), "zero surface area"),
        (np.eye(3), np.zeros((0, 3), dtype=int), "at least one face"),
        (np.array([[0, 0, 0], [1, 0, np.nan], [0, 1, 0]]), np.array([[0, 1, 2]]), "NaN or Inf"),
    ],
)
def test_bad_meshes_raise(vertices, faces, match):
    with pytest.raises(InputError, match=match):
        sample_surface(vertices, faces, 10, np.random.default_rng(0), source="mesh.obj")
