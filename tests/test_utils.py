"""Tests of gen3d.utils: atomic writes leave nothing half-written; path checks name the file."""

from __future__ import annotations

import pytest

from gen3d.errors import InputError
from gen3d.utils import atomic_path, atomic_write_text, check_exists


def test_atomic_write_replaces_only_on_success(tmp_path):
    target = tmp_path / "sub" / "out.txt"
    atomic_write_text(target, "first")
    assert target.read_text() == "first"

    with pytest.raises(RuntimeError), atomic_path(target) as tmp:
        tmp.write_text("partial")
        raise RuntimeError("writer crashed")
    # The old content survives and no temporary file is left behind.
    assert target.read_text() == "first"
    assert sorted(p.name for p in target.parent.iterdir()) == ["out.txt"]


def test_atomic_path_keeps_suffix(tmp_path):
    with atomic_path(tmp_path / "cloud.ply") as tmp:
        assert tmp.suffix == ".ply"
        tmp.write_bytes(b"x")
    assert (tmp_path / "cloud.ply").read_bytes() == b"x"


def test_check_exists_names_the_path(tmp_path):
    missing = tmp_path / "nope.npy"
    with pytest.raises(InputError, match="nope.npy: no such file"):
        check_exists(missing, "file")
    with pytest.raises(InputError, match="expected a file"):
        check_exists(tmp_path, "file")
    assert check_exists(tmp_path, "folder") == tmp_path


def test_fork_map_matches_a_loop_and_runs_in_other_processes():
    """Forked workers compute what a plain loop computes, in job order, even for a closure pickle cannot send."""
    import os

    from gen3d.utils.parallel import fork_map

    offset = lambda: 10  # noqa: E731  (a lambda: not picklable, reaches the workers through fork)

    def fn(a, b):
        return a * b + offset(), os.getpid()

    jobs = [(i, i + 1) for i in range(7)]
    out = fork_map(fn, jobs, processes=3)
    assert [v for v, _ in out] == [a * b + 10 for a, b in jobs]
    assert {pid for _, pid in out} - {os.getpid()}  # the work left this process
    assert fork_map(fn, jobs, processes=1) == [(a * b + 10, os.getpid()) for a, b in jobs]


def test_fork_map_hands_out_jobs_one_at_a_time():
    """The first two of 16 jobs must run at the same time in two workers: each waits at a two-party barrier.

    A pool that hands out chunks (``Pool.map``'s default: 2 jobs per chunk here) gives both to one worker, which
    then waits for itself until the barrier times out.
    """
    import multiprocessing
    import threading

    from gen3d.utils.parallel import fork_map

    barrier = multiprocessing.get_context("fork").Barrier(2)

    def fn(i):
        if i < 2:
            try:
                barrier.wait(timeout=20)
            except threading.BrokenBarrierError:
                return "alone"
        return "ok"

    assert fork_map(fn, [(i,) for i in range(16)], processes=2) == ["ok"] * 16


def test_resolve_device(monkeypatch):
    import torch

    from gen3d.utils.device import resolve_device

    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_device(torch.device("cpu")) == torch.device("cpu")
    with pytest.raises(InputError, match="not a torch device"):
        resolve_device("gpu0")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert resolve_device(None) == torch.device("cpu")
    with pytest.raises(InputError, match="CUDA is not available"):
        resolve_device("cuda")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert resolve_device(None) == torch.device("cuda")
    assert resolve_device("cuda:1") == torch.device("cuda", 1)


def test_forked_call_runs_beside_the_caller_and_returns_or_raises():
    """The worker computes while this process waits at a two-party barrier with it: it really runs concurrently."""
    import multiprocessing
    import os

    from gen3d.utils.parallel import ForkedCall

    barrier = multiprocessing.get_context("fork").Barrier(2)
    scale = lambda: 3  # noqa: E731  (reaches the worker through fork)

    def fn(x):
        barrier.wait(timeout=20)
        return [v * scale() for v in x], os.getpid()

    call = ForkedCall(fn, [1, 2])
    barrier.wait(timeout=20)  # only passes while the worker is inside fn
    values, pid = call.result(timeout=20)
    assert values == [3, 6] and pid != os.getpid() and call.ready()

    def fails():
        raise ValueError("bad input in the worker")

    with pytest.raises(ValueError, match="bad input in the worker"):
        ForkedCall(fails).result(timeout=20)
