"""Meshes from point clouds (Poisson, ball pivoting) and from density fields (marching cubes); mesh files.

Point clouds go through open3d: normals are estimated from k nearest neighbours, oriented consistently by
propagation over a tangent-plane graph, and flipped as a whole to point away from the centroid (a closed
shape's outward side). Density fields go through ``skimage.measure.marching_cubes`` on a regular grid.
Every mesh is returned as a ``trimesh.Trimesh`` and written atomically as OBJ, PLY, GLB or STL by
:func:`save_mesh`, gen3d's one mesh writer.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from gen3d.errors import InputError

MESH_SUFFIXES = (".obj", ".ply", ".glb", ".stl")


FLATNESS = 1e-6  # a cloud thinner than this fraction of its size along some direction is flat (or a line, a point)


def check_surface_points(points: Any, source: str | os.PathLike | None = "points") -> np.ndarray:
    """Validate a point cloud to be meshed: finite (P, 3) points spread over three dimensions.

    Normal estimation and orientation fail on clouds with fewer than 4 distinct points and on collinear or
    coplanar ones, so those are refused here, before any reconstruction starts.

    Args:
        points: (P, 3) points.
        source: what to name in the error (the file the points came from).

    Returns:
        The points as a float64 (P, 3) array.

    Raises:
        InputError: not finite (P, 3) points, fewer than 4 distinct points, or a flat cloud.
    """
    from gen3d.data.io import check_points

    arr = check_points(points, source, ndim=(2,)).astype(np.float64)
    distinct = np.unique(arr, axis=0)  # (D, 3)
    if len(distinct) < 4:
        raise InputError(f"needs at least 4 distinct points to build a surface, got {len(distinct)}", source)
    spread = np.linalg.svd(distinct - distinct.mean(axis=0), compute_uv=False)  # (3,) largest first
    if spread[2] <= FLATNESS * spread[0]:
        shape = "collinear" if spread[1] <= FLATNESS * spread[0] else "coplanar"
        raise InputError(f"the points are {shape}; a surface needs a cloud spread over three dimensions", source)
    return arr


def _o3d_cloud(points: np.ndarray, normals: np.ndarray | None = None) -> Any:
    import open3d as o3d

    pcd = o3d.geometry.PointCloud(o3d.utility.Vector3dVector(points))
    if normals is not None:
        pcd.normals = o3d.utility.Vector3dVector(np.asarray(normals, dtype=np.float64))
    return pcd


def estimate_normals(points: Any, k: int = 30, source: str | os.PathLike | None = "points") -> np.ndarray:
    """Unit normals of a point cloud, oriented consistently and pointing outwards.

    Args:
        points: (P, 3) points sampled on a surface.
        k: neighbours used both for the local plane fit and for the orientation graph.
        source: what errors name (the file the points came from).

    Returns:
        (P, 3) float64 unit normals. Orientation is propagated over the k-NN tangent-plane graph, so
        neighbouring normals agree; the whole field is then flipped if most normals point towards the
        centroid.

    Raises:
        InputError: points that :func:`check_surface_points` refuses, or too degenerate to orient.
    """
    import open3d as o3d

    pts = check_surface_points(points, source)
    k = int(max(3, min(k, len(pts) - 1)))
    pcd = _o3d_cloud(pts)
    pcd.estimate_normals(o3d.geometry.KDTreeSearchParamKNN(knn=k))
    try:
        pcd.orient_normals_consistent_tangent_plane(k)
    except RuntimeError as exc:  # a degenerate neighbourhood graph (e.g. a few points, each repeated)
        raise InputError(
            "cannot orient the normals: the points are too few or too degenerate to define a surface", source
        ) from exc
    normals = np.asarray(pcd.normals).copy()  # (P, 3)
    outward = np.sum((pts - pts.mean(axis=0)) * normals, axis=1)  # (P,)
    if np.sum(outward > 0) < np.sum(outward < 0):
        normals = -normals
    return normals


def _to_trimesh(o3d_mesh: Any) -> Any:
    import trimesh

    vertices = np.asarray(o3d_mesh.vertices)  # (V, 3)
    faces = np.asarray(o3d_mesh.triangles)  # (F, 3)
    return trimesh.Trimesh(vertices=vertices, faces=faces, process=False)


POISSON_DEPTHS = (5, 12)  # octree depths accepted: below 2 open3d aborts, below 5 it floods stderr; 2^12 is plenty


def poisson_mesh(
    points: Any,
    depth: int = 8,
    trim: float = 0.02,
    normals: np.ndarray | None = None,
    k: int = 30,
    scale: float = 1.1,
    source: str | os.PathLike | None = "points",
) -> Any:
    """Screened Poisson surface reconstruction of a point cloud.

    Args:
        points: (P, 3) points.
        depth: octree depth (resolution 2^depth) in :data:`POISSON_DEPTHS`; 6-7 for a few thousand points, 8-9
            for dense clouds.
        trim: quantile of the per-vertex sample density below which vertices (and their faces) are
            removed: Poisson closes every surface and invents sheets where there are no points; trimming
            the sparsest vertices cuts those away. 0 keeps the closed surface.
        normals: (P, 3) oriented normals; estimated with :func:`estimate_normals` when None.
        k: neighbours for normal estimation.
        scale: ratio of the reconstruction cube to the points' bounding cube.
        source: what errors name (the file the points came from).

    Returns:
        ``trimesh.Trimesh`` (unprocessed: vertex order as open3d produced it).
    """
    import open3d as o3d

    if not 0.0 <= trim < 1.0:
        raise InputError(f"trim must be a quantile in [0, 1), got {trim}")
    if not POISSON_DEPTHS[0] <= depth <= POISSON_DEPTHS[1]:
        raise InputError(f"Poisson depth must be in [{POISSON_DEPTHS[0]}, {POISSON_DEPTHS[1]}], got {depth}")
    pts = check_surface_points(points, source)
    nrm = estimate_normals(pts, k=k, source=source) if normals is None else np.asarray(normals, dtype=np.float64)
    if nrm.shape != pts.shape:
        raise InputError(f"normals must have the points' shape {pts.shape}, got {nrm.shape}")
    mesh, densities = o3d.geometry.TriangleMesh.create_from_point_cloud_poisson(
        _o3d_cloud(pts, nrm), depth=int(depth), scale=float(scale)
    )
    densities = np.asarray(densities)  # (V,)
    if trim > 0 and len(densities):
        mesh.remove_vertices_by_mask(densities < np.quantile(densities, trim))
    mesh.remove_unreferenced_vertices()
    return _to_trimesh(mesh)


def ball_pivot_mesh(
    points: Any,
    radii: Sequence[float] | None = None,
    normals: np.ndarray | None = None,
    k: int = 30,
    source: str | os.PathLike | None = "points",
) -> Any:
    """Ball-pivoting surface reconstruction: triangles through the input points themselves.

    Args:
        points: (P, 3) points.
        radii: ball radii to pivot, smallest first; by default 1.5, 3 and 6 times the mean
            nearest-neighbour spacing of the distinct points.
        normals: (P, 3) oriented normals; estimated with :func:`estimate_normals` when None.
        k: neighbours for normal estimation.
        source: what errors name (the file the points came from).

    Returns:
        ``trimesh.Trimesh`` whose vertices are the input points (in order).
    """
    import open3d as o3d

    pts = check_surface_points(points, source)
    nrm = estimate_normals(pts, k=k, source=source) if normals is None else np.asarray(normals, dtype=np.float64)
    pcd = _o3d_cloud(pts, nrm)
    if radii is None:  # repeated points would count a spacing of zero
        distinct = _o3d_cloud(np.unique(pts, axis=0))
        spacing = float(np.mean(np.asarray(distinct.compute_nearest_neighbor_distance())))
        radii = [1.5 * spacing, 3.0 * spacing, 6.0 * spacing]
    if not radii or min(radii) <= 0:
        raise InputError(f"ball radii must be positive, got {list(radii)}")
    mesh = o3d.geometry.TriangleMesh.create_from_point_cloud_ball_pivoting(
        pcd, o3d.utility.DoubleVector([float(r) for r in radii])
    )
    return _to_trimesh(mesh)


def mesh_from_points(points: Any, method: str = "poisson", **kwargs: Any) -> Any:
    """Dispatch to :func:`poisson_mesh` (``"poisson"``) or :func:`ball_pivot_mesh` (``"ball_pivot"``).

    Keyword arguments (``source`` included: what errors name) go to the chosen method.
    """
    if method == "poisson":
        return poisson_mesh(points, **kwargs)
    if method in ("ball_pivot", "bpa"):
        return ball_pivot_mesh(points, **kwargs)
    raise InputError(f"unknown surface reconstruction method {method!r}; expected 'poisson' or 'ball_pivot'")


def _check_aabb(aabb: Any) -> np.ndarray:
    box = np.asarray(aabb, dtype=np.float64).reshape(-1)
    if box.shape != (6,) or not np.all(np.isfinite(box)) or np.any(box[3:] <= box[:3]):
        raise InputError(f"aabb must be (xmin, ymin, zmin, xmax, ymax, zmax) with max > min, got {list(box)}")
    return box


def marching_cubes_grid(grid: np.ndarray, aabb: Any, threshold: float, close: bool = True) -> Any:
    """Iso-surface of a density grid sampled at the corners of a regular lattice over ``aabb``.

    Args:
        grid: (Rx, Ry, Rz) densities; ``grid[i, j, k]`` is the value at
            ``min + (i, j, k) * (max - min) / (R - 1)``. The inside is where density > threshold.
        aabb: (6,) box (xmin, ymin, zmin, xmax, ymax, zmax).
        threshold: iso level.
        close: pad the grid with a value far below ``threshold`` so that surfaces cut by the box are
            capped: the mesh is then closed (watertight) whatever the field does at the border, and the
            caps lie on the box faces (within 0.1% of a grid step outside them).

    Returns:
        ``trimesh.Trimesh`` with outward-facing triangles (positive volume when closed); empty when the
        level is never crossed.
    """
    import trimesh
    from skimage import measure

    box = _check_aabb(aabb)
    values = np.asarray(grid, dtype=np.float64)
    if values.ndim != 3 or min(values.shape) < 2:
        raise InputError(f"density grid must be 3-D with at least 2 samples per axis, got shape {values.shape}")
    finite = values[np.isfinite(values)]
    lo = min(float(finite.min()), threshold) if finite.size else threshold
    hi = max(float(finite.max()), threshold) if finite.size else threshold
    values = np.nan_to_num(values, nan=lo - 1.0, posinf=hi + 1.0, neginf=lo - 1.0)  # NaN counts as outside
    spacing = (box[3:] - box[:3]) / (np.asarray(values.shape) - 1)  # (3,)
    origin = box[:3].copy()
    if close:
        # The level crosses between a border sample v > threshold and the pad at a fraction
        # (v - threshold) / (v - pad) <= 1e-3 of a grid step: the cap sits on the box face.
        outside = threshold - 1e3 * max(hi - threshold, abs(threshold), 1.0)
        values = np.pad(values, 1, mode="constant", constant_values=outside)
        origin = origin - spacing
    if not (values.min() < threshold < values.max()):
        return trimesh.Trimesh(vertices=np.zeros((0, 3)), faces=np.zeros((0, 3), dtype=np.int64), process=False)
    verts, faces, _, _ = measure.marching_cubes(
        values, level=threshold, spacing=tuple(spacing), gradient_direction="descent"
    )
    verts = verts + origin  # (V, 3) world coordinates
    faces = faces[:, ::-1]  # skimage winds triangles inwards for a "descent" field; make them face outwards
    return trimesh.Trimesh(vertices=verts, faces=faces, process=False)


def evaluate_grid(
    density_fn: Callable[[Any], Any],
    aabb: Any,
    resolution: int | Sequence[int],
    chunk: int = 65536,
    device: Any = "cpu",
) -> np.ndarray:
    """Sample ``density_fn`` on a regular lattice of ``resolution`` points per axis spanning ``aabb``.

    Args:
        density_fn: maps a float32 torch tensor (M, 3) of positions to densities (M,) or (M, 1).
        aabb: (6,) box (xmin, ymin, zmin, xmax, ymax, zmax).
        resolution: samples per axis (an int, or one per axis).
        chunk: positions per call of ``density_fn`` (bounds memory).
        device: torch device the positions are created on.

    Returns:
        (Rx, Ry, Rz) float32 densities.
    """
    import torch

    box = _check_aabb(aabb)
    res = [int(resolution)] * 3 if np.isscalar(resolution) else [int(r) for r in resolution]  # type: ignore[union-attr]
    if len(res) != 3 or min(res) < 2:
        raise InputError(f"resolution must be at least 2 per axis, got {resolution}")
    if chunk < 1:
        raise InputError(f"chunk must be positive, got {chunk}")
    axes = [torch.linspace(float(box[i]), float(box[3 + i]), res[i], device=device) for i in range(3)]
    out = np.empty(res[0] * res[1] * res[2], dtype=np.float32)
    plane = res[1] * res[2]
    yz = torch.stack(torch.meshgrid(axes[1], axes[2], indexing="ij"), dim=-1).reshape(-1, 2)  # (Ry*Rz, 2)
    flat_index = 0
    with torch.no_grad():
        # Walk x-slabs so memory stays at O(chunk) however large the grid is.
        for start in range(0, res[0] * plane, chunk):
            stop = min(start + chunk, res[0] * plane)
            idx = torch.arange(start, stop, device=device)
            xyz = torch.cat([axes[0][idx // plane][:, None], yz[idx % plane]], dim=1)  # (M, 3)
            sigma = density_fn(xyz)
            sigma = sigma.detach().float().reshape(-1).cpu().numpy() if hasattr(sigma, "detach") else np.asarray(sigma)
            if sigma.size != stop - start:
                raise InputError(f"density_fn returned {sigma.size} values for {stop - start} positions")
            out[flat_index : flat_index + sigma.size] = sigma.reshape(-1)
            flat_index += sigma.size
    return out.reshape(res)


def marching_cubes_field(
    density_fn: Callable[[Any], Any],
    aabb: Any,
    resolution: int = 128,
    threshold: float = 10.0,
    chunk: int = 65536,
    device: Any = "cpu",
    close: bool = True,
) -> Any:
    """Mesh the level set ``density == threshold`` of a field (e.g. a radiance field's sigma).

    Args:
        density_fn: maps a float32 torch tensor (M, 3) of positions to densities (M,) or (M, 1);
            called under ``torch.no_grad()``.
        aabb: (6,) box (xmin, ymin, zmin, xmax, ymax, zmax) to sample.
        resolution: lattice points per axis.
        threshold: iso level; the inside is where density > threshold.
        chunk: positions per call of ``density_fn``.
        device: torch device the positions are created on.
        close: cap surfaces cut by the box so the mesh is closed.

    Returns:
        ``trimesh.Trimesh`` with outward-facing triangles.
    """
    grid = evaluate_grid(density_fn, aabb, resolution, chunk=chunk, device=device)  # (R, R, R)
    return marching_cubes_grid(grid, aabb, threshold, close=close)


def save_mesh(mesh: Any, path: str | os.PathLike) -> Path:
    """Write a mesh atomically; the suffix picks the format (``.obj``, ``.ply``, ``.glb``, ``.stl``).

    Args:
        mesh: ``trimesh.Trimesh`` (or anything with ``vertices`` (V, 3) and ``faces`` (F, 3)).
        path: destination file.

    Returns:
        The written path.
    """
    import trimesh

    from gen3d.utils import atomic_path, check_suffix

    p = Path(path)
    suffix = check_suffix(p, MESH_SUFFIXES, "mesh")
    if not isinstance(mesh, trimesh.Trimesh):
        mesh = trimesh.Trimesh(vertices=np.asarray(mesh.vertices), faces=np.asarray(mesh.faces), process=False)
    if len(mesh.faces) == 0:
        raise InputError("refusing to write an empty mesh (no faces); check the threshold or the input", p)
    with atomic_path(p) as tmp:
        if suffix == ".obj":
            # No normals or texture coordinates: plain v/f records open everywhere and keep vertex order.
            data = trimesh.exchange.obj.export_obj(
                mesh, include_normals=False, include_color=False, include_texture=False
            )
            tmp.write_text(data)
        else:
            mesh.export(str(tmp), file_type=suffix[1:])
    return p
