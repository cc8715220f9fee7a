"""Volume rendering: alphas, transmittance, weights and their accumulation along rays.

Two layouts share one set of formulas:

- batched: every ray has ``S`` samples, tensors are ``(*batch, S)``;
- packed: ``N`` samples of ``R`` rays in one flat tensor, ``ray_indices (N,)`` says which ray each sample
  belongs to. Samples of one ray are contiguous and ordered front to back (``ray_indices`` is sorted).

For sample ``i`` of a ray with interval ``[t_start_i, t_end_i]`` and density ``sigma_i >= 0``::

    delta_i = t_end_i - t_start_i
    alpha_i = 1 - exp(-sigma_i * delta_i)
    T_i     = prod_{j < i} (1 - alpha_j)  = exp(-sum_{j < i} sigma_j * delta_j)    (exclusive: T_0 = 1)
    w_i     = T_i * alpha_i

Early termination: with ``eps > 0`` every sample whose transmittance ``T_i < eps`` gets weight 0 (the
native compositor stops marching there; the references apply the same rule so the results agree).

Depth is the expected depth ``sum_i w_i * (t_start_i + t_end_i) / 2``; it is *not* divided by the opacity,
so rays that hit nothing have depth 0. A background colour is blended as ``rgb + (1 - opacity) * background``.
"""

from __future__ import annotations

import torch
from jaxtyping import Float, Int
from torch import Tensor

# Above this padded size (relative to N) the segmented cumsum switches from the padded layout to a global cumsum.
_PAD_BUDGET_FACTOR = 4
_PAD_BUDGET_MIN = 1 << 20


def alphas_from_sigmas(sigmas: Float[Tensor, "*shape"], deltas: Float[Tensor, "*shape"]) -> Float[Tensor, "*shape"]:
    """Opacity of each interval, ``alpha = 1 - exp(-sigma * delta)`` (computed with ``expm1`` for accuracy).

    Args:
        sigmas: densities, ``(*shape)``.
        deltas: interval lengths, ``(*shape)``.

    Returns:
        alphas in [0, 1], ``(*shape)``.
    """
    return -torch.expm1(-sigmas * deltas)


def chunk_starts_from_ray_indices(ray_indices: Int[Tensor, " N"], n_rays: int) -> tuple[Tensor, Tensor]:
    """Per-ray offsets of the packed layout.

    Args:
        ray_indices: sorted ray index of every sample, ``(N,)`` int64.
        n_rays: number of rays ``R``.

    Returns:
        ``chunk_starts (R,)`` and ``chunk_cnts (R,)`` (int64): the samples of ray ``r`` are
        ``[chunk_starts[r], chunk_starts[r] + chunk_cnts[r])``.
    """
    counts = torch.bincount(ray_indices, minlength=n_rays)  # (R,)
    starts = torch.cumsum(counts, 0) - counts  # (R,)
    return starts, counts


def _exclusive_segment_scan(values: Tensor, ray_indices: Tensor, n_rays: int, op: str) -> Tensor:
    """Exclusive segmented cumsum (``op="sum"``) or cumprod (``op="prod"``) of a packed layout."""
    n = values.shape[0]
    if n == 0:
        return values.clone()
    starts, counts = chunk_starts_from_ray_indices(ray_indices, n_rays)
    pos = torch.arange(n, device=values.device) - starts[ray_indices]  # (N,) position inside the ray
    identity = 0.0 if op == "sum" else 1.0
    s_max = int(counts.max())
    if n_rays * (s_max + 1) <= max(_PAD_BUDGET_FACTOR * n, _PAD_BUDGET_MIN):
        groups = [(torch.arange(n_rays, device=values.device), s_max)]  # one padded matrix for all rays
    else:  # very ragged rays: one padded matrix per class of lengths (2^(b-1), 2^b]
        length_class = torch.ceil(torch.log2(counts.clamp_min(1).double())).long()  # (R,)
        groups = [
            ((length_class == b).nonzero()[:, 0], 1 << b) for b in torch.unique(length_class[counts > 0]).tolist()
        ]
    out = values.new_zeros(n)
    for rays, width in groups:
        row_of_ray = torch.full((n_rays,), -1, dtype=torch.long, device=values.device)
        row_of_ray[rays] = torch.arange(rays.numel(), device=values.device)
        rows = row_of_ray[ray_indices]  # (N,) row of each sample, -1 outside this group
        sel = (rows >= 0).nonzero()[:, 0]
        padded = values.new_full((rays.numel(), width + 1), identity)  # (R_g, width + 1), column 0 = identity
        padded = padded.index_put((rows[sel], pos[sel] + 1), values[sel])
        scan = padded.cumsum(1) if op == "sum" else padded.cumprod(1)
        out = out.index_put((sel,), scan[rows[sel], pos[sel]])
    return out


def exclusive_segment_cumsum(
    values: Float[Tensor, " N"], ray_indices: Int[Tensor, " N"], n_rays: int
) -> Float[Tensor, " N"]:
    """Exclusive cumulative sum of ``values`` within each ray of a packed layout (differentiable).

    The samples are scattered into a padded ``(R, S_max + 1)`` matrix whose first column is zero, summed along
    rows and gathered back, so each ray's sum runs front to back in the sample order. Very ragged layouts (where
    that matrix would be much larger than ``N``) use one padded matrix per class of ray lengths.

    Args:
        values: per-sample values, ``(N,)``.
        ray_indices: sorted ray index of each sample, ``(N,)``.
        n_rays: number of rays ``R``.

    Returns:
        ``out[i] = sum of values[j]`` over earlier samples ``j`` of the same ray, ``(N,)``.
    """
    return _exclusive_segment_scan(values, ray_indices, n_rays, "sum")


def exclusive_segment_cumprod(
    values: Float[Tensor, " N"], ray_indices: Int[Tensor, " N"], n_rays: int
) -> Float[Tensor, " N"]:
    """Exclusive cumulative product of ``values`` within each ray of a packed layout (differentiable).

    Same layout handling as :func:`exclusive_segment_cumsum`.

    Args:
        values: per-sample values, ``(N,)``.
        ray_indices: sorted ray index of each sample, ``(N,)``.
        n_rays: number of rays ``R``.

    Returns:
        ``out[i] = product of values[j]`` over earlier samples ``j`` of the same ray (1 for the first), ``(N,)``.
    """
    return _exclusive_segment_scan(values, ray_indices, n_rays, "prod")


def _masked_weights(trans: Tensor, alphas: Tensor, eps: float) -> Tensor:
    weights = trans * alphas
    if eps > 0:
        weights = torch.where(trans >= eps, weights, torch.zeros_like(weights))
    return weights


def render_weights(
    sigmas: Float[Tensor, "*batch S"],
    t_starts: Float[Tensor, "*batch S"],
    t_ends: Float[Tensor, "*batch S"],
    eps: float = 0.0,
) -> tuple[Float[Tensor, "*batch S"], Float[Tensor, "*batch S"], Float[Tensor, "*batch S"]]:
    """Compositing weights of batched samples.

    Args:
        sigmas: non-negative densities, ``(*batch, S)``.
        t_starts: interval starts along each ray, ``(*batch, S)``.
        t_ends: interval ends, ``(*batch, S)``.
        eps: transmittance threshold of early termination (0 disables it).

    Returns:
        ``weights``, ``transmittance`` (exclusive) and ``alphas``, each ``(*batch, S)``.
    """
    alphas = -torch.expm1(-sigmas * (t_ends - t_starts))  # (*batch, S)
    keep = 1.0 - alphas
    shifted = torch.cat([torch.ones_like(keep[..., :1]), keep[..., :-1]], dim=-1)  # (*batch, S)
    trans = torch.cumprod(shifted, dim=-1)  # exclusive: T_0 = 1
    return _masked_weights(trans, alphas, eps), trans, alphas


def render_weights_packed(
    sigmas: Float[Tensor, " N"],
    t_starts: Float[Tensor, " N"],
    t_ends: Float[Tensor, " N"],
    ray_indices: Int[Tensor, " N"],
    n_rays: int,
    eps: float = 0.0,
) -> tuple[Float[Tensor, " N"], Float[Tensor, " N"], Float[Tensor, " N"]]:
    """Compositing weights of packed samples.

    Args:
        sigmas: non-negative densities, ``(N,)``.
        t_starts: interval starts, ``(N,)``.
        t_ends: interval ends, ``(N,)``.
        ray_indices: sorted ray index of each sample, ``(N,)``.
        n_rays: number of rays ``R``.
        eps: transmittance threshold of early termination (0 disables it).

    Returns:
        ``weights``, ``transmittance`` (exclusive) and ``alphas``, each ``(N,)``.
    """
    alphas = -torch.expm1(-sigmas * (t_ends - t_starts))  # (N,)
    trans = exclusive_segment_cumprod(1.0 - alphas, ray_indices, n_rays)  # (N,)
    return _masked_weights(trans, alphas, eps), trans, alphas


def accumulate_along_rays(
    weights: Float[Tensor, "*batch S"], values: Float[Tensor, "*batch S C"] | None = None
) -> Float[Tensor, "*batch C"]:
    """Weighted sum over the samples of each ray.

    Args:
        weights: ``(*batch, S)``.
        values: ``(*batch, S, C)``; ``None`` sums the weights (the opacity).

    Returns:
        ``(*batch, C)``, or ``(*batch,)`` when ``values`` is ``None``.
    """
    if values is None:
        return weights.sum(dim=-1)
    return (weights[..., None] * values).sum(dim=-2)


def accumulate_along_rays_packed(
    weights: Float[Tensor, " N"],
    ray_indices: Int[Tensor, " N"],
    n_rays: int,
    values: Float[Tensor, "N C"] | None = None,
) -> Float[Tensor, "R C"]:
    """Weighted sum over the samples of each ray of a packed layout (a segment sum with ``index_add``).

    Args:
        weights: ``(N,)``.
        ray_indices: ray index of each sample, ``(N,)``.
        n_rays: number of rays ``R``.
        values: ``(N, C)``; ``None`` sums the weights (the opacity).

    Returns:
        ``(R, C)``, or ``(R,)`` when ``values`` is ``None``.
    """
    if values is None:
        return weights.new_zeros(n_rays).index_add(0, ray_indices, weights)
    src = weights[:, None] * values  # (N, C)
    return src.new_zeros(n_rays, src.shape[1]).index_add(0, ray_indices, src)


def apply_background(
    rgb: Float[Tensor, "*batch C"],
    opacity: Float[Tensor, "*batch"],
    background: Float[Tensor, "*batch C"] | Float[Tensor, " C"] | float | None,
) -> Float[Tensor, "*batch C"]:
    """Blend a background behind the rendered colour: ``rgb + (1 - opacity) * background``.

    Args:
        rgb: accumulated colour, ``(*batch, C)``.
        opacity: accumulated weight, ``(*batch,)``.
        background: a colour ``(C,)``, per-ray colours ``(*batch, C)``, a scalar, or ``None`` (no blending).

    Returns:
        ``(*batch, C)``.
    """
    if background is None:
        return rgb
    if not torch.is_tensor(background):
        background = torch.as_tensor(background, dtype=rgb.dtype, device=rgb.device)
    return rgb + (1.0 - opacity)[..., None] * background.to(rgb)


def volume_render(
    sigmas: Float[Tensor, "*batch S"],
    rgbs: Float[Tensor, "*batch S C"],
    t_starts: Float[Tensor, "*batch S"],
    t_ends: Float[Tensor, "*batch S"],
    background: Float[Tensor, " C"] | float | None = None,
    eps: float = 0.0,
) -> tuple[Float[Tensor, "*batch C"], Float[Tensor, "*batch"], Float[Tensor, "*batch"], Float[Tensor, "*batch S"]]:
    """Render batched samples (pure PyTorch, differentiable by autograd).

    Args:
        sigmas: non-negative densities, ``(*batch, S)``.
        rgbs: colours (or any features), ``(*batch, S, C)``.
        t_starts: interval starts, ``(*batch, S)``.
        t_ends: interval ends, ``(*batch, S)``.
        background: colour blended where the opacity is below 1 (see :func:`apply_background`).
        eps: transmittance threshold of early termination (0 disables it).

    Returns:
        ``rgb (*batch, C)``, ``opacity (*batch,)``, ``depth (*batch,)`` (expected depth, not normalised) and
        ``weights (*batch, S)``.
    """
    weights, _, _ = render_weights(sigmas, t_starts, t_ends, eps=eps)
    rgb = accumulate_along_rays(weights, rgbs)
    opacity = accumulate_along_rays(weights)
    depth = accumulate_along_rays(weights, ((t_starts + t_ends) * 0.5)[..., None])[..., 0]
    return apply_background(rgb, opacity, background), opacity, depth, weights


def volume_render_packed(
    sigmas: Float[Tensor, " N"],
    rgbs: Float[Tensor, "N C"],
    t_starts: Float[Tensor, " N"],
    t_ends: Float[Tensor, " N"],
    ray_indices: Int[Tensor, " N"],
    n_rays: int,
    background: Float[Tensor, " C"] | float | None = None,
    eps: float = 0.0,
) -> tuple[Float[Tensor, "R C"], Float[Tensor, " R"], Float[Tensor, " R"], Float[Tensor, " N"]]:
    """Render packed samples (pure PyTorch, differentiable by autograd).

    Args:
        sigmas: non-negative densities, ``(N,)``.
        rgbs: colours (or any features), ``(N, C)``.
        t_starts: interval starts, ``(N,)``.
        t_ends: interval ends, ``(N,)``.
        ray_indices: sorted ray index of each sample, ``(N,)``.
        n_rays: number of rays ``R``.
        background: colour blended where the opacity is below 1.
        eps: transmittance threshold of early termination (0 disables it).

    Returns:
        ``rgb (R, C)``, ``opacity (R,)``, ``depth (R,)`` and ``weights (N,)``.
    """
    weights, _, _ = render_weights_packed(sigmas, t_starts, t_ends, ray_indices, n_rays, eps=eps)
    rgb = accumulate_along_rays_packed(weights, ray_indices, n_rays, rgbs)
    opacity = accumulate_along_rays_packed(weights, ray_indices, n_rays)
    depth = accumulate_along_rays_packed(weights * ((t_starts + t_ends) * 0.5), ray_indices, n_rays)
    return apply_background(rgb, opacity, background), opacity, depth, weights
