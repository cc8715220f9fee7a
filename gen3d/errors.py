"""gen3d's error classes. The CLI prints a :class:`Gen3DError` on one line and exits with code 2."""

from __future__ import annotations

import os


class Gen3DError(Exception):
    """Base class of every error gen3d raises on purpose (bad input, bad configuration)."""


class InputError(Gen3DError, ValueError):
    """A user-supplied file, path or array is missing, corrupt or of the wrong shape.

    Args:
        message: what was wrong and what was expected.
        path: the offending file or folder, named first in the message when given.
    """

    def __init__(self, message: str, path: str | os.PathLike | None = None):
        self.path = None if path is None else os.fspath(path)
        super().__init__(f"{self.path}: {message}" if self.path is not None else message)
