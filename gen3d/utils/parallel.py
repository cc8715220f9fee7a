"""Run a function over jobs in forked worker processes (CPU parallelism for coarse, independent work)."""

from __future__ import annotations

import multiprocessing
from collections.abc import Callable, Sequence
from typing import Any

_SHARED: dict[str, Any] = {}  # what the forked workers read: fork copies it, so nothing here is pickled


def _call(i: int) -> Any:
    return _SHARED["fn"](*_SHARED["jobs"][i])


def fork_map(fn: Callable[..., Any], jobs: Sequence[tuple], processes: int) -> list[Any]:
    """``[fn(*job) for job in jobs]``, computed by up to ``processes`` forked workers, in the order of ``jobs``.

    ``fn`` may be any callable (a closure over a model, say): the workers inherit it through ``fork`` instead
    of receiving it pickled; only the results travel back. With one process (or one job) it runs here. Jobs are
    handed out one at a time, so a few long jobs at the front of the list do not queue behind each other in
    one worker's chunk.
    """
    processes = max(1, min(int(processes), len(jobs)))
    if processes == 1:
        return [fn(*job) for job in jobs]
    _SHARED.update(fn=fn, jobs=list(jobs))
    try:
        with multiprocessing.get_context("fork").Pool(processes) as pool:
            return pool.map(_call, range(len(jobs)), chunksize=1)
    finally:
        _SHARED.clear()
