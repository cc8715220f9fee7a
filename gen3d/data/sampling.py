"""Uniform surface sampling of triangle meshes with an explicit, seeded random generator.

Faces are drawn with probability proportional to their area, then a point is drawn uniformly inside the
chosen triangle from two uniform numbers (folded back into the triangle when they fall outside it). The
only randomness comes from the ``numpy.random.Generator`` passed in, so equal seeds give identical points
regardless of any global random state.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from gen3d.errors import InputError


def face_areas(vertices: np.ndarray, faces: np.ndarray) -> np.ndarray:
    """Triangle areas.

    Args:
        vertices: (V, 3) float vertex positions.
        faces: (F, 3) int vertex indices.

    Returns:
        (F,) float64 areas.
    """
    tri = np.asarray(vertices, dtype=np.float64)[np.asarray(faces)]  # (F, 3, 3)
    cross = np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])  # (F, 3)
    return 0.5 * np.linalg.norm(cross, axis=-1)


def sample_surface(
    vertices: np.ndarray,
    faces: np.ndarray,
    count: int,
    rng: np.random.Generator,
    source: str | os.PathLike | None = None,
    return_faces: bool = False,
) -> np.ndarray | tuple[np.ndarray, np.ndarray]:
    """Area-weighted uniform samples on a triangle mesh surface.

    Args:
        vertices: (V, 3) vertex positions.
        faces: (F, 3) triangle vertex indices.
        count: number of points P to draw.
        rng: the random generator (the only source of randomness).
        source: the mesh file, named in error messages.
        return_faces: also return the index of the face each point lies on.

    Returns:
        points: (P, 3) float32 points on the surface; with ``return_faces`` also (P,) int64 face indices.
    """
    vertices = np.asarray(vertices, dtype=np.float64)
    faces = np.asarray(faces)
    if count < 0:
        raise InputError(f"cannot draw a negative number of points ({count})", source)
    if faces.ndim != 2 or faces.shape[1] != 3 or len(faces) == 0:
        raise InputError(f"expected a triangle mesh with at least one face, got faces of shape {faces.shape}", source)
    if not np.isfinite(vertices).all():
        raise InputError("mesh has NaN or Inf vertex coordinates", source)
    areas = face_areas(vertices, faces)  # (F,)
    cdf = np.cumsum(areas)  # (F,)
    total = cdf[-1]
    if not total > 0:
        raise InputError("mesh has zero surface area; cannot sample points on it", source)
    # Face choice by inverse CDF on the cumulative areas; zero-area faces own an empty interval.
    face_idx = np.searchsorted(cdf, rng.random(count) * total, side="right")  # (P,)
    face_idx = np.minimum(face_idx, len(faces) - 1)
    u = rng.random(count)  # (P,)
    v = rng.random(count)  # (P,)
    outside = u + v > 1.0
    u[outside], v[outside] = 1.0 - u[outside], 1.0 - v[outside]
    tri = vertices[faces[face_idx]]  # (P, 3, 3)
    points = tri[:, 0] + u[:, None] * (tri[:, 1] - tri[:, 0]) + v[:, None] * (tri[:, 2] - tri[:, 0])  # (P, 3)
    points = points.astype(np.float32)
    if return_faces:
        return points, face_idx.astype(np.int64)
    return points


def sample_mesh(mesh: Any, count: int, rng: np.random.Generator, source: str | os.PathLike | None = None) -> np.ndarray:
    """:func:`sample_surface` on a ``trimesh.Trimesh`` (or anything with ``vertices`` and ``faces``).

    Args:
        mesh: the mesh.
        count: number of points P.
        rng: the random generator.
        source: the mesh file, named in error messages.

    Returns:
        (P, 3) float32 points.
    """
    return sample_surface(np.asarray(mesh.vertices), np.asarray(mesh.faces), count, rng, source=source)  # type: ignore[return-value]
