"""What the viewer shows: the samples, training data, meshes and checkpoints found at the path it was given.

:func:`open_input` accepts a run directory (or any folder), a samples file (``.npz``/``.npy``/``.ply``),
a mesh file (``.obj``/``.ply`` with faces/``.glb``/``.stl``/``.off``) or a checkpoint (``.ckpt``/``.pt``).
Files are validated on load; a missing or corrupt input raises :class:`gen3d.errors.InputError`.
Files inside a folder that resolve outside it (symlinks pointing out) are never read.

What is found is sorted into groups (:data:`GROUPS`): sample files, training data, meshes and checkpoints.
Training data in the dataset layout ``<class>/<split>/<id>.npy`` is listed by class and split, the first
:data:`DATA_PER_SPLIT` clouds of each (with the total count); a shape stored twice (``samples.npz`` and the
``ply/`` copies written beside it, or a preview that repeats the start of a training cloud) is listed once.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from gen3d.errors import InputError
from gen3d.viewer.paths import is_inside, run_dir_for

POINT_SUFFIXES = (".npz", ".npy", ".ply")
MESH_SUFFIXES = (".obj", ".ply", ".glb", ".gltf", ".stl", ".off")
CHECKPOINT_SUFFIXES = (".ckpt", ".pt", ".pth")
MAX_SCAN_DEPTH = 4
MAX_FILES = 2000

SAMPLES = "Samples"
DATA = "Training data"
MESHES = "Meshes"
SESSION = "This session"
CHECKPOINTS = "Checkpoints"
GROUPS = (SAMPLES, DATA, MESHES, SESSION, CHECKPOINTS)  # the order of the sample browser's groups
SPLITS = ("train", "val", "test")  # split folders of the dataset layout <class>/<split>/<id>.npy
DATA_PER_SPLIT = 4  # training clouds listed per class and split
COPY_FOLDER = "ply"  # gen3d sample: <out>/ply/ holds one PLY per shape of <out>/samples.npz
SAMPLER_CONFIG = "sampler.json"  # gen3d sample writes it beside samples.npz


@dataclass
class Item:
    """One thing to show: a point cloud or a mesh.

    Attributes:
        label: name shown in the sample browser (unique within a viewer).
        points: (P, 3) float32 points, for a point cloud.
        mesh: ``trimesh.Trimesh``, for a mesh.
        source: file it came from (None for shapes made in the viewer).
        group: the browser group it is listed in (one of :data:`GROUPS`).
    """

    label: str
    points: np.ndarray | None = None
    mesh: Any = None
    source: Path | None = None
    group: str = SAMPLES

    @property
    def kind(self) -> str:
        return "mesh" if self.mesh is not None else "points"

    def vertices(self) -> np.ndarray:
        """(V, 3) positions: the points, or the mesh vertices."""
        return np.asarray(self.mesh.vertices) if self.mesh is not None else np.asarray(self.points)


@dataclass
class ViewerInput:
    """Everything found at the viewer's path.

    Attributes:
        path: the path as given (resolved).
        run_dir: the folder the viewer may read from and write into.
        items: point clouds and meshes to browse, in the order of :data:`GROUPS`.
        checkpoints: model checkpoints found (newest last; ``last.ckpt`` preferred by callers).
        data: training-data folders (``<class>/<split>`` relative to ``path``) -> (clouds listed, clouds there).
        copies: files (or sets) not listed because they hold shapes listed already, with the original.
        skipped: files that were not read, with the reason.
    """

    path: Path
    run_dir: Path
    items: list[Item] = field(default_factory=list)
    checkpoints: list[Path] = field(default_factory=list)
    data: dict[str, tuple[int, int]] = field(default_factory=dict)
    copies: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)


def ply_has_faces(path: str | os.PathLike) -> bool:
    """Whether a PLY file declares a non-empty ``face`` element (a mesh) rather than bare vertices."""
    p = Path(path)
    try:
        with open(p, "rb") as fh:
            header = fh.read(65536)
    except OSError as exc:
        raise InputError(f"cannot read file ({exc})", p) from exc
    if not header.startswith(b"ply"):
        raise InputError("not a PLY file (missing 'ply' magic)", p)
    end = header.find(b"end_header")
    if end < 0:
        raise InputError("PLY header has no 'end_header' line", p)
    for line in header[:end].decode("ascii", errors="replace").splitlines():
        parts = line.split()
        if len(parts) == 3 and parts[0] == "element" and parts[1] == "face":
            return parts[2].isdigit() and int(parts[2]) > 0
    return False


def load_items(path: str | os.PathLike, label_prefix: str = "", group: str = SAMPLES) -> list[Item]:
    """Load the point clouds or the mesh held by one file.

    Args:
        path: ``.npz``/``.npy`` (one cloud or a set), ``.ply`` (cloud or mesh), or another mesh format.
        label_prefix: prepended to labels (e.g. the file's path relative to the run directory).
        group: browser group of point clouds (meshes go to :data:`MESHES`).

    Returns:
        One item per cloud, or one mesh item.
    """
    from gen3d.data.io import load_points
    from gen3d.data.meshes import load_mesh

    p = Path(path)
    name = label_prefix or p.name
    suffix = p.suffix.lower()
    if suffix in (".npz", ".npy") or (suffix == ".ply" and not ply_has_faces(p)):
        arr = load_points(p)
        if arr.ndim == 2:
            return [Item(name, points=arr, source=p, group=group)]
        return [Item(f"{name} [{i}]", points=cloud, source=p, group=group) for i, cloud in enumerate(arr)]
    if suffix in MESH_SUFFIXES:
        return [Item(name, mesh=load_mesh(p), source=p, group=MESHES)]
    raise InputError(
        f"unsupported file type {suffix!r}; expected samples ({', '.join(POINT_SUFFIXES)}), a mesh "
        f"({', '.join(MESH_SUFFIXES)}) or a checkpoint ({', '.join(CHECKPOINT_SUFFIXES)})",
        p,
    )


@dataclass
class _Scan:
    files: list[Path] = field(default_factory=list)
    data_files: set[Path] = field(default_factory=set)
    data: dict[str, tuple[int, int]] = field(default_factory=dict)
    copies: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)


def _is_split_folder(folder: Path, dirpath: Path, filenames: list[str]) -> bool:
    """Whether ``dirpath`` is a ``<class>/<split>`` folder of the dataset layout (below ``folder``)."""
    return dirpath != folder and dirpath.name in SPLITS and any(f.endswith(".npy") for f in filenames)


def _copy_folder_of(dirpath: Path) -> bool:
    """Whether ``dirpath`` is the ``ply/`` folder ``gen3d sample`` writes beside ``samples.npz`` (copies of its
    shapes; ``sampler.json`` marks that layout)."""
    parent = dirpath.parent
    return dirpath.name == COPY_FOLDER and (parent / SAMPLER_CONFIG).is_file() and (parent / "samples.npz").is_file()


def _scan(folder: Path, data_per_split: int = DATA_PER_SPLIT) -> _Scan:
    """Files of interest below ``folder`` (sorted, hidden entries skipped, symlinks out refused).

    Of a dataset's ``<class>/<split>`` folder only the first ``data_per_split`` clouds are taken (all are counted);
    the ``ply/`` copies ``gen3d sample`` writes beside its ``samples.npz`` are left out.
    """
    scan = _Scan()
    wanted = set(POINT_SUFFIXES) | set(MESH_SUFFIXES) | set(CHECKPOINT_SUFFIXES)
    for dirpath, dirnames, filenames in os.walk(folder, followlinks=False):
        here = Path(dirpath)
        rel_depth = len(here.relative_to(folder).parts)
        dirnames[:] = sorted(d for d in dirnames if not d.startswith(".") and rel_depth < MAX_SCAN_DEPTH)
        names = sorted(f for f in filenames if not f.startswith(".") and Path(f).suffix.lower() in wanted)
        if here != folder and _copy_folder_of(here):
            rel = here.relative_to(folder)
            for f in names:
                if f.lower().endswith(".ply"):
                    scan.copies.append(
                        f"{(rel / f).as_posix()}: a copy of a shape in {(rel.parent / 'samples.npz').as_posix()}"
                    )
            names = [f for f in names if not f.lower().endswith(".ply")]
        data_names: list[str] = []
        if _is_split_folder(folder, here, names):
            clouds = [f for f in names if f.endswith(".npy")]
            data_names = clouds[: max(int(data_per_split), 0)]
            scan.data[here.relative_to(folder).as_posix()] = (len(data_names), len(clouds))
            names = [f for f in names if not f.endswith(".npy")] + data_names
        for fname in sorted(names):
            f = here / fname
            if not is_inside(folder, f):
                scan.skipped.append(f"{f}: points outside the run directory")
                continue
            scan.files.append(f)
            if fname in data_names:
                scan.data_files.add(f)
            if len(scan.files) >= MAX_FILES:
                scan.skipped.append(f"{folder}: more than {MAX_FILES} files; the rest were not read")
                return scan
    return scan


def _load_order(path: Path) -> tuple[int, str]:
    """Files whose shapes are kept when a shape is stored twice come first: ``.npz`` sets, ``.npy``, then ``.ply``."""
    return ({".npz": 0, ".npy": 1}.get(path.suffix.lower(), 2), str(path))


class _CopyFinder:
    """Finds clouds that repeat a cloud listed before: equal to it, or to its first points (a subsample)."""

    def __init__(self) -> None:
        self._seen: dict[bytes, list[Item]] = {}

    @staticmethod
    def _key(points: np.ndarray) -> bytes:
        """The first point: a copy, whole or a prefix, starts with it too (candidates are compared in full)."""
        return np.ascontiguousarray(points[:1], dtype=np.float32).tobytes()

    def original_of(self, item: Item) -> Item | None:
        """The listed item whose points start with ``item``'s points, if any."""
        pts = np.asarray(item.points)
        for other in self._seen.get(self._key(pts), []):
            if len(other.points) >= len(pts) and np.array_equal(other.points[: len(pts)], pts):
                return other
        return None

    def add(self, item: Item) -> None:
        self._seen.setdefault(self._key(np.asarray(item.points)), []).append(item)


def _browse_order(item: Item) -> tuple[int, str, int]:
    """Sort key of the browser: by group; training data by class, then split (train, val, test). The sort is stable,
    so files keep their folder order within that."""
    if item.group == DATA and item.source is not None:
        split = item.source.parent
        return GROUPS.index(DATA), str(split.parent), SPLITS.index(split.name)
    return GROUPS.index(item.group), "", 0


def open_input(path: str | os.PathLike, data_per_split: int = DATA_PER_SPLIT) -> ViewerInput:
    """Find and load what the viewer should show at ``path``.

    Args:
        path: a run directory or folder of samples/meshes, a samples or mesh file, or a checkpoint.
        data_per_split: training clouds listed per ``<class>/<split>`` folder of a dataset found in a folder.

    Returns:
        The loaded :class:`ViewerInput`.

    Raises:
        InputError: when ``path`` does not exist, holds nothing viewable, or a file is corrupt.
    """
    p = Path(path)
    if not p.exists():
        raise InputError("no such file or folder; expected a run directory, a samples file or a checkpoint", p)
    p = p.resolve()
    run_dir = run_dir_for(p)
    result = ViewerInput(path=p, run_dir=run_dir)
    if p.is_file():
        if p.suffix.lower() in CHECKPOINT_SUFFIXES:
            if p.stat().st_size == 0:
                raise InputError("checkpoint file is empty", p)
            result.checkpoints.append(p)
        else:
            result.items = load_items(p)
        return result
    scan = _scan(p, data_per_split)
    result.data, result.copies, result.skipped = scan.data, scan.copies, scan.skipped
    finder = _CopyFinder()
    loaded: dict[Path, list[Item]] = {}
    for f in sorted(scan.files, key=_load_order):
        if f.suffix.lower() in CHECKPOINT_SUFFIXES:
            result.checkpoints.append(f)
            continue
        group = DATA if f in scan.data_files else SAMPLES
        items = load_items(f, label_prefix=str(f.relative_to(p)), group=group)
        kept = []
        for item in items:
            original = finder.original_of(item) if item.mesh is None else None
            if original is None:
                kept.append(item)
                if item.mesh is None:
                    finder.add(item)
            else:
                result.copies.append(f"{item.label}: the same shape as {original.label}")
        loaded[f] = kept
    result.items = sorted((item for f in scan.files for item in loaded.get(f, [])), key=_browse_order)
    if not result.items and not result.checkpoints:
        raise InputError(
            "holds no samples (.npz/.npy/.ply), meshes (.obj/.glb/.stl/.off) or checkpoints (.ckpt); "
            "expected a run directory or a folder of samples",
            p,
        )
    result.checkpoints.sort(key=lambda c: (c.name == "last.ckpt", c.stat().st_mtime))
    return result
