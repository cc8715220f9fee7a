"""Point-cloud normalisation as the point-cloud generation papers use it.

Two conventions matter for results that compare with published numbers:

* **Global** (PointFlow, LION, PVD on ShapeNetCore.v2.PC15k): one translation and one scale for the whole
  dataset, fitted on the *train* split (all 15000 points of every train shape) and reused for val/test.
  The mean is taken per axis over all points of all shapes. The scale is a single scalar: the standard
  deviation of *all coordinates flattened together*. This follows PointFlow's
  ``normalize_per_shape=False, normalize_std_per_axis=False`` branch literally
  (``all_points.reshape(-1).std()``): the deviation is measured around the scalar mean of all
  coordinates, not around the per-axis mean, so it differs slightly from "centre, then take the std".
  Metrics are computed after de-normalising with :meth:`GlobalNorm.invert`.
* **Box** (the "ShapeNet-vol" protocol of PVD/LION, ``--norm box``): every shape on its own is shifted by
  the centre of its axis-aligned bounding box and divided by half of its largest extent, which maps it
  into [-1, 1] (LION's ``normalize_point_clouds(mode="shape_bbox")``); LION's ``compute_score`` then
  multiplies by 0.5, so shapes end in [-0.5, 0.5] with their longest side exactly 1. :func:`normalize_box`
  returns that final [-0.5, 0.5] form.

Functions accept numpy arrays and torch tensors of shape ``(..., 3)`` and return the same kind; torch is
never imported by this module unless a tensor is passed in.
"""

from __future__ import annotations

import json
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from gen3d.errors import InputError

MODES = ("global", "box", "none")


def _is_tensor(x: Any) -> bool:
    torch = sys.modules.get("torch")
    return torch is not None and isinstance(x, torch.Tensor)


def _like(value: np.ndarray, x: Any) -> Any:
    """``value`` converted to the array kind, dtype and device of ``x``."""
    if _is_tensor(x):
        import torch

        dtype = x.dtype if x.is_floating_point() else torch.float32
        return torch.as_tensor(value, dtype=dtype, device=x.device)
    dtype = x.dtype if np.issubdtype(np.asarray(x).dtype, np.floating) else np.float64
    return np.asarray(value, dtype=dtype)


def _check_xyz(x: Any, name: str = "points") -> None:
    shape = tuple(x.shape)
    if len(shape) == 0 or shape[-1] != 3:
        raise InputError(f"{name} must have shape (..., 3), got {shape}")


@dataclass
class GlobalNorm:
    """A dataset-wide translation and scale: ``x_norm = (x - mean) / std``.

    Attributes:
        mean: (3,) per-axis mean of the fitting points.
        std: () one scalar scale (PointFlow's std of all flattened coordinates).
    """

    mean: np.ndarray
    std: np.ndarray

    def __post_init__(self) -> None:
        self.mean = np.asarray(self.mean, dtype=np.float64).reshape(3)
        self.std = np.asarray(self.std, dtype=np.float64).reshape(())
        if not (np.isfinite(self.mean).all() and np.isfinite(self.std)) or float(self.std) <= 0:
            raise InputError(f"invalid normalisation statistics: mean={self.mean.tolist()}, std={float(self.std)}")

    @classmethod
    def fit(cls, train_points: np.ndarray, source: str | os.PathLike | None = None) -> GlobalNorm:
        """Fit the statistics on the train split, as PointFlow does.

        Args:
            train_points: (N, P, 3) or (P, 3) points of the train split (all points of every shape).
            source: the file the points came from, named in errors.

        Returns:
            The fitted :class:`GlobalNorm` (float64 statistics).

        Raises:
            InputError: no points, NaN or Inf coordinates, or all coordinates equal.
        """
        if _is_tensor(train_points):
            train_points = train_points.detach().cpu().numpy()
        x = np.asarray(train_points, dtype=np.float64)
        _check_xyz(x, "train points")
        if x.size == 0:
            raise InputError("cannot fit a normalisation on an empty point set", source)
        if not np.isfinite(x).all():
            raise InputError("train points contain NaN or Inf coordinates", source)
        flat = x.reshape(-1, 3)  # (N*P, 3)
        mean = flat.mean(axis=0)  # (3,)
        std = flat.reshape(-1).std()  # scalar, around the mean of all coordinates (PointFlow)
        if std <= 0:
            raise InputError("cannot fit a normalisation: all coordinates are equal (zero spread)", source)
        return cls(mean=mean, std=np.asarray(std))

    @classmethod
    def from_moments(cls, count: int, coord_sum: np.ndarray, square_sum: float) -> GlobalNorm:
        """The statistics of :meth:`fit` from running sums, for data too large to hold in memory.

        Args:
            count: number of points n.
            coord_sum: (3,) per-axis sums of the coordinates.
            square_sum: sum of the squares of all 3n coordinates.

        Returns:
            The :class:`GlobalNorm` that :meth:`fit` would give on the same points.
        """
        if count <= 0:
            raise InputError("cannot fit a normalisation on an empty point set")
        coord_sum = np.asarray(coord_sum, dtype=np.float64).reshape(3)
        mean = coord_sum / count  # (3,)
        scalar_mean = coord_sum.sum() / (3 * count)
        var = max(float(square_sum) / (3 * count) - scalar_mean**2, 0.0)
        if var <= 0:
            raise InputError("cannot fit a normalisation: all coordinates are equal (zero spread)")
        return cls(mean=mean, std=np.asarray(np.sqrt(var)))

    def apply(self, x: Any) -> Any:
        """Normalise: ``(x - mean) / std``.

        Args:
            x: (..., 3) numpy array or torch tensor.

        Returns:
            (..., 3) normalised points of the same kind (floating dtype kept).
        """
        _check_xyz(x)
        return (x - _like(self.mean, x)) / _like(self.std, x)

    def invert(self, x: Any) -> Any:
        """De-normalise: ``x * std + mean`` (the inverse of :meth:`apply`).

        Args:
            x: (..., 3) numpy array or torch tensor in normalised units.

        Returns:
            (..., 3) points in the data's original units.
        """
        _check_xyz(x)
        return x * _like(self.std, x) + _like(self.mean, x)

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable form: ``{"mode": "global", "mean": [3 floats], "std": float}``."""
        return {"mode": "global", "mean": [float(v) for v in self.mean], "std": float(self.std)}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> GlobalNorm:
        """Inverse of :meth:`to_dict`."""
        try:
            return cls(mean=np.asarray(data["mean"], dtype=np.float64), std=np.asarray(data["std"], dtype=np.float64))
        except InputError:
            raise
        except (KeyError, TypeError, ValueError) as exc:
            raise InputError(
                f"invalid normalisation record {data!r}: expected keys 'mean' (3 floats) and 'std'"
            ) from exc

    def save(self, path: str | os.PathLike) -> None:
        """Write :meth:`to_dict` as JSON atomically (e.g. ``<root>/normalization.json``)."""
        from gen3d.utils import atomic_write_text

        atomic_write_text(path, json.dumps(self.to_dict(), indent=2, sort_keys=True) + "\n")

    @classmethod
    def load(cls, path: str | os.PathLike) -> GlobalNorm:
        """Read a JSON file written by :meth:`save`."""
        p = Path(path)
        if not p.is_file():
            raise InputError("no such normalisation file", p)
        try:
            data = json.loads(p.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise InputError(f"not a JSON normalisation file ({exc})", p) from exc
        if not isinstance(data, dict):
            raise InputError("expected a JSON object with 'mean' and 'std'", p)
        return cls.from_dict(data)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, GlobalNorm):
            return NotImplemented
        return bool(np.array_equal(self.mean, other.mean) and np.array_equal(self.std, other.std))

    __hash__ = None  # type: ignore[assignment]


def box_stats(points: Any) -> tuple[Any, Any]:
    """Per-shape bounding-box centre and the scale used by :func:`normalize_box`.

    Args:
        points: (..., P, 3) numpy array or torch tensor (one shape, or a batch of shapes).

    Returns:
        center: (..., 1, 3) centre of each shape's axis-aligned bounding box.
        scale: (..., 1, 1) the largest side of each box, so ``(points - center) / scale`` lies in
            [-0.5, 0.5] (half the largest extent, times 2 for LION's extra factor 0.5).
    """
    _check_xyz(points)
    if points.ndim < 2 or points.shape[-2] == 0:
        raise InputError(f"box normalisation needs at least one point per shape, got shape {tuple(points.shape)}")
    if _is_tensor(points):
        hi = points.amax(dim=-2, keepdim=True)  # (..., 1, 3)
        lo = points.amin(dim=-2, keepdim=True)  # (..., 1, 3)
        scale = (hi - lo).amax(dim=-1, keepdim=True)  # (..., 1, 1)
        scale = scale.clamp_min(1e-12)
    else:
        hi = points.max(axis=-2, keepdims=True)
        lo = points.min(axis=-2, keepdims=True)
        scale = np.maximum((hi - lo).max(axis=-1, keepdims=True), 1e-12)
    center = (hi + lo) / 2
    return center, scale


def normalize_box(points: Any) -> Any:
    """Box-normalise each shape into [-0.5, 0.5] (the ShapeNet-vol / LION ``norm_box`` protocol).

    ``0.5 * (points - c) / (max_extent / 2)`` with ``c`` the centre of the shape's axis-aligned bounding
    box: the longest side of every shape spans exactly [-0.5, 0.5] and the box is centred at the origin.

    Args:
        points: (..., P, 3) numpy array or torch tensor.

    Returns:
        (..., P, 3) normalised points of the same kind.
    """
    center, scale = box_stats(points)
    return (points - center) / scale


def normalize(points: Any, mode: str = "global", stats: GlobalNorm | None = None) -> Any:
    """Normalise points by one of the named conventions.

    Args:
        points: (..., P, 3) numpy array or torch tensor.
        mode: ``"global"`` (dataset statistics; fitted on ``points`` when ``stats`` is None),
            ``"box"`` (per shape, :func:`normalize_box`) or ``"none"`` (returned unchanged).
        stats: the fitted :class:`GlobalNorm` for ``mode="global"`` (normally the train split's).

    Returns:
        (..., P, 3) normalised points of the same kind.
    """
    if mode == "global":
        if stats is None:
            stats = GlobalNorm.fit(points)
        return stats.apply(points)
    if mode == "box":
        return normalize_box(points)
    if mode == "none":
        _check_xyz(points)
        return points
    raise InputError(f"unknown normalisation mode {mode!r}; expected one of {', '.join(MODES)}")


def check_mode(mode: str) -> str:
    """Return ``mode`` if it names a normalisation, else raise :class:`InputError`."""
    if mode not in MODES:
        raise InputError(f"unknown normalisation mode {mode!r}; expected one of {', '.join(MODES)}")
    return mode
