"""Import a folder of the user's meshes or point clouds as a dataset in the ShapeNetCore.v2.PC15k layout.

:func:`import_shapes` reads every ``.obj .ply .off .stl .glb .gltf`` mesh and ``.npy .npz`` point cloud under a
source folder and writes ``<root>/<class>/{train,val,test}/<id>.npy`` ((points, 3) float32 each, as
``gen3d data shapes`` writes them), ``<root>/dataset.json`` (classes, counts, the source file of every id, the
options, the skipped files) and ``<root>/normalization.json`` (the train split's global statistics).

Classes: every sub-folder of the source is a class (its files are gathered recursively); files lying directly in
the source are then skipped (and reported). With ``class_name`` every file under the source, in sub-folders too,
joins that one class. Hidden files and folders (names starting with ``.``) are ignored, and so are the files
meshes refer to (``.mtl`` materials, ``.bin`` buffers, texture images).

Each shape:

1. is read: a mesh is sampled on its surface (area-weighted, :func:`gen3d.data.sampling.sample_mesh`); a point
   cloud (``.npy``/``.npz``, or a ``.ply``/``.off`` without faces) gives a random subset of its points and
   needs at least ``points`` of them (points are never duplicated);
2. is turned into gen3d's frame, y up (that of ShapeNet PC15k and the procedural shapes): with ``up="z"``
   ``(x, y, z) -> (x, z, -y)``, a rotation by -90 degrees about x;
3. is normalised on its own: ``"unit-box"`` (default) centres the bounding box and scales its largest side to 1
   (into [-0.5, 0.5]^3, like the procedural shapes and LION's box protocol), ``"unit-sphere"`` centres the points'
   mean and puts the farthest point at distance 1, ``"none"`` keeps the source units.

Everything is seeded per file (``seed`` and the file's path relative to the source), and each class's shapes are
split by a seeded permutation, so the same files and options give byte-identical outputs. A file that cannot be
used is skipped with its reason (:attr:`ImportResult.skipped`); nothing is written unless at least one shape is
read. The dataset is built beside ``root`` and swapped in when complete (:func:`gen3d.utils.staging.staged_build`).

Example:
    >>> manifest = import_shapes("my_meshes", "datasets/mine", class_name="things", points=2048)
    >>> manifest["counts"]
    {'things': {'train': 8, 'val': 1, 'test': 1}}
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import zlib
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from gen3d.errors import InputError

if TYPE_CHECKING:  # trimesh is imported where used
    import trimesh

MESH_SUFFIXES = (".obj", ".ply", ".off", ".stl", ".glb", ".gltf")
CLOUD_SUFFIXES = (".npy", ".npz")
SUFFIXES = MESH_SUFFIXES + CLOUD_SUFFIXES
# Files that meshes refer to (materials, glTF buffers, textures): ignored without a line each.
COMPANION_SUFFIXES = (".mtl", ".bin", ".png", ".jpg", ".jpeg", ".tga", ".bmp", ".tif", ".tiff", ".webp")
UP_AXES = ("y", "z")
NORMALIZATIONS = ("unit-box", "unit-sphere", "none")
SPLITS = ("train", "val", "test")
GENERATOR = "gen3d.import"
VERSION = 1
MANIFEST = "dataset.json"
NORMALIZATION = "normalization.json"
# The rotation of a z-up source into gen3d's y-up frame, (x, y, z) -> (x, z, -y).
Z_UP_TO_Y_UP = np.array([[1.0, 0.0, 0.0], [0.0, 0.0, 1.0], [0.0, -1.0, 0.0]])
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.+-]*")
_UNSAFE = re.compile(r"[^A-Za-z0-9_.+-]+")
_SPLIT_STREAM = 1  # seed stream of the split permutation (per-file streams hash the file's path)
_PENDING = ".clouds"  # clouds wait here, in the staging folder, until the splits are drawn


@dataclass(frozen=True)
class Source:
    """One file to import.

    Attributes:
        path: the file.
        rel: its path relative to the source folder (POSIX form), as the manifest and messages name it.
        cls: the class it joins.
        id: the stem of its cloud file (unique within the class).
    """

    path: Path
    rel: str
    cls: str
    id: str


@dataclass
class ImportPlan:
    """What :func:`plan_import` found in a source folder.

    Attributes:
        src: the source folder.
        sources: the files to read, sorted by class then relative path.
        classes: class name -> the folder it comes from, relative to ``src`` (``"."`` for ``class_name``).
        skipped: ``(relative path, reason)`` of files left out while listing (unsupported suffix, outside classes).
        ignored: relative paths of companion files (materials, buffers, textures).
    """

    src: Path
    sources: list[Source]
    classes: dict[str, str]
    skipped: list[tuple[str, str]] = field(default_factory=list)
    ignored: list[str] = field(default_factory=list)


@dataclass
class Shape:
    """One shape that was read: its source, how it was read and the per-shape normalisation applied.

    ``cloud = (points @ R.T - center) / scale``, ``R`` the up rotation; ``kind`` is ``"mesh"`` or ``"points"``.
    """

    source: Source
    kind: str
    center: list[float]
    scale: float


# ----------------------------------------------------------------------------------------------------
# Options
# ----------------------------------------------------------------------------------------------------


def check_class_name(name: str) -> str:
    """Return ``name`` if it can name a class folder (letters, digits, ``_ . + -``; not starting with ``.``)."""
    if not _NAME.fullmatch(name):
        raise InputError(
            f"class name {name!r} must start with a letter or digit and hold only letters, digits and _ . + -"
        )
    return name


def _choice(value: str, allowed: Sequence[str], option: str) -> str:
    if value not in allowed:
        raise InputError(f"{option} must be one of {', '.join(allowed)}, got {value!r}")
    return value


def _safe_name(text: str, fallback: str) -> str:
    """``text`` with every run of characters other than letters, digits and ``_ . + -`` replaced by ``_``."""
    name = _UNSAFE.sub("_", text).lstrip("._")
    return name or fallback


# ----------------------------------------------------------------------------------------------------
# Listing
# ----------------------------------------------------------------------------------------------------


def _visible_files(src: Path) -> list[Path]:
    """Files under ``src`` whose relative path has no hidden part, sorted by relative path."""
    found = [
        p for p in src.rglob("*") if p.is_file() and not any(part.startswith(".") for part in p.relative_to(src).parts)
    ]
    return sorted(found, key=lambda p: p.relative_to(src).as_posix())


def _assign_ids(files: list[tuple[Path, str]]) -> list[str]:
    """Unique ids of one class's files ``(path, relative path inside the class folder)``: the file stem, or the
    relative path with its suffix where stems repeat (``a.off``, ``a.ply`` -> ``a_off``, ``a_ply``)."""
    stems = [_safe_name(Path(rel).stem, "shape") for _, rel in files]
    repeated = {s for s, n in Counter(stems).items() if n > 1}
    ids, taken = [], set()
    for stem, (_, rel) in zip(stems, files, strict=True):
        base = _safe_name(rel.replace("/", "-").replace(".", "_"), "shape") if stem in repeated else stem
        candidate, n = base, 2
        while candidate in taken:
            candidate, n = f"{base}-{n}", n + 1
        taken.add(candidate)
        ids.append(candidate)
    return ids


def plan_import(src: str | os.PathLike, class_name: str | None = None) -> ImportPlan:
    """List the files of a source folder and the class each one joins; reads no file.

    Args:
        src: the source folder.
        class_name: import every file under ``src`` (sub-folders included) as this one class; None: every
            sub-folder of ``src`` is a class and files directly in ``src`` are skipped.

    Returns:
        The plan.

    Raises:
        InputError: ``src`` is not a folder, holds no shape files, or holds shape files but no class sub-folder
            (and no ``class_name`` was given), or two sub-folders give the same class name.
    """
    root = Path(src)
    if not root.is_dir():
        raise InputError("no such folder" if not root.exists() else "expected a folder of shapes, found a file", root)
    if class_name is not None:
        check_class_name(class_name)
    plan = ImportPlan(root, [], {})
    groups: dict[str, list[tuple[Path, str]]] = {}
    loose: list[str] = []
    for path in _visible_files(root):
        rel = path.relative_to(root).as_posix()
        suffix = path.suffix.lower()
        if suffix in COMPANION_SUFFIXES:
            plan.ignored.append(rel)
        elif suffix not in SUFFIXES:
            plan.skipped.append((rel, f"unsupported suffix {suffix or '(none)'!r}"))
        elif class_name is not None:
            groups.setdefault(".", []).append((path, rel))
        elif "/" not in rel:
            loose.append(rel)
        else:
            folder, inner = rel.split("/", 1)
            groups.setdefault(folder, []).append((path, inner))
    if not groups and not loose:
        raise InputError(f"folder holds no shape files ({', '.join(SUFFIXES)})", root)
    if not groups:
        raise InputError(
            f"holds {len(loose)} shape files but no class sub-folders; pass --class NAME to import them as one class",
            root,
        )
    reason = "lies directly in the source folder, not in a class sub-folder (--class NAME imports everything as one)"
    plan.skipped.extend((rel, reason) for rel in loose)
    for folder in sorted(groups):
        cls = class_name if class_name is not None else _safe_name(folder, "class")
        if cls in plan.classes:
            raise InputError(f"sub-folders {plan.classes[cls]!r} and {folder!r} both give class name {cls!r}", root)
        plan.classes[cls] = folder
        files = groups[folder]
        for (path, _), sid in zip(files, _assign_ids(files), strict=True):
            plan.sources.append(Source(path, path.relative_to(root).as_posix(), cls, sid))
    plan.skipped.sort()
    return plan


def fingerprint(plan: ImportPlan) -> str:
    """A digest of the listed files (path, size, modification time): a changed source gives another build."""
    digest = hashlib.sha256()
    for s in plan.sources:
        st = s.path.stat()
        digest.update(f"{s.rel}\0{s.cls}\0{s.id}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
    for rel in [rel for rel, _ in plan.skipped] + plan.ignored:
        digest.update(f"{rel}\n".encode())
    return digest.hexdigest()


# ----------------------------------------------------------------------------------------------------
# Reading one shape
# ----------------------------------------------------------------------------------------------------


def ply_face_count(path: Path) -> int | None:
    """The face count a PLY header declares (0 without a face element); None when the header is unreadable."""
    try:
        with open(path, "rb") as f:
            if f.readline().strip() != b"ply":
                return None
            faces = 0
            for _ in range(10000):
                line = f.readline()
                if not line:
                    return None
                tokens = line.split()
                if tokens[:1] == [b"end_header"]:
                    return faces
                if len(tokens) == 3 and tokens[0] == b"element" and tokens[1] == b"face":
                    faces = int(tokens[2])
    except (OSError, ValueError):
        return None
    return None


def _subset(cloud: np.ndarray, points: int, rng: np.random.Generator, source: Path) -> np.ndarray:
    """``points`` distinct points of ``cloud`` (P, 3) in random order."""
    if len(cloud) < points:
        raise InputError(f"point set of {len(cloud)} points, fewer than the {points} requested (--points)", source)
    return cloud[rng.choice(len(cloud), points, replace=False)]


def read_points(path: Path, points: int, rng: np.random.Generator) -> tuple[np.ndarray, str]:
    """Read one source file as ``points`` points in its own frame and units.

    Args:
        path: a mesh or point-cloud file (see :data:`SUFFIXES`).
        points: points wanted.
        rng: the file's random generator.

    Returns:
        ((points, 3) float64 points, ``"mesh"`` or ``"points"``).

    Raises:
        InputError: the file cannot be read, is an empty or degenerate mesh, or a cloud of fewer points.
    """
    import trimesh

    from gen3d.data.io import check_points, load_points
    from gen3d.data.meshes import check_mesh, load_mesh
    from gen3d.data.off import read_off
    from gen3d.data.sampling import sample_mesh

    suffix = path.suffix.lower()
    cloud = None
    if suffix in CLOUD_SUFFIXES or (suffix == ".ply" and ply_face_count(path) == 0):
        cloud = load_points(path)
        if cloud.ndim == 3:
            if len(cloud) != 1:
                raise InputError(f"holds {len(cloud)} clouds; expected one (P, 3) cloud per file", path)
            cloud = cloud[0]
    elif suffix == ".off":
        vertices, faces = read_off(path)
        if len(vertices) == 0:
            raise InputError("empty mesh: no vertices and no faces", path)
        if len(faces) == 0:
            cloud = check_points(vertices, path)
        else:
            mesh = check_mesh(trimesh.Trimesh(vertices=vertices, faces=faces, process=False), path)
    else:
        mesh = load_mesh(path)
    if cloud is not None:
        return _subset(cloud.astype(np.float64), points, rng, path), "points"
    return sample_mesh(mesh, points, rng, source=path).astype(np.float64), "mesh"


def frame(cloud: np.ndarray, up: str, normalize: str, source: Path) -> tuple[np.ndarray, np.ndarray, float]:
    """Turn a cloud y-up and normalise it.

    Args:
        cloud: (P, 3) float64 points in the source frame.
        up: the source's up axis, ``"y"`` or ``"z"``.
        normalize: ``"unit-box"``, ``"unit-sphere"`` or ``"none"``.
        source: the file, named in errors.

    Returns:
        ((P, 3) float64 points, (3,) centre, scale) with ``points = (cloud @ R.T - centre) / scale``.
    """
    if up == "z":
        cloud = cloud @ Z_UP_TO_Y_UP.T  # (P, 3)
    if normalize == "none":
        return cloud, np.zeros(3), 1.0
    if normalize == "unit-box":
        lo, hi = cloud.min(axis=0), cloud.max(axis=0)
        center, scale = (lo + hi) / 2, float((hi - lo).max())
    else:
        center = cloud.mean(axis=0)
        scale = float(np.linalg.norm(cloud - center, axis=1).max())
    if not scale > 1e-12 * max(1.0, float(np.abs(cloud).max())):
        raise InputError("degenerate shape: all its points coincide", source)
    return (cloud - center) / scale, center, scale


def _file_rng(seed: int, source: Source) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence([seed, zlib.crc32(source.rel.encode("utf-8"))]))


def read_shape(source: Source, points: int, seed: int, up: str, normalize: str) -> tuple[np.ndarray, Shape]:
    """Read, turn and normalise one source file.

    Returns:
        ((points, 3) float32 cloud, the :class:`Shape` record).
    """
    from gen3d.data.io import check_points

    cloud, kind = read_points(source.path, points, _file_rng(seed, source))
    cloud, center, scale = frame(cloud, up, normalize, source.path)
    cloud = check_points(cloud, source.path, ndim=(2,))
    return cloud, Shape(source, kind, [float(c) for c in center], scale)


def read_manifest(root: str | os.PathLike) -> dict:
    """The manifest (``dataset.json``) of an import made by :func:`import_shapes`.

    Raises:
        InputError: ``root`` is not a folder or holds no ``dataset.json`` written by ``gen3d data import``.
    """
    r = Path(root)
    if not r.is_dir():
        raise InputError("no such folder" if not r.exists() else "expected an imported dataset folder, found a file", r)
    if not (r / MANIFEST).is_file():
        meshes = sum(1 for p in r.rglob("*") if p.suffix.lower() in MESH_SUFFIXES and p.is_file())
        found = f"holds {meshes} mesh files but" if meshes else "holds"
        raise InputError(
            f"{found} no {MANIFEST}; expected a dataset made by 'gen3d data import SRC --out DATASET'"
            + (" (import this folder first)" if meshes else ""),
            r,
        )
    try:
        content = json.loads((r / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise InputError(f"{MANIFEST} is unreadable ({exc})", r) from None
    generator = content.get("generator") if isinstance(content, dict) else None
    if generator != GENERATOR:
        made = f" (it describes a {generator!r} dataset)" if isinstance(generator, str) else ""
        raise InputError(f"{MANIFEST} was not written by 'gen3d data import'{made}; expected an imported dataset", r)
    return content


def load_source_mesh(manifest: dict, shape: dict) -> trimesh.Trimesh:
    """The source mesh of one imported shape in gen3d's frame, the frame of its cloud.

    The file is read as the import read it and transformed as its cloud was:
    ``vertices = (source @ R.T - center) / scale``, ``R`` the ``up`` rotation.

    Args:
        manifest: the import's manifest (:func:`read_manifest`).
        shape: one of ``manifest["shapes"]``, of kind ``"mesh"``.

    Returns:
        The mesh (a ``trimesh.Trimesh``, not processed further).

    Raises:
        InputError: the shape was imported as a point cloud, or its source file is gone or no longer readable.
    """
    import trimesh

    from gen3d.data.meshes import load_mesh

    name = f"{shape['class']}/{shape['id']}"
    if shape.get("kind") != "mesh":
        raise InputError(f"shape {name} was imported as a point cloud; it has no mesh")
    path = Path(manifest["source"]) / shape["source"]
    if not path.is_file():
        raise InputError(f"source file of shape {name} is missing (the import reads meshes from their sources)", path)
    mesh = load_mesh(path)
    vertices = np.asarray(mesh.vertices, dtype=np.float64)  # (V, 3)
    if manifest["up"] == "z":
        vertices = vertices @ Z_UP_TO_Y_UP.T
    vertices = (vertices - np.asarray(shape["center"], dtype=np.float64)) / float(shape["scale"])
    return trimesh.Trimesh(vertices=vertices, faces=np.asarray(mesh.faces), process=False)


def _reason(exc: Exception) -> str:
    """A skip reason: an :class:`InputError`'s message without the path it names, or the exception's text."""
    if isinstance(exc, InputError):
        text = str(exc)
        prefix = f"{exc.path}: " if exc.path is not None else ""
        return text[len(prefix) :] if prefix and text.startswith(prefix) else text
    return f"unreadable ({type(exc).__name__}: {exc})"


# ----------------------------------------------------------------------------------------------------
# Building the dataset
# ----------------------------------------------------------------------------------------------------


def split_shapes(ids: list[str], fractions: Sequence[float], seed: int, cls: str) -> dict[str, list[str]]:
    """Split one class's ids by a seeded permutation (counts from :func:`gen3d.data.shapes.split_counts`).

    Returns:
        ``{split: sorted ids}``.
    """
    from gen3d.data.shapes import split_counts

    counts = split_counts(len(ids), fractions)
    rng = np.random.default_rng(np.random.SeedSequence([seed, zlib.crc32(cls.encode("utf-8")), _SPLIT_STREAM]))
    order = [ids[i] for i in rng.permutation(len(ids))]
    bounds = np.cumsum([0, *counts])
    return {s: sorted(order[bounds[i] : bounds[i + 1]]) for i, s in enumerate(SPLITS)}


def _check_output_root(root: Path) -> None:
    """Refuse an output folder that holds anything but an earlier import."""
    if not any(root.iterdir()):
        return
    try:
        content = json.loads((root / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        content = None
    if not (isinstance(content, dict) and content.get("generator") == GENERATOR):
        raise InputError(
            f"output folder is not empty and holds no gen3d import ({MANIFEST}); choose an empty or new folder", root
        )


def _check_apart(src: Path, out: Path) -> None:
    src_abs, out_abs = src.resolve(), Path(os.path.abspath(out))
    out_abs = out_abs.resolve() if out_abs.exists() else out_abs
    if out_abs == src_abs or src_abs in out_abs.parents or out_abs in src_abs.parents:
        raise InputError(f"the output folder and the source folder {src} must not contain each other", out)


def import_shapes(
    src: str | os.PathLike,
    root: str | os.PathLike,
    class_name: str | None = None,
    points: int = 15000,
    seed: int = 0,
    split: str | Sequence[float] = (0.8, 0.1, 0.1),
    up: str = "y",
    normalize: str = "unit-box",
    show_progress: bool | None = None,
) -> dict:
    """Import a folder of meshes and point clouds into the PC15k layout (see the module).

    Args:
        src: the source folder.
        root: the output folder (new, empty, or an earlier import, which is replaced as a whole).
        class_name: import everything as this one class (None: one class per sub-folder of ``src``).
        points: points per shape (>= 1; 15000 as ShapeNet PC15k).
        seed: sampling and split seed (>= 0).
        split: train/val/test fractions summing to 1.
        up: the source's up axis, ``"y"`` (kept) or ``"z"`` (turned y-up).
        normalize: per-shape normalisation, ``"unit-box"``, ``"unit-sphere"`` or ``"none"``.
        show_progress: progress bar on (True), off (False) or only on a terminal (None).

    Returns:
        The manifest (also ``<root>/dataset.json``): classes, counts per class and split, every shape's source,
        the skipped files with their reasons, the options.

    Raises:
        InputError: bad options, ``src`` holds no usable shape, or ``root`` holds something other than an import.
    """
    from gen3d.data.shapes import parse_split
    from gen3d.utils.staging import staged_build

    fractions = parse_split(split)
    _choice(up, UP_AXES, "--up")
    _choice(normalize, NORMALIZATIONS, "--normalize")
    if points < 1 or seed < 0:
        raise InputError(f"--points must be at least 1 and --seed non-negative, got {points} and {seed}")
    _check_apart(Path(src), Path(root))
    plan = plan_import(src, class_name)
    options = {
        "generator": GENERATOR,
        "version": VERSION,
        "source": str(Path(src).resolve()),
        "class": class_name,
        "points": points,
        "seed": seed,
        "split": list(fractions),
        "up": up,
        "normalize": normalize,
        "files": fingerprint(plan),
    }
    staged_build(
        root,
        options,
        lambda stage: _build(stage, plan, options, show_progress),
        check=_check_output_root,
    )
    return json.loads((Path(root) / MANIFEST).read_text(encoding="utf-8"))


def _build(stage: Path, plan: ImportPlan, options: dict, show_progress: bool | None) -> None:
    """Write the whole dataset into ``stage`` (an interrupted import starts over)."""
    from gen3d.utils import atomic_write_text
    from gen3d.utils.staging import RECORD

    for entry in stage.iterdir():
        if entry.name != RECORD:
            if entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry)
            else:
                entry.unlink()
    shapes, skipped = _read_all(stage / _PENDING, plan, options, show_progress)
    if not shapes:
        first = f" (first: {skipped[0][0]}: {skipped[0][1]})" if skipped else ""
        raise InputError(f"none of the {len(plan.sources)} shape files could be read{first}", plan.src)
    splits = _place(stage, shapes, options)
    shutil.rmtree(stage / _PENDING)
    manifest = _manifest(plan, options, shapes, splits, skipped)
    _write_normalization(stage, splits)
    atomic_write_text(stage / MANIFEST, json.dumps(manifest, indent=2) + "\n")


def _read_all(
    pending: Path, plan: ImportPlan, options: dict, show_progress: bool | None
) -> tuple[list[Shape], list[tuple[str, str]]]:
    """Read every source into ``pending/<class>/<id>.npy``; returns the shapes read and every skipped file."""
    from gen3d.utils import progress

    shapes, skipped = [], list(plan.skipped)
    disable = None if show_progress is None else not show_progress
    for source in progress(plan.sources, "importing shapes", disable=disable):
        try:
            cloud, shape = read_shape(source, options["points"], options["seed"], options["up"], options["normalize"])
        except Exception as exc:  # any unreadable user file is skipped with its reason, the import goes on
            skipped.append((source.rel, _reason(exc)))
            continue
        (pending / source.cls).mkdir(parents=True, exist_ok=True)
        np.save(pending / source.cls / f"{source.id}.npy", cloud)
        shapes.append(shape)
    return shapes, sorted(skipped)


def _place(stage: Path, shapes: list[Shape], options: dict) -> dict[str, dict[str, list[str]]]:
    """Draw each class's splits and move its clouds into ``<class>/<split>/``; returns ``{class: {split: ids}}``."""
    by_class: dict[str, list[str]] = {}
    for shape in shapes:
        by_class.setdefault(shape.source.cls, []).append(shape.source.id)
    splits = {}
    for cls, ids in by_class.items():
        splits[cls] = split_shapes(ids, options["split"], options["seed"], cls)
        for s, members in splits[cls].items():
            (stage / cls / s).mkdir(parents=True, exist_ok=True)
            for sid in members:
                os.replace(stage / _PENDING / cls / f"{sid}.npy", stage / cls / s / f"{sid}.npy")
    return splits


def _manifest(
    plan: ImportPlan,
    options: dict,
    shapes: list[Shape],
    splits: dict[str, dict[str, list[str]]],
    skipped: list[tuple[str, str]],
) -> dict:
    where = {(cls, sid): s for cls, parts in splits.items() for s, ids in parts.items() for sid in ids}
    records = [
        {
            "class": sh.source.cls,
            "split": where[sh.source.cls, sh.source.id],
            "id": sh.source.id,
            "source": sh.source.rel,
            "kind": sh.kind,
            "center": sh.center,
            "scale": sh.scale,
        }
        for sh in shapes
    ]
    return {
        **{k: v for k, v in options.items() if k != "files"},
        "classes": list(splits),
        "class_folders": {cls: plan.classes[cls] for cls in splits},
        "counts": {cls: {s: len(ids) for s, ids in parts.items()} for cls, parts in splits.items()},
        "files": len(plan.sources) + len(plan.skipped) + len(plan.ignored),
        "layout": "<root>/<class>/<split>/<id>.npy",
        "frame": "y up; cloud = (source @ R.T - center) / scale, R the --up rotation",
        "shapes": sorted(records, key=lambda r: (r["class"], SPLITS.index(r["split"]), r["id"])),
        "skipped": [{"source": rel, "reason": reason} for rel, reason in skipped],
        "ignored": plan.ignored,
    }


def _write_normalization(stage: Path, splits: dict[str, dict[str, list[str]]]) -> None:
    """``normalization.json``: the global statistics of the train split (when it holds any shape)."""
    from gen3d.data.normalize import GlobalNorm

    n, coord_sum, square_sum = 0, np.zeros(3), 0.0
    for cls, parts in splits.items():
        for sid in parts["train"]:
            cloud = np.load(stage / cls / "train" / f"{sid}.npy").astype(np.float64)  # (P, 3)
            n, coord_sum, square_sum = n + len(cloud), coord_sum + cloud.sum(0), square_sum + float((cloud**2).sum())
    if n:
        GlobalNorm.from_moments(n, coord_sum, square_sum).save(stage / NORMALIZATION)


# ----------------------------------------------------------------------------------------------------
# Summary
# ----------------------------------------------------------------------------------------------------


def _count(n: int, one: str, many: str) -> str:
    return f"{n} {one if n == 1 else many}"


def _files(n: int) -> str:
    return _count(n, "file", "files")


def summary_lines(manifest: dict, root: str | os.PathLike) -> list[str]:
    """The import's report: shapes read per class and split, every skipped file with its reason, one line each."""
    counts = manifest["counts"]
    read = sum(sum(c.values()) for c in counts.values())
    clouds = sum(s["kind"] == "points" for s in manifest["shapes"])
    kinds = f"{_count(read - clouds, 'mesh', 'meshes')}, {_count(clouds, 'point cloud', 'point clouds')}"
    lines = [f"read {read} shapes ({kinds}) from {manifest['source']} ({_files(manifest['files'])}):"]
    width = max(len(c) for c in counts)
    for cls, c in counts.items():
        lines.append(f"  {cls:<{width}}  train {c['train']:>5}  val {c['val']:>5}  test {c['test']:>5}")
    skipped = manifest["skipped"]
    if skipped:
        lines.append(f"skipped {_files(len(skipped))}:")
        lines.extend(f"  {s['source']}: {s['reason']}" for s in skipped)
    if manifest["ignored"]:
        suffixes = sorted({Path(p).suffix.lower() for p in manifest["ignored"]})
        lines.append(f"ignored {_files(len(manifest['ignored']))} that meshes refer to ({', '.join(suffixes)})")
    lines.append(
        f"wrote {root}: {manifest['points']} points per shape, up {manifest['up']}, normalize "
        f"{manifest['normalize']}, split {','.join(f'{f:g}' for f in manifest['split'])}, seed {manifest['seed']}"
    )
    return lines


def mesh_folder_hint(root: str | os.PathLike) -> str | None:
    """A hint for a folder of mesh files given where a dataset in the PC15k layout is expected (None otherwise)."""
    r = Path(root)
    if not r.is_dir() or (r / MANIFEST).is_file():
        return None
    shapes = [p for p in r.rglob("*") if p.suffix.lower() in MESH_SUFFIXES and p.is_file()]
    if not shapes:
        return None
    return (
        f"holds {len(shapes)} mesh files but no <class>/<split>/<id>.npy clouds; convert it first with "
        f"'gen3d data import {r} --out DATASET' (add --class NAME for a flat folder)"
    )
