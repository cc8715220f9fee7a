"""``gen3d evaluate nll``: the point flow's bits per point against the model computed directly, the AUROC against
brute-force pair counting, LION's ELBO in the same units, and bad inputs (one line, exit 2, nothing written)."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

from gen3d.errors import InputError
from gen3d.inference.flow import load_flow
from gen3d.lit.flow_module import FlowModule
from gen3d.pipelines.flow_eval import anomaly_auroc, auroc, evaluate_nll, load_scorer

TINY_FLOW = {"z_dim": 8, "point_layers": 2, "prior_layers": 2, "hidden": 16, "encoder_width": 16, "num_points": 32}


def _save(module, path, family: dict | None = None):
    ckpt = {"state_dict": module.state_dict(), "hyper_parameters": dict(module.hparams)}
    if family is not None:
        ckpt["gen3d"] = family
    torch.save(ckpt, path)
    return path


@pytest.fixture
def flow_ckpt(tmp_path):
    torch.manual_seed(0)
    module = FlowModule(config=dict(TINY_FLOW), ema_decay=0.0)
    module.set_normalization([0.1, -0.2, 0.3], 0.5)
    return _save(module, tmp_path / "flow.ckpt", {"model": "flow", "stage": "flow"})


@pytest.fixture
def clouds(tmp_path):
    rng = np.random.default_rng(0)
    x = (0.1 + 0.5 * rng.standard_normal((5, 32, 3))).astype(np.float32)
    np.save(tmp_path / "clouds.npy", x)
    return x


def test_bits_per_point_equal_the_models_log_prob(flow_ckpt, clouds, tmp_path):
    res = evaluate_nll(flow_ckpt, tmp_path / "clouds.npy", json_path=tmp_path / "nll.json")
    loaded = load_flow(flow_ckpt)
    x = loaded.normalize(torch.from_numpy(clouds))
    with torch.no_grad():
        mu, _ = loaded.net.encode(x)
        expected = (-loaded.net.point_log_prob(x, mu).double().mean(dim=1) / math.log(2)).numpy()
    np.testing.assert_allclose(res["per_cloud"]["nll_bits_per_point"], expected, rtol=1e-5)
    assert res["nll_bits_per_point"] == pytest.approx(expected.mean(), rel=1e-6)
    assert res["nll_bits_per_point_data_frame"] == pytest.approx(expected.mean() + 3 * math.log2(0.5), rel=1e-6)
    assert res["model"] == "flow" and res["protocol"]["points"] == 32 and res["protocol"]["subsample"] is None
    assert np.isfinite(res["per_cloud"]["nelbo_bits_per_point"]).all()
    assert json.loads((tmp_path / "nll.json").read_text())["nll_bits_per_point"] == res["nll_bits_per_point"]


def brute_force_auroc(neg, pos) -> float:
    wins = sum((p > n) + 0.5 * (p == n) for p in pos for n in neg)
    return wins / (len(neg) * len(pos))


def test_auroc_matches_pair_counting_with_ties():
    rng = np.random.default_rng(1)
    for _ in range(20):
        neg = rng.integers(0, 6, rng.integers(1, 12)).astype(float)
        pos = rng.integers(0, 6, rng.integers(1, 12)).astype(float)
        assert auroc(neg, pos) == pytest.approx(brute_force_auroc(neg, pos))
    assert auroc([0.0, 1.0], [2.0, 3.0]) == 1.0 and auroc([2.0, 3.0], [0.0, 1.0]) == 0.0
    assert auroc([1.0, 1.0], [1.0]) == 0.5
    with pytest.raises(ValueError):
        auroc([], [1.0])


def test_anomaly_auroc_scores_both_sets(flow_ckpt, clouds):
    kind, loaded = load_scorer(flow_ckpt)
    far = clouds * 3.0 + 2.0  # far outside the inliers
    res = anomaly_auroc(kind, loaded, clouds, far)
    assert res["score"] == "nll_bits_per_point" and res["inliers"].shape == (5,) and res["outliers"].shape == (5,)
    assert res["auroc"] == pytest.approx(brute_force_auroc(res["inliers"], res["outliers"]))


def test_lion_checkpoints_report_their_vae_elbo_in_bits(tmp_path, tiny_config, clouds):
    from gen3d.lit.lion_module import LionModule
    from gen3d.pipelines.lion_eval import evaluate_elbo

    tiny_config["num_points"] = 32
    torch.manual_seed(0)
    module = LionModule(config=tiny_config, stage="vae", ema_decay=0.0)
    module.set_normalization([0.1, -0.2, 0.3], 0.5)
    ckpt = _save(module, tmp_path / "lion.ckpt", {"model": "lion", "stage": "vae"})
    res = evaluate_nll(ckpt, tmp_path / "clouds.npy", outliers=tmp_path / "clouds.npy")
    nats = evaluate_elbo(ckpt, tmp_path / "clouds.npy")
    assert res["model"] == "lion" and "nll_bits_per_point" not in res
    assert res["nelbo_bits_per_point"] == pytest.approx(nats["nelbo_per_point"] / math.log(2), rel=1e-6)
    assert res["anomaly"]["score"] == "nelbo_bits_per_point" and 0.0 <= res["anomaly"]["auroc"] <= 1.0


def test_other_checkpoints_are_refused(tmp_path, clouds):
    torch.save({"state_dict": {}, "hyper_parameters": {}}, tmp_path / "other.ckpt")
    with pytest.raises(InputError, match="not a checkpoint of a point flow or of LION"):
        evaluate_nll(tmp_path / "other.ckpt", tmp_path / "clouds.npy")


@pytest.mark.parametrize(
    "case",
    [
        ["--ckpt", "missing.ckpt", "--data", "clouds.npy"],
        ["--ckpt", "flow.ckpt", "--data", "missing.npy"],
        ["--ckpt", "flow.ckpt", "--data", "clouds.npy", "--outliers", "missing.npy"],
        ["--ckpt", "flow.ckpt", "--data", "bad.npy"],
        ["--ckpt", "flow.ckpt", "--data", "clouds.npy", "--json", "clouds.npy/out.json"],
        ["--ckpt", "flow.ckpt", "--data", "clouds.npy", "--points", "0"],
    ],
)
def test_cli_bad_inputs_exit_2_with_one_line(case, flow_ckpt, clouds, tmp_path, monkeypatch, capsys):
    from gen3d.cli.main import main

    monkeypatch.chdir(tmp_path)
    np.save(tmp_path / "bad.npy", np.zeros((4, 3), dtype=np.float32))
    before = sorted(p.name for p in tmp_path.iterdir())
    try:
        rc = main(["evaluate", "nll", *case])
    except SystemExit as exc:
        rc = exc.code
    assert rc == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err
    assert sorted(p.name for p in tmp_path.iterdir()) == before
