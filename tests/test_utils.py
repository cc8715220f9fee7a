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
