"""Fixtures shared by the viewer tests: tiny GRAF and LION checkpoints saved the way Lightning saves them."""

from __future__ import annotations

import pytest
import torch


def _save_module(module, path):
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"state_dict": module.state_dict(), "hyper_parameters": dict(module.hparams)}, path)
    return path


@pytest.fixture(scope="session")
def save_module():
    """``save_module(module, path)``: save a Lightning module's weights and hyperparameters as a checkpoint."""
    return _save_module


@pytest.fixture(scope="session")
def graf_module():
    """A tiny, untrained GRAF module (in eval mode)."""
    graf = pytest.importorskip("gen3d.lit.graf_module")
    torch.manual_seed(0)
    module = graf.GRAFModule(
        z_dim=8, z_app_dim=4, net_depth=2, net_width=16, skips=(), pos_freqs=3, dir_freqs=2, n_samples=8,
        image_size=16, patch_size=8, n_grid=2, ndf=8, sample_every=0, composite_impl="torch",
    )  # fmt: skip
    return module.eval()


@pytest.fixture(scope="session")
def graf_ckpt(tmp_path_factory, graf_module):
    """``(path, module)``: the tiny GRAF module saved at ``<run>/checkpoints/last.ckpt``."""
    path = tmp_path_factory.mktemp("graf_run") / "checkpoints" / "last.ckpt"
    return _save_module(graf_module, path), graf_module


@pytest.fixture
def lion_module_factory(tiny_config):
    """Make tiny, untrained LION modules: ``make(stage="prior", timesteps=None)`` (prior stage with a non-trivial
    normalisation and latent standardisation; ``timesteps`` changes the diffusion's number of timesteps)."""
    lion = pytest.importorskip("gen3d.lit.lion_module")

    def make(stage: str = "prior", timesteps: int | None = None):
        config = dict(tiny_config)
        if timesteps is not None:
            config["schedule"] = {**config["schedule"], "num_train_timesteps": timesteps}
        torch.manual_seed(0)
        module = lion.LionModule(config=config, stage=stage, ema_decay=0.0)
        if stage == "prior":
            module.set_normalization([1.0, -2.0, 0.5], [0.25])
            g = torch.Generator().manual_seed(3)  # latent standardisation far from the identity
            n = config["num_points"]
            module.net.set_latent_stats(
                1.5 + 0.4 * torch.randn(12, 8, generator=g), 0.3 + torch.randn(12, n, 4, generator=g)
            )
        return module.eval()

    return make
