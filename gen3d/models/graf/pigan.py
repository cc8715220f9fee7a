"""pi-GAN's radiance field: a SIREN conditioned by FiLM (Chan et al. 2021, ``siren/siren.py``).

A mapping network turns z into one frequency and one phase shift per hidden unit of every FiLM layer;
each layer computes ``sin(gamma * (W x + b) + beta)``. Density comes from a linear head on the last
trunk feature, colour from one more FiLM layer reading ``[d, h]`` and a linear + sigmoid head.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from jaxtyping import Float
from torch import Tensor, nn

from gen3d.models.graf.field import DENSITY_ACTIVATIONS, Cond, RadianceField, activate_density


class MappingNetwork(nn.Module):
    """z -> (frequencies, phase shifts): 3 hidden LeakyReLU(0.2) layers, as pi-GAN's ``CustomMappingNetwork``.

    Args:
        z_dim: latent dimension.
        hidden_dim: width of the hidden layers (pi-GAN: 256).
        out_dim: number of frequencies (= number of phase shifts).
    """

    def __init__(self, z_dim: int, hidden_dim: int, out_dim: int):
        super().__init__()
        self.net = nn.Sequential(
            nn.Linear(z_dim, hidden_dim),
            nn.LeakyReLU(0.2),
            nn.Linear(hidden_dim, hidden_dim),
            nn.LeakyReLU(0.2),
            nn.Linear(hidden_dim, hidden_dim),
            nn.LeakyReLU(0.2),
            nn.Linear(hidden_dim, 2 * out_dim),
        )
        for m in self.net:
            if isinstance(m, nn.Linear):
                nn.init.kaiming_normal_(m.weight, a=0.2, mode="fan_in", nonlinearity="leaky_relu")
        with torch.no_grad():
            self.net[-1].weight.mul_(0.25)

    def forward(self, z: Float[Tensor, "B Z"]) -> tuple[Float[Tensor, "B C"], Float[Tensor, "B C"]]:
        out = self.net(z)  # (B, 2C)
        return out.chunk(2, dim=-1)


def _siren_uniform_(layer: nn.Linear, omega: float) -> None:
    """SIREN's hidden-layer init: U(-sqrt(6 / fan_in) / omega, +sqrt(6 / fan_in) / omega)."""
    bound = math.sqrt(6.0 / layer.weight.shape[1]) / omega
    with torch.no_grad():
        layer.weight.uniform_(-bound, bound)


class PiGANField(RadianceField):
    """pi-GAN's SIREN + FiLM radiance field (``TALLSIREN`` / ``SPATIALSIRENBASELINE``).

    Args:
        z_dim: latent dimension (pi-GAN: 256).
        hidden_dim: FiLM layer width (pi-GAN: 256).
        num_layers: FiLM trunk layers (pi-GAN: 8).
        mapping_hidden_dim: mapping network width (pi-GAN: 256).
        box_side: side of the box that maps to [-1, 1]^3 before the first layer (``UniformBoxWarp``;
            pi-GAN's CelebA model uses 0.24), or None for no scaling (``TALLSIREN``).
        density_activation: ``"relu"`` (pi-GAN's ``clamp_mode``) or ``"softplus"``.
        view_dependent: feed the viewing direction to the colour layer (pi-GAN: True); False makes the colour a
            function of the point only, for scenes whose light is fixed in the world.
    """

    def __init__(
        self,
        z_dim: int = 256,
        hidden_dim: int = 256,
        num_layers: int = 8,
        mapping_hidden_dim: int = 256,
        box_side: float | None = 0.24,
        density_activation: str = "relu",
        view_dependent: bool = True,
    ):
        super().__init__()
        self.view_dependent = bool(view_dependent)
        if density_activation not in DENSITY_ACTIVATIONS:
            raise ValueError(f"density_activation must be one of {DENSITY_ACTIVATIONS}, got {density_activation!r}")
        self.z_dim, self.hidden_dim, self.num_layers = int(z_dim), int(hidden_dim), int(num_layers)
        self.input_scale = 1.0 if box_side is None else 2.0 / float(box_side)
        self.density_activation = density_activation
        h = self.hidden_dim
        self.film = nn.ModuleList([nn.Linear(3 if i == 0 else h, h) for i in range(self.num_layers)])
        self.sigma_head = nn.Linear(h, 1)
        self.color_film = nn.Linear(h + 3, h)  # input [d, h]
        self.rgb_head = nn.Linear(h, 3)
        self.mapping = MappingNetwork(self.z_dim, mapping_hidden_dim, (self.num_layers + 1) * h)
        for layer in [*self.film, self.sigma_head, self.color_film, self.rgb_head]:
            _siren_uniform_(layer, 25.0)
        with torch.no_grad():  # first layer: U(-1/fan_in, 1/fan_in)
            self.film[0].weight.uniform_(-1.0 / 3, 1.0 / 3)

    def condition(self, z: Float[Tensor, "B Z"]) -> Cond:
        """FiLM parameters: frequencies ``15 f + 30`` and phase shifts, (B, (L + 1) H) each."""
        if z.shape[-1] != self.z_dim:
            raise ValueError(f"expected codes with {self.z_dim} channels, got {tuple(z.shape)}")
        freq, phase = self.mapping(z)
        return freq * 15.0 + 30.0, phase

    def _trunk(self, x: Tensor, cond: Cond) -> Tensor:
        freq, phase = cond
        h = x * self.input_scale
        for i, layer in enumerate(self.film):
            sl = slice(i * self.hidden_dim, (i + 1) * self.hidden_dim)
            h = torch.sin(freq[..., sl] * layer(h) + phase[..., sl])  # (..., H)
        return h

    def query(self, x: Tensor, d: Tensor, cond: Cond, noise_std: float = 0.0) -> tuple[Tensor, Tensor]:
        freq, phase = cond
        h = self._trunk(x, cond)  # (..., H)
        sigma = activate_density(self.sigma_head(h).squeeze(-1), self.density_activation, noise_std)
        sl = slice(self.num_layers * self.hidden_dim, (self.num_layers + 1) * self.hidden_dim)
        if not self.view_dependent:
            d = torch.zeros_like(d)
        c = F.linear(d, self.color_film.weight[:, :3]) + F.linear(
            h, self.color_film.weight[:, 3:], self.color_film.bias
        )
        rgb = torch.sigmoid(self.rgb_head(torch.sin(freq[..., sl] * c + phase[..., sl])))  # (..., 3)
        return sigma, rgb

    def query_density(self, x: Tensor, cond: Cond, noise_std: float = 0.0) -> Tensor:
        h = self._trunk(x, cond)
        return activate_density(self.sigma_head(h).squeeze(-1), self.density_activation, noise_std)
