"""Generation metrics for sets of point clouds, with the semantics of PointFlow's evaluation code.

Given generated ``samples`` (S clouds) and ``refs`` (R reference clouds, e.g. the test split):

* **MMD** (minimum matching distance): for every reference, the distance to its closest sample, averaged
  over the references. Lower is better. Reported in the distance's own units (CD: squared units; EMD:
  units); papers print MMD-CD x 10^3 and MMD-EMD x 10^2 (see :data:`PAPER_SCALES`).
* **COV** (coverage): the percentage of references that are the closest reference of at least one sample.
  Higher is better.
* **1-NNA** (1-nearest-neighbour accuracy): pool samples and references, classify each cloud by the label
  of its nearest *other* cloud (leave-one-out), and report the accuracy in percent. 50 % is ideal: the two
  sets are indistinguishable. 100 % means every cloud's nearest neighbour comes from its own set; values
  well below 50 % point at samples copying references.
* **JSD**: Jensen-Shannon divergence (base 2, so between 0 and 1) between the occupancy distributions of
  both sets on a 28^3 grid in the unit cube, keeping the cells inside the sphere of radius 0.5; every point
  counts for its nearest kept cell. Reported as the divergence itself, the value of PointFlow's
  ``jsd_between_point_cloud_sets`` (e.g. 0.0092); papers print JSD x 10^2.

Results hold the papers' units: MMD and JSD raw, COV and 1-NNA in percent. :func:`paper_units` and
:func:`format_point_cloud_metrics` apply the factors papers print with (:data:`PAPER_SCALES`).

The argument order is fixed: samples first, references second. MMD is taken from the reference side and
COV counts references; swapping the two sets measures something else (typically a better-looking MMD and
COV for a model that covers only part of the data).

Ties: the nearest neighbour is the first in index order; for 1-NNA the pooled order is references first,
then samples (as in PointFlow's code), so a sample at distance 0 from a reference is classified as a
reference.

Under the EMD only the pairs that can be a cloud's nearest neighbour are solved (:mod:`gen3d.metrics.nearest`:
lower bounds prune the rest, and a solve stops once it proves its pair too far); the results equal those of
the full matrices, which ``emd_full=True`` computes. The Chamfer matrices are always computed in full.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch
from torch import Tensor

from gen3d.errors import InputError
from gen3d.metrics._validate import as_clouds, as_matrix
from gen3d.metrics.earth_mover import APPROX_REL_EPS
from gen3d.metrics.nearest import EmdNearest, emd_nearest
from gen3d.metrics.pairwise import DEFAULT_BATCH, pairwise_distances

__all__ = [
    "KEYS",
    "PAPER_SCALES",
    "ReferenceDistances",
    "distance_matrices",
    "format_point_cloud_metrics",
    "jsd_between_point_cloud_sets",
    "mmd_cov",
    "one_nn_accuracy",
    "paper_units",
    "point_cloud_metrics",
]

KEYS = ("MMD-CD", "COV-CD", "1-NNA-CD", "MMD-EMD", "COV-EMD", "1-NNA-EMD", "JSD")
# Factors the papers (PointFlow, PVD, LION) print the metrics with; COV and 1-NNA are already percentages.
PAPER_SCALES = {"MMD-CD": 1e3, "MMD-EMD": 1e2, "JSD": 1e2}
EMD_MODES = ("approx", "exact", "none")


def mmd_cov(d_sr: Any) -> tuple[float, float]:
    """MMD and COV from the sample-to-reference distance matrix.

    Args:
        d_sr: (S, R) distances, ``d_sr[i, j]`` between sample i and reference j.

    Returns:
        mmd: mean over references of the distance to the closest sample.
        cov: percentage (0-100) of references that are the closest reference of some sample.
    """
    d = as_matrix(d_sr, "d_sr")
    if d.shape[0] == 0 or d.shape[1] == 0:
        raise InputError(f"d_sr must have at least one sample and one reference, got shape {d.shape}")
    mmd = float(d.min(axis=0).mean())  # (R,) closest sample of every reference
    nearest_ref = d.argmin(axis=1)  # (S,) closest reference of every sample (first on ties)
    cov = 100.0 * len(np.unique(nearest_ref)) / d.shape[1]
    return mmd, cov


def one_nn_accuracy(d_ss: Any, d_sr: Any, d_rr: Any) -> float:
    """Leave-one-out 1-nearest-neighbour accuracy of telling samples from references, in percent.

    Args:
        d_ss: (S, S) distances between samples.
        d_sr: (S, R) distances between samples and references.
        d_rr: (R, R) distances between references.

    Returns:
        Accuracy in percent (0-100); 50 is ideal.
    """
    ss, sr, rr = as_matrix(d_ss, "d_ss"), as_matrix(d_sr, "d_sr"), as_matrix(d_rr, "d_rr")
    n_s, n_r = sr.shape
    if ss.shape != (n_s, n_s) or rr.shape != (n_r, n_r):
        raise InputError(f"inconsistent shapes: d_ss {ss.shape}, d_sr {sr.shape}, d_rr {rr.shape}")
    if n_s + n_r < 2:
        raise InputError("1-NNA needs at least two clouds in total")
    # Pooled matrix in PointFlow's order: references first (label 1), then samples (label 0).
    pooled = np.block([[rr, sr.T], [sr, ss]])  # (R + S, R + S)
    np.fill_diagonal(pooled, np.inf)  # leave one out
    labels = np.concatenate([np.ones(n_r), np.zeros(n_s)])
    nearest = pooled.argmin(axis=0)  # (R + S,) nearest other cloud of every cloud (column-wise)
    return 100.0 * float((labels[nearest] == labels).mean())


def _unit_sphere_grid(resolution: int) -> np.ndarray:
    """Centres of a resolution^3 grid spanning [-0.5, 0.5]^3, keeping those within radius 0.5.

    Computed in float32 like PointFlow's ``unit_cube_grid_point_cloud`` so that the same cells are kept.
    """
    spacing = 1.0 / float(resolution - 1)
    axis = (np.arange(resolution) * spacing - 0.5).astype(np.float32)  # (res,)
    grid = np.stack(np.meshgrid(axis, axis, axis, indexing="ij"), axis=-1).reshape(-1, 3)  # (res^3, 3)
    return grid[np.linalg.norm(grid, axis=1) <= 0.5]


def _occupancy(clouds: np.ndarray, tree, cells: int) -> np.ndarray:
    """How many points of all clouds fall in each grid cell (nearest kept cell centre)."""
    counts = np.zeros(cells, dtype=np.float64)
    for cloud in clouds:
        _, idx = tree.query(cloud.astype(np.float64), k=1)  # (P,)
        counts += np.bincount(idx, minlength=cells)
    return counts


def jsd_between_point_cloud_sets(samples: Any, refs: Any, resolution: int = 28) -> float:
    """Jensen-Shannon divergence between the grid occupancy of two sets of clouds, in bits (0 to 1).

    Args:
        samples: (S, P, 3) clouds, expected inside the sphere of radius 0.5 around the origin (points
            outside still count, for their nearest kept cell).
        refs: (R, Q, 3) clouds.
        resolution: grid cells per axis (28 in PointFlow, PVD and LION).

    Returns:
        JSD in bits: 0 for identical occupancy, 1 for disjoint occupancy.
    """
    from scipy.spatial import cKDTree
    from scipy.stats import entropy

    s = as_clouds(samples, "samples", allow_empty_batch=False).cpu().numpy()
    r = as_clouds(refs, "refs", allow_empty_batch=False).cpu().numpy()
    if resolution < 2:
        raise ValueError(f"resolution must be at least 2, got {resolution}")
    grid = _unit_sphere_grid(resolution)
    tree = cKDTree(grid.astype(np.float64))
    p = _occupancy(s, tree, len(grid))
    q = _occupancy(r, tree, len(grid))
    p, q = p / p.sum(), q / q.sum()
    m = 0.5 * (p + q)
    jsd = entropy(m, base=2) - 0.5 * (entropy(p, base=2) + entropy(q, base=2))
    return float(max(jsd, 0.0))


class ReferenceDistances:
    """The reference-against-reference matrices of one reference set, computed once for several scored sets.

    1-NNA needs the distances among the references, which do not depend on the samples: an evaluation that
    scores several sets against the same references (a model, baselines, repeated sampling draws) computes a
    third of its pairs again for every set. Pass one instance to every :func:`point_cloud_metrics` call with
    these references; it keeps one matrix per distance (and EMD method and accuracy) and refuses other
    references. It pickles, so a forked worker can fill it and send it back.

    Args:
        refs: (R, P, 3) reference clouds (numpy array or torch tensor).
    """

    def __init__(self, refs: Any):
        self.refs = as_clouds(refs, "refs", allow_empty_batch=False).detach().cpu()
        self._matrices: dict[tuple, np.ndarray] = {}
        # EMD entries computed by nearest-neighbour searches: (values, lower bounds of the pairs given up)
        self._partial: dict[tuple, tuple[np.ndarray, np.ndarray]] = {}

    def check(self, refs: Tensor) -> None:
        """Raise ``ValueError`` unless ``refs`` are this instance's references (same values, after validation)."""
        if refs.shape != self.refs.shape or not torch.equal(refs, self.refs.to(refs.dtype)):
            raise ValueError(
                f"these ReferenceDistances belong to other references (shape {tuple(self.refs.shape)}); build one "
                f"per reference set"
            )

    def matrix(self, metric: str, emd_method: str = "approx", rel_eps: float = APPROX_REL_EPS, **kwargs: Any) -> Any:
        """The (R, R) float64 matrix under ``metric`` (computed on first request; ``kwargs`` go to
        :func:`~gen3d.metrics.pairwise.pairwise_distances`)."""
        key = (metric,) if metric == "cd" else (metric, emd_method, float(rel_eps))
        if key not in self._matrices:
            self._matrices[key] = np.asarray(
                pairwise_distances(
                    self.refs,
                    None,
                    metric=metric,
                    emd_method=emd_method,
                    rel_eps=rel_eps,
                    description=f"{metric.upper()} refs x refs",
                    **kwargs,
                )
            )
        return self._matrices[key]

    def emd_known(self, emd_method: str, rel_eps: float) -> tuple[np.ndarray, np.ndarray] | None:
        """What is known of the (R, R) EMD matrix: (values, NaN where unknown; lower bounds of pairs given up,
        NaN elsewhere), from a full matrix or from earlier nearest-neighbour searches."""
        key = ("emd", emd_method, float(rel_eps))
        if key in self._matrices:
            return self._matrices[key], np.full(self._matrices[key].shape, np.nan)
        return self._partial.get(key)

    def keep_emd_known(self, emd_method: str, rel_eps: float, values: np.ndarray, lower: np.ndarray) -> None:
        """Remember what a nearest-neighbour search learnt of the reference EMD matrix, for later calls."""
        key = ("emd", emd_method, float(rel_eps))
        if key not in self._matrices:
            self._partial[key] = (values, lower)


def distance_matrices(
    samples: Any,
    refs: Any,
    metric: str = "cd",
    emd_method: str = "approx",
    rel_eps: float = APPROX_REL_EPS,
    batch_size: int | None = None,
    impl: str = "auto",
    progress: bool | None = None,
    ref_distances: ReferenceDistances | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The three matrices the metrics need: (d_ss (S, S), d_sr (S, R), d_rr (R, R)), float64 numpy.

    ``ref_distances``: where ``d_rr`` is kept between calls with the same ``refs`` (:class:`ReferenceDistances`).
    """
    kwargs = dict(metric=metric, batch_size=batch_size, emd_method=emd_method, rel_eps=rel_eps, impl=impl)
    tag = metric.upper()
    d_sr = pairwise_distances(samples, refs, progress=progress, description=f"{tag} samples x refs", **kwargs)
    d_ss = pairwise_distances(samples, None, progress=progress, description=f"{tag} samples x samples", **kwargs)
    if ref_distances is None:
        d_rr = pairwise_distances(refs, None, progress=progress, description=f"{tag} refs x refs", **kwargs)
    else:
        ref_distances.check(as_clouds(refs, "refs").detach().cpu())
        d_rr = ref_distances.matrix(progress=progress, **kwargs)
    return np.asarray(d_ss), np.asarray(d_sr), np.asarray(d_rr)


def _checked_sets(samples: Any, refs: Any, emd: str | bool) -> tuple[Tensor, Tensor, str]:
    """Validated CPU tensors of both sets in one dtype, and the EMD mode (``True``/``False`` resolved)."""
    if isinstance(emd, bool):
        emd = "approx" if emd else "none"
    if emd not in EMD_MODES:
        raise ValueError(f"emd must be one of {EMD_MODES}, got {emd!r}")
    s = as_clouds(samples, "samples", allow_empty_batch=False).detach().cpu()
    r = as_clouds(refs, "refs", allow_empty_batch=False).detach().cpu()
    if emd != "none" and s.shape[1] != r.shape[1]:
        raise InputError(
            f"EMD needs samples and references with the same number of points, got {s.shape[1]} and "
            f"{r.shape[1]}; resample them or pass emd='none'"
        )
    dtype = torch.promote_types(s.dtype, r.dtype)
    return s.to(dtype), r.to(dtype), emd


def point_cloud_metrics(
    samples: Any,
    refs: Any,
    emd: str | bool = "approx",
    batch_size: int | None = None,
    rel_eps: float = APPROX_REL_EPS,
    impl: str = "auto",
    jsd_resolution: int = 28,
    progress: bool | None = None,
    ref_distances: ReferenceDistances | None = None,
    emd_full: bool = False,
) -> dict[str, float]:
    """MMD, COV and 1-NNA under Chamfer and EMD, and JSD, of generated samples against references.

    Args:
        samples: (S, P, 3) generated clouds (numpy array or torch tensor). Always the first argument.
        refs: (R, P, 3) reference clouds (e.g. the test split), in the same units and normalisation.
        emd: ``"approx"`` (native auction, see :mod:`gen3d.metrics.earth_mover`), ``"exact"`` (POT, else SciPy) or
            ``"none"`` (skip EMD: the ``*-EMD`` keys are then absent from the result); ``True`` means
            ``"approx"`` and ``False`` means ``"none"``.
        batch_size: pairs per batch of the pairwise matrices (memory bound).
        rel_eps: accuracy of the approximate EMD.
        impl: ``"auto"``, ``"native"`` or ``"torch"`` for the distance kernels.
        jsd_resolution: grid cells per axis for JSD.
        progress: show progress bars (default: on a terminal).
        ref_distances: a :class:`ReferenceDistances` of ``refs`` that keeps their reference-against-reference
            matrices between calls (several sets scored against the same references compute them once).
        emd_full: compute the full EMD matrices. By default only the pairs that can be a cloud's nearest
            neighbour are solved (:mod:`gen3d.metrics.nearest`): the results are the same, from a fraction of
            the pairs.

    Returns:
        ``{"MMD-CD", "COV-CD", "1-NNA-CD", "MMD-EMD", "COV-EMD", "1-NNA-EMD", "JSD"}`` as floats in the papers'
        units: MMD in the distance's units (CD squared, EMD not), COV / 1-NNA in percent, JSD the divergence
        itself (in bits, 0 to 1; not x 10^2).

    Raises:
        InputError: empty sets, NaN/Inf coordinates, different point counts with EMD.
    """
    s, r, emd = _checked_sets(samples, refs, emd)
    results: dict[str, float] = {}
    for metric in ("cd", "emd") if emd != "none" else ("cd",):
        if metric == "emd" and not emd_full:
            if ref_distances is not None:
                ref_distances.check(r)
            known = None if ref_distances is None else ref_distances.emd_known(emd, rel_eps)
            found = emd_nearest(s, r, emd, rel_eps, batch_size or DEFAULT_BATCH["emd"], impl, progress, ref_known=known)
            if ref_distances is not None:
                ref_distances.keep_emd_known(emd, rel_eps, found.ref_values, found.ref_lower)
            results["MMD-EMD"], results["COV-EMD"], results["1-NNA-EMD"] = _nearest_metrics(found, r.shape[0])
            continue
        d_ss, d_sr, d_rr = distance_matrices(
            s,
            r,
            metric,
            emd_method=emd,
            rel_eps=rel_eps,
            batch_size=batch_size,
            impl=impl,
            progress=progress,
            ref_distances=ref_distances,
        )
        tag = metric.upper()
        results[f"MMD-{tag}"], results[f"COV-{tag}"] = mmd_cov(d_sr)
        results[f"1-NNA-{tag}"] = one_nn_accuracy(d_ss, d_sr, d_rr)
    results["JSD"] = jsd_between_point_cloud_sets(s, r, resolution=jsd_resolution)
    return {key: results[key] for key in KEYS if key in results}


def _nearest_metrics(found: EmdNearest, n_refs: int) -> tuple[float, float, float]:
    """MMD, COV and 1-NNA from nearest neighbours, equal to :func:`mmd_cov` and :func:`one_nn_accuracy` on the
    full matrices (same minima, same first indices, references first on 1-NNA ties)."""
    mmd = float(found.ref_to_sample.value.mean())
    cov = 100.0 * len(np.unique(found.sample_to_ref.index)) / n_refs
    # A reference is classified right when its nearest other cloud is a reference (references win ties), a
    # sample when another sample is strictly nearer than every reference.
    right = np.concatenate([found.ref_ties_sample, found.sample_beats_ref])
    return mmd, cov, 100.0 * float(right.mean())


def paper_units(results: dict[str, float]) -> dict[str, float]:
    """The metrics as the papers print them: MMD-CD x 10^3, MMD-EMD x 10^2, JSD x 10^2, the rest unchanged."""
    return {key: value * PAPER_SCALES.get(key, 1.0) for key, value in results.items()}


def format_point_cloud_metrics(results: dict[str, float]) -> list[tuple[str, str]]:
    """Columns ``(header, value)`` of a table in the papers' scales, the factor in the header, in the canonical
    key order (the raw values belong in the JSON).

    Example:
        >>> format_point_cloud_metrics({"MMD-CD": 0.000217, "COV-CD": 46.9, "JSD": 0.0092})
        [('MMD-CD x1e3', '0.2170'), ('COV-CD %', '46.90'), ('JSD x1e2', '0.9200')]
    """
    columns = []
    keys = [k for k in KEYS if k in results] + [k for k in results if k not in KEYS]
    for key in keys:
        value = float(results[key])
        if key in PAPER_SCALES:
            exponent = round(math.log10(PAPER_SCALES[key]))
            columns.append((f"{key} x1e{exponent}", f"{value * PAPER_SCALES[key]:.4f}"))
        elif key.startswith(("COV", "1-NNA")):
            columns.append((f"{key} %", f"{value:.2f}"))
        else:
            columns.append((key, f"{value:.6g}"))
    return columns
