"""Mesh files (``.obj .ply .off .stl .glb .gltf``) loaded with trimesh as one triangle mesh.

Scenes (glTF/GLB, multi-object OBJ) are flattened into a single mesh with every node transform applied.
``.off`` files go through gen3d's own tolerant reader (:mod:`gen3d.data.off`), which accepts ModelNet's
malformed headers. Empty, corrupt, face-less or zero-area meshes raise :class:`InputError`.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import trimesh

from gen3d.data.off import read_off
from gen3d.errors import InputError
from gen3d.utils.fs import check_exists, check_suffix, list_files

MESH_SUFFIXES = (".obj", ".ply", ".off", ".stl", ".glb", ".gltf")


def load_mesh(path: str | os.PathLike) -> trimesh.Trimesh:
    """Load a mesh file as one ``trimesh.Trimesh``.

    Args:
        path: a ``.obj``, ``.ply``, ``.off``, ``.stl``, ``.glb`` or ``.gltf`` file.

    Returns:
        The mesh (scenes flattened, transforms applied), with at least one face of non-zero area.
    """
    p = check_exists(path, "file")
    suffix = check_suffix(p, MESH_SUFFIXES, "mesh")
    if suffix == ".off":
        vertices, faces = read_off(p)
        mesh = trimesh.Trimesh(vertices=vertices, faces=faces, process=False)
    else:
        try:
            loaded = trimesh.load(str(p), file_type=suffix[1:])
        except Exception as exc:  # trimesh's parsers raise many exception types on corrupt files
            raise InputError(f"not a readable {suffix} mesh ({type(exc).__name__}: {exc})", p) from exc
        if isinstance(loaded, trimesh.Scene):
            if not loaded.geometry:
                raise InputError(f"no geometry found; expected a {suffix} mesh with faces", p)
            try:
                loaded = loaded.to_mesh()
            except Exception as exc:
                raise InputError(f"could not flatten the scene into one mesh ({exc})", p) from exc
        if not isinstance(loaded, trimesh.Trimesh):
            raise InputError(f"holds a {type(loaded).__name__} without faces; expected a triangle mesh", p)
        mesh = loaded
    return check_mesh(mesh, p)


def check_mesh(mesh: trimesh.Trimesh, source: str | os.PathLike | None = None) -> trimesh.Trimesh:
    """Raise :class:`InputError` unless the mesh has faces, finite vertices and non-zero area."""
    if len(mesh.faces) == 0:
        raise InputError("mesh has no faces; expected a triangle mesh", source)
    if not np.isfinite(np.asarray(mesh.vertices)).all():
        raise InputError("mesh has NaN or Inf vertex coordinates", source)
    if not float(mesh.area) > 0:
        raise InputError("mesh has zero surface area", source)
    return mesh


def list_mesh_files(root: str | os.PathLike, suffixes: tuple[str, ...] = MESH_SUFFIXES) -> list[Path]:
    """Every mesh file under ``root`` (recursively), sorted by relative path.

    Args:
        root: a folder.
        suffixes: accepted file suffixes (lower case).

    Returns:
        The sorted files; raises :class:`InputError` if ``root`` is missing or holds none.
    """
    return list_files(root, suffixes, "mesh")
