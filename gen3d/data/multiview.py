"""Multi-view image data for 3D-aware GANs: renders of the procedural shapes, and GRAF's dataset layouts.

:func:`render_multiview` renders every procedural shape from random viewpoints into a flat folder of PNGs
(GRAF's Carla layout), by ray casting the mesh (open3d's Embree ``RaycastingScene``, CPU, deterministic)
with Lambert shading on a white background. Viewpoints follow GRAF's parameterisation: the camera sits on a
sphere of radius ``radius`` around the object, at azimuth ``2 pi u`` and polar angle ``arccos(1 - 2 v)``
from the up axis (+z), ``u`` and ``v`` uniform in their ranges, looking at the origin. The poses are
written to the manifest for reference only; the GAN never sees them.

The shapes are y-up in their canonical frame; they are turned z-up (``(x, y, z) -> (x, -z, y)``) to match
GRAF's sphere. Each shape gets one seeded albedo; the light is fixed in the world, so shading is a
function of the geometry only.

:func:`render_mesh_dataset` renders the meshes of a dataset imported with ``gen3d data import`` the same way: each
mesh is read from its source file and put in the y-up unit frame of its cloud, then turned z-up.

GRAF's real-image datasets are thin presets over the image folder reader (:data:`GRAF_DATASETS`):
``carla`` (a folder of PNGs), ``celeba`` (``img_align_celeba`` JPGs, 108 x 108 centre crop, random
horizontal flip) and ``cats`` (``CAT_xx/*.jpg`` after GRAF's ``preprocess_cats.py``, random flip).
"""

from __future__ import annotations

import json
import math
import os
import re
from collections.abc import Callable, Collection, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from gen3d.errors import InputError

if TYPE_CHECKING:  # numpy is imported where used: the argument helpers serve the CLI, which stays light
    import numpy as np

MANIFEST = "multiview.json"
DEFAULT_RADIUS = 2.5  # shapes fit in [-0.5, 0.5]^3: radius - 1 >= near plane > 0
DEFAULT_FOV = 30.0
DEFAULT_RANGE_U = (0.0, 1.0)  # full turn of azimuth
DEFAULT_RANGE_V = (0.1464466094067262, 0.45642212862617093)  # polar angle 45..85 degrees (v = (1 - cos) / 2)
_VIEW_STREAM, _COLOR_STREAM = 101, 102  # seed streams of gen3d.data.shapes.shape_seed not used for meshes/points
# The rotation taking the shapes' y-up canonical frame to GRAF's z-up world, (x, y, z) -> (x, -z, y) (no scaling).
Y_UP_TO_Z_UP = ((1.0, 0.0, 0.0), (0.0, 0.0, -1.0), (0.0, 1.0, 0.0))
_LIGHT = (0.3, 0.4, 0.866)  # fixed world light direction (from above), normalised where used


def polar_to_v(degrees: float) -> float:
    """GRAF's ``v`` for a polar angle in degrees: ``v = (1 - cos(theta)) / 2``."""
    return (1.0 - math.cos(math.radians(degrees))) / 2.0


def sphere_point(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """GRAF's ``to_sphere``: unit vectors at azimuth ``2 pi u`` and polar angle ``arccos(1 - 2 v)`` (z up).

    Args:
        u, v: arrays of the same shape (...).

    Returns:
        (..., 3) unit vectors.
    """
    import numpy as np

    theta = 2 * np.pi * np.asarray(u, dtype=np.float64)
    phi = np.arccos(1 - 2 * np.asarray(v, dtype=np.float64))
    return np.stack([np.sin(phi) * np.cos(theta), np.sin(phi) * np.sin(theta), np.cos(phi)], axis=-1)


def look_at_c2w(
    eye: np.ndarray, up: Sequence[float] = (0.0, 0.0, 1.0), target: Sequence[float] | None = None
) -> np.ndarray:
    """Camera-to-world (4, 4) looking from ``eye`` at ``target`` (the origin by default), OpenGL axes.

    The camera looks down its -z axis: z points from the target to the eye, x = normalize(up x z), y = z x x.
    Looking along ``up``, another up is taken (world y, or x when z is near y), as
    :func:`renderers.cameras.look_at` does.

    Args:
        eye: (3,) camera position.
        up: (3,) world up direction (z, as GRAF's sphere, by default).
        target: (3,) point looked at.

    Returns:
        (4, 4) float64 camera-to-world matrix.
    """
    import numpy as np

    eye = np.asarray(eye, dtype=np.float64)
    back = eye if target is None else eye - np.asarray(target, dtype=np.float64)
    z = back / np.linalg.norm(back)
    x = np.cross(np.asarray(up, dtype=np.float64), z)
    if np.linalg.norm(x) < 1e-8:  # looking straight along the up axis
        x = np.cross(np.array([0.0, 1.0, 0.0]) if abs(z[1]) < 0.9 else np.array([1.0, 0.0, 0.0]), z)
    x /= np.linalg.norm(x)
    y = np.cross(z, x)
    c2w = np.eye(4)
    c2w[:3, 0], c2w[:3, 1], c2w[:3, 2], c2w[:3, 3] = x, y, z, eye
    return c2w


def pixel_rays(c2w: np.ndarray, size: int, fov: float) -> tuple[np.ndarray, np.ndarray]:
    """Rays through the centres of a ``size`` x ``size`` pinhole image (row-major, top row first).

    Returns:
        origins (size * size, 3) and unit directions (size * size, 3).
    """
    import numpy as np

    focal = 0.5 * size / math.tan(math.radians(fov) / 2)
    jj, ii = np.meshgrid(np.arange(size) + 0.5, np.arange(size) + 0.5, indexing="ij")  # rows, cols
    d_cam = np.stack([(ii - size / 2) / focal, -(jj - size / 2) / focal, -np.ones_like(ii)], -1).reshape(-1, 3)
    d = d_cam @ c2w[:3, :3].T
    d /= np.linalg.norm(d, axis=-1, keepdims=True)
    return np.broadcast_to(c2w[:3, 3], d.shape).copy(), d


def shape_albedo(rng: np.random.Generator) -> np.ndarray:
    """A saturated, not too dark RGB colour in [0, 1] (HSV with random hue)."""
    import numpy as np

    h, s, v = rng.uniform(0, 1), rng.uniform(0.35, 0.8), rng.uniform(0.6, 0.95)
    k = (np.array([5.0, 3.0, 1.0]) + h * 6) % 6
    return v - v * s * np.clip(np.minimum(k, 4 - k), 0, 1)


def render_mesh(
    vertices: np.ndarray,
    faces: np.ndarray,
    c2w: np.ndarray,
    size: int,
    fov: float,
    albedo: Sequence[float],
    background: float = 1.0,
    supersample: int = 2,
    return_distance: bool = False,
) -> np.ndarray | tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Lambert-shaded render of a triangle mesh by ray casting (open3d Embree), anti-aliased.

    Args:
        vertices: (V, 3) float.
        faces: (F, 3) int.
        c2w: (4, 4) camera-to-world, OpenGL axes.
        size: output side in pixels.
        fov: vertical = horizontal field of view in degrees.
        albedo: RGB in [0, 1].
        background: grey level of empty pixels.
        supersample: rays per pixel side (the image is rendered at ``size * supersample`` and box-filtered).
        return_distance: also return each pixel's distance to the surface and its coverage, the counterparts
            of a radiance field's ``depth / opacity`` and ``opacity``.

    Returns:
        (size, size, 3) uint8 image; with ``return_distance``, ``(image, distance, opacity)``: ``opacity``
        (size, size) is the fraction of the pixel's rays that hit the mesh and ``distance`` (size, size) the
        mean distance along those rays (unit directions; ``inf`` where none hit), both float64.
    """
    import numpy as np
    import open3d as o3d

    scene = o3d.t.geometry.RaycastingScene()
    scene.add_triangles(
        o3d.core.Tensor(np.ascontiguousarray(vertices, dtype=np.float32)),
        o3d.core.Tensor(np.ascontiguousarray(faces, dtype=np.uint32)),
    )
    n = size * supersample
    o, d = pixel_rays(c2w, n, fov)
    hits = scene.cast_rays(o3d.core.Tensor(np.concatenate([o, d], 1).astype(np.float32)))
    t = hits["t_hit"].numpy()  # (n*n,), inf on a miss
    normals = hits["primitive_normals"].numpy().astype(np.float64)  # (n*n, 3)
    normals *= -np.sign(np.sum(normals * d, -1, keepdims=True) + 1e-12)  # face the camera
    light = np.asarray(_LIGHT) / np.linalg.norm(_LIGHT)
    shade = 0.35 + 0.65 * np.clip(normals @ light, 0.0, 1.0)  # (n*n,)
    rgb = np.where(np.isfinite(t)[:, None], shade[:, None] * np.asarray(albedo)[None], background)  # (n*n, 3)
    rgb = rgb.reshape(size, supersample, size, supersample, 3).mean(axis=(1, 3))
    image = np.clip(np.round(rgb * 255), 0, 255).astype(np.uint8)
    if not return_distance:
        return image
    t = t.astype(np.float64).reshape(size, supersample, size, supersample)
    hits = np.isfinite(t).sum(axis=(1, 3))  # (size, size)
    t_sum = np.where(np.isfinite(t), t, 0.0).sum(axis=(1, 3))
    distance = np.where(hits > 0, t_sum / np.maximum(hits, 1), np.inf)
    return image, distance, hits / supersample**2


@dataclass
class MultiviewConfig:
    """Parameters of a rendered multi-view set (written to the manifest); checked when built."""

    classes: list[str]
    per_class: int
    views: int
    size: int
    seed: int
    first_index: int
    radius: float
    fov: float
    range_u: tuple[float, float]
    range_v: tuple[float, float]
    background: float
    supersample: int

    def __post_init__(self) -> None:
        if self.per_class < 1 or self.views < 1 or self.size < 4 or self.supersample < 1:
            raise InputError(
                "need per_class >= 1, views >= 1, size >= 4, supersample >= 1; "
                f"got {self.per_class}, {self.views}, {self.size}, {self.supersample}"
            )
        self.range_u, self.range_v = _check_poses(self.range_u, self.range_v, self.radius)


def _check_poses(
    range_u: Sequence[float], range_v: Sequence[float], radius: float
) -> tuple[tuple[float, float], tuple[float, float]]:
    """Check the camera ranges and radius; returns the ranges as float pairs."""
    u0, u1 = (float(x) for x in range_u)
    v0, v1 = (float(x) for x in range_v)
    if not (0 <= v0 <= v1 <= 1 and u0 <= u1):
        raise InputError(f"need 0 <= v0 <= v1 <= 1 and u0 <= u1, got range_u={range_u}, range_v={range_v}")
    if radius <= 0.9:
        raise InputError(f"radius must exceed the shapes' bounding sphere (0.87), got {radius}")
    return (u0, u1), (v0, v1)


def shape_mesh_z_up(name: str, index: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A procedural shape as the renders see it: vertices in GRAF's z-up world (:data:`Y_UP_TO_Z_UP`), faces and
    its seeded albedo."""
    import numpy as np

    from gen3d.data.shapes import make_shape, shape_seed

    mesh = make_shape(name, index, seed)
    albedo = shape_albedo(np.random.default_rng(shape_seed(seed, name, index, stream=_COLOR_STREAM)))
    return np.asarray(mesh.vertices) @ np.asarray(Y_UP_TO_Z_UP).T, np.asarray(mesh.faces), albedo


def _render_views(
    out: Path,
    stem: str,
    record: dict,
    rng: np.random.Generator,
    load: Callable[[], tuple[np.ndarray, np.ndarray, np.ndarray]],
    cfg: MultiviewConfig | MeshMultiviewConfig,
) -> list[dict]:
    """Draw the ``cfg.views`` cameras of one shape from ``rng`` and render those of its views that ``out`` does
    not hold yet (a resumed build keeps the others) as ``<stem>_<view:02d>.png``.

    Args:
        out: the folder written.
        stem: the shape's file-name stem.
        record: what the manifest says about the shape (class, index or id, ...), before each view's camera.
        rng: the shape's view generator.
        load: returns the shape as :func:`render_mesh` takes it, ``(z-up vertices, faces, albedo)``; called at most
            once, and only when a view is missing.
        cfg: the camera and image parameters.

    Returns:
        The manifest entries of all the shape's views.
    """
    import numpy as np

    from gen3d.utils.fs import save_png

    (u0, u1), (v0, v1) = cfg.range_u, cfg.range_v
    uv = np.stack([rng.uniform(u0, u1, cfg.views), rng.uniform(v0, v1, cfg.views)], 1)  # (views, 2)
    entries, mesh = [], None
    for view, (u, v) in enumerate(uv):
        c2w = look_at_c2w(cfg.radius * sphere_point(u, v))
        fname = f"{stem}_{view:02d}.png"
        if not (out / fname).is_file():
            if mesh is None:
                mesh = load()
            verts, faces, albedo = mesh
            img = render_mesh(verts, faces, c2w, cfg.size, cfg.fov, albedo, cfg.background, cfg.supersample)
            save_png(out / fname, img)
        entries.append({"file": fname, **record, "u": float(u), "v": float(v), "c2w": c2w[:3].round(6).tolist()})
    return entries


def _render_shape(out: Path, name: str, index: int, cfg: MultiviewConfig) -> list[dict]:
    """Render and write the views of procedural shape ``(name, index)`` that ``out`` does not hold yet; returns the
    manifest entries of all its views."""
    import numpy as np

    from gen3d.data.shapes import shape_seed

    rng = np.random.default_rng(shape_seed(cfg.seed, name, index, stream=_VIEW_STREAM))
    return _render_views(
        out,
        f"{name}_{index:04d}",
        {"class": name, "index": index},
        rng,
        lambda: shape_mesh_z_up(name, index, cfg.seed),
        cfg,
    )


def _check_output_dir(out: Path, names: Collection[str] | None = None) -> None:
    """Refuse an output folder that holds anything but renders (complete, or interrupted before the manifest
    was written).

    Args:
        out: the folder.
        names: without a manifest, the render file names accepted (those of the render about to replace the
            folder); None: procedural renders' names, ``<class>_<index>_<view>.png``.
    """
    if (out / MANIFEST).is_file():
        if not _is_render_manifest(out / MANIFEST):
            raise InputError(f"{MANIFEST} does not describe gen3d renders; choose an empty or new folder", out)
        return
    view = r"[a-z]+_\d{4,}_\d{2,}\.png"  # a render, or (below) the temporary file of one being written
    for p in out.iterdir():
        if names is None:
            ours = re.fullmatch(rf"{view}|\.{view}\..+\.png", p.name)
        else:
            temporary = re.fullmatch(r"\.(.+\.png)\..+\.png", p.name)
            ours = p.name in names or (temporary is not None and temporary.group(1) in names)
        if not ours:
            raise InputError(f"output folder is not empty and holds no {MANIFEST}; choose an empty or new folder", out)


def _is_render_manifest(path: Path) -> bool:
    try:
        content = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return isinstance(content, dict) and {"config", "images"} <= content.keys()


def _write_renders(out: Path, cfg: MultiviewConfig) -> None:
    """Render every view of every shape of ``cfg`` into ``out`` and write the manifest."""
    from gen3d.utils import atomic_write_text

    images = [
        entry
        for name in cfg.classes
        for index in range(cfg.first_index, cfg.first_index + cfg.per_class)
        for entry in _render_shape(out, name, index, cfg)
    ]
    atomic_write_text(out / MANIFEST, json.dumps({"config": asdict(cfg), "images": images}, indent=1))


def render_multiview(
    out_dir: str | os.PathLike,
    classes: Sequence[str] | str | None = ("chair", "car", "mug"),
    per_class: int = 16,
    views: int = 8,
    size: int = 64,
    seed: int = 0,
    *,
    first_index: int = 0,
    radius: float = DEFAULT_RADIUS,
    fov: float = DEFAULT_FOV,
    range_u: Sequence[float] = DEFAULT_RANGE_U,
    range_v: Sequence[float] = DEFAULT_RANGE_V,
    background: float = 1.0,
    supersample: int = 2,
) -> Path:
    """Render ``views`` random views of ``per_class`` procedural shapes of each class into a PNG folder.

    Files are ``<out_dir>/<class>_<index:04d>_<view:02d>.png`` plus ``multiview.json`` (parameters and the
    camera of every image). Everything is a function of the arguments: shape ``(class, index)`` is
    ``gen3d.data.shapes.make_shape(class, index, seed)``, and its views and colour come from seed streams of
    that shape. Use disjoint ``first_index`` ranges for train and held-out sets.

    The folder is rendered in a hidden sibling and renamed into place when complete
    (:func:`gen3d.utils.staging.staged_build`): ``out_dir`` always holds one complete set of renders (earlier
    renders are replaced as a whole, renders of the same arguments are kept as they are), and a killed
    render leaves it untouched and is resumed by the next call with the same arguments.

    Args:
        out_dir: output folder (new, empty, or earlier renders, complete or interrupted).
        classes: procedural class names (list, comma-separated string, or None / "all").
        per_class: shapes per class (indices ``first_index .. first_index + per_class - 1``).
        views: images per shape.
        size: image side in pixels (64 by default, as GRAF's Carla/CelebA-64).
        seed: dataset seed.
        first_index: index of the first shape of each class.
        radius: camera distance to the origin.
        fov: field of view in degrees.
        range_u: azimuth range as fractions of a turn.
        range_v: GRAF's ``v`` range (polar angle ``arccos(1 - 2 v)`` from +z).
        background: grey level of the background in [0, 1] (1 = white, like Carla).
        supersample: anti-aliasing rays per pixel side.

    Returns:
        The output folder.

    Raises:
        InputError: bad arguments, or ``out_dir`` holds files that are not gen3d renders.
    """
    from gen3d.data.shapes import check_classes
    from gen3d.utils.staging import staged_build

    names = check_classes(classes)
    cfg = MultiviewConfig(
        names, per_class, views, size, seed, first_index, radius, fov, range_u, range_v, background, supersample
    )
    options = {"generator": "gen3d.multiview", **asdict(cfg)}
    staged_build(out_dir, options, lambda stage: _write_renders(stage, cfg), check=_check_output_dir)
    return Path(out_dir)


# ----------------------------------------------------------------------------------------------------
# Renders of an imported dataset's meshes
# ----------------------------------------------------------------------------------------------------

MESH_GENERATOR = "gen3d.multiview.meshes"
RENDER_SPLITS = ("train", "val", "test", "all")


@dataclass
class MeshMultiviewConfig:
    """Parameters of a rendered multi-view set of imported meshes (written to the manifest); checked when built.

    ``root`` is the imported dataset (absolute), ``split`` one of :data:`RENDER_SPLITS`, ``classes`` the imported
    classes rendered; the other fields are those of :class:`MultiviewConfig`.
    """

    root: str
    split: str
    classes: list[str]
    views: int
    size: int
    seed: int
    radius: float
    fov: float
    range_u: tuple[float, float]
    range_v: tuple[float, float]
    background: float
    supersample: int

    def __post_init__(self) -> None:
        if self.views < 1 or self.size < 4 or self.supersample < 1 or self.seed < 0:
            raise InputError(
                "need views >= 1, size >= 4, supersample >= 1, seed >= 0; "
                f"got {self.views}, {self.size}, {self.supersample}, {self.seed}"
            )
        if self.split not in RENDER_SPLITS:
            raise InputError(f"split must be one of {', '.join(RENDER_SPLITS)}, got {self.split!r}")
        self.range_u, self.range_v = _check_poses(self.range_u, self.range_v, self.radius)


def _mesh_seed(seed: int, cls: str, sid: str, stream: int) -> np.random.SeedSequence:
    """The seed of one imported shape's views or colour: a function of (seed, class, id, stream) only."""
    import zlib

    import numpy as np

    return np.random.SeedSequence([int(seed), zlib.crc32(cls.encode("utf-8")), zlib.crc32(sid.encode("utf-8")), stream])


def imported_mesh_z_up(
    manifest: dict, shape: dict, seed: int, rescale: bool = False
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """An imported mesh as the renders see it: vertices in GRAF's z-up world, faces and its seeded albedo.

    Args:
        manifest: the import's manifest (:func:`gen3d.data.importer.read_manifest`).
        shape: one of its ``shapes``, of kind ``"mesh"``.
        seed: the render seed (picks the albedo).
        rescale: centre the mesh's bounding box and scale its largest side to 1 (for imports normalised other
            than ``unit-box``); otherwise the mesh keeps the frame of its cloud.

    Returns:
        ((V, 3) float64 vertices, (F, 3) faces, (3,) albedo).
    """
    import numpy as np

    from gen3d.data.importer import load_source_mesh

    mesh = load_source_mesh(manifest, shape)
    vertices, faces = np.asarray(mesh.vertices, dtype=np.float64), np.asarray(mesh.faces)
    if rescale:
        used = vertices[faces.reshape(-1)]  # vertices no face refers to take no part in the render
        lo, hi = used.min(axis=0), used.max(axis=0)
        vertices = (vertices - (lo + hi) / 2) / float((hi - lo).max())
    albedo = shape_albedo(np.random.default_rng(_mesh_seed(seed, shape["class"], shape["id"], _COLOR_STREAM)))
    return vertices @ np.asarray(Y_UP_TO_Z_UP).T, faces, albedo


def _select_shapes(
    manifest: dict, split: str, classes: Sequence[str] | str | None
) -> tuple[list[str], list[dict], int]:
    """The imported classes asked for, their mesh shapes in ``split`` and the number of point clouds left out."""
    available = list(manifest["classes"])
    if classes is None or classes == "all":
        wanted = available
    else:
        names = [c.strip() for c in classes.split(",")] if isinstance(classes, str) else [str(c) for c in classes]
        names = [c for c in names if c]
        unknown = [c for c in names if c not in available]
        if unknown or not names:
            raise InputError(
                f"unknown imported class {', '.join(map(repr, unknown)) or '(none given)'}; "
                f"the import holds {', '.join(available)}"
            )
        wanted = [c for c in available if c in names]
    chosen = [s for s in manifest["shapes"] if s["class"] in wanted and split in ("all", s["split"])]
    meshes = [s for s in chosen if s["kind"] == "mesh"]
    return wanted, meshes, len(chosen) - len(meshes)


def _check_names(shapes: list[dict], views: int) -> list[str]:
    """The image file names of ``shapes``; refuses two shapes whose names coincide (class ``a_b`` with id ``c``
    and class ``a`` with id ``b_c``)."""
    seen: dict[str, str] = {}
    for s in shapes:
        stem = f"{s['class']}_{s['id']}"
        if stem in seen:
            raise InputError(
                f"imported shapes {seen[stem]} and {s['class']}/{s['id']} would share the image names {stem}_*.png; "
                "render their classes separately (--classes) into different folders"
            )
        seen[stem] = f"{s['class']}/{s['id']}"
    return [f"{stem}_{view:02d}.png" for stem in seen for view in range(views)]


def _source_fingerprint(manifest: dict, shapes: list[dict]) -> str:
    """A digest of the rendered source files (path, size, modification time): an edited mesh gives another build."""
    import hashlib

    digest = hashlib.sha256()
    for s in shapes:
        path = Path(manifest["source"]) / s["source"]
        try:
            st = path.stat()
        except OSError:
            raise InputError(
                f"source file of shape {s['class']}/{s['id']} is missing (the import reads meshes from their sources)",
                path,
            ) from None
        digest.update(f"{s['source']}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
    return digest.hexdigest()


def _write_mesh_renders(out: Path, cfg: MeshMultiviewConfig, manifest: dict, shapes: list[dict], dataset: dict) -> None:
    """Render every view of every imported mesh into ``out`` and write the manifest."""
    import numpy as np

    from gen3d.utils import atomic_write_text

    rescale = dataset["rescaled_to_unit_box"]
    images = []
    for s in shapes:
        cls, sid = s["class"], s["id"]
        rng = np.random.default_rng(_mesh_seed(cfg.seed, cls, sid, _VIEW_STREAM))
        record = {"class": cls, "id": sid, "split": s["split"], "source": s["source"]}

        def load(s: dict = s) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
            return imported_mesh_z_up(manifest, s, cfg.seed, rescale)

        images.extend(_render_views(out, f"{cls}_{sid}", record, rng, load, cfg))
    content = {"config": asdict(cfg), "dataset": dataset, "images": images}
    atomic_write_text(out / MANIFEST, json.dumps(content, indent=1))


def render_mesh_dataset(
    out_dir: str | os.PathLike,
    root: str | os.PathLike,
    split: str = "train",
    classes: Sequence[str] | str | None = None,
    views: int = 8,
    size: int = 64,
    seed: int = 0,
    *,
    radius: float = DEFAULT_RADIUS,
    fov: float = DEFAULT_FOV,
    range_u: Sequence[float] = DEFAULT_RANGE_U,
    range_v: Sequence[float] = DEFAULT_RANGE_V,
    background: float = 1.0,
    supersample: int = 2,
) -> Path:
    """Render ``views`` random views of every mesh of an imported dataset (``gen3d data import``) into a PNG folder.

    The cameras, shading and folder handling are those of :func:`render_multiview`. Each mesh is read from its
    source file and put in the frame of its cloud (:func:`gen3d.data.importer.load_source_mesh`), then turned
    z-up; when the import was normalised other than ``unit-box`` (``unit-sphere``, ``none``), every mesh is
    rescaled to the unit box [-0.5, 0.5]^3 for rendering, so that it fits the cameras. Shapes imported as point
    clouds have no surface to render and are left out (counted in the manifest).

    Files are ``<out_dir>/<class>_<id>_<view:02d>.png`` plus ``multiview.json``: the parameters, the dataset
    rendered (its folder, the import's options, the counts, whether the meshes were rescaled) and the camera of
    every image. Everything is a function of the arguments and the imported files: the views and colour of
    shape ``(class, id)`` come from seed streams of ``(seed, class, id)``.

    Args:
        out_dir: output folder (new, empty, or earlier renders, complete or interrupted).
        root: the imported dataset (holding ``dataset.json``).
        split: the split rendered, ``"train"``, ``"val"``, ``"test"`` or ``"all"``.
        classes: imported class names (list, comma-separated string, or None / "all").
        views: images per shape.
        size: image side in pixels.
        seed: render seed (views and colours).
        radius: camera distance to the origin.
        fov: field of view in degrees.
        range_u: azimuth range as fractions of a turn.
        range_v: GRAF's ``v`` range (polar angle ``arccos(1 - 2 v)`` from +z).
        background: grey level of the background in [0, 1].
        supersample: anti-aliasing rays per pixel side.

    Returns:
        The output folder.

    Raises:
        InputError: ``root`` is not an import, unknown classes, no mesh in the selection, a missing source file,
            bad arguments, or ``out_dir`` holds files that are not gen3d renders.
    """
    import hashlib

    from gen3d.data.importer import read_manifest
    from gen3d.utils.staging import staged_build

    if split not in RENDER_SPLITS:
        raise InputError(f"split must be one of {', '.join(RENDER_SPLITS)}, got {split!r}")
    root_path = Path(root)
    manifest = read_manifest(root_path)
    wanted, shapes, clouds = _select_shapes(manifest, split, classes)
    cfg = MeshMultiviewConfig(
        str(root_path.resolve()),
        split,
        wanted,
        views,
        size,
        seed,
        radius,
        fov,
        range_u,
        range_v,
        background,
        supersample,
    )
    if not shapes:
        raise InputError(
            f"no mesh to render in split {split} of {', '.join(wanted)} "
            + (f"(only {clouds} point clouds, which have no surface)" if clouds else "(it holds no shape)"),
            root_path,
        )
    names = _check_names(shapes, views)
    dataset = {
        "manifest_sha256": hashlib.sha256((root_path / "dataset.json").read_bytes()).hexdigest(),
        "import": {k: manifest[k] for k in ("source", "class", "points", "seed", "split", "up", "normalize")},
        "meshes": len(shapes),
        "skipped_point_clouds": clouds,
        "rescaled_to_unit_box": manifest["normalize"] != "unit-box",
    }
    options = {"generator": MESH_GENERATOR, **asdict(cfg), "dataset": dataset}
    options["sources"] = _source_fingerprint(manifest, shapes)
    staged_build(
        out_dir,
        options,
        lambda stage: _write_mesh_renders(stage, cfg, manifest, shapes, dataset),
        check=lambda dest: _check_output_dir(dest, names),
    )
    return Path(out_dir)


# ----------------------------------------------------------------------------------------------------
# GRAF's dataset layouts
# ----------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ImageLayout:
    """How one of GRAF's image datasets lies in its folder and is preprocessed.

    Attributes:
        pattern: glob (relative to the root) that the dataset's images match (GRAF's ``_get_files``).
        center_crop: side of the centre crop applied before resizing (None: no crop).
        hflip: random horizontal flips during training (GRAF flips CelebA and Cats).
    """

    pattern: str
    center_crop: int | None = None
    hflip: bool = False


GRAF_DATASETS: dict[str, ImageLayout] = {
    # graf/datasets.py: Carla is a flat folder of PNGs ({root}/*.png).
    "carla": ImageLayout("*.png"),
    # graf/config.py: CenterCrop(108), RandomHorizontalFlip, Resize(64) on img_align_celeba/*.jpg (178 x 218).
    "celeba": ImageLayout("*.jpg", center_crop=108, hflip=True),
    # pi-GAN datasets.py CelebA: Resize(320), CenterCrop(256), flip: a 256 / 320 * 178 = 142 pixel centre crop.
    "celeba_pigan": ImageLayout("*.jpg", center_crop=142, hflip=True),
    # graf/datasets.py Cats: {root}/CAT_*/*.jpg (the output of data/preprocess_cats.py), RandomHorizontalFlip.
    "cats": ImageLayout("CAT_*/*.jpg", hflip=True),
    # gen3d's own renders (render_multiview): a flat folder of PNGs.
    "shapes": ImageLayout("*.png"),
    # any folder of PNG/JPEG images, searched recursively.
    "folder": ImageLayout("**/*"),
}


def graf_image_dataset(root: str | os.PathLike, kind: str = "folder", size: int = 64, train: bool = True):
    """An :class:`gen3d.data.images.ImageFolderDataset` configured as GRAF reads ``kind``.

    Args:
        root: the dataset folder (Carla: the PNG folder; CelebA: ``img_align_celeba``; Cats: the folder
            holding ``CAT_00`` ... ``CAT_06``).
        kind: one of :data:`GRAF_DATASETS`.
        size: output side in pixels.
        train: enable the layout's random flips (off for evaluation).

    Returns:
        The dataset; items are (3, size, size) float32 in [-1, 1].

    Raises:
        InputError: unknown ``kind``, missing folder, or no file in the layout's expected place.
    """
    from gen3d.data.images import IMAGE_SUFFIXES, ImageFolderDataset

    if kind not in GRAF_DATASETS:
        raise InputError(f"unknown image dataset layout {kind!r}; available: {', '.join(GRAF_DATASETS)}")
    layout = GRAF_DATASETS[kind]
    root = Path(root)
    if not root.is_dir():
        raise InputError(f"no such folder (expected a {kind} image dataset)", root)
    if not any(p.suffix.lower() in IMAGE_SUFFIXES for p in root.glob(layout.pattern)):
        raise InputError(f"no image matches the {kind} layout ({layout.pattern})", root)
    return ImageFolderDataset(root, size=size, center_crop=layout.center_crop, hflip=layout.hflip and train)
