"""Dataset folders only ever hold one complete build: killed, failing and concurrent builds (fixtures in tmp_path)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from gen3d.cli.main import main
from gen3d.data import multiview, shapes
from gen3d.errors import InputError
from gen3d.utils.staging import folder_lock, is_built

REPO = Path(__file__).resolve().parents[2]
SMALL = {"classes": "chair,mug", "per_class": 4, "points": 128}
# `gen3d data shapes` with every shape slowed down by argv[1] seconds, so that a test can act mid-build.
SLOW_CLI = """
import sys, time
import gen3d.data.shapes as shapes
sample = shapes.shape_points
def slow(*args, **kwargs):
    time.sleep(float(sys.argv[1]))
    return sample(*args, **kwargs)
shapes.shape_points = slow
from gen3d.cli.main import main
sys.exit(main(sys.argv[2:]))
"""


def _tree(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def _argv(dest: Path, seed: int) -> list[str]:
    args = ["--classes", SMALL["classes"], "--per-class", str(SMALL["per_class"]), "--points", str(SMALL["points"])]
    return ["data", "shapes", "--out", str(dest), *args, "--seed", str(seed)]


def _start_slow(dest: Path, seed: int, log: Path, delay: float = 0.1) -> subprocess.Popen:
    with log.open("w") as out:
        return subprocess.Popen(
            [sys.executable, "-c", SLOW_CLI, str(delay), *_argv(dest, seed)], cwd=REPO, stdout=out, stderr=out
        )


def _staging_folders(dest: Path) -> list[Path]:
    return sorted(dest.parent.glob(f".{dest.name}.build-*"))


def _staged_clouds(dest: Path) -> list[Path]:
    return [p for stage in _staging_folders(dest) for p in stage.rglob("*.npy") if not p.name.startswith(".")]


def _wait_until(condition, proc: subprocess.Popen, log: Path, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert proc.poll() is None, f"the build ended first (exit code {proc.returncode}): {log.read_text()}"
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


def _kill_after_staged_clouds(dest: Path, proc: subprocess.Popen, log: Path, count: int = 2) -> list[Path]:
    """SIGKILL the build once its staging folder holds ``count`` clouds; returns the staged clouds."""
    _wait_until(lambda: len(_staged_clouds(dest)) >= count, proc, log)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    return _staged_clouds(dest)


def _reference(tmp_path: Path, seed: int) -> dict[str, bytes]:
    root = tmp_path / "reference" / str(seed)
    if not root.exists():
        shapes.build_dataset(root, **SMALL, seed=seed)
    return _tree(root)


def test_killed_rebuild_leaves_the_earlier_build_and_the_next_run_completes_it(tmp_path):
    dest = tmp_path / "out" / "d"
    shapes.build_dataset(dest, **SMALL, seed=0)
    before = _tree(dest)
    log = tmp_path / "log.txt"
    staged = _kill_after_staged_clouds(dest, _start_slow(dest, 1, log), log)
    assert _tree(dest) == before  # every file of the seed-0 build, nothing of seed 1
    assert json.loads((dest / "dataset.json").read_text())["seed"] == 0
    staged_inodes = {p: os.stat(p).st_ino for p in staged}
    assert main(_argv(dest, 1)) == 0
    assert _tree(dest) == _reference(tmp_path, 1)
    assert all((dest / p.relative_to(p.parents[2])).stat().st_ino == ino for p, ino in staged_inodes.items())
    assert sorted(p.name for p in dest.parent.iterdir()) == [".d.lock", "d"]


def test_killed_first_build_is_completed_by_running_it_again(tmp_path):
    dest = tmp_path / "d"
    log = tmp_path / "log.txt"
    staged = _kill_after_staged_clouds(dest, _start_slow(dest, 3, log), log)
    assert not dest.exists()
    staged_inodes = {p: os.stat(p).st_ino for p in staged}
    assert main(_argv(dest, 3)) == 0
    assert _tree(dest) == _reference(tmp_path, 3)
    assert all((dest / p.relative_to(p.parents[2])).stat().st_ino == ino for p, ino in staged_inodes.items())
    assert not _staging_folders(dest)


def test_a_killed_build_with_other_options_is_discarded(tmp_path):
    dest = tmp_path / "d"
    log = tmp_path / "log.txt"
    _kill_after_staged_clouds(dest, _start_slow(dest, 1, log), log)
    shapes.build_dataset(dest, **SMALL, seed=2)
    assert _tree(dest) == _reference(tmp_path, 2)
    assert not _staging_folders(dest)


def test_concurrent_rebuilds_give_one_complete_build(tmp_path):
    dest = tmp_path / "out" / "d"
    shapes.build_dataset(dest, **SMALL, seed=0)
    procs = [_start_slow(dest, seed, tmp_path / f"log{seed}.txt", delay=0.02) for seed in (1, 2)]
    for seed, proc in zip((1, 2), procs, strict=True):
        assert proc.wait(timeout=300) == 0, (tmp_path / f"log{seed}.txt").read_text()
    tree = _tree(dest)
    seed = json.loads(tree["dataset.json"])["seed"]
    assert seed in (1, 2) and tree == _reference(tmp_path, seed)
    assert sorted(p.name for p in dest.parent.iterdir()) == [".d.lock", "d"]


def test_a_second_build_waits_for_the_lock(tmp_path):
    dest = tmp_path / "d"
    log = tmp_path / "log.txt"
    with folder_lock(dest), log.open("w") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "gen3d.cli.main", *_argv(dest, 0)], cwd=REPO, stdout=out, stderr=out
        )
        _wait_until(lambda: "waiting for it to finish" in log.read_text(), proc, log)
        assert not dest.exists() and not _staging_folders(dest)
    assert proc.wait(timeout=120) == 0, log.read_text()
    assert _tree(dest) == _reference(tmp_path, 0)


def test_lock_timeout_names_the_folder(tmp_path):
    dest = tmp_path / "d"
    with folder_lock(dest), pytest.raises(InputError, match="still running") as info:  # noqa: SIM117
        with folder_lock(dest, timeout=0.05):
            pass
    assert str(dest) in str(info.value)
    with folder_lock(dest, timeout=0.05):  # released
        pass


@pytest.mark.parametrize("earlier", [True, False])
def test_failing_build_leaves_the_destination_untouched(tmp_path, monkeypatch, earlier):
    dest = tmp_path / "d"
    if earlier:
        shapes.build_dataset(dest, **SMALL, seed=0)
    before = _tree(dest) if earlier else {}
    sample, calls = shapes.shape_points, []

    def failing(*args, **kwargs):
        calls.append(args)
        if len(calls) > 3:
            raise RuntimeError("disk full")
        return sample(*args, **kwargs)

    monkeypatch.setattr(shapes, "shape_points", failing)
    with pytest.raises(RuntimeError, match="disk full"):
        shapes.build_dataset(dest, **SMALL, seed=1)
    assert dest.exists() == earlier and (_tree(dest) if earlier else {}) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ([".d.lock", "d"] if earlier else [".d.lock"])


def test_same_options_are_not_built_twice(tmp_path, monkeypatch, capsys):
    dest = tmp_path / "d"
    manifest = shapes.build_dataset(dest, **SMALL, seed=0)
    before = _tree(dest)
    assert is_built(dest, manifest) and not is_built(dest, {**manifest, "seed": 1})

    def failing(*args, **kwargs):
        raise AssertionError("nothing should be sampled")

    monkeypatch.setattr(shapes, "shape_points", failing)
    capsys.readouterr()
    assert shapes.build_dataset(dest, **SMALL, seed=0) == manifest
    assert "already built" in capsys.readouterr().err
    assert _tree(dest) == before


def test_a_swap_interrupted_after_setting_aside_restores_the_earlier_build(tmp_path):
    dest = tmp_path / "d"
    shapes.build_dataset(dest, **SMALL, seed=0)
    before = _tree(dest)
    dest.rename(tmp_path / ".d.old-0123456789abcdef")
    shapes.build_dataset(dest, **SMALL, seed=0)  # restored, so nothing to build
    assert _tree(dest) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == [".d.lock", "d"]


def test_partial_build_without_manifest_is_rebuilt_but_foreign_files_are_refused(tmp_path):
    reference = _reference(tmp_path, 0)
    dest = tmp_path / "d"
    for rel in ("chair/train/00000.npy", "chair/train/.00001.npy.abc123.npy", "mug/val/00002.npy"):
        (dest / rel).parent.mkdir(parents=True, exist_ok=True)
        (dest / rel).write_bytes(b"partial")
    shapes.build_dataset(dest, **SMALL, seed=0)
    assert _tree(dest) == reference
    foreign = tmp_path / "foreign"
    (foreign / "chair" / "train").mkdir(parents=True)
    (foreign / "chair" / "train" / "00000.npy").write_bytes(b"mine")
    (foreign / "chair" / "notes.txt").write_text("mine")
    with pytest.raises(InputError, match="not empty"):
        shapes.build_dataset(foreign, **SMALL, seed=0)
    assert _tree(foreign) == {"chair/notes.txt": b"mine", "chair/train/00000.npy": b"mine"}
    assert not (tmp_path / ".foreign.lock").exists()
    (tmp_path / "file").write_text("mine")
    with pytest.raises(InputError, match="not a folder"):
        shapes.build_dataset(tmp_path / "file", **SMALL, seed=0)


# ----------------------------------------------------------------------------------------------------
# Multi-view renders
# ----------------------------------------------------------------------------------------------------

RENDERS = {"classes": "mug", "per_class": 2, "views": 1, "size": 16}


def _interrupt_renders(monkeypatch, error: BaseException, after: int = 1) -> None:
    render, calls = multiview.render_mesh, []

    def interrupted(*args, **kwargs):
        calls.append(args)
        if len(calls) > after:
            raise error
        return render(*args, **kwargs)

    monkeypatch.setattr(multiview, "render_mesh", interrupted)


def test_failing_render_leaves_the_earlier_renders(tmp_path, monkeypatch):
    dest = tmp_path / "mv"
    multiview.render_multiview(dest, **RENDERS, seed=0)
    before = _tree(dest)
    _interrupt_renders(monkeypatch, RuntimeError("out of memory"))
    with pytest.raises(RuntimeError, match="out of memory"):
        multiview.render_multiview(dest, **RENDERS, seed=1)
    assert _tree(dest) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == [".mv.lock", "mv"]


def test_interrupted_render_is_resumed(tmp_path, monkeypatch):
    dest = tmp_path / "mv"
    multiview.render_multiview(dest, **RENDERS, seed=0)
    before = _tree(dest)
    _interrupt_renders(monkeypatch, KeyboardInterrupt())
    with pytest.raises(KeyboardInterrupt):
        multiview.render_multiview(dest, **RENDERS, seed=1)
    assert _tree(dest) == before
    (stage,) = _staging_folders(dest)
    kept = {p.name: p.stat().st_ino for p in stage.glob("*.png")}
    assert list(kept) == ["mug_0000_00.png"]
    monkeypatch.undo()
    assert multiview.render_multiview(dest, **RENDERS, seed=1) == dest
    reference = multiview.render_multiview(tmp_path / "reference" / "mv", **RENDERS, seed=1)
    assert _tree(dest) == _tree(reference)
    assert all((dest / name).stat().st_ino == ino for name, ino in kept.items())
    assert sorted(p.name for p in tmp_path.iterdir()) == [".mv.lock", "mv", "reference"]


def test_partial_renders_without_manifest_are_redone_but_other_files_are_refused(tmp_path):
    partial = tmp_path / "partial"
    partial.mkdir()
    (partial / "mug_0000_00.png").write_bytes(b"partial")
    multiview.render_multiview(partial, **RENDERS)
    assert _tree(partial) == _tree(multiview.render_multiview(tmp_path / "reference", **RENDERS))
    dest = tmp_path / "photos"
    dest.mkdir()
    (dest / "holiday.png").write_bytes(b"mine")
    with pytest.raises(InputError, match="not empty"):
        multiview.render_multiview(dest, **RENDERS)
    assert _tree(dest) == {"holiday.png": b"mine"}
