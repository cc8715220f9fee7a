"""Fixtures of the LION training tests: a tiny configuration and a tiny procedural data module."""

from __future__ import annotations

import pytest

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


@pytest.fixture(autouse=True)
def _one_thread():
    """Tiny tensors: one intra-op thread is faster and immune to a busy machine's oversubscription."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture
def datamodule():
    from gen3d.data.datamodules import PointCloudDataModule

    return PointCloudDataModule(**DATA_ARGS)


@pytest.fixture
def tiny_config() -> dict:
    return dict(TINY_CONFIG)


@pytest.fixture
def data_args() -> dict:
    return dict(DATA_ARGS)


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
