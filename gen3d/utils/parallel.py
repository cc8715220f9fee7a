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


class ForkedCall:
    """``fn(*args)`` computed in one forked process while this one goes on; :meth:`result` waits for it.

    Like :func:`fork_map`, the worker inherits ``fn`` and ``args`` through ``fork`` (nothing is pickled on the
    way in); the result is pickled back. An exception in the worker is raised again by :meth:`result`. Use it to
    put independent CPU work on a core the caller leaves idle (e.g. metrics that do not depend on a model while
    a single-threaded stage trains).

    Args:
        fn: the callable.
        *args: its arguments.
    """

    def __init__(self, fn: Callable[..., Any], *args: Any):
        _SHARED.update(fn=fn, jobs=[args])
        try:
            self._pool = multiprocessing.get_context("fork").Pool(1)  # forks here: the worker holds fn and args
        finally:
            _SHARED.clear()
        self._async = self._pool.apply_async(_call, (0,))

    def result(self, timeout: float | None = None) -> Any:
        """The return value of ``fn(*args)`` (waits at most ``timeout`` seconds, then ``TimeoutError``)."""
        try:
            return self._async.get(timeout)
        finally:
            if self._async.ready():
                self._pool.close()
                self._pool.join()

    def ready(self) -> bool:
        """Whether the worker has finished."""
        return self._async.ready()
