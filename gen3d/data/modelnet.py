"""The ModelNet40 (and ModelNet10) folder layout: ``<root>/<class>/{train,test}/<name>.off``.

Numpy-only listing; meshes are read with :func:`gen3d.data.meshes.load_mesh` (which tolerates ModelNet's
malformed ``OFF<nv> <nf> <ne>`` first lines). The torch Dataset is
:class:`gen3d.data.datasets.ModelNet40Dataset`.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from gen3d.errors import InputError

SPLITS = ("train", "test")


def modelnet_classes(root: str | os.PathLike) -> list[str]:
    """Class folders under ``root`` that have a ``train`` or ``test`` sub-folder, sorted."""
    r = Path(root)
    if not r.is_dir():
        raise InputError("no such folder" if not r.exists() else "expected the ModelNet folder, found a file", r)
    return sorted(d.name for d in r.iterdir() if d.is_dir() and any((d / s).is_dir() for s in SPLITS))


def modelnet_files(
    root: str | os.PathLike, classes: str | Sequence[str] | None = None, split: str = "train"
) -> list[tuple[str, Path]]:
    """``(class, file)`` of every ``.off`` mesh of a split, ordered by class then file name.

    Args:
        root: the ModelNet folder (e.g. ``ModelNet40``).
        classes: class names (a list or comma-separated; None or "all": every class folder).
        split: "train" or "test".

    Returns:
        The list of (class name, path) pairs; raises :class:`InputError` when empty or a class is missing.
    """
    if split not in SPLITS:
        raise InputError(f"unknown ModelNet split {split!r}; expected one of {', '.join(SPLITS)}")
    r = Path(root)
    found = modelnet_classes(r)
    if classes is None or classes == "all":
        names = found
    else:
        names = [c.strip() for c in classes.split(",")] if isinstance(classes, str) else list(classes)
        missing = [c for c in names if c not in found]
        if missing:
            raise InputError(
                f"no ModelNet class folder {', '.join(map(repr, missing))}; "
                f"classes found: {', '.join(found) or 'none'}",
                r,
            )
    out = []
    for name in names:
        folder = r / name / split
        if folder.is_dir():
            out.extend((name, f) for f in sorted(folder.iterdir()) if f.is_file() and f.suffix.lower() == ".off")
    if not out:
        raise InputError(f"no .off meshes found for split {split!r}; expected <root>/<class>/{split}/<name>.off", r)
    return out
