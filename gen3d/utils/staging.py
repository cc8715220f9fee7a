"""Staged folder builds: a dataset folder only ever holds one complete build.

A builder writes into a hidden sibling of the destination, ``.<name>.build-<token>``, and the finished folder
is renamed into place, so the destination holds the previous complete build or the new one, never a mix of
both and never a partial one. One build per destination runs at a time: builders hold an exclusive lock on
``.<name>.lock`` (an empty file kept next to the destination) from start to finish, and a second build waits
for the first.

A staged build records its options in ``<folder>/.build.json`` before writing anything else, and the record
travels with the folder. A destination whose record equals the requested options is already built and is
left as it is. A build that was killed or stopped with Ctrl-C leaves its staging folder behind: the next
build of the same destination with the same options resumes it (the builder keeps the files it finds there),
any other build removes it. A build that raises an exception removes its staging folder and leaves the
destination untouched.

Example:
    >>> def write(stage: Path) -> None:
    ...     (stage / "data.txt").write_text("hello")
    >>> staged_build("out/data", {"greeting": "hello"}, write)
    True
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import secrets
import shutil
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

from gen3d.errors import InputError

try:
    import fcntl
except ImportError:  # not a POSIX system: builds are still staged, but concurrent ones are not serialised
    fcntl = None

RECORD = ".build.json"
_TOKEN_CHARS = 16  # hex digits of the random part of staging and set-aside folder names
_POLL_SECONDS = 0.1


def destination(path: str | os.PathLike) -> Path:
    """The absolute path a build of ``path`` writes to (a symbolic link is replaced by its target)."""
    p = Path(os.path.abspath(path))
    return p.resolve() if p.is_symlink() else p


def lock_file(dest: Path) -> Path:
    """The lock file of destination ``dest``: ``.<name>.lock`` next to it."""
    return dest.parent / f".{dest.name}.lock"


@contextlib.contextmanager
def folder_lock(path: str | os.PathLike, timeout: float | None = None) -> Iterator[Path]:
    """Hold the exclusive build lock of a destination folder for the duration of the block.

    When another process holds the lock, one line saying so is printed to stderr and the call waits. The
    lock is released when the block ends or the process dies. Without ``fcntl`` (not a POSIX system) the
    block runs unlocked.

    Args:
        path: the destination folder (it need not exist; its parent is created).
        timeout: seconds to wait at most (None: as long as it takes).

    Yields:
        The destination as an absolute path (see :func:`destination`).

    Raises:
        InputError: the parent folder is not writable, or the lock was not obtained within ``timeout`` seconds.
    """
    dest = destination(path)
    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
        fd = None if fcntl is None else os.open(lock_file(dest), os.O_RDWR | os.O_CREAT, 0o644)
    except PermissionError as exc:
        raise InputError(f"a build needs a writable parent folder ({exc.strerror}: {exc.filename})", dest) from exc
    if fd is None:
        yield dest
        return
    try:
        _acquire(fd, dest, timeout)
        yield dest
    finally:
        os.close(fd)  # releases the lock


def _try_lock(fd: int) -> bool:
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True


def _acquire(fd: int, dest: Path, timeout: float | None) -> None:
    """Lock ``fd`` exclusively, waiting (with one line on stderr) while another process holds it."""
    if _try_lock(fd):
        return
    print(f"{dest}: another build of this folder is running; waiting for it to finish", file=sys.stderr, flush=True)
    if timeout is None:
        fcntl.flock(fd, fcntl.LOCK_EX)
        return
    deadline = time.monotonic() + timeout
    while not _try_lock(fd):
        if time.monotonic() >= deadline:
            raise InputError(f"another build of this folder is still running after {timeout:g} s", dest)
        time.sleep(_POLL_SECONDS)


def read_record(folder: Path) -> dict | None:
    """The options recorded in ``folder`` by a staged build (None when there is no readable record)."""
    try:
        record = json.loads((folder / RECORD).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return record if isinstance(record, dict) else None


def is_built(path: str | os.PathLike, options: Mapping[str, Any]) -> bool:
    """Whether ``path`` holds a complete staged build made with ``options``."""
    return read_record(destination(path)) == _canonical(options)


def staged_build(
    path: str | os.PathLike,
    options: Mapping[str, Any],
    build: Callable[[Path], object],
    check: Callable[[Path], None] | None = None,
    timeout: float | None = None,
) -> bool:
    """Build a folder in a staging sibling and swap it in when complete, under the destination's lock.

    Args:
        path: the destination folder.
        options: everything the folder's content depends on (JSON-serialisable); recorded in ``.build.json``.
        build: writes the folder's content into the staging folder it is given. In a resumed staging folder
            the files written before the interruption are there already; ``build`` may keep them.
        check: called with the destination when it exists and holds another build; raises
            :class:`InputError` unless the folder may be replaced (i.e. it holds no foreign files).
        timeout: seconds to wait at most for another build of the same destination (None: no limit).

    Returns:
        True when the folder was built, False when it already held a complete build of ``options``.

    Raises:
        InputError: the destination is not a folder, ``check`` refused it, or the lock timed out.
    """
    record = _canonical(options)
    dest = destination(path)
    _check_destination(dest, record, check)  # before the lock: a refused folder leaves nothing behind
    with folder_lock(dest, timeout):
        _restore_set_aside(dest)
        if read_record(dest) == record:
            _remove_leftovers(dest, keep=None)
            print(f"{dest}: already built with these options; nothing to do", file=sys.stderr, flush=True)
            return False
        _check_destination(dest, record, check)
        stage = _staging_folder(dest, record)
        try:
            build(stage)
        except Exception:
            shutil.rmtree(stage, ignore_errors=True)
            raise
        _swap_in(stage, dest)
    return True


def _canonical(options: Mapping[str, Any]) -> dict:
    """``options`` as read back from JSON (tuples become lists), so records compare equal."""
    return json.loads(json.dumps(dict(options), sort_keys=True))


def _check_destination(dest: Path, record: dict, check: Callable[[Path], None] | None) -> None:
    if not os.path.lexists(dest) or read_record(dest) == record:
        return
    if not dest.is_dir():
        raise InputError("output exists and is not a folder", dest)
    if check is not None:
        check(dest)


def _sibling_pattern(dest: Path, kind: str) -> re.Pattern:
    return re.compile(rf"\.{re.escape(dest.name)}\.{kind}-[0-9a-f]{{{_TOKEN_CHARS}}}")


def _siblings(dest: Path, kind: str) -> list[Path]:
    """Staging (``kind="build"``) or set-aside (``kind="old"``) folders of ``dest``, newest first."""
    pattern = _sibling_pattern(dest, kind)
    found = [p for p in dest.parent.iterdir() if pattern.fullmatch(p.name)]
    return sorted(found, key=lambda p: p.stat().st_mtime, reverse=True)


def _new_sibling(dest: Path, kind: str) -> Path:
    """A fresh path ``.<name>.<kind>-<token>`` next to ``dest`` (not created)."""
    while True:
        candidate = dest.parent / f".{dest.name}.{kind}-{secrets.token_hex(_TOKEN_CHARS // 2)}"
        if not os.path.lexists(candidate):
            return candidate


def _restore_set_aside(dest: Path) -> None:
    """Put back the previous build when a swap was interrupted between setting it aside and renaming in."""
    if not os.path.lexists(dest):
        old = _siblings(dest, "old")
        if old:
            os.rename(old[0], dest)


def _remove_leftovers(dest: Path, keep: Path | None) -> None:
    """Delete the staging and set-aside folders of interrupted builds (the lock is held), except ``keep``."""
    for folder in _siblings(dest, "build") + _siblings(dest, "old"):
        if folder != keep:
            shutil.rmtree(folder, ignore_errors=True)


def _staging_folder(dest: Path, record: dict) -> Path:
    """The staging folder of this build: an interrupted build's with the same options, or a new one."""
    resumable = next((p for p in _siblings(dest, "build") if read_record(p) == record), None)
    _remove_leftovers(dest, keep=resumable)
    if resumable is not None:
        return resumable
    stage = _new_sibling(dest, "build")
    stage.mkdir()
    from gen3d.utils.fs import atomic_write_text

    atomic_write_text(stage / RECORD, json.dumps(record, indent=2, sort_keys=True) + "\n")
    return stage


def _swap_in(stage: Path, dest: Path) -> None:
    """Rename the complete ``stage`` onto ``dest``, setting aside and then deleting a previous build."""
    if not os.path.lexists(dest):
        os.rename(stage, dest)
        return
    old = _new_sibling(dest, "old")
    os.rename(dest, old)
    try:
        os.rename(stage, dest)
    except OSError:
        os.rename(old, dest)
        raise
    shutil.rmtree(old, ignore_errors=True)
