"""``gen3d sample`` and the ELBO evaluation on a tiny trained checkpoint."""

from __future__ import annotations

import hashlib
import json
import os
import stat
from datetime import datetime

import numpy as np
import pytest

import gen3d
from gen3d.errors import InputError
from gen3d.lit.lion_module import LionModule
from gen3d.pipelines.sample import read_samples_meta, sample_lion


@pytest.fixture
def checkpoints(tmp_path, datamodule, tiny_config, make_trainer):
    """A VAE-stage and a prior-stage checkpoint after two steps each."""
    paths = {}
    for stage in ("vae", "prior"):
        extra = {"vae_ckpt": str(paths["vae"])} if stage == "prior" else {}
        module = LionModule(config=tiny_config, stage=stage, **extra)
        trainer = make_trainer(max_steps=2, enable_checkpointing=False, limit_val_batches=0)
        trainer.fit(module, datamodule=datamodule)
        paths[stage] = tmp_path / f"{stage}.ckpt"
        trainer.save_checkpoint(paths[stage])
    paths["norm"] = datamodule.norm
    return paths


def test_sample_cli_outputs_and_determinism(tmp_path, checkpoints):
    from gen3d.cli.main import main
    from gen3d.data.io import load_points

    out1, out2 = tmp_path / "s1", tmp_path / "s2"
    args = ["sample", "--ckpt", str(checkpoints["prior"]), "--n", "3", "--sampler", "dpm", "--steps", "5"]
    assert main([*args, "--seed", "7", "--batch-size", "2", "--out", str(out1)]) == 0
    assert main([*args, "--seed", "7", "--batch-size", "2", "--out", str(out2)]) == 0
    a = np.load(out1 / "samples.npz")["points"]
    b = np.load(out2 / "samples.npz")["points"]
    assert a.shape == (3, 48, 3) and np.array_equal(a, b)
    # one PLY per sample holding that sample, a PNG grid, the sampler config
    np.testing.assert_allclose(load_points(out1 / "ply" / "sample_0001.ply"), a[1], rtol=1e-6)
    assert (out1 / "samples.png").stat().st_size > 0
    assert json.loads((out1 / "sampler.json").read_text())["sampler"] == "dpm"
    # the records of both runs differ at most in their creation time
    first, second = (json.loads((o / "sampler.json").read_text()) for o in (out1, out2))
    assert {k for k in first if first[k] != second[k]} <= {"created"}
    c, _ = sample_lion(str(checkpoints["prior"]), 3, "dpm", 5, seed=8, batch_size=2, progress=False)
    assert not np.array_equal(a, c)
    # samples are de-normalised: the model frame is (x - mean) / std
    norm = checkpoints["norm"]
    z, _ = sample_lion(str(checkpoints["prior"]), 3, "dpm", 5, seed=7, batch_size=2, progress=False)
    assert np.array_equal(z, a)
    assert np.allclose(z.reshape(-1, 3).mean(0), norm.mean, atol=5 * float(norm.std))


def test_sample_records_what_made_the_samples(tmp_path, checkpoints):
    """``samples.npz`` (key ``meta``, no pickle) and ``sampler.json`` hold the same record: the checkpoint and its
    SHA-256, the options as given, the device, gen3d's version and the time; the sampler rebuilds from it."""
    from gen3d.cli.main import main
    from gen3d.diffusion.samplers.base import Sampler

    ckpt, out = checkpoints["prior"], tmp_path / "s"
    argv = ["sample", "--ckpt", str(ckpt), "--n", "3", "--sampler", "ddim", "--steps", "4", "--eta", "0.5"]
    argv += ["--seed", "11", "--points", "20", "--batch-size", "2", "--code-temperature", "1.2", "--no-ema"]
    assert main([*argv, "--device", "cpu", "--no-ply", "--out", str(out)]) == 0
    with np.load(out / "samples.npz", allow_pickle=False) as data:
        assert sorted(data.files) == ["meta", "points"] and data["points"].shape == (3, 20, 3)
        meta = json.loads(str(data["meta"]))
    assert meta == read_samples_meta(out / "samples.npz") == json.loads((out / "sampler.json").read_text())
    assert meta["checkpoint"] == str(ckpt)
    assert meta["checkpoint_sha256"] == hashlib.sha256(ckpt.read_bytes()).hexdigest()
    expected = {
        "model": "lion", "sampler": "ddim", "steps": 4, "seed": 11, "n": 3, "code_temperature": 1.2, "eta": 0.5,
        "ema": False, "points": 20, "batch_size": 2, "device": "cpu", "gen3d_version": gen3d.__version__,
    }  # fmt: skip
    assert {k: meta[k] for k in expected} == expected
    created = datetime.fromisoformat(meta["created"])
    assert created.tzinfo is not None and abs((datetime.now(created.tzinfo) - created).total_seconds()) < 600
    smp = Sampler.from_dict(meta["sampler_config"])
    assert type(smp).__name__ == type(sample_lion(str(ckpt), 1, "ddim", 4, eta=0.5, progress=False)[1]).__name__
    assert smp.to_dict()["eta"] == 0.5 and smp.to_dict()["num_inference_steps"] == 4
    # defaults: the EMA weights (the tiny module keeps an average) and the model's point count
    assert (
        main(["sample", "--ckpt", str(ckpt), "--n", "1", "--steps", "2", "--no-ply", "--out", str(tmp_path / "d")]) == 0
    )
    meta = read_samples_meta(tmp_path / "d" / "samples.npz")
    assert (meta["sampler"], meta["ema"], meta["points"], meta["eta"], meta["code_temperature"]) == (
        "ddpm", True, 48, 0.0, 1.0
    )  # fmt: skip


@pytest.mark.parametrize(("umask", "mode"), [(0o022, 0o644), (0o077, 0o600)], ids=["umask022", "umask077"])
def test_outputs_follow_the_umask(tmp_path, checkpoints, umask, mode):
    """Every file ``gen3d sample`` and ``gen3d export points`` write has the mode the user's umask gives."""
    from gen3d.cli.main import main

    out = tmp_path / "s"
    before = os.umask(umask)
    try:
        argv = ["sample", "--ckpt", str(checkpoints["prior"]), "--n", "2", "--steps", "2", "--out", str(out)]
        assert main(argv) == 0
        assert main(["export", "points", str(out / "samples.npz"), str(tmp_path / "e" / "cloud.ply")]) == 0
    finally:
        os.umask(before)
    files = [f for f in (*out.rglob("*"), *(tmp_path / "e").rglob("*")) if f.is_file()]
    names = {f.name for f in files}
    assert {"samples.npz", "sampler.json", "samples.png", "sample_0000.ply", "cloud_000.ply"} <= names, names
    assert {f.name: oct(stat.S_IMODE(f.stat().st_mode)) for f in files} == {f.name: oct(mode) for f in files}


def test_sample_rejects_vae_checkpoint_and_bad_steps(checkpoints):
    with pytest.raises(InputError, match="'vae' stage"):
        sample_lion(str(checkpoints["vae"]), 2, progress=False)
    with pytest.raises(InputError, match="--steps"):
        sample_lion(str(checkpoints["prior"]), 2, "ddim", 5000, progress=False)
    with pytest.raises(InputError, match="--code-temperature"):
        sample_lion(str(checkpoints["prior"]), 2, "dpm", 5, code_temperature=0.0, progress=False)


def test_sample_code_temperature(tmp_path, checkpoints):
    from gen3d.cli.main import main

    ckpt = str(checkpoints["prior"])
    a, _ = sample_lion(ckpt, 3, "dpm", 5, seed=7, progress=False)
    b, _ = sample_lion(ckpt, 3, "dpm", 5, seed=7, progress=False, code_temperature=1.5)
    assert not np.array_equal(a, b)  # the latent points follow the scaled codes
    out = tmp_path / "t"
    args = ["sample", "--ckpt", ckpt, "--n", "3", "--sampler", "dpm", "--steps", "5", "--seed", "7", "--no-ply"]
    assert main([*args, "--code-temperature", "1.5", "--out", str(out)]) == 0
    assert np.array_equal(np.load(out / "samples.npz")["points"], b)


def test_elbo_entry(tmp_path, checkpoints, datamodule):
    from gen3d.pipelines.lion_eval import elbo_of_points, evaluate_elbo

    clouds = datamodule.dataset("val").all_points(normalized=False)[:, :60]  # (N, 60, 3) data frame
    np.save(tmp_path / "val.npy", clouds)
    result = evaluate_elbo(checkpoints["vae"], tmp_path / "val.npy", json_path=tmp_path / "e.json")
    assert result["n"] == len(clouds) and np.isfinite(result["nelbo_per_point"])
    saved = json.loads((tmp_path / "e.json").read_text())
    assert saved["n"] == len(clouds)
    protocol = saved["protocol"]  # what was scored: the checkpoint, the data, the points drawn from each cloud
    assert protocol["checkpoint_sha256"] == hashlib.sha256(checkpoints["vae"].read_bytes()).hexdigest()
    assert protocol["data"] == {"path": str(tmp_path / "val.npy"), "clouds": len(clouds), "points_read": 60}
    assert (protocol["points"], protocol["posterior_samples"], protocol["seed"]) == (48, 1, 0)
    assert protocol["gen3d_version"] == gen3d.__version__
    again = elbo_of_points(checkpoints["vae"], clouds)
    np.testing.assert_allclose(again.mean(), result["nelbo_per_point"])  # seeded: reproducible
    # the bound includes the Laplace normaliser 3 log 2 per point and is worse for scrambled clouds
    assert result["nelbo_per_point"] > 3 * np.log(2)
    noise = np.random.default_rng(0).normal(size=clouds.shape).astype(np.float32) * 3 * clouds.std()
    assert elbo_of_points(checkpoints["vae"], clouds + noise).mean() > result["nelbo_per_point"]


@pytest.fixture
def untrained_vae(tmp_path, tiny_config):
    """A VAE-stage checkpoint of an untrained module (state_dict and hyper_parameters, as Lightning saves them)."""
    import torch

    module = LionModule(config=tiny_config, stage="vae")
    path = tmp_path / "vae.ckpt"
    torch.save({"state_dict": module.state_dict(), "hyper_parameters": dict(module.hparams)}, path)
    return path, module


def test_load_lion_refuses_broken_configurations_and_weights(tmp_path, untrained_vae):
    import torch

    from gen3d.inference.lion import load_lion

    _, module = untrained_vae
    state, hp = module.state_dict(), dict(module.hparams)
    broken = {
        "config-string": ({"state_dict": state, "hyper_parameters": {**hp, "config": "large"}}, "to be a mapping"),
        "config-key": (
            {"state_dict": state, "hyper_parameters": {**hp, "config": {"num_pointz": 48}}},
            "model configuration is invalid",
        ),
        "no-norm": (
            {"state_dict": {k: v for k, v in state.items() if k != "norm_mean"}, "hyper_parameters": hp},
            "no norm_mean / norm_std",
        ),
        "ema-shape": (
            {"state_dict": {**state, "ema.shadow.0": torch.zeros(1)}, "hyper_parameters": hp},
            "weights do not fit",
        ),
    }
    for name, (ckpt, message) in broken.items():
        path = tmp_path / f"{name}.ckpt"
        torch.save(ckpt, path)
        with pytest.raises(InputError, match=message) as info:
            load_lion(path)
        assert info.value.path == str(path), name


def test_elbo_refuses_clouds_far_outside_the_training_scale(untrained_vae):
    from gen3d.pipelines.density_inputs import MAX_NORMALISED
    from gen3d.pipelines.lion_eval import elbo_of_points

    path, _ = untrained_vae
    clouds = np.random.default_rng(0).normal(size=(2, 48, 3)).astype(np.float32)
    assert np.isfinite(elbo_of_points(path, clouds)).all()
    with pytest.raises(InputError, match="standard deviations of the model's training data") as info:
        elbo_of_points(path, clouds * 10 * MAX_NORMALISED, source="big.npy")
    assert info.value.path == "big.npy"
