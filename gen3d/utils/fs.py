"""Filesystem helpers: atomic writes (no half-written output, PNGs included), path validation and file listing."""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from gen3d.errors import InputError


def _nearest_existing(path: Path) -> Path:
    """``path`` or its closest ancestor that exists."""
    current = path
    while not current.exists() and current.parent != current:
        current = current.parent
    return current


def _check_creatable(folder: Path, path: str | os.PathLike, option: str | None) -> None:
    """Raise :class:`InputError` (naming ``path``) unless ``folder`` exists or can be created, writable."""
    base = _nearest_existing(folder)
    where = f" (given as {option})" if option else ""
    if not base.is_dir():
        raise InputError(f"{base} is a file, not a folder{where}", path)
    if not os.access(base, os.W_OK | os.X_OK):
        raise InputError(f"folder {base} is not writable{where}", path)


def check_output_file(path: str | os.PathLike, option: str | None = None) -> Path:
    """Check, before any work, that a file can be written at ``path``; nothing is created.

    Args:
        path: the output file.
        option: the command-line option that named it (e.g. ``"--json"``), for the message.

    Returns:
        ``path`` as a :class:`Path`.

    Raises:
        InputError: ``path`` is empty or a folder, a parent is a file, or the folder that would hold it is not
            writable.
    """
    where = f" (given as {option})" if option else ""
    if not os.fspath(path):
        raise InputError(f"empty output file name{where}")
    p = Path(os.path.abspath(path))
    if p.is_dir():
        raise InputError(f"is a folder, expected a file{where}", path)
    _check_creatable(p.parent, path, option)
    return Path(path)


def check_output_dir(path: str | os.PathLike, option: str | None = None, replaced: bool = False) -> Path:
    """Check, before any work, that ``path`` is (or can be created as) a writable folder; nothing is created.

    Args:
        path: the output folder.
        option: the command-line option that named it (e.g. ``"--out"``), for the message.
        replaced: the folder is built beside itself and swapped in whole (dataset builds), so its parent must
            be writable too.

    Returns:
        ``path`` as a :class:`Path`.

    Raises:
        InputError: ``path`` is empty or an existing file, a parent is a file, or it is not writable.
    """
    where = f" (given as {option})" if option else ""
    if not os.fspath(path):
        raise InputError(f"empty output folder name{where}")
    p = Path(os.path.abspath(path))
    if p.exists() and not p.is_dir():
        raise InputError(f"is a file, expected a folder{where}", path)
    if p.is_dir():
        if not os.access(p, os.W_OK | os.X_OK):
            raise InputError(f"folder is not writable{where}", path)
    else:
        _check_creatable(p, path, option)
    if replaced:
        _check_creatable(p.parent, path, option)
    return Path(path)


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, suffix: str | None = None) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; rename it onto ``path`` only if the block succeeds.

    Writers that take a file name (open3d, trimesh, ``np.save``) write to the yielded path; readers of
    ``path`` never see a partial file, and on error nothing is left behind.

    Args:
        path: the final destination. Its parent folder is created.
        suffix: suffix of the temporary file (defaults to ``path``'s, since some writers pick the
            format from it).

    Raises:
        InputError: ``path`` is a folder, or its folder cannot be created or written.

    Example:
        >>> with atomic_path("out/cloud.ply") as tmp:
        ...     o3d.io.write_point_cloud(str(tmp), pcd)
    """
    path = Path(path)
    check_output_file(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(
            prefix=f".{path.name}.", suffix=suffix if suffix is not None else path.suffix, dir=path.parent
        )
    except OSError as exc:
        raise InputError(f"cannot write here ({exc.strerror or exc})", path) from exc
    os.close(fd)
    os.chmod(tmp, 0o666 & ~_umask())
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        try:
            os.replace(tmp_path, path)
        except OSError as exc:
            raise InputError(f"cannot write here ({exc.strerror or exc})", path) from exc
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


def _umask() -> int:
    """The process's file-creation mask, read without changing it where the system allows (Linux's
    ``/proc/self/status``); elsewhere it is set and restored at once."""
    try:
        with open("/proc/self/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically."""
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    """Write ``text`` (UTF-8) to ``path`` atomically."""
    atomic_write_bytes(path, text.encode("utf-8"))


def check_exists(path: str | os.PathLike, kind: str = "file or folder") -> Path:
    """Return ``path`` as a :class:`Path`, raising :class:`InputError` when it does not exist."""
    p = Path(path)
    if not p.exists():
        raise InputError(f"no such {kind}", p)
    if kind == "file" and not p.is_file():
        raise InputError("expected a file, found a folder", p)
    if kind == "folder" and not p.is_dir():
        raise InputError("expected a folder, found a file", p)
    return p


def check_suffix(path: str | os.PathLike, suffixes: tuple[str, ...], kind: str) -> str:
    """The lower-case suffix of ``path``, raising :class:`InputError` unless it is one of ``suffixes``.

    Args:
        path: a file name.
        suffixes: accepted suffixes, lower case with the dot (``(".ply", ".npy")``).
        kind: what the file holds, for the message (``"mesh"`` gives "unsupported mesh format").

    Returns:
        The suffix, e.g. ``".ply"``.
    """
    p = Path(path)
    suffix = p.suffix.lower()
    if suffix not in suffixes:
        raise InputError(f"unsupported {kind} format {suffix!r}; expected one of {', '.join(suffixes)}", p)
    return suffix


def list_files(root: str | os.PathLike, suffixes: tuple[str, ...], kind: str) -> list[Path]:
    """Every file under ``root`` (recursively) whose suffix is in ``suffixes``, sorted by relative path.

    Args:
        root: a folder.
        suffixes: accepted suffixes, lower case with the dot; the match ignores case.
        kind: what the files hold, for messages (``"image"`` gives "no such image folder").

    Returns:
        The files, sorted by their path relative to ``root`` (``"a/b.png"`` as a string).

    Raises:
        InputError: ``root`` is missing, is a file, or holds no matching file.
    """
    r = Path(root)
    if not r.exists():
        raise InputError(f"no such {kind} folder", r)
    if not r.is_dir():
        raise InputError(f"expected a folder of {kind} files, found a file", r)
    files = sorted(
        (f for f in r.rglob("*") if f.is_file() and f.suffix.lower() in suffixes),
        key=lambda f: f.relative_to(r).as_posix(),
    )
    if not files:
        raise InputError(f"folder holds no {kind} files ({', '.join(suffixes)})", r)
    return files


def save_png(path: str | os.PathLike, image: Any) -> Path:
    """Write an ``(H, W, 3)`` uint8 image as PNG, atomically (the one PNG writer of gen3d)."""
    import numpy as np
    from PIL import Image

    p = Path(path)
    with atomic_path(p, suffix=".png") as tmp:
        Image.fromarray(np.asarray(image, dtype=np.uint8)).save(tmp, format="PNG")
    return p
