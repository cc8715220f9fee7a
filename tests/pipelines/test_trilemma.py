"""``gen3d report trilemma`` on tiny checkpoints of every family: the rows it makes, its figures against the metrics
computed directly on the same samples, the training time it reads, and the files it writes."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from gen3d.data.shapes import shape_points
from gen3d.errors import InputError
from gen3d.metrics import point_cloud_metrics
from gen3d.pipelines.trilemma import TrilemmaOptions, discover, markdown_table, run_trilemma
from tests.conftest import TINY_CONFIG

TINY_FLOW = {"z_dim": 8, "point_layers": 2, "prior_layers": 2, "hidden": 16, "encoder_width": 16, "num_points": 48}
POINTS = 48


def _save(module, path, seconds: float | None = None, steps: int | None = None):
    ckpt = {"state_dict": module.state_dict(), "hyper_parameters": dict(module.hparams)}
    if hasattr(module, "on_save_checkpoint"):
        module.on_save_checkpoint(ckpt)  # the family record Lightning's save adds
    if seconds is not None:
        ckpt["train_time"] = {"seconds": seconds, "steps": steps, "threads": 1, "world_size": 1}
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(ckpt, path)
    return path


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """A runs folder with one tiny, untrained checkpoint of each family (LION's two stages in one run)."""
    from gen3d.lit.flow_module import FlowModule
    from gen3d.lit.graf_module import GRAFModule
    from gen3d.lit.lion_module import LionModule, PVDModule

    root = tmp_path_factory.mktemp("runs")
    torch.manual_seed(0)
    vae = LionModule(config=dict(TINY_CONFIG), stage="vae", ema_decay=0.0)
    vae.set_normalization([0.0, 0.1, 0.0], [0.3])
    _save(vae, root / "lion" / "vae" / "checkpoints" / "last.ckpt", 12.5, 5)
    prior = LionModule(config=dict(TINY_CONFIG), stage="prior", ema_decay=0.0)
    prior.net.vae.load_state_dict(vae.net.vae.state_dict())
    prior.set_normalization([0.0, 0.1, 0.0], [0.3])
    _save(prior, root / "lion" / "prior" / "checkpoints" / "last.ckpt", 30.0, 7)
    pvd = PVDModule(config=dict(TINY_CONFIG), ema_decay=0.0)
    pvd.set_normalization([0.0, 0.1, 0.0], [0.3])
    _save(pvd, root / "pvd" / "checkpoints" / "last.ckpt")
    flow = FlowModule(config=dict(TINY_FLOW), ema_decay=0.0)
    flow.set_normalization([0.0, 0.1, 0.0], 0.3)
    _save(flow, root / "flow" / "checkpoints" / "last.ckpt", 40.0, 9)
    graf = GRAFModule(
        z_dim=8, z_app_dim=4, net_depth=2, net_width=16, skips=(), pos_freqs=3, dir_freqs=2, n_samples=8,
        image_size=16, patch_size=8, n_grid=2, ndf=8, sample_every=0, composite_impl="torch",
    )  # fmt: skip
    _save(graf, root / "graf" / "checkpoints" / "last.ckpt", 3.0, 4)
    return root


@pytest.fixture(scope="module")
def refs(tmp_path_factory):
    """Six procedural chairs as ``<tmp>/chair/test.npy`` and four others as ``<tmp>/chair/val.npy``."""
    folder = tmp_path_factory.mktemp("data") / "chair"
    folder.mkdir()
    clouds = np.stack([shape_points("chair", i, points=96) for i in range(10)])
    np.save(folder / "test.npy", clouds[:6])
    np.save(folder / "val.npy", clouds[6:])
    return folder / "test.npy"


def _options(refs, **kw):
    base = dict(refs=str(refs), oracle=str(refs.parent / "val.npy"), points=POINTS, emd="approx", fast_steps=3,
                batch_size=4, gan_resolution=16, classifier=False, pfid=False)  # fmt: skip
    return TrilemmaOptions(**{**base, **kw})


def test_discover_takes_lion_prior_not_its_vae_and_refuses_bad_paths(runs, tmp_path):
    found = {p.relative_to(runs).as_posix() for p in discover([runs])}
    assert found == {
        "lion/prior/checkpoints/last.ckpt",
        "pvd/checkpoints/last.ckpt",
        "flow/checkpoints/last.ckpt",
        "graf/checkpoints/last.ckpt",
    }
    with pytest.raises(InputError, match="no such"):
        discover([tmp_path / "missing"])
    with pytest.raises(InputError, match="no last.ckpt"):
        discover([tmp_path])
    ckpt = runs / "flow" / "checkpoints" / "last.ckpt"
    with pytest.raises(InputError, match="twice"):
        discover([ckpt, runs / "flow"])


@pytest.fixture(scope="module")
def report(runs, refs, tmp_path_factory):
    out = tmp_path_factory.mktemp("report")
    return run_trilemma([runs], out, _options(refs), progress=False), out


def test_report_has_a_row_per_family_and_sampler_and_writes_its_files(report):
    result, out = report
    names = [r["name"] for r in result["rows"]]
    assert names == [
        "LION, DDPM",
        "LION, dpm-sde",
        "LION VAE, N(0, I) prior",
        "PVD, DDPM",
        "point flow",
        "3D-aware GAN (graf)",
        "real shapes (held-out)",
    ]
    assert result["protocol"]["points"] == POINTS and result["protocol"]["n"] == 6
    assert result["protocol"]["classes"] == ["chair"]
    on_disk = json.loads((out / "trilemma.json").read_text())
    assert [r["name"] for r in on_disk["rows"]] == names
    table = (out / "trilemma.md").read_text()
    assert table.startswith("| model | sampler | 1-NNA-CD % | 1-NNA-EMD % | COV-CD % | COV-EMD % |")
    assert len([line for line in table.splitlines() if line.startswith("| ")]) == 1 + len(names)
    from PIL import Image

    with Image.open(out / "trilemma.png") as image:
        assert image.size == (1000, 620)
    by_name = {r["name"]: r for r in result["rows"]}
    assert by_name["LION, DDPM"]["sampler"] == "DDPM, 50 steps"  # all of the tiny schedule's timesteps
    assert by_name["real shapes (held-out)"]["seconds_per_shape"] is None
    for r in result["rows"][:-1]:
        assert r["seconds_per_shape"] > 0 and r["n"] == 6


def test_figures_equal_the_metrics_of_the_same_samples_computed_directly(report, runs, refs):
    from gen3d.data.io import read_point_set, resample_points
    from gen3d.pipelines.sample import sample_flow, sample_lion

    result, _ = report
    by_name = {r["name"]: r for r in result["rows"]}
    ref = resample_points(read_point_set(refs), POINTS, 0)
    flow = sample_flow(str(runs / "flow" / "checkpoints" / "last.ckpt"), 6, seed=0, points=POINTS, batch_size=4)[0]
    lion = sample_lion(str(runs / "lion" / "prior" / "checkpoints" / "last.ckpt"), 6, sampler="dpm-sde", steps=3,
                       seed=0, points=POINTS, batch_size=4, progress=False, device="cpu")[0]  # fmt: skip
    for name, clouds in (("point flow", flow), ("LION, dpm-sde", lion)):
        expected = point_cloud_metrics(clouds, ref, emd="approx", progress=False)
        got = by_name[name]["metrics"]
        for key, value in expected.items():
            assert got[key] == pytest.approx(value, rel=1e-5, abs=1e-9), (name, key)  # float32 sampling


def test_training_time_and_likelihood_columns(report):
    result, _ = report
    by_name = {r["name"]: r for r in result["rows"]}
    assert by_name["LION, DDPM"]["train_seconds"] == pytest.approx(42.5)  # VAE 12.5 s + priors 30 s
    assert by_name["LION, DDPM"]["train_steps"] == 12
    assert by_name["LION VAE, N(0, I) prior"]["train_seconds"] == pytest.approx(12.5)
    assert by_name["point flow"]["train_seconds"] == pytest.approx(40.0)
    assert by_name["PVD, DDPM"]["train_seconds"] is None  # no record in the checkpoint: reported as n/a
    assert set(by_name["point flow"]["likelihood"]) == {"nll_bits_per_point", "nelbo_bits_per_point"}
    assert set(by_name["LION VAE, N(0, I) prior"]["likelihood"]) == {"nelbo_bits_per_point"}
    assert by_name["LION, DDPM"]["likelihood"] == {} and by_name["PVD, DDPM"]["likelihood"] == {}
    table = markdown_table(result)
    assert "42 s (12 steps)" in table and "n/a" in table


def test_flow_bits_per_point_match_the_flow_evaluation(report, runs, refs):
    from gen3d.data.io import read_point_set, resample_points
    from gen3d.inference.flow import load_flow
    from gen3d.pipelines.flow_eval import flow_scores

    result, _ = report
    row = next(r for r in result["rows"] if r["name"] == "point flow")
    ref = resample_points(read_point_set(refs), POINTS, 0)
    values, _ = flow_scores(load_flow(runs / "flow" / "checkpoints" / "last.ckpt"), ref, seed=0)
    assert row["likelihood"]["nll_bits_per_point"] == pytest.approx(float(np.mean(values["nll_bits_per_point"])))


def test_vae_prior_samples_decode_standard_normal_latents(runs):
    from gen3d.inference.lion import load_lion

    loaded = load_lion(runs / "lion" / "prior" / "checkpoints" / "last.ckpt")
    net = loaded.net
    x = net.sample_vae_prior(3, 20, generator=torch.Generator().manual_seed(5))
    g = torch.Generator().manual_seed(5)
    z = torch.randn(3, net.cfg.style_dim, generator=g)
    h = torch.randn(3, 20, net.cfg.point_channels, generator=g)
    with torch.no_grad():
        expected = net.vae.decoder(h.transpose(1, 2), h[..., :3], z).transpose(1, 2) * net.cfg.skip_weight + h[..., :3]
    torch.testing.assert_close(x, expected)


def test_bad_inputs_are_refused_before_anything_is_written(runs, refs, tmp_path):
    out = tmp_path / "out"
    with pytest.raises(InputError, match="fewer than --points"):
        run_trilemma([runs / "flow"], out, _options(refs, points=500), progress=False)
    with pytest.raises(InputError, match="VAE-stage"):
        run_trilemma([runs / "lion" / "vae" / "checkpoints" / "last.ckpt"], out, _options(refs), progress=False)
    assert not out.exists()


TINY_CLASSIFIER = {"classes": "chair,table,airplane", "per_class": 8, "heldout_per_class": 4, "points": 48,
                   "steps": 80, "progress": False}  # fmt: skip


def test_class_scores_come_from_the_classifier_cached_in_the_report(runs, refs, tmp_path):
    from gen3d.metrics.inception_score import inception_score
    from gen3d.metrics.shape_classifier import ShapeClassifier
    from gen3d.pipelines.sample import sample_flow

    opts = _options(refs, classifier=True, classifier_settings=TINY_CLASSIFIER, oracle=None)
    result = run_trilemma([runs / "flow"], tmp_path, opts, progress=False)
    clf = ShapeClassifier.load(tmp_path / "classifier.pt")
    assert result["protocol"]["classifier"]["classes"] == ["chair", "table", "airplane"]
    assert result["protocol"]["classifier"]["heldout_accuracy"] == clf.accuracy
    flow = sample_flow(str(runs / "flow" / "checkpoints" / "last.ckpt"), 6, seed=0, points=POINTS, batch_size=4)[0]
    top = clf.predict_proba(flow).argmax(axis=1)
    metrics = result["rows"][0]["metrics"]
    assert metrics["in_class"] == pytest.approx(100.0 * np.mean(top == 0))  # chair is column 0
    assert "class_IS" not in metrics  # one reference class: no class IS or coverage

    # references of two classes: class IS (Salimans et al.) and the coverage of those classes, computed by hand
    stamp = (tmp_path / "classifier.pt").stat().st_mtime_ns
    both = tmp_path / "both.npy"
    np.save(
        both, np.concatenate([np.load(refs)[:3], np.stack([shape_points("table", i, points=96) for i in range(3)])])
    )
    opts = _options(both, classifier=True, classifier_settings=TINY_CLASSIFIER, oracle=None, classes=("chair", "table"))
    metrics = run_trilemma([runs / "flow"], tmp_path, opts, progress=False)["rows"][0]["metrics"]
    assert (tmp_path / "classifier.pt").stat().st_mtime_ns == stamp  # the cached classifier was reused
    probs = clf.predict_proba(flow)
    assert metrics["class_IS"] == pytest.approx(inception_score(probs, splits=1)[0])
    assert metrics["class_coverage"] == pytest.approx(100.0 * len({0, 1} & set(top.tolist())) / 2)
    assert metrics["in_class"] == pytest.approx(100.0 * np.mean(np.isin(top, [0, 1])))


def test_pfid_column_equals_point_fid_of_the_same_samples(runs, refs, tmp_path, monkeypatch):
    """With a small TorchScript stand-in for Inception (the library call is the reference)."""
    from gen3d.data.io import read_point_set, resample_points
    from gen3d.metrics.point_fid import point_fid
    from gen3d.pipelines.sample import sample_flow

    weights = tmp_path / "standin.pt"
    torch.jit.save(torch.jit.script(_StandIn()), str(weights))
    opts = _options(refs, pfid=True, weights=str(weights), oracle=None)
    row = run_trilemma([runs / "flow"], tmp_path / "r", opts, progress=False)["rows"][0]
    flow = sample_flow(str(runs / "flow" / "checkpoints" / "last.ckpt"), 6, seed=0, points=POINTS, batch_size=4)[0]
    ref = resample_points(read_point_set(refs), POINTS, 0)
    expected = point_fid(flow, ref, weights=weights, device="cpu", progress=False)
    assert row["metrics"]["PFID"] == pytest.approx(expected["PFID"], rel=1e-6)
    assert row["metrics"]["PKID"] == pytest.approx(expected["PKID"], rel=1e-6, abs=1e-12)


class _StandIn(torch.nn.Module):
    """A TorchScript stand-in for the Inception weights (6-d features), fast on a CPU."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([x.mean(dim=(2, 3)), x.square().mean(dim=(2, 3))], dim=1)
