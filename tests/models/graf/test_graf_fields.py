"""Radiance fields: positional encoding, GRAF's conditional NeRF MLP and pi-GAN's SIREN against references."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from gen3d.models.graf.encoding import PositionalEncoding
from gen3d.models.graf.field import GRAFField, RadianceField
from gen3d.models.graf.pigan import PiGANField


def test_positional_encoding_matches_nerf_formula():
    enc = PositionalEncoding(4)
    x = torch.randn(5, 7, 3, dtype=torch.float64)
    out = enc(x).numpy()
    xn = x.numpy()
    ref = [xn]
    for k in range(4):  # NeRF layout: [x, sin(2^0 x), cos(2^0 x), sin(2^1 x), ...]
        ref += [np.sin(2.0**k * xn), np.cos(2.0**k * xn)]
    np.testing.assert_allclose(out, np.concatenate(ref, -1), rtol=0, atol=1e-12)
    assert enc.out_dim == 27 and PositionalEncoding(10).out_dim == 63  # GRAF's multires_views=4, multires=10


def _graf_reference(field: GRAFField, x, d, z):
    """GRAF's NeRF forward written with explicit concatenations (run_nerf_mod.run_network + NeRF.forward)."""
    B, N, _ = x.shape
    z_s = z[:, : field.z_shape_dim].unsqueeze(1).expand(B, N, -1)
    z_a = z[:, field.z_shape_dim :].unsqueeze(1).expand(B, N, -1)
    inp = torch.cat([field.pos_enc(x), z_s], -1)
    h = inp
    for i, layer in enumerate(field.trunk):
        h = F.relu(layer(h))
        if i in field.skips:
            h = torch.cat([inp, h], -1)
    sigma = F.relu(field.sigma_head(h)).squeeze(-1)
    feat = torch.cat([field.feature(h), field.dir_enc(d), z_a], -1)
    rgb = torch.sigmoid(field.rgb_head(F.relu(field.view(feat))))
    return sigma, rgb


def test_graf_field_matches_concatenated_reference():
    torch.manual_seed(1)
    field = GRAFField(z_shape_dim=5, z_app_dim=4, depth=6, width=32, skips=(2,), pos_freqs=3, dir_freqs=2).double()
    with torch.no_grad():  # make the density head fire so relu(sigma) is not all zeros
        field.sigma_head.bias.fill_(0.3)
    x = torch.randn(3, 11, 3, dtype=torch.float64)
    d = F.normalize(torch.randn(3, 11, 3, dtype=torch.float64), dim=-1)
    z = field.sample_z(3).double()
    sigma, rgb = field(x, d, z)
    ref_sigma, ref_rgb = _graf_reference(field, x, d, z)
    assert sigma.shape == (3, 11) and rgb.shape == (3, 11, 3)
    torch.testing.assert_close(sigma, ref_sigma, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(rgb, ref_rgb, rtol=1e-12, atol=1e-12)
    assert (sigma > 0).any()
    torch.testing.assert_close(field.density(x, z), ref_sigma, rtol=1e-12, atol=1e-12)


def test_graf_field_default_sizes_match_graf():
    field = GRAFField()  # configs/default.yaml: netdepth 8, netwidth 256, z dim 256 of which 128 appearance
    assert field.z_dim == 256
    assert field.trunk[0].in_features == 63 + 128
    assert field.trunk[5].in_features == 256 + 63 + 128  # skip after layer 4
    assert field.view.in_features == 256 + 27 + 128 and field.view.out_features == 128


@pytest.mark.parametrize(
    "make",
    [
        lambda: GRAFField(4, 3, depth=4, width=16, skips=(1,), pos_freqs=2, dir_freqs=2),
        lambda: PiGANField(z_dim=8, hidden_dim=16, num_layers=3, mapping_hidden_dim=16),
    ],
)
def test_packed_evaluation_matches_batched(make):
    field: RadianceField = make()
    B, N = 3, 9
    x, d = torch.randn(B, N, 3) * 0.2, F.normalize(torch.randn(B, N, 3), dim=-1)
    z = field.sample_z(B, generator=torch.Generator().manual_seed(0))
    sigma, rgb = field(x, d, z)
    perm = torch.randperm(B * N)
    scene = torch.arange(B).repeat_interleave(N)[perm]
    s_p, c_p = field.forward_packed(x.reshape(-1, 3)[perm], d.reshape(-1, 3)[perm], z, scene)
    torch.testing.assert_close(s_p, sigma.reshape(-1)[perm], rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(c_p, rgb.reshape(-1, 3)[perm], rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(
        field.density_packed(x.reshape(-1, 3)[perm], z, scene), sigma.reshape(-1)[perm], rtol=1e-5, atol=1e-6
    )
    assert (rgb >= 0).all() and (rgb <= 1).all() and (sigma >= 0).all()


def test_sample_z_is_reproducible_standard_normal():
    field = GRAFField(8, 8, depth=2, width=8, pos_freqs=1, dir_freqs=1)
    a = field.sample_z(4000, generator=torch.Generator().manual_seed(3))
    b = field.sample_z(4000, generator=torch.Generator().manual_seed(3))
    assert torch.equal(a, b) and a.shape == (4000, 16)
    assert abs(a.mean().item()) < 0.02 and abs(a.std().item() - 1) < 0.02


def _pigan_reference(field: PiGANField, x, d, z):
    """pi-GAN's forward_with_frequencies_phase_shifts with per-point expanded FiLM parameters."""
    out = field.mapping.net(z)
    freq, phase = out[:, : out.shape[1] // 2] * 15 + 30, out[:, out.shape[1] // 2 :]
    H = field.hidden_dim
    h = x * field.input_scale
    for i, layer in enumerate(field.film):
        f = freq[:, None, i * H : (i + 1) * H].expand(-1, x.shape[1], -1)
        p = phase[:, None, i * H : (i + 1) * H].expand(-1, x.shape[1], -1)
        h = torch.sin(f * layer(h) + p)
    sigma = F.relu(field.sigma_head(h)).squeeze(-1)
    c = field.color_film(torch.cat([d, h], -1))
    c = torch.sin(freq[:, None, -H:] * c + phase[:, None, -H:])
    return sigma, torch.sigmoid(field.rgb_head(c))


def test_pigan_field_matches_reference_and_shapes():
    torch.manual_seed(2)
    field = PiGANField(z_dim=12, hidden_dim=24, num_layers=4, mapping_hidden_dim=20, box_side=0.5).double()
    x = torch.rand(2, 7, 3, dtype=torch.float64) * 0.5 - 0.25
    d = F.normalize(torch.randn(2, 7, 3, dtype=torch.float64), dim=-1)
    z = torch.randn(2, 12, dtype=torch.float64)
    sigma, rgb = field(x, d, z)
    ref_sigma, ref_rgb = _pigan_reference(field, x, d, z)
    assert sigma.shape == (2, 7) and rgb.shape == (2, 7, 3)
    torch.testing.assert_close(sigma, ref_sigma, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(rgb, ref_rgb, rtol=1e-12, atol=1e-12)
    # Mapping network output: one frequency and one phase per hidden unit of the L FiLM layers + colour layer.
    assert field.mapping.net[-1].out_features == 2 * (4 + 1) * 24
    # SIREN init bounds (pi-GAN frequency_init(25), first layer U(-1/3, 1/3)).
    assert field.film[0].weight.abs().max() <= 1 / 3
    assert field.film[1].weight.abs().max() <= math.sqrt(6 / 24) / 25
    # Gradients reach the mapping network through the FiLM parameters.
    (sigma.sum() + rgb.sum()).backward()
    assert field.mapping.net[0].weight.grad.abs().sum() > 0


def test_density_noise_only_in_training_calls():
    field = GRAFField(4, 4, depth=2, width=16, pos_freqs=1, dir_freqs=1)
    x, d, z = torch.randn(2, 50, 3), F.normalize(torch.randn(2, 50, 3), dim=-1), field.sample_z(2)
    a, _ = field(x, d, z)
    b, _ = field(x, d, z)
    assert torch.equal(a, b)
    c, _ = field(x, d, z, noise_std=1.0)
    assert not torch.equal(a, c) and (c >= 0).all()
