"""What the viewer shows: the samples, meshes and checkpoints found at the path it was given.

:func:`open_input` accepts a run directory (or any folder), a samples file (``.npz``/``.npy``/``.ply``),
a mesh file (``.obj``/``.ply`` with faces/``.glb``/``.stl``/``.off``) or a checkpoint (``.ckpt``/``.pt``).
Files are validated on load; a missing or corrupt input raises :class:`gen3d.errors.InputError`.
Files inside a folder that resolve outside it (symlinks pointing out) are never read.
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


@dataclass
class Item:
    """One thing to show: a point cloud or a mesh.

    Attributes:
        label: name shown in the sample browser (unique within a viewer).
        points: (P, 3) float32 points, for a point cloud.
        mesh: ``trimesh.Trimesh``, for a mesh.
        source: file it came from (None for generated samples).
    """

    label: str
    points: np.ndarray | None = None
    mesh: Any = None
    source: Path | None = None

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
        items: point clouds and meshes to browse.
        checkpoints: model checkpoints found (newest last; ``last.ckpt`` preferred by callers).
        skipped: files that were not read, with the reason.
    """

    path: Path
    run_dir: Path
    items: list[Item] = field(default_factory=list)
    checkpoints: list[Path] = field(default_factory=list)
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


def load_items(path: str | os.PathLike, label_prefix: str = "") -> list[Item]:
    """Load the point clouds or the mesh held by one file.

    Args:
        path: ``.npz``/``.npy`` (one cloud or a set), ``.ply`` (cloud or mesh), or another mesh format.
        label_prefix: prepended to labels (e.g. the file's path relative to the run directory).

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
            return [Item(name, points=arr, source=p)]
        return [Item(f"{name} [{i}]", points=cloud, source=p) for i, cloud in enumerate(arr)]
    if suffix in MESH_SUFFIXES:
        return [Item(name, mesh=load_mesh(p), source=p)]
    raise InputError(
        f"unsupported file type {suffix!r}; expected samples ({', '.join(POINT_SUFFIXES)}), a mesh "
        f"({', '.join(MESH_SUFFIXES)}) or a checkpoint ({', '.join(CHECKPOINT_SUFFIXES)})",
        p,
    )


def _scan(folder: Path) -> tuple[list[Path], list[str]]:
    """Files of interest below ``folder`` (sorted, hidden entries skipped, symlinks out refused)."""
    found, skipped = [], []
    wanted = set(POINT_SUFFIXES) | set(MESH_SUFFIXES) | set(CHECKPOINT_SUFFIXES)
    for dirpath, dirnames, filenames in os.walk(folder, followlinks=False):
        rel_depth = len(Path(dirpath).relative_to(folder).parts)
        dirnames[:] = sorted(d for d in dirnames if not d.startswith(".") and rel_depth < MAX_SCAN_DEPTH)
        for fname in sorted(filenames):
            f = Path(dirpath) / fname
            if fname.startswith(".") or f.suffix.lower() not in wanted:
                continue
            if not is_inside(folder, f):
                skipped.append(f"{f}: points outside the run directory")
                continue
            found.append(f)
            if len(found) >= MAX_FILES:
                skipped.append(f"{folder}: more than {MAX_FILES} files; the rest were not read")
                return found, skipped
    return found, skipped


def open_input(path: str | os.PathLike) -> ViewerInput:
    """Find and load what the viewer should show at ``path``.

    Args:
        path: a run directory or folder of samples/meshes, a samples or mesh file, or a checkpoint.

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
    files, result.skipped = _scan(p)
    for f in files:
        if f.suffix.lower() in CHECKPOINT_SUFFIXES:
            result.checkpoints.append(f)
        else:
            result.items.extend(load_items(f, label_prefix=str(f.relative_to(p))))
    if not result.items and not result.checkpoints:
        raise InputError(
            "holds no samples (.npz/.npy/.ply), meshes (.obj/.glb/.stl/.off) or checkpoints (.ckpt); "
            "expected a run directory or a folder of samples",
            p,
        )
    result.checkpoints.sort(key=lambda c: (c.name == "last.ckpt", c.stat().st_mtime))
    return result
