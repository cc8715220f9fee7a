"""Filesystem helpers: atomic writes (no half-written output) and path validation."""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

from gen3d.errors import InputError


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, suffix: str | None = None) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; rename it onto ``path`` only if the block succeeds.

    Writers that take a file name (open3d, trimesh, ``np.save``) write to the yielded path; readers of
    ``path`` never see a partial file, and on error nothing is left behind.

    Args:
        path: the final destination. Its parent folder is created.
        suffix: suffix of the temporary file (defaults to ``path``'s, since some writers pick the
            format from it).

    Example:
        >>> with atomic_path("out/cloud.ply") as tmp:
        ...     o3d.io.write_point_cloud(str(tmp), pcd)
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(
        prefix=f".{path.name}.", suffix=suffix if suffix is not None else path.suffix, dir=path.parent
    )
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        os.replace(tmp_path, path)
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


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
