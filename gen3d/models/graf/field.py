"""Conditional radiance fields: the ``RadianceField`` interface and GRAF's conditional NeRF MLP.

A radiance field maps a point ``x``, a viewing direction ``d`` and a latent code ``z`` (one per scene) to a
density ``sigma >= 0`` and a colour ``rgb`` in [0, 1]. Every field splits the work in two:

- :meth:`RadianceField.condition` turns the codes ``z`` (B, Z) into per-scene tensors (B, C_k), computed
  once per scene (GRAF: the shape/appearance codes' contributions to the layers that read them; pi-GAN:
  FiLM frequencies and phase shifts);
- :meth:`RadianceField.query` evaluates points whose leading dimensions broadcast against those tensors.

That gives both layouts the renderers need at the cost of one: batched points (B, N, 3) with the
conditioning broadcast as (B, 1, C), and packed points (M, 3) of several scenes (ray marching with one
occupancy grid per scene) with the conditioning gathered per point as (M, C).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from jaxtyping import Float, Int
from torch import Tensor, nn

from gen3d.models.graf.encoding import PositionalEncoding

Cond = tuple[Tensor, ...]
DENSITY_ACTIVATIONS = ("relu", "softplus")


def activate_density(raw: Tensor, activation: str, noise_std: float = 0.0) -> Tensor:
    """sigma = act(raw + noise), noise ~ N(0, noise_std^2) (NeRF/GRAF's ``raw_noise_std`` regulariser).

    Args:
        raw: raw density outputs, any shape.
        activation: ``"relu"`` (GRAF, pi-GAN) or ``"softplus"``.
        noise_std: standard deviation of the Gaussian noise added before the activation (0 at test time).

    Returns:
        Non-negative densities, same shape as ``raw``.
    """
    if noise_std > 0:
        raw = raw + torch.randn_like(raw) * noise_std
    if activation == "relu":
        return F.relu(raw)
    if activation == "softplus":
        return F.softplus(raw)
    raise ValueError(f"density activation must be one of {DENSITY_ACTIVATIONS}, got {activation!r}")


class RadianceField(nn.Module):
    """Interface of the generators' radiance fields (GRAF's NeRF MLP, pi-GAN's SIREN).

    Subclasses set ``z_dim`` and implement :meth:`condition`, :meth:`query` and (optionally, for speed)
    :meth:`query_density`. Fields with a bounded domain set ``bound``: their density is zero outside the cube
    ``[-bound, bound]^3``, which the renderers use as the scene box (None: unbounded, e.g. an MLP).
    """

    z_dim: int
    bound: float | None = None

    # -- to implement ---------------------------------------------------------------------------------
    def condition(self, z: Float[Tensor, "B Z"]) -> Cond:
        """Per-scene conditioning tensors, each (B, C_k)."""
        raise NotImplementedError

    def query(
        self, x: Float[Tensor, "*pts 3"], d: Float[Tensor, "*pts 3"], cond: Cond, noise_std: float = 0.0
    ) -> tuple[Float[Tensor, "*pts"], Float[Tensor, "*pts 3"]]:
        """Density and colour of points whose leading dims broadcast with every tensor of ``cond`` (minus C)."""
        raise NotImplementedError

    def query_density(self, x: Float[Tensor, "*pts 3"], cond: Cond, noise_std: float = 0.0) -> Float[Tensor, "*pts"]:
        """Density only (view-independent); by default :meth:`query` with a dummy direction."""
        d = torch.zeros_like(x)
        d[..., 2] = -1.0
        return self.query(x, d, cond, noise_std)[0]

    # -- provided --------------------------------------------------------------------------------------
    def sample_z(
        self, batch_size: int, generator: torch.Generator | None = None, device: torch.device | str | None = None
    ) -> Float[Tensor, "B Z"]:
        """Latent codes from the prior N(0, I) (GRAF and pi-GAN both use a standard Gaussian).

        Args:
            batch_size: B.
            generator: optional torch random generator (for reproducible codes).
            device: where to create them (default: the field's parameters' device).

        Returns:
            Codes (B, z_dim).
        """
        if device is None:
            device = next(self.parameters()).device
        if generator is not None and generator.device.type != torch.device(device).type:
            return torch.randn(batch_size, self.z_dim, generator=generator).to(device)
        return torch.randn(batch_size, self.z_dim, generator=generator, device=device)

    def layout(self, cond: Cond, scene: Int[Tensor, " M"] | None = None) -> Cond:
        """Per-scene conditioning from :meth:`condition` laid out for :meth:`query`: broadcast over the points of
        each scene, each (B, 1, C) (batched points), or gathered per point of scene ``scene[m]``, each (M, C)
        (packed). Fields whose conditioning is a feature volume override this (they look points up by scene)."""
        if scene is None:
            return tuple(c.unsqueeze(1) for c in cond)
        return tuple(c.index_select(0, scene) for c in cond)  # backward: index_add, deterministic on the CPU

    def point_condition(self, z: Float[Tensor, "B Z"], scene: Int[Tensor, " M"] | None = None) -> Cond:
        """:meth:`condition` of ``z`` laid out by :meth:`layout` (batched when ``scene`` is None, else packed)."""
        return self.layout(self.condition(z), scene)

    def forward(
        self,
        x: Float[Tensor, "B N 3"],
        d: Float[Tensor, "B N 3"],
        z: Float[Tensor, "B Z"],
        noise_std: float = 0.0,
    ) -> tuple[Float[Tensor, "B N"], Float[Tensor, "B N 3"]]:
        """Evaluate N points of each of B scenes.

        Args:
            x: points (B, N, 3) in world coordinates.
            d: unit viewing directions (B, N, 3).
            z: latent codes (B, Z).
            noise_std: Gaussian noise on the raw density (training regulariser).

        Returns:
            ``sigma`` (B, N) >= 0 and ``rgb`` (B, N, 3) in [0, 1].
        """
        return self.query(x, d, self.point_condition(z), noise_std)

    def density(self, x: Float[Tensor, "B N 3"], z: Float[Tensor, "B Z"]) -> Float[Tensor, "B N"]:
        """Densities (B, N) of N points of each of B scenes (no noise)."""
        return self.query_density(x, self.point_condition(z))

    def forward_packed(
        self,
        x: Float[Tensor, "M 3"],
        d: Float[Tensor, "M 3"],
        z: Float[Tensor, "B Z"],
        scene: Int[Tensor, " M"],
        noise_std: float = 0.0,
    ) -> tuple[Float[Tensor, " M"], Float[Tensor, "M 3"]]:
        """Evaluate packed points of several scenes (point m belongs to scene ``scene[m]``).

        Returns:
            ``sigma`` (M,) and ``rgb`` (M, 3).
        """
        return self.query(x, d, self.point_condition(z, scene), noise_std)

    def density_packed(self, x: Float[Tensor, "M 3"], z: Float[Tensor, "B Z"], scene: Int[Tensor, " M"]) -> Tensor:
        """Densities (M,) of packed points of several scenes."""
        return self.query_density(x, self.point_condition(z, scene))


def _linear_cols(x: Tensor, layer: nn.Linear, start: int, stop: int, bias: bool = False) -> Tensor:
    """``x @ W[:, start:stop].T`` (+ b): one block of a linear layer whose input is a concatenation."""
    return F.linear(x, layer.weight[:, start:stop], layer.bias if bias else None)


class GRAFField(RadianceField):
    """GRAF's conditional NeRF MLP (Schwarz et al. 2020; ``create_nerf`` in GRAF's ``run_nerf_mod.py``).

    Architecture (defaults = GRAF's ``configs/default.yaml``): the trunk reads ``[gamma(x), z_s]``
    (gamma: 10 octaves), ``depth`` ReLU layers of ``width`` with the trunk input concatenated again after
    layer 4 (``[input, h]``, NeRF's skip); a density head ``sigma = relu(W h + noise)``; a feature layer
    whose output is concatenated with ``gamma(d)`` (4 octaves) and the appearance code ``z_a`` into one
    ReLU layer of ``width / 2`` and a sigmoid colour head. ``z = [z_s, z_a]``.

    The concatenations are computed blockwise (``W [a, b] = W_a a + W_b b``), so the codes' contributions
    are computed once per scene instead of once per point; the parameters are laid out exactly as the
    concatenated layers would be.

    Args:
        z_shape_dim: dimension of the shape code z_s (GRAF: 256 - 128 = 128).
        z_app_dim: dimension of the appearance code z_a (GRAF: 128).
        depth: trunk layers (GRAF: 8).
        width: trunk width (GRAF: 256).
        skips: trunk layers after which the input is concatenated again (GRAF: (4,)).
        pos_freqs: octaves of the point encoding (GRAF: 10).
        dir_freqs: octaves of the direction encoding (GRAF: 4).
        use_viewdirs: feed gamma(d) to the colour branch (GRAF: True).
        density_activation: ``"relu"`` (GRAF) or ``"softplus"``.
    """

    def __init__(
        self,
        z_shape_dim: int = 128,
        z_app_dim: int = 128,
        depth: int = 8,
        width: int = 256,
        skips: tuple[int, ...] | list[int] = (4,),
        pos_freqs: int = 10,
        dir_freqs: int = 4,
        use_viewdirs: bool = True,
        density_activation: str = "relu",
    ):
        super().__init__()
        if density_activation not in DENSITY_ACTIVATIONS:
            raise ValueError(f"density_activation must be one of {DENSITY_ACTIVATIONS}, got {density_activation!r}")
        if depth < 1 or width < 2:
            raise ValueError(f"depth must be >= 1 and width >= 2, got depth={depth}, width={width}")
        self.z_shape_dim, self.z_app_dim = int(z_shape_dim), int(z_app_dim)
        self.z_dim = self.z_shape_dim + self.z_app_dim
        self.depth, self.width = int(depth), int(width)
        self.skips = tuple(int(s) for s in skips if 0 <= int(s) < depth - 1)
        self.use_viewdirs = bool(use_viewdirs)
        self.density_activation = density_activation
        self.pos_enc = PositionalEncoding(pos_freqs)
        self.dir_enc = PositionalEncoding(dir_freqs) if use_viewdirs else None
        self.pe_dim = self.pos_enc.out_dim
        self.in_dim = self.pe_dim + self.z_shape_dim  # trunk input [gamma(x), z_s]
        self.dir_dim = self.dir_enc.out_dim if self.dir_enc is not None else 0
        w = self.width
        layers = [nn.Linear(self.in_dim, w)]
        for i in range(1, self.depth):
            layers.append(nn.Linear(w + (self.in_dim if (i - 1) in self.skips else 0), w))
        self.trunk = nn.ModuleList(layers)
        self.sigma_head = nn.Linear(w, 1)
        self.feature = nn.Linear(w, w)
        self.view = nn.Linear(w + self.dir_dim + self.z_app_dim, w // 2)  # input [feature, gamma(d), z_a]
        self.rgb_head = nn.Linear(w // 2, 3)

    def condition(self, z: Float[Tensor, "B Z"]) -> Cond:
        """Per-scene contributions of z_s to the trunk's first and skip layers and of z_a to the view layer.

        Returns:
            ``(c_0, c_skip_1, ..., c_view)``: (B, width) each for the trunk, (B, width / 2) for the view layer.
        """
        if z.shape[-1] != self.z_dim:
            raise ValueError(f"expected codes with {self.z_dim} channels, got {tuple(z.shape)}")
        z_s, z_a = z[:, : self.z_shape_dim], z[:, self.z_shape_dim :]  # (B, Zs), (B, Za)
        conds = [_linear_cols(z_s, self.trunk[0], self.pe_dim, self.in_dim, bias=True)]  # (B, W)
        for i in range(1, self.depth):
            if (i - 1) in self.skips:  # input block [gamma(x), z_s] comes first, then h
                conds.append(_linear_cols(z_s, self.trunk[i], self.pe_dim, self.in_dim, bias=True))
        w0 = self.width + self.dir_dim
        conds.append(_linear_cols(z_a, self.view, w0, w0 + self.z_app_dim, bias=True))  # (B, W/2)
        return tuple(conds)

    def _trunk(self, x: Tensor, cond: Cond) -> Tensor:
        pe = self.pos_enc(x)  # (..., pe_dim)
        h = F.relu(_linear_cols(pe, self.trunk[0], 0, self.pe_dim) + cond[0])  # (..., W)
        k = 1
        for i in range(1, self.depth):
            layer = self.trunk[i]
            if (i - 1) in self.skips:
                h = _linear_cols(pe, layer, 0, self.pe_dim) + _linear_cols(
                    h, layer, self.in_dim, self.in_dim + self.width
                )
                h = F.relu(h + cond[k])
                k += 1
            else:
                h = F.relu(layer(h))
        return h  # (..., W)

    def query(self, x: Tensor, d: Tensor, cond: Cond, noise_std: float = 0.0) -> tuple[Tensor, Tensor]:
        h = self._trunk(x, cond)  # (..., W)
        sigma = activate_density(self.sigma_head(h).squeeze(-1), self.density_activation, noise_std)  # (...)
        v = _linear_cols(self.feature(h), self.view, 0, self.width)  # (..., W/2)
        if self.dir_enc is not None:
            v = v + _linear_cols(self.dir_enc(d), self.view, self.width, self.width + self.dir_dim)
        rgb = torch.sigmoid(self.rgb_head(F.relu(v + cond[-1])))  # (..., 3)
        return sigma, rgb

    def query_density(self, x: Tensor, cond: Cond, noise_std: float = 0.0) -> Tensor:
        h = self._trunk(x, cond)
        return activate_density(self.sigma_head(h).squeeze(-1), self.density_activation, noise_std)
