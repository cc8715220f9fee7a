"""A tiny LION configuration shared by the model tests."""

from __future__ import annotations

import pytest

from gen3d.models.lion import LionConfig

TINY = {
    "num_points": 64,
    "style_dim": 8,
    "vae_channels": [8, 16],
    "vae_resolutions": [4, 4],
    "enc_channels": [8],
    "enc_resolutions": [4],
    "vae_dropout": 0.0,
    "glb_prior_channels": 32,
    "glb_prior_blocks": 2,
    "glb_prior_dropout": 0.0,
    "glb_time_dim": 16,
    "loc_prior_channels": [8, 16],
    "loc_prior_resolutions": [4, 4],
    "loc_prior_dropout": 0.0,
    "loc_time_dim": 16,
    "schedule": {"kind": "linear", "num_train_timesteps": 100, "beta_start": 1e-4, "beta_end": 0.02},
}


@pytest.fixture
def tiny_cfg() -> LionConfig:
    return LionConfig.from_dict(TINY)
