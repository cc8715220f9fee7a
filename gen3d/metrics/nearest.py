"""Nearest neighbours under the EMD between sets of clouds, computing only the pairs that can be nearest.

MMD, COV and 1-NNA need, for every cloud, only its nearest cloud of another (or its own) set: the minimum and the
first index attaining it along each row or column of the distance matrices, never the other entries. Two things
keep most pairs from being solved:

* Every pair has a cheap lower bound (:mod:`gen3d.metrics.emd_bounds`). A row visits its candidates in increasing
  order of the bound and stops when the next bound exceeds the smallest distance found: the pairs left have a
  distance at least their bound, hence above that minimum.
* A solve is told the distance above which no row asking for it needs it. The auction proves a lower bound at
  the end of each epsilon-scaling phase (the matching's cost minus epsilon) and gives up once that bound passes
  the threshold; the row keeps the better bound instead of a distance.

So the minima and first indices are exactly those of the full matrices computed with the same solver (the solver
is deterministic per pair, and every pair is computed in the orientation of
:func:`~gen3d.metrics.pairwise.pairwise_distances`). For 1-NNA a cloud's nearest neighbour within its own set
matters only through one comparison with its nearest cloud of the other set, so those rows stop as soon as the
comparison is decided. All rows advance together, one candidate per row a round, so that each round's pairs go
to the solver in multi-threaded batches.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from gen3d.metrics.earth_mover import emd_rows_bounded
from gen3d.metrics.emd_bounds import lower_bounds, sliced_features
from gen3d.metrics.pairwise import DEFAULT_BATCH
from gen3d.utils import progress as progress_bar

__all__ = ["EmdNearest", "Nearest", "emd_nearest"]


@dataclass
class Nearest:
    """Nearest neighbours of the clouds of one set: ``value[q]`` the distance, ``index[q]`` the first index
    attaining it."""

    value: np.ndarray  # (Q,) float64
    index: np.ndarray  # (Q,) int64


@dataclass
class EmdNearest:
    """What the point-cloud metrics need (see :func:`emd_nearest`)."""

    sample_to_ref: Nearest  # (S,) nearest reference of every sample
    ref_to_sample: Nearest  # (R,) nearest sample of every reference
    sample_beats_ref: np.ndarray  # (S,) bool: another sample is strictly nearer than the nearest reference
    ref_ties_sample: np.ndarray  # (R,) bool: another reference is at most as far as the nearest sample
    ref_values: np.ndarray  # (R, R) the reference-to-reference distances computed (NaN where not)
    ref_lower: np.ndarray  # (R, R) lower bounds of the reference pairs given up (NaN elsewhere)
    pairs_computed: int  # EMD pairs solved
    pairs_given_up: int  # solves stopped early: their lower bound proved them too far to matter
    pairs_total: int  # pairs of the three full matrices (symmetric halves counted once)


class _Query:
    """One row (or column) of a matrix, visiting candidates in increasing order of the bound.

    Without a threshold it finds the minimum and its first index. With one it only decides whether some entry
    is below the threshold (``strict``) or at most the threshold, which usually needs fewer entries.
    """

    def __init__(
        self, bounds: np.ndarray, exclude: int | None = None, threshold: float | None = None, strict: bool = True
    ):
        order = np.argsort(bounds, kind="stable")  # by bound, then by index
        if exclude is not None:
            order = order[order != exclude]
        self.order = order
        self.bounds = bounds[order]
        self.position = 0
        self.value = np.inf
        self.index = -1
        self.threshold, self.strict = threshold, strict
        self.found = False  # with a threshold: an entry below (or at) it exists
        self.done = len(order) == 0

    def _beats(self, v: float) -> bool:
        return v < self.threshold if self.strict else v <= self.threshold

    def _useless(self, bound: float, c: int) -> bool:
        """Whether an entry of at least ``bound`` at index c cannot change the answer."""
        if self.threshold is not None:
            return not self._beats(bound)
        return bound > self.value or (bound == self.value and c > self.index)

    @property
    def stop(self) -> float:
        """The solver may give up an entry it proves to be above this."""
        return self.value if self.threshold is None else self.threshold

    def next_candidate(self, values: np.ndarray, raised: np.ndarray) -> int | None:
        """Take in the computed candidates at the front; the next one to compute, or None once resolved.

        ``raised`` holds better lower bounds of entries whose solve was given up (NaN elsewhere).
        """
        while self.position < len(self.order):
            c = int(self.order[self.position])
            v = values[c]
            if np.isnan(v):
                if self._useless(self.bounds[self.position], c):
                    break  # this and every later candidate is at least its bound: none can matter
                if not np.isnan(raised[c]) and self._useless(raised[c], c):
                    self.position += 1  # given up earlier, and still of no use
                    continue
                return c
            if self.threshold is not None and self._beats(v):
                self.found = True
                break
            if v < self.value or (v == self.value and c < self.index):
                self.value, self.index = float(v), c
            self.position += 1
        self.done = True
        return None


class _Block:
    """One distance matrix between set ``a`` and set ``b`` (or ``a`` and itself), filled on demand."""

    def __init__(
        self, a: Tensor, b: Tensor | None, bounds: np.ndarray, known: tuple[np.ndarray, np.ndarray] | None = None
    ):
        self.a, self.b = a, (a if b is None else b)
        self.symmetric = b is None
        self.bounds = bounds
        self.values = np.full(bounds.shape, np.nan)
        self.raised = np.full(bounds.shape, np.nan)  # lower bounds from solves given up
        if known is not None:
            self.values[:], self.raised[:] = known
        if self.symmetric:
            np.fill_diagonal(self.values, np.inf)
        self.rows: list[_Query] = []
        self.cols: list[_Query] = []

    def requests(self) -> dict[tuple[int, int], float]:
        """The pairs (i, j) the unresolved rows and columns ask for next (i < j when symmetric), each with the
        value above which no asking query needs it."""
        pairs: dict[tuple[int, int], float] = {}

        def ask(pair: tuple[int, int], stop: float) -> None:
            pairs[pair] = max(stop, pairs.get(pair, -np.inf))

        for i, query in enumerate(self.rows):
            if not query.done and (c := query.next_candidate(self.values[i], self.raised[i])) is not None:
                ask((min(i, c), max(i, c)) if self.symmetric else (i, c), query.stop)
        for j, query in enumerate(self.cols):
            if not query.done and (c := query.next_candidate(self.values[:, j], self.raised[:, j])) is not None:
                ask((c, j), query.stop)
        return pairs

    def fill(self, rows: np.ndarray, cols: np.ndarray, values: np.ndarray, lower: np.ndarray) -> None:
        """Store solved entries, and the lower bounds of those given up (NaN values)."""
        solved = ~np.isnan(values)
        self._store(self.values, rows[solved], cols[solved], values[solved])
        self._store(self.raised, rows[~solved], cols[~solved], lower[~solved])

    def _store(self, target: np.ndarray, rows: np.ndarray, cols: np.ndarray, data: np.ndarray) -> None:
        target[rows, cols] = data
        if self.symmetric:
            target[cols, rows] = data


class _Search:
    """Runs the queries of several blocks together, a round of candidates at a time, in solver batches."""

    def __init__(self, method: str, rel_eps: float, batch_size: int, impl: str, progress: bool | None):
        self.solver = (method, rel_eps, impl)
        self.batch_size, self.progress = batch_size, progress
        self.computed = 0  # pairs solved to the end
        self.given_up = 0  # solves stopped early, proven too far to matter

    def run(self, blocks: list[_Block], description: str) -> None:
        disable = None if self.progress is None else not self.progress
        for batch in progress_bar(self._rounds(blocks), description, disable=disable):
            for block, rows, cols, stops in batch:
                for start in range(0, len(rows), self.batch_size):
                    chunk = slice(start, start + self.batch_size)
                    r, c = rows[chunk], cols[chunk]
                    x, y = block.a[torch.from_numpy(r)], block.b[torch.from_numpy(c)]
                    values, lower = emd_rows_bounded(x, y, *self.solver, stop_above=stops[chunk])
                    block.fill(r, c, values, lower)
                    self.computed += int((~np.isnan(values)).sum())
                    self.given_up += int(np.isnan(values).sum())

    @staticmethod
    def _rounds(blocks: list[_Block]):
        """Yield each round's requests (block, rows, cols, stops) until every query is resolved."""
        while True:
            batch = []
            for block in blocks:
                requests = block.requests()
                if requests:
                    pairs = sorted(requests)
                    index = np.array(pairs, dtype=np.int64)  # (P, 2)
                    stops = np.array([requests[p] for p in pairs], dtype=np.float64)
                    batch.append((block, index[:, 0].copy(), index[:, 1].copy(), stops))
            if not batch:
                return
            yield batch


def _nearest(queries: list[_Query]) -> Nearest:
    return Nearest(np.array([q.value for q in queries]), np.array([q.index for q in queries], dtype=np.int64))


def emd_nearest(
    samples: Tensor,
    refs: Tensor,
    method: str,
    rel_eps: float,
    batch_size: int = DEFAULT_BATCH["emd"],
    impl: str = "auto",
    progress: bool | None = None,
    ref_known: tuple[np.ndarray, np.ndarray] | None = None,
) -> EmdNearest:
    """Nearest neighbours under the EMD for MMD, COV and 1-NNA, without the full matrices.

    First every sample's nearest reference and every reference's nearest sample (MMD, COV). Then, for 1-NNA,
    whether a sample has another sample strictly nearer than its nearest reference, and whether a reference has
    another reference at most as far as its nearest sample (the pooled order puts references first, so they
    win ties): each a yes/no question that stops at the first entry beating the threshold or at the first bound
    that cannot.

    Args:
        samples: (S, N, 3) checked CPU clouds.
        refs: (R, N, 3) checked CPU clouds of the same dtype and N.
        method: ``"approx"`` or ``"exact"`` (:func:`~gen3d.metrics.earth_mover.emd_rows`).
        rel_eps: accuracy of ``"approx"``.
        batch_size: pairs per solver call.
        impl: ``"auto"``, ``"native"`` or ``"torch"``.
        progress: show progress bars (default: on a terminal).
        ref_known: ``(ref_values, ref_lower)`` of an earlier call with the same references, method and accuracy:
            the reference-to-reference distances it computed and the lower bounds of the pairs it gave up (NaN
            elsewhere). They are reused, and the returned ones add to them.

    Returns:
        :class:`EmdNearest`; the minima, first indices and answers equal those of the full matrices.
    """
    fs, fr = sliced_features(samples), sliced_features(refs)
    s, r = samples.shape[0], refs.shape[0]
    search = _Search(method, rel_eps, batch_size, impl, progress)
    cross = _Block(samples, refs, lower_bounds(fs, fr))  # samples x refs, as pairwise_distances(samples, refs)
    cross.rows = [_Query(cross.bounds[i]) for i in range(s)]
    cross.cols = [_Query(cross.bounds[:, j]) for j in range(r)]
    search.run([cross], "EMD nearest samples x refs")
    to_ref, to_sample = _nearest(cross.rows), _nearest(cross.cols)

    own_samples = _Block(samples, None, lower_bounds(fs, fs))
    own_samples.rows = [_Query(own_samples.bounds[i], i, to_ref.value[i], strict=True) for i in range(s)]
    own_refs = _Block(refs, None, lower_bounds(fr, fr), ref_known)
    own_refs.rows = [_Query(own_refs.bounds[j], j, to_sample.value[j], strict=False) for j in range(r)]
    search.run([own_samples, own_refs], "EMD nearest within sets")
    return EmdNearest(
        sample_to_ref=to_ref,
        ref_to_sample=to_sample,
        sample_beats_ref=np.array([q.found for q in own_samples.rows], dtype=bool),
        ref_ties_sample=np.array([q.found for q in own_refs.rows], dtype=bool),
        ref_values=own_refs.values,
        ref_lower=own_refs.raised,
        pairs_computed=search.computed,
        pairs_given_up=search.given_up,
        pairs_total=s * r + s * (s - 1) // 2 + r * (r - 1) // 2,
    )
