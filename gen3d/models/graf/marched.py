"""Rendering generated scenes through the batched ray marcher, with gradients: the GAN's marched training path.

For a batch of B codes, :func:`render_rays_marched`

1. computes each scene's conditioning once (:meth:`RadianceField.condition`: for triplane and voxel fields, the
   feature volume) with gradients;
2. builds one occupancy grid per scene (:class:`renderers.OccupancyGrid`, B grids in one object) from the
   field's density at one jittered point per cell, without gradients. Every batch brings new codes, so the grids
   are rebuilt for every batch (there is no running maximum to keep across batches of different scenes);
3. marches all rays of all B scenes in one call (:func:`renderers.raymarch`) through the occupied cells at a
   fixed step, the start of each ray jittered by a fraction of a step when ``perturb`` (stratified sampling on
   the march grid);
4. evaluates the density of the marched samples without gradients and drops those behind an opaque surface
   (transmittance below the generator's ``eps``: nerfacc's early stop), so that only visible samples pay for
   the gradient pass;
5. evaluates the field on the remaining packed samples with gradients and composites them
   (:func:`renderers.composite`, packed, native kernel when built).

Empty space and occluded space cost one gradient-free density probe instead of a full forward and backward.
Gradients reach the field (and its feature volume) through the densities and colours of the kept samples; the
sample positions are constants, as in every NeRF sampler.
"""

from __future__ import annotations

from typing import Any

import torch
from jaxtyping import Float
from torch import Tensor

import renderers

# ``generator`` below is a :class:`gen3d.models.graf.generator.Generator` (which imports this module, so it is not
# imported here): its field, scene_bound, sampler settings, eps, compositing impl and background are read.
Generator = Any

STEPS_PER_SIDE = 32  # default marching step: the scene box's side / 32


def scene_aabb(generator: Generator) -> tuple[float, float, float, float, float, float]:
    """The cube ``[-b, b]^3`` with ``b = generator.scene_bound``."""
    h = generator.scene_bound
    return (-h, -h, -h, h, h, h)


def march_step(generator: Generator) -> float:
    """The marched path's interval length: ``generator.march_step`` or the box side / :data:`STEPS_PER_SIDE`."""
    return generator.march_step or 2 * generator.scene_bound / STEPS_PER_SIDE


def render_rays_marched(
    generator: Generator,
    z: Float[Tensor, "B Z"],
    origins: Float[Tensor, "B R 3"],
    dirs: Float[Tensor, "B R 3"],
    near: Float[Tensor, "B 1"] | float,
    far: Float[Tensor, "B 1"] | float,
    perturb: bool = True,
    noise_std: float = 0.0,
    rng: torch.Generator | None = None,
) -> dict[str, Tensor]:
    """Volume-render R rays of each of B scenes through per-scene occupancy grids (see the module docstring).

    Same arguments and outputs as :meth:`Generator.render_rays`: ``rgb`` (B, R, 3) in [0, 1], ``opacity``
    (B, R) and ``depth`` (B, R).
    """
    field = generator.field
    B, R, _ = origins.shape
    device, dtype = origins.device, origins.dtype
    cond = field.condition(z)
    frozen = tuple(c.detach() for c in cond)
    grid = renderers.OccupancyGrid(B, generator.grid_resolution, aabb=scene_aabb(generator)).to(device)
    with torch.no_grad():
        batched = field.layout(frozen)
        grid.update(
            lambda x: field.query_density(x.to(dtype), batched),
            ema_decay=0.0,
            threshold=generator.grid_threshold,
            generator=rng,
        )
    o, d = origins.reshape(-1, 3), dirs.reshape(-1, 3)
    ray_scene = torch.arange(B, device=device).repeat_interleave(R)  # (B*R,)
    near_r = torch.as_tensor(near, dtype=dtype, device=device).expand(B, 1).expand(B, R).reshape(-1)
    far_r = torch.as_tensor(far, dtype=dtype, device=device).expand(B, 1).expand(B, R).reshape(-1)
    step = march_step(generator)
    if perturb:  # shift each ray's first interval by a random fraction of a step
        t_enter = renderers.ray_aabb_intersect(o, d, grid.aabbs[0].to(dtype))[0]
        jitter = torch.rand(
            o.shape[0], generator=rng, dtype=dtype, device=rng.device if rng is not None else device
        ).to(device)
        near_r = torch.maximum(near_r, t_enter) + jitter * step
    ray_idx, t_s, t_e = grid.march(o, d, ray_scene, step=step, near=near_r, far=far_r, impl=generator.composite_impl)
    x = o[ray_idx] + (0.5 * (t_s + t_e))[:, None] * d[ray_idx]  # (N, 3) interval midpoints
    scene = ray_scene[ray_idx]
    with torch.no_grad():  # drop the samples an opaque surface hides
        sigma0 = field.query_density(x, field.layout(frozen, scene))
        trans = renderers.render_weights_packed(sigma0, t_s, t_e, ray_idx, B * R)[1]
        keep = trans >= generator.eps
    ray_idx, t_s, t_e, x, scene = ray_idx[keep], t_s[keep], t_e[keep], x[keep], scene[keep]
    sigma, rgb = field.query(x, d[ray_idx], field.layout(cond, scene), noise_std)
    background = generator.background_value(rgb[:1, None])
    out_rgb, opacity, depth = renderers.composite(
        sigma,
        rgb,
        t_s,
        t_e,
        ray_indices=ray_idx,
        n_rays=B * R,
        background=background,
        eps=generator.eps,
        impl=generator.composite_impl,
    )
    return {"rgb": out_rgb.reshape(B, R, 3), "opacity": opacity.reshape(B, R), "depth": depth.reshape(B, R)}
