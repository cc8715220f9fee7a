"""The ``gen3d`` command line: fast help, ``gen3d data``, the demo's data stage, one-line errors."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from gen3d.cli.main import main

REPO = Path(__file__).resolve().parents[1]


def _run(*args, timeout=120):
    return subprocess.run(
        [sys.executable, "-m", "gen3d.cli.main", *args], cwd=REPO, capture_output=True, text=True, timeout=timeout
    )


def test_help_imports_no_torch():
    result = _run("--help")
    assert result.returncode == 0 and "data" in result.stdout and "demo" in result.stdout
    code = (
        "import sys, gen3d.cli.main as m; m.build_parser(); "
        "bad = [x for x in ('torch', 'lightning') if x in sys.modules]; assert not bad, bad"
    )
    check = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=60)
    assert check.returncode == 0, check.stderr


def _files(root):
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_data_shapes_twice_gives_identical_files(tmp_path, capsys):
    args = ["data", "shapes", "--classes", "chair,mug", "--per-class", "3", "--points", "200", "--seed", "4"]
    assert main([*args, "--out", str(tmp_path / "a")]) == 0
    assert "wrote 6 shapes" in capsys.readouterr().out
    result = _run(*args, "--out", str(tmp_path / "b"))  # once more in a separate process
    assert result.returncode == 0, result.stderr
    a, b = _files(tmp_path / "a"), _files(tmp_path / "b")
    assert a == b and len([k for k in a if k.endswith(".npy")]) == 6
    assert np.load(tmp_path / "a" / "mug" / "train" / "00000.npy").shape == (200, 3)


def test_data_info(tmp_path, capsys):
    main(["data", "shapes", "--out", str(tmp_path / "d"), "--classes", "table", "--per-class", "4", "--points", "100"])
    capsys.readouterr()
    assert main(["data", "info", str(tmp_path / "d"), "--json", str(tmp_path / "s.json")]) == 0
    out = capsys.readouterr().out
    assert "table" in out and "points per shape: 100" in out
    stats = json.loads((tmp_path / "s.json").read_text())
    assert (
        stats["classes"]["table"]["train"] + stats["classes"]["table"]["val"] + stats["classes"]["table"]["test"] == 4
    )


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["data", "shapes", "--out", "{tmp}/x", "--classes", "spoon"], "unknown procedural class 'spoon'"),
        (["data", "shapes", "--out", "{tmp}/x", "--split", "0.5,0.5,0.5"], "split fractions must sum to 1"),
        (
            ["data", "shapes", "--out", "{tmp}/x", "--per-class", "0"],
            "argument --per-class: expected an integer in [1, 100000], got '0'",
        ),
        (["data", "info", "{tmp}/missing"], "no such folder"),
        (["demo", "--out", "{tmp}/demo", "--classes", "spoon"], "unknown procedural class"),
    ],
)
def test_bad_input_exits_2_with_one_line(tmp_path, capsys, args, needle):
    args = [a.replace("{tmp}", str(tmp_path)) for a in args]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert err.startswith("gen3d") and ": error: " in err and needle in err
    assert err.count("\n") == 1 and "Traceback" not in err


def test_bad_input_in_a_subprocess_has_no_traceback(tmp_path):
    bad = tmp_path / "root"
    (bad / "chair" / "train").mkdir(parents=True)
    (bad / "chair" / "train" / "x.npy").write_bytes(b"\x93NUMPY garbage")
    result = _run("data", "info", str(bad))
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and "x.npy: not a readable .npy array" in result.stderr
    assert "Traceback" not in result.stderr


def test_demo_data_stage(tmp_path, capsys):
    out = tmp_path / "demo"
    assert (
        main(
            [
                "demo",
                "--out",
                str(out),
                "--classes",
                "chair,lamp",
                "--per-class",
                "4",
                "--points",
                "600",
                "--preview",
                "1",
                "--skip-lion",
                "--skip-graf",
            ]
        )
        == 0
    )
    printed = capsys.readouterr().out
    assert "chair" in printed and "global normalisation" in printed
    from PIL import Image

    from gen3d.data.io import load_points

    img = np.asarray(Image.open(out / "shapes.png"))
    assert img.ndim == 3 and img.shape[1] == 2 * 128 and (img != 255).any()
    assert sorted(p.name for p in (out / "ply").iterdir()) == ["chair_0.ply", "lamp_0.ply"]
    np.testing.assert_array_equal(
        load_points(out / "ply" / "lamp_0.ply"), load_points(out / "data" / "lamp" / "train" / "00000.npy")
    )
    summary = json.loads((out / "demo_summary.json").read_text())
    assert summary["data"]["stats"]["total"] == 8 and summary["data"]["grid"] == str(out / "shapes.png")


def test_demo_on_a_gpu_without_one_exits_2_before_writing(tmp_path, capsys, monkeypatch):
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert main(["demo", "--out", str(tmp_path / "demo"), "--lion-accelerator", "gpu"]) == 2
    assert "CUDA is not available" in capsys.readouterr().err
    assert not (tmp_path / "demo").exists()
