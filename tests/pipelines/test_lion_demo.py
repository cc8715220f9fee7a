"""The demo's LION stage on a tiny budget: it runs end to end and reports what the lead's table needs."""

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
    from rich.console import Console

    table = demo.metrics_table({"a": {"1-NNA-CD": 55.0, "MMD-CD": 0.0042, "COV-CD": 50.0}}, "t")
    console = Console(record=True, width=200)
    console.print(table)
    text = console.export_text()
    assert "55.0" in text and "4.200" in text and "1-NNA-CD %" in text


def test_time_budget_cosine_schedule():
    """Warm-up then a cosine over wall-clock time, applied to every parameter group before each step."""
    import math
    from types import SimpleNamespace

    import torch

    cb = demo.TimeBudgetCosine(seconds=100.0, floor=0.1, warmup_steps=10)
    assert cb.factor(0, 0.0) == pytest.approx(0.1)  # warm-up step 1 of 10
    assert cb.factor(500, 0.0) == pytest.approx(1.0)
    assert cb.factor(500, 50.0) == pytest.approx(0.1 + 0.9 * 0.5)
    assert cb.factor(500, 25.0) == pytest.approx(0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi / 4)))
    assert cb.factor(500, 100.0) == pytest.approx(0.1) == cb.factor(500, 1e9)
    p1, p2 = torch.nn.Parameter(torch.zeros(1)), torch.nn.Parameter(torch.zeros(1))
    opt = torch.optim.Adam([{"params": [p1], "lr": 1e-3}, {"params": [p2], "lr": 4e-3}])
    trainer = SimpleNamespace(optimizers=[opt], global_step=500)
    cb.on_train_start(trainer, None)
    cb.start -= 50.0  # pretend half the budget has passed
    cb.on_train_batch_start(trainer, None, None, 0)
    lrs = [g["lr"] for g in opt.param_groups]
    assert lrs == pytest.approx([1e-3 * 0.55, 4e-3 * 0.55], rel=1e-3)


def test_time_budget_cosine_follows_rank_zero_under_data_parallelism():
    """Every data-parallel process must step with rank 0's rate, whatever its own clock says."""
    from types import SimpleNamespace

    import torch

    p = torch.nn.Parameter(torch.zeros(1))
    opt = torch.optim.Adam([p], lr=1e-3)
    sent = []
    strategy = SimpleNamespace(broadcast=lambda obj, src=0: sent.append((obj, src)) or 0.25)  # rank 0 says 0.25
    trainer = SimpleNamespace(optimizers=[opt], global_step=10, world_size=2, strategy=strategy)
    cb = demo.TimeBudgetCosine(seconds=100.0, floor=0.1)
    cb.on_train_start(trainer, None)
    cb.on_train_batch_start(trainer, None, None, 0)
    assert sent == [(pytest.approx(1.0, abs=1e-3), 0)]  # this process's own factor, offered from rank 0
    assert opt.param_groups[0]["lr"] == pytest.approx(0.25e-3)


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
def test_run_lion_demo_tiny(tmp_path, monkeypatch, tiny_config, accelerator):
    monkeypatch.setattr(demo, "DEMO_POINTS", 48)
    monkeypatch.setattr(demo, "DEMO_CONFIG", dict(tiny_config, num_points=48, standardize_latents=True))
    monkeypatch.setattr(demo, "VAE_STEPS", 3)
    monkeypatch.setattr(demo, "PRIOR_STEPS", 3)
    monkeypatch.setattr(demo, "DEMO_STEPS", 5)
    monkeypatch.setattr(demo, "DEMO_DRAWS", 3)
    result = demo.run_lion_demo(
        tmp_path, None, budget_minutes=3, per_class=100, emd=False, progress=False, accelerator=accelerator
    )
    saved = json.loads((tmp_path / "metrics.json").read_text())
    for key in ("1-NNA-CD", "COV-CD", "MMD-CD"):
        assert key in saved["lion"] and key in saved["train_split"] and key in saved["gaussian"]
        assert saved[key] == saved["lion"][key]
    assert result["num_samples"] == 10 and result["num_points"] == 48
    assert result["steps"] == {"vae": 3, "prior": 3}  # the priors' count read back from data-parallel training
    assert result["processes"] == (demo.demo_processes() if accelerator == "cpu" else 1)
    assert saved["accelerator"] == accelerator
    assert result["sampler"]["code_temperature"] == demo.DEMO_CODE_TEMPERATURE
    draws = saved["draws"]  # the first draw is the table's; the others have their own seeds
    assert len(draws["seeds"]) == 3 == len(set(draws["seeds"])) and draws["seeds"][0] == 0
    assert draws["1-NNA-CD"][0] == saved["lion"]["1-NNA-CD"] and draws["COV-CD"][0] == saved["lion"]["COV-CD"]
    assert draws["mean"]["1-NNA-CD"] == pytest.approx(np.mean(draws["1-NNA-CD"]))
    assert saved["gaussian"]["1-NNA-CD"] > saved["train_split"]["1-NNA-CD"]  # blobs are told apart, the oracle less
    assert (tmp_path / "samples.png").stat().st_size > 0
    assert np.load(tmp_path / "samples.npz")["points"].shape == (10, 48, 3)


def test_run_lion_demo_rejects_a_bad_accelerator(tmp_path, monkeypatch):
    with pytest.raises(ValueError, match="accelerator"):
        demo.run_lion_demo(tmp_path, accelerator="tpu")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(ValueError, match="CUDA"):
        demo.run_lion_demo(tmp_path, accelerator="gpu")
    assert not any(tmp_path.iterdir())  # nothing written


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
