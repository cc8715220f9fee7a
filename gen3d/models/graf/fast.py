"""Fast rendering of fixed generated scenes through one occupancy grid per sample (batched grids).

For a batch of latent codes the density field of every scene is probed on a grid
(:class:`renderers.OccupancyGrid`, B grids at once); rays are then marched only through occupied cells
(:func:`renderers.raymarch`, with empty-space skipping and early termination) and the packed samples are
evaluated with :meth:`RadianceField.forward_packed` and composited. This is the path for high-resolution
images and turntables of trained generators; :meth:`Generator.render` is the plain (dense) reference.

The box of every scene is the cube of half-side :attr:`Generator.scene_bound`: the field's own cube (triplane,
voxel fields), else ``max_radius - near``, the ball the plain renderer can reach in front of the cameras.
Density outside the box (GRAF may paint a backdrop behind the object) is not rendered, so this path suits
generators with a constant background (``"white"`` / ``"black"`` / grey), not ``"last"``.
"""

from __future__ import annotations

import torch
from jaxtyping import Float
from torch import Tensor

import renderers
from gen3d.models.graf.generator import Generator
from gen3d.models.graf.marched import scene_aabb


@torch.no_grad()
def build_occupancy_grid(
    generator: Generator,
    z: Float[Tensor, "B Z"],
    resolution: int = 64,
    threshold: float = 0.01,
    n_samples_per_cell: int = 2,
    seed: int = 0,
) -> renderers.OccupancyGrid:
    """One occupancy grid per latent code, from the generator's density field.

    Args:
        generator: the generator whose field is probed.
        z: latent codes (B, Z).
        resolution: cells per axis.
        threshold: density above which a cell is occupied (a skipped cell of density d and length l loses
            at most ``1 - exp(-d l)`` of transmittance).
        n_samples_per_cell: jittered density probes per cell (their maximum is kept).
        seed: seed of the jitter.

    Returns:
        An :class:`renderers.OccupancyGrid` with B scenes on ``z``'s device.
    """
    grid = renderers.OccupancyGrid(z.shape[0], resolution, aabb=scene_aabb(generator)).to(z.device)
    gen = torch.Generator(device="cpu").manual_seed(seed)
    grid.update(
        lambda x: generator.field.density(x.to(z.dtype), z),
        ema_decay=0.0,
        threshold=threshold,
        n_samples_per_cell=n_samples_per_cell,
        generator=gen,
    )
    return grid


@torch.no_grad()
def render_fast(
    generator: Generator,
    z: Float[Tensor, "B Z"],
    c2w: Float[Tensor, "B 4 4"],
    grid: renderers.OccupancyGrid,
    size: int | None = None,
    step: float | None = None,
    chunk_rays: int = 1 << 16,
) -> dict[str, Tensor]:
    """Render full images of B scenes through their occupancy grids.

    Args:
        generator: the generator (its field, camera model, background and compositing impl are used).
        z: latent codes (B, Z), the ones ``grid`` was built from; or one code (1, Z) seen by all B cameras.
        c2w: camera poses (B, 4, 4).
        grid: occupancy grids from :func:`build_occupancy_grid`.
        size: image side (default the generator's ``image_size``).
        step: marching step (default: the grid's cell edge).
        chunk_rays: rays marched at once.

    Returns:
        ``rgb`` (B, 3, H, W) in [-1, 1], ``opacity`` (B, H, W), ``depth`` (B, H, W).
    """
    if generator.background == "last":
        raise ValueError("render_fast needs a constant background; use Generator.render for background='last'")
    size = size or generator.image_size
    B = c2w.shape[0]
    if grid.n_scenes != z.shape[0] or z.shape[0] not in (1, B):
        raise ValueError(
            f"need one code per grid scene and per camera (or one for all): {grid.n_scenes} scenes, "
            f"{z.shape[0]} codes, {B} cameras"
        )
    c2w = c2w.to(z)
    origins, dirs = renderers.get_rays(size, size, generator.intrinsics(size, device=z.device), c2w)
    origins, dirs = origins.reshape(-1, 3), dirs.reshape(-1, 3)  # (B*H*W, 3)
    ray_camera = torch.arange(B, device=z.device).repeat_interleave(size * size)  # (B*H*W,)
    ray_scene = ray_camera if z.shape[0] == B else torch.zeros_like(ray_camera)
    near, far = generator._near_far(c2w)  # (B, 1)
    near, far = near[ray_camera, 0], far[ray_camera, 0]  # (B*H*W,)
    bg = generator.background_value(origins[:1, None])  # constant background

    def field_fn(x: Tensor, d: Tensor, scene: Tensor) -> tuple[Tensor, Tensor]:
        return generator.field.forward_packed(x, d, z, scene)

    rgb, opacity, depth = [], [], []
    for i in range(0, origins.shape[0], chunk_rays):
        sl = slice(i, i + chunk_rays)
        c, o, dep = grid.render(
            field_fn,
            origins[sl],
            dirs[sl],
            ray_scene[sl],
            step=step,
            near=near[sl],
            far=far[sl],
            background=bg,
            eps=generator.eps,
            impl=generator.composite_impl,
        )
        rgb.append(c)
        opacity.append(o)
        depth.append(dep)
    rgb_t = torch.cat(rgb).reshape(B, size, size, 3).permute(0, 3, 1, 2) * 2 - 1
    return {
        "rgb": rgb_t,
        "opacity": torch.cat(opacity).reshape(B, size, size),
        "depth": torch.cat(depth).reshape(B, size, size),
    }
