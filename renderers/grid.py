"""Occupancy grids for B scenes at once, and fast rendering of fixed radiance fields through them.

Each scene has a box (AABB) divided into ``X x Y x Z`` cells. :meth:`OccupancyGrid.update` evaluates the
density at jittered points in every cell, keeps a decaying running maximum per cell and marks the cells whose
value exceeds a threshold as occupied. :meth:`OccupancyGrid.render` marches rays through the occupied cells
only (:func:`renderers.ops.raymarch`), evaluates the field on the resulting packed samples and composites them
(:func:`renderers.ops.composite`): the fast path for rendering a trained or generated field at high resolution.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from jaxtyping import Float, Int
from torch import Tensor, nn

from renderers.ops.composite import DEFAULT_EPS, composite
from renderers.ops.raymarch import pack_bits, raymarch

DensityFn = Callable[[Tensor], Tensor]
FieldFn = Callable[[Tensor, Tensor, Tensor], tuple[Tensor, Tensor]]


class OccupancyGrid(nn.Module):
    """B occupancy grids (one per scene), each over its own box.

    Before the first :meth:`update` every cell is occupied. Buffers (saved in ``state_dict``):
    ``aabbs (B, 6)``, ``density (B, X, Y, Z)`` (running maximum of the density), ``occupancy (B, X, Y, Z)``
    bool and ``bits (B, ceil(X * Y * Z / 8))`` uint8, the packed form used by the ray marcher.

    Args:
        n_scenes: number of scenes ``B``.
        resolution: cells per axis, an int or ``(X, Y, Z)``.
        aabb: ``(xmin, ymin, zmin, xmax, ymax, zmax)`` shared by all scenes, or one per scene ``(B, 6)``.

    Example:
        >>> grid = OccupancyGrid(2, 64, aabb=(-1, -1, -1, 1, 1, 1))
        >>> grid.update(lambda x: (x.norm(dim=-1) < 0.5).float() * 10)  # x: (B, M, 3)
        >>> rgb, opacity, depth = grid.render(field_fn, origins, dirs, ray_scene, step=1 / 64)
    """

    def __init__(
        self,
        n_scenes: int,
        resolution: int | tuple[int, int, int],
        aabb: Float[Tensor, "6"] | Float[Tensor, "B 6"] | tuple[float, ...] = (-1.0, -1.0, -1.0, 1.0, 1.0, 1.0),
    ):
        super().__init__()
        res = (resolution,) * 3 if isinstance(resolution, int) else tuple(int(r) for r in resolution)
        if len(res) != 3 or min(res) < 1:
            raise ValueError(f"resolution must be a positive int or three of them, got {resolution}")
        aabbs = torch.as_tensor(aabb, dtype=torch.float32)
        if aabbs.dim() == 1:
            aabbs = aabbs[None].expand(n_scenes, 6)
        if aabbs.shape != (n_scenes, 6):
            raise ValueError(f"aabb must be (6,) or ({n_scenes}, 6), got {tuple(aabbs.shape)}")
        if bool((aabbs[:, 3:] <= aabbs[:, :3]).any()):
            raise ValueError("every aabb must have max > min on all axes")
        self.resolution: tuple[int, int, int] = res
        self.register_buffer("aabbs", aabbs.clone().contiguous())
        self.register_buffer("density", torch.zeros(n_scenes, *res))
        self.register_buffer("occupancy", torch.ones(n_scenes, *res, dtype=torch.bool))
        self.register_buffer("bits", pack_bits(self.occupancy))

    @property
    def n_scenes(self) -> int:
        """Number of scenes ``B``."""
        return self.aabbs.shape[0]

    @property
    def cell_size(self) -> Float[Tensor, "B 3"]:
        """Edge lengths of the cells of each scene, ``(B, 3)``."""
        res = torch.tensor(self.resolution, dtype=self.aabbs.dtype, device=self.aabbs.device)
        return (self.aabbs[:, 3:] - self.aabbs[:, :3]) / res

    def set_occupancy(self, occupancy: torch.Tensor) -> None:
        """Replace the occupancy (e.g. from a voxelised shape), ``(B, X, Y, Z)`` bool."""
        if occupancy.shape != self.occupancy.shape:
            raise ValueError(f"occupancy must be {tuple(self.occupancy.shape)}, got {tuple(occupancy.shape)}")
        self.occupancy = occupancy.to(self.occupancy.device, torch.bool).contiguous()
        self.bits = pack_bits(self.occupancy)

    @torch.no_grad()
    def update(
        self,
        density_fn: DensityFn,
        ema_decay: float = 0.95,
        threshold: float = 0.01,
        n_samples_per_cell: int = 1,
        generator: torch.Generator | None = None,
        chunk_size: int = 1 << 16,
    ) -> None:
        """Re-estimate the occupancy from a density field.

        For every cell, the density is evaluated at ``n_samples_per_cell`` points uniformly jittered inside the
        cell and the maximum is taken; the running value becomes ``max(ema_decay * old, new)`` (the
        decaying-maximum rule of Instant-NGP), and cells with a value above ``threshold`` are occupied.

        Args:
            density_fn: maps positions ``(B, M, 3)`` (scene b's points in row b) to densities ``(B, M)`` or
                ``(B, M, 1)``.
            ema_decay: decay of the running maximum (0 keeps only the new estimate).
            threshold: density above which a cell is occupied.
            n_samples_per_cell: jittered evaluations per cell.
            generator: random generator of the jitter.
            chunk_size: cells evaluated per call of ``density_fn``.
        """
        device, dtype = self.aabbs.device, self.aabbs.dtype
        res = torch.tensor(self.resolution, device=device)
        n_cells = math.prod(self.resolution)
        lo = self.aabbs[:, None, :3]  # (B, 1, 3)
        size = self.aabbs[:, None, 3:] - self.aabbs[:, None, :3]
        fresh = torch.zeros(self.n_scenes, n_cells, dtype=dtype, device=device)  # (B, L)
        for start in range(0, n_cells, chunk_size):
            linear = torch.arange(start, min(start + chunk_size, n_cells), device=device)  # (M,)
            ijk = torch.stack([linear // (res[1] * res[2]), (linear // res[2]) % res[1], linear % res[2]], dim=-1).to(
                dtype
            )  # (M, 3)
            for _ in range(n_samples_per_cell):
                jitter = torch.rand(
                    self.n_scenes,
                    linear.numel(),
                    3,
                    generator=generator,
                    dtype=dtype,
                    device=_generator_device(generator, device),
                ).to(device)
                x = lo + (ijk[None] + jitter) / res.to(dtype) * size  # (B, M, 3)
                sigma = density_fn(x).reshape(self.n_scenes, linear.numel()).to(dtype)
                fresh[:, start : start + linear.numel()] = torch.maximum(
                    fresh[:, start : start + linear.numel()], sigma
                )
        self.density = torch.maximum(self.density * ema_decay, fresh.reshape(self.density.shape))
        self.occupancy = self.density > threshold
        self.bits = pack_bits(self.occupancy)

    def march(
        self,
        origins: Float[Tensor, "R 3"],
        dirs: Float[Tensor, "R 3"],
        ray_scene: Int[Tensor, " R"] | None = None,
        step: float | None = None,
        near: Float[Tensor, " R"] | float = 0.0,
        far: Float[Tensor, " R"] | float = math.inf,
        max_samples: int | None = None,
        impl: str = "auto",
    ) -> tuple[Int[Tensor, " N"], Float[Tensor, " N"], Float[Tensor, " N"]]:
        """Packed sample intervals of the rays in the occupied cells (see :func:`renderers.ops.raymarch`).

        Args:
            origins: ray origins, ``(R, 3)``.
            dirs: unit ray directions, ``(R, 3)``.
            ray_scene: scene of each ray, ``(R,)``; default all 0.
            step: interval length; default the smallest cell edge.
            near: smallest ``t``.
            far: largest ``t``.
            max_samples: cap of intervals per ray.
            impl: ``"auto"``, ``"native"`` or ``"torch"``.

        Returns:
            ``ray_indices (N,)``, ``t_starts (N,)``, ``t_ends (N,)``.
        """
        if step is None:
            step = float(self.cell_size.min())
        aabbs = self.aabbs.to(origins.dtype)
        return raymarch(
            origins,
            dirs,
            aabbs,
            self.bits,
            step,
            ray_scene=ray_scene,
            near=near,
            far=far,
            max_samples=max_samples,
            resolution=self.resolution,
            impl=impl,
        )

    def render(
        self,
        field_fn: FieldFn,
        origins: Float[Tensor, "R 3"],
        dirs: Float[Tensor, "R 3"],
        ray_scene: Int[Tensor, " R"] | None = None,
        step: float | None = None,
        near: Float[Tensor, " R"] | float = 0.0,
        far: Float[Tensor, " R"] | float = math.inf,
        max_samples: int | None = None,
        background: Float[Tensor, " C"] | float | None = None,
        eps: float = DEFAULT_EPS,
        chunk_size: int = 1 << 18,
        impl: str = "auto",
    ) -> tuple[Float[Tensor, "R C"], Float[Tensor, " R"], Float[Tensor, " R"]]:
        """Render rays: march the occupied cells, evaluate the field on the samples, composite (packed).

        Args:
            field_fn: maps sample midpoints ``(N, 3)``, their ray directions ``(N, 3)`` and scenes ``(N,)`` to
                ``sigmas (N,)`` (or ``(N, 1)``) and colours ``(N, C)``.
            origins: ray origins, ``(R, 3)``.
            dirs: unit ray directions, ``(R, 3)``.
            ray_scene: scene of each ray, ``(R,)``; default all 0.
            step: interval length; default the smallest cell edge.
            near: smallest ``t``.
            far: largest ``t``.
            max_samples: cap of intervals per ray.
            background: colour behind the scene.
            eps: transmittance threshold of early termination.
            chunk_size: samples per call of ``field_fn``.
            impl: ``"auto"``, ``"native"`` or ``"torch"`` for both marching and compositing.

        Returns:
            ``rgb (R, C)``, ``opacity (R,)``, ``depth (R,)`` (see :func:`renderers.ops.composite`).
        """
        n_rays = origins.shape[0]
        if ray_scene is None:
            ray_scene = torch.zeros(n_rays, dtype=torch.long, device=origins.device)
        ray_indices, t_starts, t_ends = self.march(
            origins, dirs, ray_scene, step=step, near=near, far=far, max_samples=max_samples, impl=impl
        )
        sigmas, rgbs = [], []
        for start in range(0, max(ray_indices.numel(), 1), chunk_size):
            idx = ray_indices[start : start + chunk_size]  # (M,)
            mid = (t_starts[start : start + chunk_size] + t_ends[start : start + chunk_size]) * 0.5
            x = origins[idx] + mid[:, None] * dirs[idx]  # (M, 3)
            sigma, rgb = field_fn(x, dirs[idx], ray_scene[idx])
            sigmas.append(sigma.reshape(-1))
            rgbs.append(rgb.reshape(idx.numel(), -1))
        return composite(
            torch.cat(sigmas),
            torch.cat(rgbs),
            t_starts,
            t_ends,
            ray_indices=ray_indices,
            n_rays=n_rays,
            background=background,
            eps=eps,
            impl=impl,
        )


def _generator_device(generator: torch.Generator | None, default: torch.device) -> torch.device:
    """Device on which ``generator`` draws (``default`` when there is none)."""
    return default if generator is None else generator.device
