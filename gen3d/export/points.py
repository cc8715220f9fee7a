"""Point-cloud conversion between PLY, NPZ and NPY (one cloud or a set of clouds).

Reading and writing go through :mod:`gen3d.data.io`, so every output is validated (finite, (P, 3) or
(N, P, 3)) and written atomically. A PLY file holds one cloud: a set written to ``name.ply`` becomes
``name_000.ply``, ``name_001.ply``, ... unless one cloud is picked with ``index``.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from gen3d.errors import InputError


def read_clouds(path: str | os.PathLike) -> np.ndarray:
    """Read one cloud or a set of clouds from a file or a folder of files.

    Args:
        path: a ``.ply``/``.npy``/``.npz`` file, or a folder of them (one cloud per file, same point count).

    Returns:
        float32 (P, 3) for a single cloud, (N, P, 3) for a set.
    """
    from gen3d.data.io import load_point_set, load_points

    p = Path(path)
    if p.is_dir():
        return load_point_set(p)
    return load_points(p)


def write_clouds(points: Any, path: str | os.PathLike, index: int | None = None, binary: bool = True) -> list[Path]:
    """Write points; the suffix of ``path`` picks the format.

    Args:
        points: (P, 3) or (N, P, 3) points.
        path: destination ``.ply``, ``.npy`` or ``.npz``.
        index: write only cloud ``index`` of a set (negative counts from the end).
        binary: binary (True) or ASCII (False) PLY.

    Returns:
        The written files: one, or one per cloud when a set goes to PLY without ``index``.
    """
    from gen3d.data.io import check_points, save_points

    out = Path(path)
    arr = check_points(points, out)
    if index is not None:
        if arr.ndim == 2:
            if index not in (0, -1):
                raise InputError(f"index {index} given but the input is a single cloud")
        else:
            if not -arr.shape[0] <= index < arr.shape[0]:
                raise InputError(f"index {index} is out of range for a set of {arr.shape[0]} clouds")
            arr = arr[index]  # (P, 3)
    if out.suffix.lower() == ".ply" and arr.ndim == 3:
        if arr.shape[0] == 1:
            return [save_points(out, arr[0], binary=binary)]
        width = max(3, len(str(arr.shape[0] - 1)))
        return [
            save_points(out.with_name(f"{out.stem}_{i:0{width}d}{out.suffix}"), cloud, binary=binary)
            for i, cloud in enumerate(arr)
        ]
    return [save_points(out, arr, binary=binary)]


def convert_points(
    src: str | os.PathLike, dst: str | os.PathLike, index: int | None = None, binary: bool = True
) -> list[Path]:
    """Convert a point-cloud file (or folder of files) to another format.

    Args:
        src: ``.ply``/``.npy``/``.npz`` file or a folder of them.
        dst: destination ``.ply``/``.npy``/``.npz``.
        index: keep only cloud ``index`` of a set.
        binary: binary (True) or ASCII (False) PLY output.

    Returns:
        The written files.
    """
    if Path(src).resolve() == Path(dst).resolve():
        raise InputError("source and destination are the same file", dst)
    return write_clouds(read_clouds(src), dst, index=index, binary=binary)
