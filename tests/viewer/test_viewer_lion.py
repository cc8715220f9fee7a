"""LION checkpoints in the viewer: the sample-source adapter against LionModule's own sampling."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from gen3d.cli.sample import SAMPLERS

lion_module = pytest.importorskip("gen3d.lit.lion_module")


@pytest.fixture
def lion_ckpt(tmp_path, lion_module_factory, save_module):
    """A tiny, untrained prior-stage LION module with a non-trivial normalisation, saved as Lightning does."""
    module = lion_module_factory("prior")
    return save_module(module, tmp_path / "lion_run" / "checkpoints" / "last.ckpt"), module


def test_slerp_endpoints_and_norm():
    from gen3d.inference.lion import slerp

    a, b = torch.tensor([1.0, 0.0, 0.0]), torch.tensor([0.0, 1.0, 0.0])
    torch.testing.assert_close(slerp(a, b, 0.0), a)
    torch.testing.assert_close(slerp(a, b, 1.0), b)
    mid = slerp(a, b, 0.5)
    torch.testing.assert_close(mid, torch.tensor([1.0, 1.0, 0.0]) / 2**0.5)  # on the unit circle, halfway
    torch.testing.assert_close(slerp(a, a, 0.3), a)


def test_samples_match_lion_module_generate(lion_ckpt):
    from gen3d.inference.sources import SampleSource, load_checkpoint_source

    path, module = lion_ckpt
    source = load_checkpoint_source(path)
    assert isinstance(source, SampleSource)
    clouds = source.sample(seed=5, n=2, sampler="ddim", steps=3)
    ref = module.generate(2, "ddim", 3, seed=5).numpy()  # LionModule's own sampling, de-normalised
    assert clouds.shape == (2, 48, 3)
    np.testing.assert_allclose(clouds, ref, rtol=0, atol=1e-6)


def test_interpolation_ends_at_each_seed_and_moves_continuously(lion_ckpt):
    from gen3d.inference.sources import load_checkpoint_source

    source = load_checkpoint_source(lion_ckpt[0])
    at = {a: source.interpolate(0, 1, a, sampler="ddim", steps=3) for a in (0.0, 0.05, 1.0)}
    # alpha = 0 depends on seed A only, alpha = 1 on seed B only (ddim is deterministic).
    np.testing.assert_allclose(at[0.0], source.interpolate(0, 9, 0.0, sampler="ddim", steps=3), atol=1e-6)
    np.testing.assert_allclose(at[1.0], source.interpolate(1, 9, 0.0, sampler="ddim", steps=3), atol=1e-6)
    small_step = np.abs(at[0.05] - at[0.0]).mean()
    assert 0 < small_step < 0.5 * np.abs(at[1.0] - at[0.0]).mean()
    # an end point is the seed's own sample (same noise, same priors, latents back in the VAE's frame)
    np.testing.assert_allclose(at[0.0], source.sample(seed=0, n=1, sampler="ddim", steps=3)[0], atol=1e-5)


def test_viewer_generates_from_a_lion_checkpoint(lion_ckpt, open_checkpoint_viewer):
    path, _ = lion_ckpt
    app = open_checkpoint_viewer(path)
    assert app.sample_source is not None and app.field_source is None
    assert "Sampler" in app._gui["sampler"].label and app._gui["sampler"].options == SAMPLERS
    items = app.generate(seed=2, n=2, sampler="ddim", steps=3)
    assert [it.points.shape for it in items] == [(48, 3), (48, 3)]
    saved = app.save_current("ply", name="lion_sample")
    assert saved.parent == path.parent.parent.resolve() / "viewer"


def test_a_vae_stage_checkpoint_cannot_be_sampled(tmp_path, tiny_config, save_module):
    from gen3d.errors import InputError
    from gen3d.inference.sources import load_checkpoint_source

    path = save_module(lion_module.LionModule(config=tiny_config, stage="vae", ema_decay=0.0), tmp_path / "vae.ckpt")
    with pytest.raises(InputError, match="VAE"):
        load_checkpoint_source(path)
