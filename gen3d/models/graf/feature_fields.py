"""Explicit feature fields for 3D-aware GANs: the shared lookup, decoder and base class of triplanes and voxels.

A feature field turns a code ``z`` into a feature volume once per scene (:meth:`FeatureField.condition`: three
axis-aligned planes for :class:`~gen3d.models.graf.triplane.TriplaneField`, a 3D grid for
:class:`~gen3d.models.graf.voxel.VoxelField`), then evaluates any point by interpolating that volume
(:func:`linear_lookup`) and decoding the features to a density and a colour (:class:`FeatureDecoder`). Points
are looked up by scene index, so batched points ``(B, N, 3)`` and packed points of many scenes ``(M, 3)`` (ray
marching through one occupancy grid per scene) take the same path.

The field lives in the cube ``[-bound, bound]^3`` (``bound`` is set for the renderers' scene box); its density
is zero outside. Interpolation follows ``F.grid_sample(..., align_corners=False, padding_mode="border")``:
coordinate -1 is the outer edge of the first cell, +1 that of the last.
"""

from __future__ import annotations

import itertools
import math

import torch
import torch.nn.functional as F
from jaxtyping import Float, Int
from torch import Tensor, nn

from gen3d.models.graf.encoding import PositionalEncoding
from gen3d.models.graf.field import Cond, RadianceField, activate_density

RGB_PAD = 1e-3  # EG3D's OSGDecoder: rgb = sigmoid(x) * (1 + 2 * pad) - pad, so 0 and 1 are reachable


def linear_lookup(
    table: Float[Tensor, "S *grid C"], coords: Float[Tensor, "M D"], index: Int[Tensor, " M"]
) -> Float[Tensor, "M C"]:
    """Multilinear interpolation of D-dimensional channels-last feature grids, one grid per point.

    Args:
        table: ``S`` grids of ``D`` spatial dims and ``C`` channels, ``(S, n_1, ..., n_D, C)``.
        coords: per-point coordinates in [-1, 1] along each spatial dim (``coords[:, k]`` indexes dim ``k``),
            clamped to the border cells' centres outside.
        index: grid of each point, ``(M,)`` int64 in ``[0, S)``.

    Returns:
        Interpolated features ``(M, C)``; gradients reach ``table`` and ``coords``.
    """
    sizes = table.shape[1:-1]
    D, C = len(sizes), table.shape[-1]
    if coords.dim() != 2 or coords.shape[1] != D or index.shape != coords.shape[:1]:
        raise ValueError(f"need coords (M, {D}) and index (M,), got {tuple(coords.shape)} and {tuple(index.shape)}")
    rows, weights = lookup_corners(sizes, coords, index)
    return weighted_row_sum(table.reshape(-1, C), rows, weights)


def lookup_corners(
    sizes: tuple[int, ...], coords: Float[Tensor, "M D"], index: Int[Tensor, " M"]
) -> tuple[Int[Tensor, "M K"], Float[Tensor, "M K"]]:
    """The ``K = 2^D`` corners of each point's cell: rows of the flattened ``(S * prod(sizes), C)`` table and weights.

    Args:
        sizes: the grids' spatial sizes ``(n_1, ..., n_D)``.
        coords: per-point coordinates, as :func:`linear_lookup`.
        index: grid of each point, as :func:`linear_lookup`.

    Returns:
        ``rows`` ``(M, K)`` int64 and ``weights`` ``(M, K)`` (summing to 1 per point; differentiable in ``coords``).
    """
    D = len(sizes)
    size_t = torch.tensor(sizes, dtype=coords.dtype, device=coords.device)
    pos = torch.minimum(((coords + 1) * size_t - 1).mul(0.5).clamp_min(0), size_t - 1)  # (M, D) cell units
    i0 = pos.floor().long()
    frac = pos - i0
    i1 = torch.minimum(i0 + 1, torch.tensor(sizes, device=coords.device) - 1)
    strides = [math.prod(sizes[k + 1 :]) for k in range(D)]
    base = index * math.prod(sizes)  # (M,)
    rows, weights = [], []
    for corner in itertools.product((0, 1), repeat=D):
        idx, w = base, None
        for k, c in enumerate(corner):
            idx = idx + (i1[:, k] if c else i0[:, k]) * strides[k]
            wk = frac[:, k] if c else 1 - frac[:, k]
            w = wk if w is None else w * wk
        rows.append(idx)
        weights.append(w)
    return torch.stack(rows, 1), torch.stack(weights, 1)


def weighted_row_sum(table: Float[Tensor, "N C"], rows: Int[Tensor, "M K"], weights: Float[Tensor, "M K"]) -> Tensor:
    """``out[m] = sum_k weights[m, k] * table[rows[m, k]]``, ``(M, C)``; gradients reach ``table`` and ``weights``.

    Computed in the promoted dtype of ``table`` and ``weights`` (half-precision features with float32 weights, as
    under autocast, give float32), as the product of the two would be.
    """
    dtype = torch.promote_types(table.dtype, weights.dtype)
    return _WeightedRowSum.apply(table.to(dtype), rows, weights.to(dtype))


class _WeightedRowSum(torch.autograd.Function):
    """``out[m] = sum_k weights[m, k] * table[rows[m, k]]``: the corners' weighted sum of a lookup.

    The forward pass is one fused gather-multiply-add (``F.embedding_bag`` in ``"sum"`` mode, several times faster
    than gathering each corner); the backward pass adds ``weights * grad`` into the table's rows and takes the
    weights' gradient as the dot product of each gathered row with ``grad``, one corner at a time.
    """

    @staticmethod
    def forward(ctx, table: Tensor, rows: Tensor, weights: Tensor) -> Tensor:  # type: ignore[override]
        ctx.save_for_backward(table, rows, weights)
        return F.embedding_bag(rows, table, per_sample_weights=weights, mode="sum")

    @staticmethod
    def backward(ctx, grad: Tensor) -> tuple[Tensor | None, None, Tensor | None]:  # type: ignore[override]
        table, rows, weights = ctx.saved_tensors
        grad_table = grad_weights = None
        if ctx.needs_input_grad[0]:
            grad_table = torch.zeros_like(table)
            for k in range(rows.shape[1]):
                grad_table.index_add_(0, rows[:, k], grad * weights[:, k, None])
        if ctx.needs_input_grad[2]:
            dots = [torch.bmm(table[rows[:, k]].unsqueeze(1), grad.unsqueeze(2)) for k in range(rows.shape[1])]
            grad_weights = torch.cat(dots, 1).squeeze(2)  # (M, K)
        return grad_table, None, grad_weights


class FeatureDecoder(nn.Module):
    """Features to density and colour: EG3D's ``OSGDecoder`` (one softplus hidden layer), or none.

    With ``hidden > 0``: ``h = softplus(W_1 f)``, raw density ``W_s h``, colour ``sigmoid(W_c [h, gamma(d)])``
    padded by :data:`RGB_PAD` (``gamma(d)`` only when view-dependent). With ``hidden = 0`` the features are
    decoded directly: channel 0 is the raw density, channels 1-3 the colour logits (view-independent).

    Args:
        in_dim: feature channels.
        hidden: hidden width (EG3D: 64), or 0 for direct decoding.
        view_dependent: feed the viewing direction to the colour head.
        dir_freqs: octaves of the direction encoding.
    """

    def __init__(self, in_dim: int, hidden: int = 64, view_dependent: bool = False, dir_freqs: int = 2):
        super().__init__()
        if hidden < 0 or (hidden == 0 and (in_dim < 4 or view_dependent)):
            raise ValueError(
                f"need hidden >= 0; direct decoding (hidden=0) needs >= 4 channels and no view dependence, got "
                f"hidden={hidden}, channels={in_dim}, view_dependent={view_dependent}"
            )
        self.hidden, self.view_dependent = int(hidden), bool(view_dependent)
        self.dir_enc = PositionalEncoding(dir_freqs) if view_dependent else None
        dir_dim = self.dir_enc.out_dim if self.dir_enc is not None else 0
        if self.hidden > 0:
            self.fc = nn.Linear(in_dim, self.hidden)
            self.sigma_head = nn.Linear(self.hidden, 1)
            self.rgb_head = nn.Linear(self.hidden + dir_dim, 3)

    def forward(
        self, f: Float[Tensor, "M C"], d: Float[Tensor, "M 3"] | None, tint: Float[Tensor, "M 3"] | None = None
    ) -> tuple[Tensor, Tensor]:
        """Raw density ``(M,)`` and colour ``(M, 3)`` in [0, 1] (``d`` is only read when view-dependent; ``tint``
        is added to the colour logits)."""
        if self.hidden == 0:
            logits = f[:, 1:4]
            raw = f[:, 0]
        else:
            h = F.softplus(self.fc(f))
            raw = self.sigma_head(h).squeeze(-1)
            if self.dir_enc is not None and d is not None:
                h = torch.cat([h, self.dir_enc(d)], -1)
            logits = self.rgb_head(h)
        if tint is not None:
            logits = logits + tint
        return raw, torch.sigmoid(logits) * (1 + 2 * RGB_PAD) - RGB_PAD

    def density(self, f: Float[Tensor, "M C"]) -> Float[Tensor, " M"]:
        """Raw density only."""
        if self.hidden == 0:
            return f[:, 0]
        return self.sigma_head(F.softplus(self.fc(f))).squeeze(-1)


class FeatureField(RadianceField):
    """Base of fields that decode an interpolated per-scene feature volume (see the module docstring).

    Subclasses build ``self.decoder`` and implement :meth:`volume` (the feature volume of each code, channels
    last) and :meth:`features` (the interpolated features of points). The density is
    ``softplus(raw + density_shift)`` (EG3D: shift -1, so a fresh field is nearly transparent), zero outside the box.
    With ``colour_code``, a linear map of ``z`` adds a per-scene offset to the colour logits (a shortcut from the
    code to the scene's overall colour, as GRAF's appearance code; EG3D has none).

    Conditioning: ``(volume, tint)`` per scene (``tint`` (B, 3), zero without ``colour_code``); laid out as is for
    batched points and as ``(volume, tint, scene)`` for packed ones.

    Args:
        z_dim: latent dimension.
        bound: half side of the field's cube.
        density_shift: added to the raw density before the softplus.
        colour_code: add the per-scene colour offset.
    """

    decoder: FeatureDecoder

    def __init__(self, z_dim: int, bound: float, density_shift: float = -1.0, colour_code: bool = False):
        super().__init__()
        if z_dim < 1 or not bound > 0:
            raise ValueError(f"need z_dim >= 1 and bound > 0, got z_dim={z_dim}, bound={bound}")
        self.z_dim, self.bound, self.density_shift = int(z_dim), float(bound), float(density_shift)
        self.tint = nn.Linear(self.z_dim, 3) if colour_code else None

    def volume(self, z: Float[Tensor, "B Z"]) -> Tensor:
        """The feature volume of each code, channels last, ``(B, ..., C)``."""
        raise NotImplementedError

    def features(self, volume: Tensor, xn: Float[Tensor, "M 3"], scene: Int[Tensor, " M"]) -> Float[Tensor, "M C"]:
        """Features of points ``xn`` (in [-1, 1]^3, the cube scaled) of scenes ``scene``."""
        raise NotImplementedError

    def condition(self, z: Float[Tensor, "B Z"]) -> Cond:
        """``(volume, tint)``: the feature volume and the colour offset (B, 3) of each code."""
        if z.dim() != 2 or z.shape[-1] != self.z_dim:
            raise ValueError(f"expected codes (B, {self.z_dim}), got {tuple(z.shape)}")
        tint = self.tint(z) if self.tint is not None else z.new_zeros(z.shape[0], 3)
        return (self.volume(z), tint)

    def layout(self, cond: Cond, scene: Int[Tensor, " M"] | None = None) -> Cond:
        """``(volume, tint)`` for batched points (scene b is row b of the points), ``(volume, tint, scene)`` for
        packed ones."""
        return tuple(cond[:2]) if scene is None else (cond[0], cond[1], scene)

    def _flat(self, x: Tensor, cond: Cond) -> tuple[Tensor, Tensor, Tensor]:
        """Flattened points (M, 3), their scenes (M,) and whether each lies in the cube (M,)."""
        volume = cond[0]
        if len(cond) > 2:
            scene = cond[2]
        else:
            B = volume.shape[0]
            if x.dim() < 2 or x.shape[0] != B:
                raise ValueError(f"batched points must be (B={B}, ..., 3), got {tuple(x.shape)}")
            scene = torch.arange(B, device=x.device).view(B, *([1] * (x.dim() - 2))).expand(x.shape[:-1])
        xf = x.reshape(-1, 3)
        return xf, scene.reshape(-1), (xf.abs() <= self.bound).all(-1)

    def query(self, x: Tensor, d: Tensor, cond: Cond, noise_std: float = 0.0) -> tuple[Tensor, Tensor]:
        xf, scene, inside = self._flat(x, cond)
        f = self.features(cond[0], xf / self.bound, scene)
        tint = cond[1].index_select(0, scene) if self.tint is not None else None  # deterministic backward
        raw, rgb = self.decoder(f, d.reshape(-1, 3), tint)
        sigma = activate_density(raw + self.density_shift, "softplus", noise_std) * inside
        return sigma.reshape(x.shape[:-1]), rgb.reshape(*x.shape[:-1], 3)

    def query_density(self, x: Tensor, cond: Cond, noise_std: float = 0.0) -> Tensor:
        xf, scene, inside = self._flat(x, cond)
        raw = self.decoder.density(self.features(cond[0], xf / self.bound, scene))
        sigma = activate_density(raw + self.density_shift, "softplus", noise_std) * inside
        return sigma.reshape(x.shape[:-1])


def channel_schedule(base: int, minimum: int, steps: int) -> list[int]:
    """Channels of a conv generator's stages: ``base`` halved at each of ``steps`` upsamplings, at least ``minimum``."""
    return [max(base >> i, minimum) for i in range(steps + 1)]


def upsampling_steps(resolution: int, start: int = 4) -> int:
    """Number of x2 upsamplings from ``start`` to ``resolution`` (a power-of-two multiple of ``start``)."""
    steps = int(round(math.log2(resolution / start))) if resolution >= start else -1
    if steps < 0 or start << steps != resolution:
        raise ValueError(f"resolution must be {start} times a power of two, got {resolution}")
    return steps
