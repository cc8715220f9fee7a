"""3D evaluation of 3D-aware GANs (GRAF, pi-GAN): surface point clouds of generated radiance fields, scored
against the procedural shapes with the point-cloud metrics (MMD, COV, 1-NNA, JSD).

FID and KID judge renders; these metrics judge the geometry behind them. The protocol:

- **Surface.** The density of one scene is sampled on a ``resolution^3`` grid spanning ``[-bound, bound]^3``
  (:func:`gen3d.export.field.density_grid`; default 64 points per axis) and meshed by marching cubes at the
  density iso-level ``level`` (default 10, pi-GAN's threshold and the mesh export's,
  :data:`gen3d.export.field.DEFAULT_LEVEL`): the solid is where ``sigma > level``. The field counts as empty
  outside the cube (the grid is padded with zero density), so matter that reaches the cube's faces is closed
  there instead of leaving an open surface. The default ``bound`` is the generator's scene box
  (:attr:`~gen3d.models.graf.generator.Generator.scene_bound`): a triplane or voxel field's own cube (0.6 in the
  shapes preset: one grid cell is ``1.2 / 63 = 0.019`` units), else ``max_radius - near`` (1 for an MLP field at
  radius 2.5, near 1.5, as the demo's mesh export: every point of that ball lies within ``[near, far]`` of every
  camera; one cell is ``2 / 63 = 0.032`` units; at 48 points per axis the chairs' legs start to vanish).
- **Points.** ``n_points`` (default 2048, the PointFlow / LION protocol) area-weighted samples on the mesh
  (:func:`gen3d.data.sampling.sample_surface`, seeded).
- **Frame.** The renders (:func:`gen3d.data.multiview.render_multiview`) put each shape, in its canonical
  frame (y up, bounding box centred, largest side 1), into GRAF's z-up world by ``(x, y, z) -> (x, -z, y)``
  without scaling, cameras at radius 2.5 in those units. So the generator's world units are the shapes' units,
  and the surface points are turned back by the inverse rotation ``(x, y, z) -> (x, z, -y)``.
- **Normalisation.** None beyond that, for every row alike: generated clouds, references and the oracle are
  all compared in the shapes' canonical frame, as LION's demo evaluation compares samples and references in the
  data frame (its global normalisation is undone before :func:`gen3d.metrics.point_cloud_metrics`). MMD-CD is
  in squared canonical units; JSD's grid is the sphere of radius 0.5, which holds the canonical shapes.
- **No surface.** A scene whose density never exceeds ``level`` on the grid (an untrained generator, a collapsed
  one) or is not finite has no surface: its cloud is ``n_points`` copies of the origin, a cloud no mesh yields
  (:func:`has_surface` tells them apart). Such a generator is scored, badly (its clouds coincide and are far
  from every shape), instead of stopping the evaluation; rows count these clouds in ``empty``.
- **References.** The first ``per_class`` training shapes of each class, their *outer* surface
  (:func:`outer_surface_points`): a procedural mesh is a union of closed parts, and the faces inside the solid
  (where a wheel sinks into a car's body, under a cabin standing on it) appear in no render, so no generator
  trained on renders can produce them. Against every face (:func:`gen3d.data.shapes.shape_points`, ``surface=
  "all"``), a generator that reproduces held-out chairs, cars and mugs exactly (their marching-cubes surfaces)
  scores 1-NNA-CD 58 % and MMD-CD 2.9e-3 where the held-out shapes themselves score 38 % and 2.5e-3 (24 clouds
  a side); against the outer surface it scores 40 % and 2.5e-3, like them.
- **Rows.** Scored against the references, with their distance matrices computed once: the trained generator,
  an untrained one (the same architecture freshly initialised), and held-out shapes of the same classes, same
  surface (the oracle: what a perfect generator scores at this sample size). Generated rows have as many clouds
  as there are references, from the codes of seed ``seed`` (the first codes
  :func:`~gen3d.pipelines.graf_eval.generate_images` renders with that seed).

Cost: one field evaluation per grid point, ``resolution^3`` per scene (about 1 s for the shapes preset's
generator at 64^3 on two CPU cores); the Chamfer metrics of 48 against 48 clouds of 2048 points take about 5 s a
row. The approximate EMD (``emd="approx"``) would add a few minutes a row, so it is off by default.

Example:
    >>> res = geometry_metrics(gen, untrained, GeometryProtocol("chair,car,mug", per_class=16, heldout_first=32))
    >>> res["rows"]["trained"]["1-NNA-CD"]  # percent, 50 is ideal
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from gen3d.errors import InputError

if TYPE_CHECKING:  # the CLI imports this module for its defaults and must not pull in torch or numpy
    import numpy as np
    from torch import Tensor

    from gen3d.models.graf.field import RadianceField
    from gen3d.models.graf.generator import Generator

DEFAULT_LEVEL = 10.0  # density iso-level, = gen3d.export.field.DEFAULT_LEVEL (pi-GAN's extract_shapes threshold)
DEFAULT_RESOLUTION = 64  # density grid points per axis
DEFAULT_POINTS = 2048  # points per cloud (PointFlow / LION)
EMD_MODES = ("none", "approx", "exact")
SURFACES = ("outer", "all")  # reference surfaces: the union's boundary, or every face of the parts
TRAINED, UNTRAINED, ORACLE = "trained", "untrained", "oracle"


def world_to_canonical(points: np.ndarray) -> np.ndarray:
    """GRAF's z-up world to the shapes' y-up canonical frame: ``(x, y, z) -> (x, z, -y)``, the inverse of the
    renders' ``(x, y, z) -> (x, -z, y)``.

    Args:
        points: (..., 3).

    Returns:
        (..., 3), same dtype.
    """
    import numpy as np

    from gen3d.data.multiview import Y_UP_TO_Z_UP

    return points @ np.asarray(Y_UP_TO_Z_UP, dtype=points.dtype)  # row vectors times R: R^T p


def surface_mesh(
    field: RadianceField,
    z: Tensor,
    level: float = DEFAULT_LEVEL,
    resolution: int = DEFAULT_RESOLUTION,
    bound: float = 1.0,
) -> tuple[np.ndarray, np.ndarray] | None:
    """The level set ``sigma = level`` of one scene by marching cubes, in GRAF's world frame (z up).

    The density is sampled on a ``resolution^3`` grid over ``[-bound, bound]^3`` and taken as zero outside it.

    Args:
        field: the radiance field.
        z: one latent code (Z,) or (1, Z).
        level: density iso-level (> 0); the solid is where the density exceeds it.
        resolution: grid points per axis (>= 2).
        bound: half side of the cube.

    Returns:
        ``(vertices (V, 3) float64, faces (F, 3) int)``, or None when there is no surface: the density stays at
        or below ``level`` on the grid, is not finite, or the surface has no area.
    """
    import numpy as np
    from skimage.measure import marching_cubes

    from gen3d.data.sampling import face_areas
    from gen3d.export.field import density_grid

    vol = density_grid(field, z, resolution, bound)  # (R, R, R), [i, j, k] = point (x_i, y_j, z_k)
    if not np.isfinite(vol).all() or not float(vol.max()) > level:
        return None
    vol = np.pad(vol, 1, constant_values=0.0)  # (R + 2)^3: empty outside the cube, so every surface is closed
    h = 2.0 * bound / (resolution - 1)  # grid spacing
    verts, faces, _, _ = marching_cubes(vol, level=level, spacing=(h, h, h))
    verts = verts.astype(np.float64) - (bound + h)  # padded grid index 0 lies at -bound - h
    if len(faces) == 0 or not face_areas(verts, faces).sum() > 0:
        return None
    return verts, faces


def has_surface(cloud: np.ndarray) -> bool:
    """False for the cloud :func:`surface_points` returns for a scene without a surface (all points at the origin)."""
    import numpy as np

    return bool(np.any(cloud))


def surface_points(
    field: RadianceField,
    z: Tensor,
    n_points: int = DEFAULT_POINTS,
    level: float = DEFAULT_LEVEL,
    resolution: int = DEFAULT_RESOLUTION,
    bound: float = 1.0,
    seed: int | Sequence[int] = 0,
) -> np.ndarray:
    """Points on the surface of one generated scene, in the shapes' canonical frame (y up).

    Marching cubes at ``level`` (:func:`surface_mesh`), ``n_points`` area-weighted samples, then the world's
    z-up coordinates turned to the canonical frame (:func:`world_to_canonical`).

    Args:
        field: the radiance field.
        z: one latent code (Z,) or (1, Z).
        n_points: points P.
        level: density iso-level (> 0).
        resolution: grid points per axis (>= 2).
        bound: half side of the meshed cube, in world units (= the shapes' units).
        seed: seed of the surface samples (an int or a sequence of ints, as ``numpy.random.default_rng``).

    Returns:
        (P, 3) float32; P copies of the origin when the scene has no surface (see :func:`has_surface`).
    """
    import numpy as np

    from gen3d.data.sampling import sample_surface

    _check_extraction(n_points, level, resolution, bound)
    mesh = surface_mesh(field, z, level, resolution, bound)
    if mesh is None:
        return np.zeros((n_points, 3), np.float32)
    points = sample_surface(mesh[0], mesh[1], n_points, np.random.default_rng(seed))  # (P, 3) world, z up
    return world_to_canonical(points).astype(np.float32)


def _check_extraction(n_points: int, level: float, resolution: int, bound: float) -> None:
    if n_points < 1 or resolution < 2:
        raise InputError(f"need n_points >= 1 and resolution >= 2, got {n_points} and {resolution}")
    if not (math.isfinite(level) and level > 0 and math.isfinite(bound) and bound > 0):
        raise InputError(f"the iso-level and the bound must be positive, got level={level}, bound={bound}")


def default_bound(generator: Generator) -> float:
    """Half side of the meshed cube: the generator's scene box (:attr:`Generator.scene_bound`: a triplane or voxel
    field's own cube, else ``max_radius - near``, the cube whose centred ball every ray crosses whole)."""
    return float(generator.scene_bound)


def generator_clouds(
    generator: Generator,
    n: int,
    seed: int = 0,
    n_points: int = DEFAULT_POINTS,
    level: float = DEFAULT_LEVEL,
    resolution: int = DEFAULT_RESOLUTION,
    bound: float | None = None,
    progress: bool | None = None,
) -> np.ndarray:
    """Surface clouds of ``n`` scenes of random codes, in the shapes' canonical frame.

    Args:
        generator: the generator (its field is evaluated where its parameters are).
        n: number of scenes.
        seed: seed of the codes (the codes :func:`~gen3d.pipelines.graf_eval.generate_images` draws first) and of
            the surface samples.
        n_points: points per cloud.
        level: density iso-level.
        resolution: grid points per axis.
        bound: half side of the meshed cube (default :func:`default_bound`).
        progress: show a progress bar (default: on a terminal).

    Returns:
        (n, n_points, 3) float32; scenes without a surface are clouds at the origin (:func:`has_surface`).
    """
    import numpy as np
    import torch

    from gen3d.utils import progress as progress_bar

    if n < 1:
        raise InputError(f"need at least one cloud, got n={n}")
    bound = default_bound(generator) if bound is None else float(bound)
    _check_extraction(n_points, level, resolution, bound)
    z = generator.field.sample_z(n, generator=torch.Generator().manual_seed(seed))  # (n, Z)
    clouds = [
        surface_points(generator.field, z[i], n_points, level, resolution, bound, seed=(seed, i))
        for i in progress_bar(range(n), "surface points", disable=None if progress is None else not progress)
    ]
    return np.stack(clouds)


def outer_surface_points(name: str, index: int, seed: int = 0, n_points: int = DEFAULT_POINTS) -> np.ndarray:
    """Area-weighted samples of the outer surface of one procedural shape, in its canonical frame.

    A procedural mesh is a union of closed parts that may interpenetrate or touch (a car's cabin stands on its
    body, a wheel sinks into it): some of its faces lie inside the solid, where no render can see them. A sample
    ``p`` on a face of normal ``n`` is kept when ``p + eps n`` or ``p - eps n`` lies outside every part
    (``eps = 1e-4``), i.e. when ``p`` is on the boundary of the union; samples are drawn (seeded as
    :func:`gen3d.data.shapes.shape_points`) until ``n_points`` are kept.

    Args:
        name: class name.
        index: shape index within the class.
        seed: the data's seed.
        n_points: points P.

    Returns:
        (P, 3) float32.
    """
    import numpy as np
    import open3d as o3d
    from trimesh.graph import connected_component_labels

    from gen3d.data.sampling import sample_surface
    from gen3d.data.shapes import make_shape, shape_seed

    mesh = make_shape(name, index, seed)
    rng = np.random.default_rng(shape_seed(seed, name, index, stream=1))
    verts, faces, normals = np.asarray(mesh.vertices), np.asarray(mesh.faces), np.asarray(mesh.face_normals)
    parts = connected_component_labels(mesh.face_adjacency, node_count=len(faces))  # (F,) closed part of each face
    scenes = []
    for k in np.unique(parts):
        scene = o3d.t.geometry.RaycastingScene()
        scene.add_triangles(
            o3d.core.Tensor(verts.astype(np.float32)), o3d.core.Tensor(faces[parts == k].astype(np.uint32))
        )
        scenes.append(scene)

    def outside(q: np.ndarray) -> np.ndarray:  # (M,) outside every part
        q_t = o3d.core.Tensor(q.astype(np.float32))
        return ~np.any([scene.compute_occupancy(q_t).numpy() > 0 for scene in scenes], axis=0)

    kept, count = [], 0
    for _ in range(64):  # the outer surface is most of the area: one round almost always suffices
        pts, face = sample_surface(verts, faces, 2 * n_points, rng, return_faces=True)  # (2P, 3), (2P,)
        step = 1e-4 * normals[face]
        pts = pts[outside(pts + step) | outside(pts - step)]
        kept.append(pts)
        count += len(pts)
        if count >= n_points:
            return np.concatenate(kept)[:n_points].astype(np.float32)
    raise InputError(f"{name} {index}: almost none of the mesh's surface is outer surface")


def reference_clouds(
    classes: Sequence[str] | str,
    per_class: int,
    first_index: int = 0,
    seed: int = 0,
    n_points: int = DEFAULT_POINTS,
    surface: str = "outer",
) -> np.ndarray:
    """Surface points of procedural shapes in their canonical frame.

    Args:
        classes: class names (a list or a comma-separated string).
        per_class: shapes per class: indices ``first_index .. first_index + per_class - 1``.
        first_index: index of the first shape of each class.
        seed: the data's seed (``gen3d data multiview --seed``).
        n_points: points per cloud.
        surface: ``"outer"`` (:func:`outer_surface_points`: what renders show) or ``"all"`` (every face,
            :func:`gen3d.data.shapes.shape_points`, the point-cloud datasets' clouds).

    Returns:
        (len(classes) * per_class, n_points, 3) float32, class by class.
    """
    import numpy as np

    from gen3d.data.shapes import check_classes, shape_points

    if per_class < 1 or n_points < 1 or first_index < 0:
        raise InputError(
            f"need per_class >= 1, n_points >= 1, first_index >= 0; got {per_class}, {n_points}, {first_index}"
        )
    if surface not in SURFACES:
        raise InputError(f"surface must be one of {', '.join(SURFACES)}, got {surface!r}")
    sample = outer_surface_points if surface == "outer" else shape_points
    names = check_classes(classes)
    indices = range(first_index, first_index + per_class)
    return np.stack([sample(name, i, seed, n_points) for name in names for i in indices])


@dataclass(frozen=True)
class GeometryProtocol:
    """Settings of the 3D evaluation (see the module docstring); checked when built.

    Attributes:
        classes: procedural classes of the data (a list or a comma-separated string).
        per_class: reference shapes per class: training shapes ``0 .. per_class - 1`` of each class.
        heldout_per_class: held-out shapes per class, the oracle row (default ``per_class``: as many clouds as
            references).
        heldout_first: index of the first held-out shape of each class (default ``per_class``); set it to the
            number of training shapes per class so that the oracle's shapes were never trained on.
        data_seed: seed of the procedural shapes (the data's seed).
        n_points: points per cloud.
        resolution: density grid points per axis.
        level: density iso-level.
        bound: half side of the meshed cube (None: :func:`default_bound` of each generator).
        surface: surface of the references and the oracle, ``"outer"`` (default) or ``"all"``
            (:func:`reference_clouds`).
        emd: ``"none"`` (Chamfer metrics and JSD only, the cheap default), ``"approx"`` or ``"exact"``.
    """

    classes: Sequence[str] | str = "chair,car,mug"
    per_class: int = 16
    heldout_per_class: int | None = None
    heldout_first: int | None = None
    data_seed: int = 0
    n_points: int = DEFAULT_POINTS
    resolution: int = DEFAULT_RESOLUTION
    level: float = DEFAULT_LEVEL
    bound: float | None = None
    surface: str = "outer"
    emd: str = "none"

    def __post_init__(self) -> None:
        from gen3d.data.shapes import check_classes

        held_n = self.per_class if self.heldout_per_class is None else self.heldout_per_class
        held_first = self.per_class if self.heldout_first is None else self.heldout_first
        if min(self.per_class, held_n, self.n_points) < 1 or self.resolution < 2:
            raise InputError(
                "geometry: per_class, heldout_per_class and n_points must be at least 1 and resolution at least 2; "
                f"got {self.per_class}, {held_n}, {self.n_points} and {self.resolution}"
            )
        if held_first < self.per_class or self.data_seed < 0:
            raise InputError(
                f"geometry: the held-out shapes must come after the {self.per_class} reference shapes of each class "
                f"(got heldout_first={held_first}) and data_seed must be non-negative (got {self.data_seed})"
            )
        _check_extraction(self.n_points, self.level, self.resolution, 1.0 if self.bound is None else self.bound)
        if self.surface not in SURFACES:
            raise InputError(f"geometry: surface must be one of {', '.join(SURFACES)}, got {self.surface!r}")
        if self.emd not in EMD_MODES:
            raise InputError(f"geometry: emd must be one of {', '.join(EMD_MODES)}, got {self.emd!r}")
        object.__setattr__(self, "classes", tuple(check_classes(self.classes)))
        object.__setattr__(self, "heldout_per_class", int(held_n))
        object.__setattr__(self, "heldout_first", int(held_first))

    def describe(self, bound: float) -> dict[str, Any]:
        """The protocol as written next to the metrics (``bound``: the one used)."""
        k, first, held = self.per_class, self.heldout_first, self.heldout_per_class
        return {
            "classes": list(self.classes),
            "references": f"procedural shapes 0..{k - 1} of each class (seed {self.data_seed}), {self.surface} surface",
            "oracle": f"procedural shapes {first}..{first + held - 1} of each class",  # type: ignore[operator]
            "n_points": self.n_points,
            "surface": f"marching cubes at density {self.level:g} on a {self.resolution}^3 grid over "
            f"[-{bound:g}, {bound:g}]^3, empty outside; area-weighted samples",
            "frame": "shapes' canonical frame (y up, bounding box centred, largest side 1); generator world z up, "
            "mapped by (x, y, z) -> (x, z, -y)",
            "normalisation": "none (all rows in the canonical frame, as LION's demo evaluation)",
            "no_surface": "a cloud of points at the origin, counted in 'empty'",
            "emd": self.emd,
        }


def geometry_metrics(
    generator: Generator,
    untrained: Generator | None = None,
    protocol: GeometryProtocol | None = None,
    seed: int = 0,
    progress: bool | None = None,
) -> dict[str, Any]:
    """Point-cloud metrics of a generator's surfaces, an untrained generator's and held-out shapes', against the
    same references (see the module docstring).

    Args:
        generator: the trained generator (its moving average).
        untrained: the same architecture freshly initialised (None: no such row).
        protocol: the settings (default :class:`GeometryProtocol`).
        seed: seed of the generated codes and surface samples (both generators get the same codes).
        progress: show progress bars (default: on a terminal).

    Returns:
        ``{"rows": {"trained", ["untrained",] "oracle"}, "protocol": ...}``; each row holds
        :func:`gen3d.metrics.point_cloud_metrics`'s values (MMD-CD raw, COV / 1-NNA in %, JSD in bits), ``clouds``
        and ``empty`` (clouds without a surface).
    """
    from gen3d.metrics import ReferenceDistances, point_cloud_metrics

    p = protocol or GeometryProtocol()
    refs = reference_clouds(p.classes, p.per_class, 0, p.data_seed, p.n_points, p.surface)  # (R, P, 3)
    heldout = reference_clouds(p.classes, p.heldout_per_class, p.heldout_first, p.data_seed, p.n_points, p.surface)
    bound = default_bound(generator) if p.bound is None else p.bound
    ref_distances = ReferenceDistances(refs)

    def score(clouds: np.ndarray) -> dict[str, Any]:
        metrics = point_cloud_metrics(clouds, refs, emd=p.emd, ref_distances=ref_distances, progress=progress)
        empty = sum(not has_surface(c) for c in clouds)
        return {**metrics, "clouds": len(clouds), "empty": int(empty)}

    def clouds_of(gen: Generator) -> np.ndarray:
        b = default_bound(gen) if p.bound is None else p.bound
        return generator_clouds(gen, len(refs), seed, p.n_points, p.level, p.resolution, b, progress)

    rows = {TRAINED: score(clouds_of(generator))}
    if untrained is not None:
        rows[UNTRAINED] = score(clouds_of(untrained))
    rows[ORACLE] = score(heldout)
    return {"rows": rows, "protocol": p.describe(bound)}
