"""``gen3d evaluate points`` / ``images`` end to end, and one-line errors with exit code 2 on bad input."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from gen3d.cli.main import main
from gen3d.metrics import point_cloud_metrics

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def point_sets(tmp_path, sphere_clouds, box_clouds):
    rng = np.random.default_rng(0)
    samples = np.concatenate([sphere_clouds(rng, 5, 64), box_clouds(rng, 5, 64)])
    refs = np.concatenate([sphere_clouds(rng, 6, 64), box_clouds(rng, 6, 64)])
    np.savez(tmp_path / "samples.npz", points=samples)
    folder = tmp_path / "refs"
    folder.mkdir()
    for i, cloud in enumerate(refs):  # references as a folder of .npy clouds
        np.save(folder / f"{i:03d}.npy", cloud)
    return tmp_path / "samples.npz", folder, samples, refs


def test_points_end_to_end_matches_the_library(point_sets, tmp_path, capsys, native):
    s_path, r_path, samples, refs = point_sets
    out = tmp_path / "out" / "metrics.json"
    code = main(["evaluate", "points", "--samples", str(s_path), "--refs", str(r_path), "--json", str(out)])
    assert code == 0
    printed = capsys.readouterr().out
    got = json.loads(out.read_text())
    expected = point_cloud_metrics(samples, refs, emd="approx")
    assert got.keys() == expected.keys()
    for key, value in expected.items():
        assert got[key] == pytest.approx(value, rel=1e-9)
    assert 0 < got["JSD"] < 1  # the JSON holds the divergence itself; the table prints it x 100
    for header in ("MMD-CD x1e3", "MMD-EMD x1e2", "COV-CD %", "1-NNA-EMD %", "JSD x1e2"):
        assert header in printed
    assert f"{1e2 * got['JSD']:.4f}" in printed and f"{1e3 * got['MMD-CD']:.4f}" in printed


def test_points_options_norm_max_and_no_emd(point_sets, tmp_path):
    from gen3d.data.normalize import GlobalNorm

    s_path, r_path, samples, refs = point_sets
    out = tmp_path / "m.json"
    args = ["evaluate", "points", "--samples", str(s_path), "--refs", str(r_path), "--json", str(out)]
    assert main([*args, "--emd", "none", "--norm", "global", "--max", "4"]) == 0
    got = json.loads(out.read_text())
    assert "MMD-EMD" not in got and "COV-CD" in got
    stats = GlobalNorm.fit(refs[:4])  # fitted on the references, applied to both sets
    expected = point_cloud_metrics(stats.apply(samples[:4]), stats.apply(refs[:4]), emd="none")
    assert got["MMD-CD"] == pytest.approx(expected["MMD-CD"], rel=1e-6)
    assert main([*args, "--emd", "none", "--norm", "box"]) == 0


def _run(*args):
    return subprocess.run(
        [sys.executable, "-m", "gen3d.cli.main", *args], cwd=REPO, capture_output=True, text=True, timeout=300
    )


def test_bad_point_inputs_exit_2_with_one_line(tmp_path, capsys):
    good = np.zeros((3, 10, 3), dtype=np.float32) + np.arange(10, dtype=np.float32)[None, :, None] / 10
    np.save(tmp_path / "good.npy", good)
    nan = good.copy()
    nan[0, 0, 0] = np.nan
    np.save(tmp_path / "nan.npy", nan)
    np.save(tmp_path / "other.npy", np.zeros((3, 12, 3), dtype=np.float32))
    cases = [
        (["--samples", str(tmp_path / "missing.npz"), "--refs", str(tmp_path / "good.npy")], "missing.npz"),
        (["--samples", str(tmp_path / "nan.npy"), "--refs", str(tmp_path / "good.npy")], "NaN"),
        (["--samples", str(tmp_path / "other.npy"), "--refs", str(tmp_path / "good.npy")], "same number of points"),
        (["--samples", str(tmp_path / "good.npy"), "--refs", str(tmp_path / "good.npy"), "--max", "0"], "--max"),
    ]
    for args, needle in cases:
        assert main(["evaluate", "points", *args]) == 2
        lines = capsys.readouterr().err.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("gen3d") and ": error: " in lines[0], lines
        assert needle in lines[0], lines
    result = _run("evaluate", "points", *cases[0][0])  # the exit code of the real process
    assert result.returncode == 2 and len(result.stderr.strip().splitlines()) == 1, result.stderr


def _image_folder(root: Path, seed: int, count: int = 6, size: int = 32) -> Path:
    root.mkdir(parents=True)
    rng = np.random.default_rng(seed)
    for i in range(count):
        Image.fromarray(rng.integers(0, 256, size=(size, size, 3), dtype=np.uint8)).save(root / f"{i:02d}.png")
    return root


def test_bad_image_inputs_exit_2(tmp_path, capsys):
    real = _image_folder(tmp_path / "real", 0, count=2)
    assert main(["evaluate", "images", "--fake", str(tmp_path / "nope"), "--real", str(real)]) == 2
    assert "no such image folder" in capsys.readouterr().err
    assert (
        main(["evaluate", "images", "--fake", str(real), "--real", str(real), "--weights", str(tmp_path / "w.pt")]) == 2
    )
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "w.pt" in err[0]
    (tmp_path / "empty").mkdir()
    assert main(["evaluate", "images", "--fake", str(tmp_path / "empty"), "--real", str(real)]) == 2
    assert "no image" in capsys.readouterr().err


@pytest.mark.slow
def test_images_end_to_end_with_default_weights(tmp_path):
    fake = _image_folder(tmp_path / "fake", 1)
    real = _image_folder(tmp_path / "real", 2)
    out = tmp_path / "fid.json"
    result = _run(
        "evaluate", "images", "--fake", str(fake), "--real", str(real), "--json", str(out), "--kid-subsets", "5"
    )
    assert result.returncode == 0, result.stderr
    assert "FID" in result.stdout and "KID" in result.stdout
    got = json.loads(out.read_text())
    # (FID of identical sets being 0 is checked in test_fid.py with small stand-in networks, which need no
    # 2048-d matrix square root.)
    assert set(got) == {"FID", "KID", "KID_std"} and got["FID"] > 0 and np.isfinite(got["KID"])


def test_graf_kind_choices_are_the_image_layouts():
    from gen3d.cli.evaluate import GRAF_KINDS
    from gen3d.data.multiview import GRAF_DATASETS

    assert set(GRAF_KINDS) == set(GRAF_DATASETS)
