"""Pairwise distance matrices between two sets of point clouds (Chamfer or EMD), in memory-bounded batches."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from gen3d.errors import InputError
from gen3d.metrics._native import IMPLS
from gen3d.metrics._validate import as_clouds
from gen3d.metrics.distances import chamfer_rows
from gen3d.metrics.earth_mover import APPROX_REL_EPS, METHODS, emd_rows
from gen3d.utils import progress as progress_bar

__all__ = ["METRICS", "pairwise_distances"]

METRICS = ("cd", "emd")
# Pairs per batch: each pair holds two clouds (2048 points: 48 KiB in float32) plus per-thread scratch.
DEFAULT_BATCH = {"cd": 64, "emd": 16}


def _pairs(n_a: int, n_b: int, symmetric: bool) -> tuple[np.ndarray, np.ndarray]:
    """Row and column indices of the entries to compute (upper triangle only when symmetric)."""
    if symmetric:
        rows, cols = np.triu_indices(n_a, k=1)
    else:
        rows, cols = np.divmod(np.arange(n_a * n_b), n_b)
    return rows.astype(np.int64), cols.astype(np.int64)


def _check_options(metric: str, impl: str, emd_method: str, batch_size: int | None) -> int:
    """Validate the options of :func:`pairwise_distances`; returns the batch size (the metric's default if None)."""
    if metric not in METRICS:
        raise ValueError(f"metric must be one of {METRICS}, got {metric!r}")
    if impl not in IMPLS:
        raise ValueError(f"impl must be one of {IMPLS}, got {impl!r}")
    if metric == "emd" and emd_method not in METHODS:
        raise ValueError(f"emd_method must be one of {METHODS}, got {emd_method!r}")
    size = batch_size or DEFAULT_BATCH[metric]
    if size < 1:
        raise ValueError(f"batch_size must be positive, got {size}")
    return size


def _checked_sets(A: Any, B: Any, metric: str) -> tuple[torch.Tensor, torch.Tensor]:
    """Validated CPU tensors ``(a, b)`` in one dtype (``b`` is ``a`` when ``B`` is None)."""
    a = as_clouds(A, "A").detach().cpu()
    if B is None:
        return a, a
    b = as_clouds(B, "B").detach().cpu()
    dtype = torch.promote_types(a.dtype, b.dtype)
    a, b = a.to(dtype), b.to(dtype)
    if metric == "emd" and a.shape[1] != b.shape[1]:
        raise InputError(
            f"EMD needs clouds with the same number of points, got {a.shape[1]} and {b.shape[1]} points per cloud"
        )
    return a, b


def pairwise_distances(
    A: Any,
    B: Any = None,
    metric: str = "cd",
    batch_size: int | None = None,
    emd_method: str = "approx",
    rel_eps: float = APPROX_REL_EPS,
    impl: str = "auto",
    progress: bool | None = None,
    description: str | None = None,
) -> Any:
    """Distance between every cloud of A and every cloud of B.

    Args:
        A: (N_a, P, 3) clouds (numpy array or torch tensor).
        B: (N_b, Q, 3) clouds, or ``None`` for A against itself: then only the upper triangle is computed,
            mirrored, and the diagonal is 0 (a cloud's distance to itself).
        metric: ``"cd"`` (:func:`~gen3d.metrics.chamfer_distance`) or ``"emd"``
            (:func:`~gen3d.metrics.emd`, needs P == Q).
        batch_size: pairs computed per call (bounds the memory: two clouds per pair); default 64 for
            CD and 16 for EMD.
        emd_method: ``"approx"`` or ``"exact"``, for ``metric="emd"``.
        rel_eps: accuracy of the approximate EMD.
        impl: ``"auto"``, ``"native"`` or ``"torch"``.
        progress: show a progress bar (default: on a terminal, see :func:`gen3d.utils.progress`).
        description: label of the progress bar.

    Returns:
        (N_a, N_b) float64 matrix, a torch tensor if A is one, else a numpy array.
    """
    size = _check_options(metric, impl, emd_method, batch_size)
    a, b = _checked_sets(A, B, metric)
    symmetric = B is None
    out = np.zeros((a.shape[0], b.shape[0]), dtype=np.float64)
    rows, cols = _pairs(a.shape[0], b.shape[0], symmetric)
    starts = range(0, len(rows), size)
    label = description or f"pairwise {metric.upper()}"
    for start in progress_bar(starts, label, total=len(starts), disable=None if progress is None else not progress):
        r = rows[start : start + size]
        c = cols[start : start + size]
        x = a[torch.from_numpy(r)]  # (batch, P, 3)
        y = b[torch.from_numpy(c)]  # (batch, Q, 3)
        if metric == "cd":
            out[r, c] = chamfer_rows(x, y, impl)
        else:
            out[r, c] = emd_rows(x, y, emd_method, rel_eps, impl)
    if symmetric:
        out = out + out.T  # the diagonal stays 0
    return torch.from_numpy(out) if isinstance(A, torch.Tensor) else out
