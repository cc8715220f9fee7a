"""Path rules of the viewer: it reads and writes only inside its run directory.

Every path the viewer opens or writes is resolved (symlinks followed, ``..`` collapsed) and checked to
lie inside the resolved run directory; anything else raises :class:`gen3d.errors.InputError`.
"""

from __future__ import annotations

import os
from pathlib import Path

from gen3d.errors import InputError

# Folders whose parent is taken as the run directory when the viewer is pointed at a file inside them.
RUN_SUBFOLDERS = ("samples", "checkpoints", "meshes", "exports", "viewer")


def is_inside(root: str | os.PathLike, path: str | os.PathLike) -> bool:
    """Whether ``path`` (resolved) lies inside the resolved folder ``root`` (or is ``root`` itself)."""
    root_r = Path(root).resolve()
    path_r = Path(path).resolve()
    return path_r == root_r or root_r in path_r.parents


def resolve_inside(root: str | os.PathLike, path: str | os.PathLike) -> Path:
    """Resolve ``path`` (relative paths are taken relative to ``root``) and check it stays inside ``root``.

    Args:
        root: the run directory.
        path: a path to read or write.

    Returns:
        The resolved absolute path.

    Raises:
        InputError: when the resolved path leaves ``root`` (``..``, an absolute path elsewhere, or a
            symlink pointing out).
    """
    root_r = Path(root).resolve()
    candidate = Path(path)
    if not candidate.is_absolute():
        candidate = root_r / candidate
    resolved = candidate.resolve()
    if resolved != root_r and root_r not in resolved.parents:
        raise InputError(f"refusing a path outside the run directory {root_r}", path)
    return resolved


def run_dir_for(path: str | os.PathLike) -> Path:
    """The run directory of a viewer input: the folder itself, or the folder holding the file (its parent
    when that folder is one of a run's standard subfolders such as ``samples/`` or ``checkpoints/``)."""
    p = Path(path).resolve()
    if p.is_dir():
        return p
    parent = p.parent
    if parent.name in RUN_SUBFOLDERS:
        return parent.parent
    return parent


def safe_file_name(name: str, suffix: str) -> str:
    """A file name from user input: strip whitespace and a trailing copy of ``suffix``, refuse empty names.

    Args:
        name: what the user typed (may include sub-folders; :func:`resolve_inside` checks where it leads).
        suffix: the extension to append, with its dot.

    Returns:
        ``name`` + ``suffix``.
    """
    stem = name.strip()
    if stem.lower().endswith(suffix.lower()):
        stem = stem[: -len(suffix)]
    if not stem or stem in (".", ".."):
        raise InputError(f"empty or invalid file name {name!r}")
    if "\x00" in stem:
        raise InputError("file name contains a NUL character")
    return stem + suffix
