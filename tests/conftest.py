"""Shared test configuration: quiet progress bars, a per-session gen3d cache, deterministic seeds, and the tiny
LION configuration and data of every LION test (models, training, pipelines, viewer): ``tiny_config`` (a dict),
``tiny_cfg`` (the same as a ``LionConfig``), ``data_args`` / ``datamodule`` and ``make_trainer``; the tiny GAN
(``TINY_GRAF``, ``TINY_TRIPLANE``) and flow (``TINY_FLOW``) settings of the training tests."""

from __future__ import annotations

import copy
import os

import pytest

os.environ.setdefault("GEN3D_QUIET", "1")
# Set before torch loads its OpenMP runtime: idle threads sleep instead of spinning on 2 shared cores.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


@pytest.fixture(autouse=True)
def _one_thread():
    """Every test runs on one intra-op thread: the tests' tensors are tiny, one thread is faster and immune to a busy
    machine's oversubscription, and results do not depend on the machine's core count."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(autouse=True)
def _seed_everything():
    import numpy as np
    import torch

    torch.manual_seed(0)
    np.random.seed(0)
    yield


@pytest.fixture(params=["cpu", pytest.param("cuda", marks=pytest.mark.cuda)])
def device(request):
    """Each test that takes it runs on the CPU and again on CUDA (marked ``cuda``; skipped without a GPU)."""
    import torch

    if request.param == "cuda" and not torch.cuda.is_available():
        pytest.skip("needs a CUDA GPU")
    return torch.device(request.param)


# ------------------------------------------------------------------------------------------------ LION
TINY_CONFIG = {
    "num_points": 48,
    "style_dim": 8,
    "vae_channels": [8, 8],
    "vae_resolutions": [4, 4],
    "enc_channels": [8],
    "enc_resolutions": [4],
    "vae_dropout": 0.0,
    "glb_prior_channels": 32,
    "glb_prior_blocks": 1,
    "glb_prior_dropout": 0.1,
    "glb_time_dim": 16,
    "loc_prior_channels": [8],
    "loc_prior_resolutions": [4],
    "loc_prior_dropout": 0.1,
    "loc_time_dim": 16,
    "schedule": {"kind": "linear", "num_train_timesteps": 50, "beta_start": 1e-4, "beta_end": 0.02},
}
DATA_ARGS = {
    "root": "procedural",
    "classes": ["mug"],
    "per_class": 10,
    "points": 150,
    "tr_sample_size": 48,
    "te_sample_size": 48,
    "batch_size": 4,
    "num_workers": 0,
}


@pytest.fixture
def datamodule():
    from gen3d.data.datamodules import PointCloudDataModule

    return PointCloudDataModule(**DATA_ARGS)


@pytest.fixture
def tiny_config() -> dict:
    """The tiny LION configuration as a fresh dict (a test may change its copy)."""
    return copy.deepcopy(TINY_CONFIG)


@pytest.fixture
def tiny_cfg(tiny_config):
    """The tiny LION configuration as a :class:`~gen3d.models.lion.LionConfig`."""
    from gen3d.models.lion import LionConfig

    return LionConfig.from_dict(tiny_config)


@pytest.fixture
def data_args() -> dict:
    return copy.deepcopy(DATA_ARGS)


@pytest.fixture
def make_trainer(tmp_path):
    """Quiet Lightning trainers rooted in ``tmp_path``: one CPU device unless keyword arguments say otherwise."""
    import lightning as L

    def make(**kw) -> L.Trainer:
        args = {
            "accelerator": "cpu",
            "devices": 1,
            "logger": False,
            "enable_progress_bar": False,
            "enable_model_summary": False,
            "default_root_dir": str(tmp_path),
        }
        args.update(kw)
        return L.Trainer(**args)

    return make


# ------------------------------------------------------------------------------------------------ GAN and flow
TINY_GRAF = dict(
    z_dim=8, z_app_dim=4, net_depth=2, net_width=16, skips=(), pos_freqs=2, dir_freqs=1, image_size=16, patch_size=8,
    n_samples=4, n_importance=4, ndf=4, sample_every=2, n_grid=2, noise_steps=10,
)  # fmt: skip
TINY_TRIPLANE = dict(
    TINY_GRAF, field="triplane", feature_channels=4, feature_resolution=8, base_channels=16, min_channels=8,
    decoder_width=8, sampler="marched", grid_resolution=4, view_dependent=False, d_instance_norm=False,
    optimizer="adam", noise_std=0.0,
)  # fmt: skip
TINY_FLOW = {"z_dim": 8, "point_layers": 2, "prior_layers": 2, "hidden": 16, "encoder_width": 16, "num_points": 48}


# ------------------------------------------------------------------------------------------------ viewer
@pytest.fixture
def open_checkpoint_viewer():
    """Open the viewer on a checkpoint ``<run>/checkpoints/<name>.ckpt`` (any free port), check that its run folder
    is ``<run>`` and start it; every viewer opened is stopped after the test."""
    apps = []

    def open_viewer(path):
        from gen3d.viewer import build_viewer

        app = build_viewer(path, port=0)
        assert app.run_dir == path.parent.parent.resolve()
        apps.append(app)
        app.start()
        return app

    yield open_viewer
    for app in apps:
        app.stop()
