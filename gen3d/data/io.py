"""Point-cloud files: ``.ply`` (binary or ASCII, via plyfile), ``.npy`` and ``.npz`` (key ``points``).

Every reader validates what it returns: a float32 array of shape (P, 3) or (N, P, 3) with at least one
point and only finite coordinates. Anything else raises :class:`gen3d.errors.InputError` naming the file
and what was expected. Writers are atomic (no half-written file is ever visible under the final name).
"""

from __future__ import annotations

import os
import struct
import zipfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from gen3d.errors import InputError
from gen3d.utils.fs import check_exists, check_suffix

POINT_SUFFIXES = (".ply", ".npy", ".npz")


def _to_numpy(array: Any) -> np.ndarray:
    if hasattr(array, "detach"):  # a torch tensor
        array = array.detach().cpu().numpy()
    return np.asarray(array)


def check_points(
    array: Any,
    source: str | os.PathLike | None = None,
    ndim: tuple[int, ...] = (2, 3),
    min_points: int | None = None,
) -> np.ndarray:
    """Validate a point array and return it as float32.

    Args:
        array: (P, 3) or (N, P, 3) points (numpy array, torch tensor or nested sequence).
        source: the file the points came from, named in error messages.
        ndim: the accepted numbers of dimensions (2 for one cloud, 3 for a set of clouds).
        min_points: raise if a cloud has fewer points than this.

    Returns:
        The points as a float32 numpy array of the same shape.
    """
    try:
        arr = _to_numpy(array)
    except (TypeError, ValueError) as exc:
        raise InputError(f"not a numeric point array ({exc})", source) from exc
    expected = " or ".join({2: "(P, 3)", 3: "(N, P, 3)"}[d] for d in ndim)
    if arr.dtype == object or not (np.issubdtype(arr.dtype, np.number) or arr.dtype == bool):
        raise InputError(f"expected numeric points of shape {expected}, got dtype {arr.dtype}", source)
    if arr.ndim not in ndim or arr.shape[-1] != 3:
        raise InputError(f"expected points of shape {expected}, got shape {arr.shape}", source)
    if arr.shape[-2] == 0 or (arr.ndim == 3 and arr.shape[0] == 0):
        raise InputError(f"expected at least one point, got shape {arr.shape}", source)
    if min_points is not None and arr.shape[-2] < min_points:
        raise InputError(f"has {arr.shape[-2]} points per cloud, fewer than the {min_points} requested", source)
    arr = arr.astype(np.float32, copy=False)
    finite = np.isfinite(arr)
    if not finite.all():
        bad = int((~finite.all(axis=-1)).sum())
        raise InputError(
            f"contains NaN or Inf coordinates ({bad} of {arr.size // 3} points); expected finite values", source
        )
    return arr


def _read_ply(path: Path) -> np.ndarray:
    import plyfile

    try:
        ply = plyfile.PlyData.read(str(path))
    except (
        plyfile.PlyParseError,
        ValueError,
        EOFError,
        OSError,
        IndexError,
        KeyError,
        struct.error,
        UnicodeDecodeError,
    ) as exc:
        raise InputError(f"not a readable PLY file ({exc})", path) from exc
    names = [e.name for e in ply.elements]
    if "vertex" not in names:
        raise InputError(f"PLY file has no 'vertex' element (elements: {names}); expected a point cloud", path)
    vertex = ply["vertex"]
    props = [p.name for p in vertex.properties]
    if not {"x", "y", "z"} <= set(props):
        raise InputError(f"PLY vertices lack x/y/z properties (found {props})", path)
    data = vertex.data
    return np.stack([np.asarray(data["x"]), np.asarray(data["y"]), np.asarray(data["z"])], axis=-1)  # (P, 3)


NPY_MAGIC = b"\x93NUMPY"
ZIP_MAGIC = b"PK\x03\x04"


def _npy_header(fp: Any, size: int, path: Path, what: str) -> None:
    """Read and check an ``.npy`` header from ``fp``: the data it announces must fit in the ``size`` bytes.

    A header is refused before anything is allocated when it announces more data than the file holds (a
    truncated or forged file would otherwise make numpy allocate whatever the header claims).
    """
    from numpy.lib import format as npy_format

    try:
        version = npy_format.read_magic(fp)
        readers = {(1, 0): npy_format.read_array_header_1_0, (2, 0): npy_format.read_array_header_2_0}
        if version not in readers:
            raise InputError(
                f"not a readable .npy array {what}(unsupported format version {version[0]}.{version[1]})", path
            )
        shape, _, dtype = readers[version](fp)
    except InputError:
        raise
    except (ValueError, OSError, EOFError) as exc:
        raise InputError(f"not a readable .npy array {what}({exc})", path) from exc
    if dtype.hasobject:
        raise InputError(f"holds Python objects {what}; expected a numeric array", path)
    needed = int(np.prod(shape, dtype=np.float64)) * dtype.itemsize
    available = size - fp.tell()
    if needed > available:
        raise InputError(
            f"not a readable .npy array: the header {what}announces shape {tuple(shape)} ({needed} bytes) but only "
            f"{available} bytes follow (truncated or forged)",
            path,
        )


def _magic(path: Path) -> bytes:
    with open(path, "rb") as f:
        return f.read(6)


def _read_npy(path: Path) -> np.ndarray:
    if _magic(path)[:4] == ZIP_MAGIC:
        raise InputError("expected a .npy array, found an .npz archive (rename it to .npz)", path)
    with open(path, "rb") as f:
        _npy_header(f, path.stat().st_size, path, "")
    try:
        return np.load(path, allow_pickle=False)
    except (ValueError, OSError, EOFError) as exc:
        raise InputError(f"not a readable .npy array ({exc})", path) from exc


def _read_npz(path: Path) -> np.ndarray:
    if _magic(path) == NPY_MAGIC:
        raise InputError("expected an .npz archive, found a bare .npy array (rename it to .npy)", path)
    try:
        with zipfile.ZipFile(path) as zf:
            names = [n[: -len(".npy")] for n in zf.namelist() if n.endswith(".npy")]
            if "points" not in names:
                raise InputError(f"expected an array named 'points' in the archive, found {sorted(names)}", path)
            info = zf.getinfo("points.npy")
            with zf.open(info) as member:
                _npy_header(member, info.file_size, path, "of 'points' ")
        with np.load(path, allow_pickle=False) as data:
            return data["points"]
    except InputError:
        raise
    except (ValueError, OSError, EOFError, zipfile.BadZipFile, KeyError) as exc:
        raise InputError(f"not a readable .npz archive ({exc})", path) from exc


def load_points(path: str | os.PathLike, min_points: int | None = None) -> np.ndarray:
    """Load one point cloud (P, 3) or a set of clouds (N, P, 3).

    Args:
        path: a ``.ply`` (binary or ASCII; vertex x/y/z), ``.npy`` or ``.npz`` (key ``points``) file.
        min_points: raise :class:`InputError` if a cloud has fewer points than this.

    Returns:
        float32 array of shape (P, 3) or (N, P, 3) (``.ply`` always gives (P, 3)).
    """
    p = check_exists(path, "file")
    read = {".ply": _read_ply, ".npy": _read_npy, ".npz": _read_npz}[check_suffix(p, POINT_SUFFIXES, "point-cloud")]
    return check_points(read(p), p, min_points=min_points)


def save_points(path: str | os.PathLike, array: Any, binary: bool = True) -> Path:
    """Write points atomically.

    Args:
        path: destination; the suffix picks the format: ``.ply`` (one cloud per file, float32 x/y/z
            vertices), ``.npy`` or ``.npz`` (array stored under ``points``).
        array: (P, 3) points, or (N, P, 3) clouds for ``.npy``/``.npz``.
        binary: binary little-endian PLY (True) or ASCII PLY (False); ignored for other formats.

    Returns:
        The written path.
    """
    from gen3d.utils import atomic_path

    p = Path(path)
    suffix = check_suffix(p, POINT_SUFFIXES, "point-cloud")
    arr = check_points(array, p, ndim=(2,) if suffix == ".ply" else (2, 3))
    if suffix == ".ply":
        import plyfile

        vertex = np.empty(arr.shape[0], dtype=[("x", "<f4"), ("y", "<f4"), ("z", "<f4")])
        vertex["x"], vertex["y"], vertex["z"] = arr[:, 0], arr[:, 1], arr[:, 2]
        ply = plyfile.PlyData([plyfile.PlyElement.describe(vertex, "vertex")], text=not binary, byte_order="<")
        with atomic_path(p) as tmp:
            ply.write(str(tmp))
    elif suffix == ".npy":
        with atomic_path(p) as tmp:
            np.save(tmp, arr)
    else:
        with atomic_path(p) as tmp:
            np.savez(tmp, points=arr)
    return p


def list_point_files(folder: str | os.PathLike, suffixes: tuple[str, ...] = POINT_SUFFIXES) -> list[Path]:
    """Point-cloud files directly inside ``folder``, sorted by name."""
    return sorted(f for f in Path(folder).iterdir() if f.is_file() and f.suffix.lower() in suffixes)


def _set_source(path: str | os.PathLike) -> np.ndarray | list[Path]:
    """The (N, P, 3) array of a set file, or the sorted point-cloud files of a set folder (at least one)."""
    p = Path(path)
    if not p.exists():
        raise InputError("no such file or folder", p)
    if p.is_file():
        if p.suffix.lower() == ".ply":
            raise InputError(
                "a .ply file holds one cloud; expected an (N, P, 3) .npy/.npz file or a folder of clouds", p
            )
        arr = load_points(p)
        if arr.ndim != 3:
            raise InputError(f"expected a set of clouds of shape (N, P, 3), got shape {arr.shape}", p)
        return arr
    files = list_point_files(p)
    if not files:
        raise InputError(f"folder holds no point-cloud files ({', '.join(POINT_SUFFIXES)})", p)
    return files


def load_point_set(path: str | os.PathLike) -> np.ndarray:
    """Load a set of point clouds (N, P, 3), e.g. generated samples or a reference set for evaluation.

    Args:
        path: an ``.npy``/``.npz`` file holding an (N, P, 3) array, or a folder of ``.ply``/``.npy``/``.npz``
            files with one (P, 3) cloud each (read in sorted file-name order; all must have the same P: see
            :func:`read_point_set` and :func:`resample_points` for folders whose clouds differ).

    Returns:
        float32 array of shape (N, P, 3).
    """
    source = _set_source(path)
    return source if isinstance(source, np.ndarray) else load_clouds(source)


def read_point_set(path: str | os.PathLike) -> list[np.ndarray]:
    """Read the clouds of a set as they are stored; unlike :func:`load_point_set`, their point counts may differ.

    Args:
        path: an ``.npy``/``.npz`` file holding an (N, P, 3) array, or a folder of ``.ply``/``.npy``/``.npz``
            files with one cloud each (read in sorted file-name order).

    Returns:
        N float32 arrays of shape (P_i, 3) (views of one array for a file).
    """
    source = _set_source(path)
    if isinstance(source, np.ndarray):
        return list(source)
    return [_load_cloud(f) for f in source]


def resample_points(
    clouds: Sequence[np.ndarray] | np.ndarray, points: int, seed: int = 0, source: str | os.PathLike | None = None
) -> np.ndarray:
    """Bring every cloud of a set to ``points`` points by a seeded uniform subsample without replacement.

    A cloud that has exactly ``points`` points is kept as it is. From a larger cloud ``i``, ``points`` distinct
    points are drawn with ``np.random.default_rng([seed, i]).choice(P_i, points, replace=False)`` and kept in their
    stored order: the subset of a cloud depends on the seed and its position in the set only.

    Args:
        clouds: (N, P, 3) array or N arrays of shape (P_i, 3).
        points: points per cloud wanted.
        seed: seed of the subsets.
        source: the file or folder the clouds came from, named in errors.

    Returns:
        float32 array of shape (N, points, 3).

    Raises:
        InputError: a cloud has fewer than ``points`` points.
    """
    if isinstance(clouds, np.ndarray) and clouds.ndim == 3 and clouds.shape[1] == points:
        return clouds.astype(np.float32, copy=False)
    out = np.empty((len(clouds), points, 3), dtype=np.float32)
    for i, cloud in enumerate(clouds):
        count = len(cloud)
        if count < points:
            raise InputError(f"cloud {i} has {count} points, fewer than the {points} to resample to", source)
        if count == points:
            out[i] = cloud
        else:
            keep = np.sort(np.random.default_rng([seed, i]).choice(count, points, replace=False))
            out[i] = cloud[keep]
    return out


def _load_cloud(f: Path, min_points: int | None = None) -> np.ndarray:
    cloud = load_points(f, min_points=min_points)
    if cloud.ndim != 2:
        raise InputError(f"expected one cloud of shape (P, 3) per file, got shape {cloud.shape}", f)
    return cloud


def load_clouds(files: Sequence[Path], min_points: int | None = None) -> np.ndarray:
    """Load one (P, 3) cloud from each file and stack them; every cloud must have the same P.

    Args:
        files: point-cloud files (at least one), read in the given order.
        min_points: raise :class:`InputError` for a cloud with fewer points.

    Returns:
        float32 array of shape (N, P, 3).
    """
    clouds = []
    for f in files:
        cloud = _load_cloud(f, min_points)
        if clouds and cloud.shape != clouds[0].shape:
            raise InputError(
                f"has {cloud.shape[0]} points but {files[0]} has {clouds[0].shape[0]}; all clouds need the same count",
                f,
            )
        clouds.append(cloud)
    return np.stack(clouds)  # (N, P, 3)
