"""Where to sample along rays: ray-box intersection, stratified samples, hierarchical (inverse-CDF) samples.

Sample positions are distances ``t`` along each ray (``x = origin + t * direction``). Stratified samples are
turned into intervals for volume rendering with :func:`samples_to_intervals`, whose intervals tile
``[near, far]`` exactly.
"""

from __future__ import annotations

import torch
from jaxtyping import Bool, Float
from torch import Tensor


def ray_aabb_intersect(
    origins: Float[Tensor, "*batch 3"],
    dirs: Float[Tensor, "*batch 3"],
    aabb: Float[Tensor, "*batch 6"] | Float[Tensor, "6"],
) -> tuple[Float[Tensor, "*batch"], Float[Tensor, "*batch"], Bool[Tensor, "*batch"]]:
    """Slab test of rays against axis-aligned boxes.

    An axis along which the direction is exactly 0 either contains the origin (no constraint) or misses the
    box. The same arithmetic is used by the ray marcher, native and reference.

    Args:
        origins: ray origins, ``(*batch, 3)``.
        dirs: ray directions (any length), ``(*batch, 3)``.
        aabb: ``(xmin, ymin, zmin, xmax, ymax, zmax)``, ``(6,)`` or broadcastable ``(*batch, 6)``.

    Returns:
        ``t_near``, ``t_far`` (the line's entry and exit, ``t_near`` may be negative when the origin is inside)
        and ``hit = t_far > t_near and t_far > 0`` (the half-line meets the box), each ``(*batch,)``.
    """
    lo, hi = aabb[..., :3], aabb[..., 3:]
    t1 = (lo - origins) / dirs  # (*batch, 3)
    t2 = (hi - origins) / dirs
    t_lo = torch.minimum(t1, t2)
    t_hi = torch.maximum(t1, t2)
    parallel = dirs == 0
    if bool(parallel.any()):
        inside = (lo <= origins) & (origins <= hi)
        inf = torch.full_like(t_lo, float("inf"))
        t_lo = torch.where(parallel, torch.where(inside, -inf, inf), t_lo)
        t_hi = torch.where(parallel, torch.where(inside, inf, -inf), t_hi)
    t_near = t_lo.amax(dim=-1)
    t_far = t_hi.amin(dim=-1)
    hit = (t_far > t_near) & (t_far > 0)
    return t_near, t_far, hit


def _as_tensor(x: Tensor | float, like: Tensor | None, dtype, device) -> Tensor:
    if torch.is_tensor(x):
        return x
    if like is not None:
        return torch.as_tensor(x, dtype=like.dtype, device=like.device)
    return torch.as_tensor(x, dtype=dtype or torch.get_default_dtype(), device=device)


def stratified_samples(
    near: Float[Tensor, "*batch"] | float,
    far: Float[Tensor, "*batch"] | float,
    n_samples: int,
    perturb: bool = True,
    generator: torch.Generator | None = None,
    batch_shape: tuple[int, ...] | torch.Size = (),
    dtype: torch.dtype | None = None,
    device: torch.device | str | None = None,
) -> Float[Tensor, "*batch S"]:
    """Stratified sample positions in ``[near, far]``: one (jittered) sample in each of ``S`` equal bins.

    Args:
        near: start of each ray's range, a float or a tensor broadcastable to ``batch_shape``.
        far: end of each ray's range, likewise.
        n_samples: number of samples ``S`` per ray.
        perturb: jitter each sample uniformly in its bin; ``False`` puts it at the bin centre.
        generator: random generator for the jitter (reproducible sampling).
        batch_shape: extra leading shape, broadcast with those of ``near`` and ``far``.
        dtype: dtype when both ``near`` and ``far`` are floats.
        device: device when both ``near`` and ``far`` are floats.

    Returns:
        sorted sample positions ``t``, ``(*batch, S)``.
    """
    like = near if torch.is_tensor(near) else far if torch.is_tensor(far) else None
    near_t = _as_tensor(near, like, dtype, device)
    far_t = _as_tensor(far, like, dtype, device)
    shape = torch.broadcast_shapes(near_t.shape, far_t.shape, tuple(batch_shape))
    near_t = near_t.expand(shape)[..., None]  # (*batch, 1)
    far_t = far_t.expand(shape)[..., None]
    if perturb:
        u = torch.rand((*shape, n_samples), generator=generator, dtype=near_t.dtype, device=near_t.device)
    else:
        u = torch.full((*shape, n_samples), 0.5, dtype=near_t.dtype, device=near_t.device)
    k = torch.arange(n_samples, dtype=near_t.dtype, device=near_t.device)
    frac = (k + u) / n_samples  # (*batch, S) in [0, 1)
    return near_t + (far_t - near_t) * frac


def aabb_stratified_samples(
    origins: Float[Tensor, "*batch 3"],
    dirs: Float[Tensor, "*batch 3"],
    aabb: Float[Tensor, "*batch 6"] | Float[Tensor, "6"],
    n_samples: int,
    near: float = 0.0,
    perturb: bool = True,
    generator: torch.Generator | None = None,
) -> tuple[Float[Tensor, "*batch S"], Float[Tensor, "*batch"], Float[Tensor, "*batch"], Bool[Tensor, "*batch"]]:
    """Stratified samples inside each ray's box interval ``[max(t_near, near), t_far]``.

    Rays that miss the box get the empty range ``[0, 0]``, so their intervals have zero length and render
    nothing.

    Args:
        origins: ray origins, ``(*batch, 3)``.
        dirs: ray directions, ``(*batch, 3)``.
        aabb: ``(6,)`` or ``(*batch, 6)``.
        n_samples: number of samples ``S`` per ray.
        near: smallest ``t`` allowed (e.g. 0 to ignore the box behind the origin).
        perturb: jitter samples inside their bins.
        generator: random generator for the jitter.

    Returns:
        ``t (*batch, S)``, the range ``t_min (*batch,)``, ``t_max (*batch,)`` and ``hit (*batch,)``.
    """
    t_near, t_far, _ = ray_aabb_intersect(origins, dirs, aabb)
    t_min = torch.clamp(t_near, min=near)
    hit = t_far > t_min
    t_min = torch.where(hit, t_min, torch.zeros_like(t_min))
    t_max = torch.where(hit, t_far, torch.zeros_like(t_far))
    t = stratified_samples(t_min, t_max, n_samples, perturb=perturb, generator=generator)
    return t, t_min, t_max, hit


def samples_to_intervals(
    t: Float[Tensor, "*batch S"],
    near: Float[Tensor, "*batch"] | float,
    far: Float[Tensor, "*batch"] | float,
) -> tuple[Float[Tensor, "*batch S"], Float[Tensor, "*batch S"]]:
    """Intervals around sorted sample positions: boundaries at the midpoints between neighbours.

    The first interval starts at ``near`` and the last ends at ``far``, so the intervals tile ``[near, far]``.

    Args:
        t: sorted sample positions, ``(*batch, S)``.
        near: range start, a float or ``(*batch,)``.
        far: range end, a float or ``(*batch,)``.

    Returns:
        ``t_starts`` and ``t_ends``, each ``(*batch, S)``.
    """
    near_t = torch.as_tensor(near, dtype=t.dtype, device=t.device).expand(t.shape[:-1])[..., None]
    far_t = torch.as_tensor(far, dtype=t.dtype, device=t.device).expand(t.shape[:-1])[..., None]
    mids = 0.5 * (t[..., 1:] + t[..., :-1])  # (*batch, S-1)
    t_starts = torch.cat([near_t, mids], dim=-1)
    t_ends = torch.cat([mids, far_t], dim=-1)
    return t_starts, t_ends


def sample_pdf(
    bins: Float[Tensor, "*batch S1"],
    weights: Float[Tensor, "*batch S"],
    n_samples: int,
    deterministic: bool = False,
    generator: torch.Generator | None = None,
    padding: float = 1e-5,
) -> Float[Tensor, "*batch n"]:
    """Hierarchical sampling: draw positions from the piecewise-constant pdf given by coarse weights.

    Bin ``i`` spans ``[bins[i], bins[i + 1]]`` and has probability proportional to ``weights[i] + padding``;
    inside a bin the density is uniform (the CDF is piecewise linear). Samples are drawn by inverting the CDF
    at ``u ~ U[0, 1)`` (``deterministic``: at the quantiles ``(k + 0.5) / n``). Not differentiable: the
    inputs are detached.

    Args:
        bins: sorted bin edges, ``(*batch, S + 1)``.
        weights: non-negative bin weights (e.g. coarse volume-rendering weights), ``(*batch, S)``.
        n_samples: number of samples ``n`` per ray.
        deterministic: use evenly spaced quantiles instead of random ones (for tests and evaluation).
        generator: random generator for the quantiles.
        padding: added to every weight so that empty rays sample uniformly (0 for the exact pdf).

    Returns:
        sorted samples, ``(*batch, n)``.
    """
    bins = bins.detach()
    weights = weights.detach().clamp_min(0) + padding  # (*batch, S)
    total = weights.sum(dim=-1, keepdim=True)
    # A ray whose weights are all zero (and no padding) samples uniformly.
    weights = torch.where(total > 0, weights, torch.ones_like(weights))
    pdf = weights / weights.sum(dim=-1, keepdim=True)
    cdf = torch.cumsum(pdf, dim=-1)
    cdf = torch.cat([torch.zeros_like(cdf[..., :1]), cdf], dim=-1)  # (*batch, S + 1)
    cdf[..., -1] = 1.0
    batch = cdf.shape[:-1]
    if deterministic:
        u = (torch.arange(n_samples, dtype=cdf.dtype, device=cdf.device) + 0.5) / n_samples
        u = u.expand(*batch, n_samples).contiguous()
    else:
        u = torch.rand((*batch, n_samples), generator=generator, dtype=cdf.dtype, device=cdf.device)
        u = torch.sort(u, dim=-1).values
    # Bin i holds u when cdf[i] <= u < cdf[i + 1].
    idx = torch.searchsorted(cdf.contiguous(), u, right=True)  # (*batch, n) in [1, S + 1]
    below = (idx - 1).clamp(0, weights.shape[-1] - 1)
    above = below + 1
    cdf_lo, cdf_hi = torch.gather(cdf, -1, below), torch.gather(cdf, -1, above)
    bin_lo, bin_hi = torch.gather(bins, -1, below), torch.gather(bins, -1, above)
    denom = cdf_hi - cdf_lo
    frac = torch.where(denom > 0, (u - cdf_lo) / torch.where(denom > 0, denom, torch.ones_like(denom)), 0.5)
    return bin_lo + frac.clamp(0, 1) * (bin_hi - bin_lo)
