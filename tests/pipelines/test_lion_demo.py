"""The demo's LION stage with a tiny configuration: it runs end to end, reproducibly, and reports its table."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

import gen3d.pipelines.lion_demo as demo


def test_gaussian_blobs_and_threads():
    blobs = demo.gaussian_blobs(4, 100, np.array([1.0, 2.0, 3.0]), 0.5, seed=0)
    assert blobs.shape == (4, 100, 3) and blobs.dtype == np.float32
    np.testing.assert_allclose(blobs.reshape(-1, 3).mean(0), [1.0, 2.0, 3.0], atol=0.15)
    np.testing.assert_allclose(blobs.reshape(-1, 3).std(0), [0.5, 0.5, 0.5], atol=0.05)
    assert demo.choose_threads() >= 1


def test_metrics_table_units():
    """The papers' scales, the factors in the headers: MMD-CD x1e3, MMD-EMD and JSD (a divergence) x1e2."""
    from rich.console import Console

    row = {"1-NNA-CD": 55.0, "MMD-CD": 0.0042, "MMD-EMD": 0.0712, "COV-CD": 50.0, "JSD": 0.0092}
    console = Console(record=True, width=200)
    console.print(demo.metrics_table({"a": row}, "t"))
    text = console.export_text()
    assert "55.0" in text and "4.200" in text and "7.120" in text and "0.92" in text
    assert "1-NNA-CD %" in text and "MMD-CD x1e3" in text and "MMD-EMD x1e2" in text and "JSD x1e2" in text


def test_preset_loads_into_one_frozen_config():
    import dataclasses

    cfg = demo.load_lion_demo_config()
    assert cfg.points == cfg.config["num_points"] == 512 and cfg.classes == ("chair",)
    import yaml

    raw = yaml.safe_load(demo.PRESET.read_text(encoding="utf-8"))["demo"]  # the file itself, read independently
    assert (cfg.vae_steps, cfg.prior_steps, cfg.draws) == (raw["vae_steps"], raw["prior_steps"], raw["draws"])
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.prior_steps = 3
    small = demo.load_lion_demo_config(prior_steps=40, vae_steps=None)  # None keeps the preset's value
    assert small.prior_steps == 40 and small.vae_steps == cfg.vae_steps
    with pytest.raises(ValueError, match="prior_steps=0"):
        dataclasses.replace(cfg, prior_steps=0)
    with pytest.raises(ValueError, match="num_points"):
        dataclasses.replace(cfg, points=48)


def test_generate_parallel_matches_sequential_shares(tiny_config):
    """Forked workers draw exactly what one process draws share by share with the derived seeds."""
    import torch

    from gen3d.lit.lion_module import LionModule, derived_seed

    torch.manual_seed(0)
    module = LionModule(config=tiny_config, stage="prior", ema_decay=0.9)
    par = demo.generate_parallel(module, 5, "ddpm", 4, seed=7, processes=2)
    shares = [module.generate(k, "ddpm", 4, seed=derived_seed(7, "share", i)) for i, k in enumerate((3, 2))]
    assert par.shape == (5, 48, 3)
    torch.testing.assert_close(par, torch.cat(shares), rtol=0, atol=0)
    one = demo.generate_parallel(module, 5, "ddpm", 4, seed=7, processes=1)
    torch.testing.assert_close(one, module.generate(5, "ddpm", 4, seed=7), rtol=0, atol=0)
    assert not torch.equal(one, par)
    # the shape-code temperature reaches every worker
    hot = demo.generate_parallel(module, 5, "ddpm", 4, seed=7, processes=2, code_temperature=1.5)
    hot_shares = [
        module.generate(k, "ddpm", 4, seed=derived_seed(7, "share", i), code_temperature=1.5)
        for i, k in enumerate((3, 2))
    ]
    torch.testing.assert_close(hot, torch.cat(hot_shares), rtol=0, atol=0)
    assert not torch.equal(hot, par)


def test_summarize_draws_against_the_statistics_module():
    import statistics

    scores = [
        {"1-NNA-CD": a, "COV-CD": b, "MMD-CD": c, "JSD": d, "1-NNA-EMD": 99.0}
        for a, b, c, d in [(60.0, 55.0, 3.7e-3, 9.9), (65.8, 50.0, 3.9e-3, 10.4), (57.5, 58.3, 3.6e-3, 9.1)]
    ]
    out = demo.summarize_draws([0, 11, 12], scores)
    assert out["seeds"] == [0, 11, 12] and "1-NNA-EMD" not in out
    for key in demo.DRAW_KEYS:
        vals = [sc[key] for sc in scores]
        assert out[key] == vals
        assert out["mean"][key] == pytest.approx(statistics.fmean(vals))
        assert out["std"][key] == pytest.approx(statistics.stdev(vals))
        assert out["sem"][key] == pytest.approx(statistics.stdev(vals) / 3**0.5)
    assert "mean 61.1 % (standard error 2.5), sd 4.3, range 57.5-65.8" in demo.draws_line(out, 60)
    one = demo.summarize_draws([0], scores[:1])
    assert one["std"]["1-NNA-CD"] == one["sem"]["1-NNA-CD"] == 0.0 and "60.0 %" in demo.draws_line(one, 60)


def _tiny(tiny_config, **kw):
    """A LION demo configuration that runs in seconds: the tiny network, 48 points, 3 + 3 steps, 3 draws."""
    fields = dict(
        config=dict(tiny_config, num_points=48, standardize_latents=True),
        points=48,
        per_class=100,
        vae_steps=3,
        prior_steps=3,
        warmup_steps=1,
        steps=5,
        draws=3,
    )
    return demo.load_lion_demo_config(**dict(fields, **kw))


@pytest.mark.parametrize(
    "accelerator",
    [
        pytest.param("cpu", marks=pytest.mark.slow),
        pytest.param(
            "gpu",
            marks=[
                pytest.mark.cuda,
                pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU"),
            ],
        ),
    ],
)
def test_run_lion_demo_tiny(tmp_path, tiny_config, accelerator):
    from gen3d.inference.checkpoint import read_checkpoint

    cfg = _tiny(tiny_config)
    result = demo.run_lion_demo(tmp_path, cfg, emd=False, progress=False, accelerator=accelerator)
    saved = json.loads((tmp_path / "metrics.json").read_text())
    for key in ("1-NNA-CD", "COV-CD", "MMD-CD"):
        assert key in saved["lion"] and key in saved["train_split"] and key in saved["gaussian"]
        assert saved[key] == saved["lion"][key]
    assert result["num_samples"] == 10 and result["num_points"] == 48
    assert result["steps"] == {"vae": 3, "prior": 3}  # the priors' count read back from data-parallel training
    assert result["processes"] == (demo.demo_processes() if accelerator == "cpu" else 1)
    assert saved["accelerator"] == accelerator and saved["config"]["prior_steps"] == 3
    assert result["sampler"] == {"name": cfg.sampler, "steps": 5, "code_temperature": cfg.code_temperature}
    draws = saved["draws"]  # the first draw is the table's; the others have their own seeds
    assert len(draws["seeds"]) == 3 == len(set(draws["seeds"])) and draws["seeds"][0] == cfg.seed
    assert draws["1-NNA-CD"][0] == saved["lion"]["1-NNA-CD"] and draws["COV-CD"][0] == saved["lion"]["COV-CD"]
    assert draws["mean"]["1-NNA-CD"] == pytest.approx(np.mean(draws["1-NNA-CD"]))
    assert saved["gaussian"]["1-NNA-CD"] > saved["train_split"]["1-NNA-CD"]  # blobs are told apart, the oracle less
    assert (tmp_path / "samples.png").stat().st_size > 0
    assert np.load(tmp_path / "samples.npz")["points"].shape == (10, 48, 3)
    # samples.npz records its sampling, metrics.json what it compared (beside the unchanged top-level keys)
    import hashlib

    from gen3d.pipelines.sample import read_samples_meta

    ckpt = tmp_path / "prior" / "checkpoints" / "last.ckpt"
    meta = read_samples_meta(tmp_path / "samples.npz")
    assert (
        meta["checkpoint"] == str(ckpt) and meta["checkpoint_sha256"] == hashlib.sha256(ckpt.read_bytes()).hexdigest()
    )
    assert (meta["sampler"], meta["steps"], meta["seed"], meta["n"], meta["points"]) == (
        cfg.sampler,
        5,
        cfg.seed,
        10,
        48,
    )
    assert meta["code_temperature"] == cfg.code_temperature and meta["processes"] == result["processes"]
    protocol = saved["protocol"]
    assert protocol["samples"]["checkpoint_sha256"] == meta["checkpoint_sha256"]
    assert (protocol["refs"]["clouds"], protocol["refs"]["points"], protocol["emd"]) == (10, 48, "none")
    assert "gen3d_version" in protocol and "created" in protocol
    # the priors' rate: warm-up, then a cosine over the steps that ends at lr_floor x lr on the last step
    sched = read_checkpoint(tmp_path / "prior" / "checkpoints" / "last.ckpt")["lr_schedulers"][0]
    assert sched["_last_lr"][0] == pytest.approx(cfg.lr * cfg.lr_floor)


@pytest.mark.slow
def test_run_lion_demo_is_reproducible(tmp_path, tiny_config):
    """Step counts, not a clock, end training: the same configuration gives the same numbers twice."""
    cfg = _tiny(tiny_config, draws=2)
    first = demo.run_lion_demo(tmp_path / "a", cfg, emd=False, progress=False)
    second = demo.run_lion_demo(tmp_path / "b", cfg, emd=False, progress=False)
    for key in ("lion", "train_split", "gaussian", "draws", "steps"):
        assert first[key] == second[key]
    a, b = (np.load(tmp_path / d / "samples.npz")["points"] for d in "ab")
    np.testing.assert_array_equal(a, b)


def test_run_lion_demo_rejects_a_bad_accelerator(tmp_path, monkeypatch):
    with pytest.raises(ValueError, match="accelerator"):
        demo.run_lion_demo(tmp_path, accelerator="tpu")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(ValueError, match="CUDA"):
        demo.run_lion_demo(tmp_path, accelerator="gpu")
    assert not any(tmp_path.iterdir())  # nothing written


@pytest.mark.parametrize("flag", ["--vae-steps", "--prior-steps", "--graf-iterations"])
def test_demo_cli_rejects_step_counts_below_one(tmp_path, capsys, flag):
    from gen3d.cli.main import main

    assert main(["demo", "--out", str(tmp_path / "demo"), flag, "0"]) == 2
    err = capsys.readouterr().err
    assert err == f"gen3d demo: error: argument {flag}: expected an integer >= 1, got '0' (see gen3d demo --help)\n"
    assert not (tmp_path / "demo").exists()


def test_baseline_metrics_match_direct_scoring():
    """The baselines scored with shared reference distances (as the demo's forked worker does) are the plain ones."""
    from gen3d.metrics import point_cloud_metrics
    from gen3d.metrics.pairwise import pairwise_distances

    g = torch.Generator().manual_seed(3)
    refs, train = torch.rand(8, 40, 3, generator=g), torch.rand(7, 40, 3, generator=g) * 1.1
    blobs = torch.from_numpy(demo.gaussian_blobs(7, 40, np.zeros(3), 0.3, seed=1))
    rows, ref_distances = demo.baseline_metrics(train, blobs, refs, emd=True, threads=1)
    assert rows["train split (oracle)"] == point_cloud_metrics(train, refs, emd=True)
    assert rows["Gaussian blobs"] == point_cloud_metrics(blobs, refs, emd=True)
    np.testing.assert_array_equal(ref_distances.matrix("cd"), pairwise_distances(refs, None, metric="cd").numpy())
