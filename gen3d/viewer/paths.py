"""Path rules of the viewer: it reads and writes only inside its run directory.

Every path the viewer opens or writes is resolved (symlinks followed, ``..`` collapsed) and checked to
lie inside the resolved run directory; anything else raises :class:`gen3d.errors.InputError`. File names
typed in the panel must be plain names (:func:`safe_file_name`), and a save never replaces an existing file
(:func:`write_new_file` numbers the copy instead).
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

from gen3d.errors import InputError

# Folders whose parent is taken as the run directory when the viewer is pointed at a file inside them.
RUN_SUBFOLDERS = ("samples", "checkpoints", "meshes", "exports", "viewer")
MAX_NAME_LENGTH = 128  # characters of a file name typed in the viewer, without its suffix
MAX_NUMBERED_NAMES = 10000  # name, name_1, ... name_9999


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
    """A file name typed by the user: a plain name, without folders, that cannot lead anywhere else.

    Surrounding whitespace and a trailing copy of ``suffix`` are dropped.

    Args:
        name: what the user typed, e.g. ``chair`` or ``chair.ply``.
        suffix: the extension to append, with its dot.

    Returns:
        ``name`` + ``suffix``.

    Raises:
        InputError: when ``name`` is empty or longer than :data:`MAX_NAME_LENGTH` characters, holds ``/``,
            ``\\``, ``..`` or a control character, or starts with a dot.
    """
    stem = name.strip()
    if stem.lower().endswith(suffix.lower()):
        stem = stem[: -len(suffix)]
    problem = _name_problem(stem)
    if problem:
        shown = name if len(name) <= 2 * MAX_NAME_LENGTH else name[: 2 * MAX_NAME_LENGTH] + "..."
        raise InputError(f"invalid file name {shown!r}: {problem}; type a plain name such as 'chair'")
    return stem + suffix


def _name_problem(stem: str) -> str | None:
    """Why ``stem`` is not a plain file name, or None."""
    if not stem:
        return "it is empty"
    if len(stem) > MAX_NAME_LENGTH:
        return f"it is longer than {MAX_NAME_LENGTH} characters"
    if "/" in stem or "\\" in stem or ".." in stem:
        return "it may not contain '/', '\\' or '..'"
    if any(ord(c) < 32 or ord(c) == 127 for c in stem):
        return "it may not contain control characters"
    if stem.startswith("."):
        return "it may not start with '.'"
    return None


def numbered_name(stem: str, suffix: str, number: int) -> str:
    """``stem`` + ``suffix`` for number 0, else ``stem_<number>`` + ``suffix``."""
    return f"{stem}{suffix}" if number == 0 else f"{stem}_{number}{suffix}"


def write_new_file(dest: Path, write: Callable[[Path], object]) -> Path:
    """Write a file at ``dest`` without replacing anything: when ``dest`` exists, at ``<stem>_1<suffix>``,
    ``<stem>_2<suffix>``, ... (the first name that is free).

    The file is written completely in a hidden staging folder next to ``dest``, then linked under the first
    free name; creating the link fails when the name is taken, so two saves never claim the same name.

    Args:
        dest: the preferred destination.
        write: writes a file at the path it is given.

    Returns:
        The file written.

    Raises:
        InputError: when the folder cannot be written or every numbered name up to
            :data:`MAX_NUMBERED_NAMES` is taken.
    """
    folder = dest.parent
    try:
        folder.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=".saving-", dir=folder))
    except OSError as exc:
        raise InputError(f"cannot write here ({exc.strerror or exc})", folder) from exc
    try:
        staged = staging / dest.name
        write(staged)
        for number in range(MAX_NUMBERED_NAMES):
            candidate = folder / numbered_name(dest.stem, dest.suffix, number)
            if _claim(staged, candidate):
                return candidate
        raise InputError(f"no free file name: {dest.name} and {MAX_NUMBERED_NAMES - 1} numbered copies exist")
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _claim(staged: Path, candidate: Path) -> bool:
    """Give the finished file ``staged`` the name ``candidate`` unless that name is taken."""
    try:
        os.link(staged, candidate)
        return True
    except FileExistsError:
        return False
    except OSError:  # a file system without hard links: reserve the name, then move the file onto it
        pass
    try:
        os.close(os.open(candidate, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
    except FileExistsError:
        return False
    except OSError as exc:
        raise InputError(f"cannot write here ({exc.strerror or exc})", candidate) from exc
    os.replace(staged, candidate)
    return True
