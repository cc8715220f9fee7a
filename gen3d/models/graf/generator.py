"""GRAF's generator: random cameras, rays, coarse + hierarchical samples, a radiance field, compositing.

Given latent codes ``z`` (B, Z) and camera poses, :class:`Generator` renders either GRAF's sparse K x K
training patches (rays through a scaled and shifted grid, :func:`renderers.patch_rays`) or full images
(:func:`renderers.get_rays`). Along every ray it takes ``n_samples`` stratified samples in
``[near, far]`` (:func:`renderers.stratified_samples`), evaluates the field, and, when ``n_importance > 0``,
draws that many more from the coarse weights (:func:`renderers.sample_pdf`), evaluates the field there too
and composites the union, sorted, with :func:`renderers.composite` (native fused kernel or the torch
reference). One field serves both passes (pi-GAN's scheme: the fine pass reuses the coarse outputs).

Conventions: world up is +z, cameras look at the origin from GRAF's sphere (``u``: azimuth fraction,
``v``: polar ``arccos(1 - 2 v)``), ray directions are unit vectors so ``near``/``far`` are distances
(GRAF's rays have camera-z = -1, making them depths; the two differ by 1 / cos of the off-axis angle).
With a radius range, each camera's ``near``/``far`` are shifted by ``max_radius - radius`` as GRAF does,
so all cameras sample the same shell around the origin. Images are in [-1, 1].

Backgrounds: ``"white"`` (GRAF's ``white_bkgd``, Carla), ``"black"``, a grey level, or ``"last"``: the
light left after the last sample takes that sample's colour (pi-GAN's ``last_back``; GRAF and pi-GAN get the
same effect from an infinitely long last interval), which lets the field paint an opaque backdrop at the
far plane (CelebA, Cats).
"""

from __future__ import annotations

import math

import torch
from jaxtyping import Float
from torch import Tensor, nn

import renderers
from gen3d.models.graf.field import RadianceField
from gen3d.models.graf.marched import render_rays_marched

POSE_DISTS = ("uniform", "gaussian")


class Generator(nn.Module):
    """Renders a :class:`RadianceField` from random or given cameras (GRAF's ``Generator``).

    Args:
        field: the conditional radiance field.
        image_size: side of the training images in pixels (GRAF: 64 / 128).
        fov: field of view in degrees (GRAF Carla: 30, CelebA: 10).
        radius: camera distance to the origin, or a ``(min, max)`` range (GRAF CelebA: 9.5..10.5).
        near: start of the rendered range along each ray (distance from a camera at the largest radius).
        far: end of the rendered range.
        range_u: azimuth range of random cameras, as fractions of a turn.
        range_v: GRAF's ``v`` range of random cameras (``polar = arccos(1 - 2 v)`` from +z).
        pose_dist: ``"uniform"`` in (u, v) (GRAF) or ``"gaussian"`` around the ranges' midpoints with
            ``yaw_std`` / ``pitch_std`` radians (pi-GAN's ``sample_dist: gaussian``).
        yaw_std: standard deviation of the azimuth in radians (``gaussian`` only).
        pitch_std: standard deviation of the polar angle in radians (``gaussian`` only).
        n_samples: stratified samples per ray (GRAF: 64).
        n_importance: extra hierarchical samples per ray (GRAF default 0; pi-GAN: as many as ``n_samples``).
        background: ``"white"``, ``"black"``, ``"last"`` or a grey level in [0, 1].
        composite_impl: ``"auto"``, ``"native"`` or ``"torch"`` compositing.
        eps: transmittance below which samples are skipped (early ray termination).
        sampler: ``"dense"`` (stratified + hierarchical samples along ``[near, far]``) or ``"marched"``: one
            occupancy grid per scene, built from the field's density for every batch of codes, and rays marched
            through its occupied cells only (:mod:`gen3d.models.graf.marched`; needs a constant background).
        grid_resolution: cells per axis of the marched path's occupancy grids.
        march_step: interval length of the marched path (default: the scene box's side / 32).
        grid_threshold: density above which a cell of the marched path's grids is occupied.
    """

    SAMPLERS = ("dense", "marched")

    def __init__(
        self,
        field: RadianceField,
        image_size: int = 64,
        fov: float = 30.0,
        radius: float | tuple[float, float] = 2.5,
        near: float = 1.5,
        far: float = 3.5,
        range_u: tuple[float, float] = (0.0, 1.0),
        range_v: tuple[float, float] = (0.0, 0.45642212862617093),
        pose_dist: str = "uniform",
        yaw_std: float = 0.3,
        pitch_std: float = 0.155,
        n_samples: int = 64,
        n_importance: int = 0,
        background: str | float = "white",
        composite_impl: str = "auto",
        eps: float = 1e-4,
        sampler: str = "dense",
        grid_resolution: int = 16,
        march_step: float | None = None,
        grid_threshold: float = 0.01,
    ):
        super().__init__()
        if sampler not in self.SAMPLERS:
            raise ValueError(f"sampler must be one of {self.SAMPLERS}, got {sampler!r}")
        if sampler == "marched" and background == "last":
            raise ValueError("the marched sampler needs a constant background, not 'last'")
        if grid_resolution < 1 or (march_step is not None and not march_step > 0) or grid_threshold < 0:
            raise ValueError(
                f"need grid_resolution >= 1, march_step > 0 and grid_threshold >= 0, got {grid_resolution}, "
                f"{march_step}, {grid_threshold}"
            )
        if pose_dist not in POSE_DISTS:
            raise ValueError(f"pose_dist must be one of {POSE_DISTS}, got {pose_dist!r}")
        if not 0 <= near < far:
            raise ValueError(f"need 0 <= near < far, got near={near}, far={far}")
        if isinstance(background, str) and background not in ("white", "black", "last"):
            raise ValueError(f"background must be 'white', 'black', 'last' or a grey level, got {background!r}")
        if n_samples < 1 or n_importance < 0:
            raise ValueError(f"need n_samples >= 1 and n_importance >= 0, got {n_samples}, {n_importance}")
        self.field = field
        self.image_size, self.fov = int(image_size), float(fov)
        self.radius = tuple(float(r) for r in radius) if isinstance(radius, (tuple, list)) else float(radius)
        if isinstance(self.radius, tuple) and self.radius[1] - self.radius[0] > near:
            raise ValueError(
                f"the radius range {self.radius} is wider than near={near}: the shift would pass the camera"
            )
        self.near, self.far = float(near), float(far)
        self.range_u = (float(range_u[0]), float(range_u[1]))
        self.range_v = (float(range_v[0]), float(range_v[1]))
        self.pose_dist, self.yaw_std, self.pitch_std = pose_dist, float(yaw_std), float(pitch_std)
        self.n_samples, self.n_importance = int(n_samples), int(n_importance)
        self.background = background
        self.composite_impl = composite_impl
        self.eps = float(eps)
        self.sampler, self.grid_resolution, self.grid_threshold = sampler, int(grid_resolution), float(grid_threshold)
        self.march_step = None if march_step is None else float(march_step)
        self.noise_std = 0.0  # density noise used by forward(); the training loop anneals it

    # ------------------------------------------------------------------ cameras
    @property
    def max_radius(self) -> float:
        """Largest camera distance."""
        return max(self.radius) if isinstance(self.radius, tuple) else self.radius

    @property
    def scene_bound(self) -> float:
        """Half side of the scene's cube: the field's ``bound``, else ``max_radius - near`` (the ball the
        dense renderer reaches in front of every camera)."""
        bound = getattr(self.field, "bound", None)
        return float(bound) if bound is not None else self.max_radius - self.near

    def intrinsics(self, size: int | None = None, device: torch.device | str | None = None) -> Tensor:
        """Pinhole intrinsics (3, 3) of a ``size`` x ``size`` image with the generator's field of view."""
        size = size or self.image_size
        return renderers.intrinsics(size, size, self.fov, device=device)

    def sample_poses(
        self, batch_size: int, generator: torch.Generator | None = None, device: torch.device | str | None = None
    ) -> Float[Tensor, "B 4 4"]:
        """Random camera-to-world matrices from the pose distribution (GRAF's ``sample_pose``).

        Args:
            batch_size: number of cameras B.
            generator: optional torch random generator.
            device: where to put them.

        Returns:
            (B, 4, 4) camera-to-world matrices looking at the origin.
        """
        if self.pose_dist == "uniform":
            return renderers.sample_poses(batch_size, self.radius, self.range_u, self.range_v, generator=generator).to(
                device
            )
        n = torch.randn(batch_size, 2, generator=generator)  # (B, 2)
        u_mid, v_mid = sum(self.range_u) / 2, sum(self.range_v) / 2
        yaw = 2 * math.pi * u_mid + self.yaw_std * n[:, 0]
        polar = math.acos(1 - 2 * v_mid) + self.pitch_std * n[:, 1]
        polar = polar.clamp(1e-3, math.pi - 1e-3)
        u, v = yaw / (2 * math.pi), (1 - torch.cos(polar)) / 2
        if isinstance(self.radius, tuple):
            r = self.radius[0] + (self.radius[1] - self.radius[0]) * torch.rand(batch_size, generator=generator)
        else:
            r = torch.full((batch_size,), self.radius)
        eye = r[:, None] * renderers.to_sphere(u, v)  # (B, 3)
        return renderers.look_at(eye).to(device)

    def pose_at(self, u: Tensor | float, v: Tensor | float, radius: float | None = None) -> Float[Tensor, "B 4 4"]:
        """Camera-to-world matrices at given ``(u, v)`` (broadcast), at ``radius`` (default the largest)."""
        u_t, v_t = torch.broadcast_tensors(
            torch.as_tensor(u, dtype=torch.float32), torch.as_tensor(v, dtype=torch.float32)
        )
        eye = (radius or self.max_radius) * renderers.to_sphere(u_t.reshape(-1), v_t.reshape(-1))
        return renderers.look_at(eye)

    def _near_far(self, c2w: Tensor) -> tuple[Tensor, Tensor]:
        """Per-camera near/far (B, 1): GRAF shifts them by ``max_radius - |camera|`` for a radius range."""
        r = c2w[:, :3, 3].norm(dim=-1, keepdim=True)  # (B, 1)
        shift = (self.max_radius - r) if isinstance(self.radius, tuple) else torch.zeros_like(r)
        return (self.near - shift).clamp_min(0.0), self.far - shift

    # ------------------------------------------------------------------ rendering
    def background_value(self, rgbs: Tensor) -> Tensor | float | None:
        """What ``renderers.composite`` blends behind the samples ``rgbs`` (..., S, 3): a constant or, for ``last``,
        the last sample's colour."""
        if self.background == "white":
            return 1.0
        if self.background == "black":
            return None
        if self.background == "last":
            return rgbs[..., -1, :]  # (..., 3): the last sample's colour
        return float(self.background)

    def render_rays(
        self,
        z: Float[Tensor, "B Z"],
        origins: Float[Tensor, "B R 3"],
        dirs: Float[Tensor, "B R 3"],
        near: Float[Tensor, "B 1"] | float,
        far: Float[Tensor, "B 1"] | float,
        perturb: bool = True,
        noise_std: float = 0.0,
        generator: torch.Generator | None = None,
    ) -> dict[str, Tensor]:
        """Volume-render R rays of each of B scenes.

        Args:
            z: latent codes (B, Z).
            origins: ray origins (B, R, 3).
            dirs: unit ray directions (B, R, 3).
            near: start of each scene's range, float or (B, 1).
            far: end of each scene's range, float or (B, 1).
            perturb: jitter the stratified samples (training) or take bin centres (evaluation).
            noise_std: Gaussian noise on the raw densities (GRAF's ``raw_noise_std``).
            generator: random generator for the sample jitter.

        Returns:
            ``rgb`` (B, R, 3) in [0, 1], ``opacity`` (B, R), ``depth`` (B, R) (expected distance, not divided
            by the opacity).
        """
        if self.sampler == "marched":
            return render_rays_marched(self, z, origins, dirs, near, far, perturb, noise_std, generator)
        B, R, _ = origins.shape
        S = self.n_samples
        cond = self.field.point_condition(z)  # each (B, 1, C)
        near_t = torch.as_tensor(near, dtype=origins.dtype, device=origins.device).expand(B, 1)
        far_t = torch.as_tensor(far, dtype=origins.dtype, device=origins.device).expand(B, 1)
        t = renderers.stratified_samples(near_t, far_t, S, perturb=perturb, generator=generator, batch_shape=(B, R))
        sigma, rgb = self._query(origins, dirs, t, cond, noise_std)  # (B, R, S), (B, R, S, 3)
        if self.n_importance > 0:
            with torch.no_grad():
                t_s, t_e = renderers.samples_to_intervals(t, near_t, far_t)
                weights, _, _ = renderers.render_weights(sigma.detach(), t_s, t_e)  # (B, R, S)
                bins = torch.cat([t_s[..., :1], t_e], dim=-1)  # (B, R, S + 1)
                t_fine = renderers.sample_pdf(
                    bins, weights, self.n_importance, deterministic=not perturb, generator=generator
                )
            sigma_f, rgb_f = self._query(origins, dirs, t_fine, cond, noise_std)
            t, order = torch.sort(torch.cat([t, t_fine], dim=-1), dim=-1)  # (B, R, S + S_f)
            sigma = torch.gather(torch.cat([sigma, sigma_f], -1), -1, order)
            rgb = torch.gather(torch.cat([rgb, rgb_f], -2), -2, order[..., None].expand(*order.shape, 3))
        t_s, t_e = renderers.samples_to_intervals(t, near_t, far_t)  # (B, R, S')
        out_rgb, opacity, depth = renderers.composite(
            sigma, rgb, t_s, t_e, background=self.background_value(rgb), eps=self.eps, impl=self.composite_impl
        )
        return {"rgb": out_rgb, "opacity": opacity, "depth": depth}

    def _query(self, origins: Tensor, dirs: Tensor, t: Tensor, cond, noise_std: float) -> tuple[Tensor, Tensor]:
        B, R, S = t.shape
        x = origins[:, :, None, :] + t[..., None] * dirs[:, :, None, :]  # (B, R, S, 3)
        d = dirs[:, :, None, :].expand(B, R, S, 3)
        sigma, rgb = self.field.query(x.reshape(B, R * S, 3), d.reshape(B, R * S, 3), cond, noise_std)
        return sigma.reshape(B, R, S), rgb.reshape(B, R, S, 3)

    def forward(
        self,
        z: Float[Tensor, "B Z"],
        c2w: Float[Tensor, "B 4 4"],
        grid: Float[Tensor, "B K K 2"],
        generator: torch.Generator | None = None,
    ) -> Float[Tensor, "B 3 K K"]:
        """Render GRAF training patches: the rays through ``grid`` (``F.grid_sample`` coordinates).

        Uses jittered samples and the current ``self.noise_std`` (training mode rendering).

        Args:
            z: latent codes (B, Z).
            c2w: camera poses (B, 4, 4).
            grid: patch grids in [-1, 1] (B, K, K, 2), from :func:`renderers.sample_patch_grid`; the same grid
                applied to a real image with ``F.grid_sample(..., align_corners=True)`` gives the real patch.
            generator: random generator for the sample jitter.

        Returns:
            Patches (B, 3, K, K) in [-1, 1].
        """
        B, K = grid.shape[0], grid.shape[1]
        origins, dirs = renderers.patch_rays(
            grid, self.image_size, self.image_size, self.intrinsics(device=z.device), c2w
        )
        near, far = self._near_far(c2w)
        out = self.render_rays(
            z, origins.reshape(B, K * K, 3), dirs.reshape(B, K * K, 3), near, far, True, self.noise_std, generator
        )
        return out["rgb"].reshape(B, K, K, 3).permute(0, 3, 1, 2) * 2 - 1

    def render(
        self,
        z: Float[Tensor, "B Z"],
        c2w: Float[Tensor, "B 4 4"],
        size: int | None = None,
        chunk: int = 4096,
        perturb: bool = False,
    ) -> dict[str, Tensor]:
        """Render full images at any resolution (deterministic samples, no density noise).

        Args:
            z: latent codes (B, Z).
            c2w: camera poses (B, 4, 4).
            size: image side (default ``image_size``); the field of view is kept.
            chunk: rays per scene rendered at once.
            perturb: jitter the samples.

        Returns:
            ``rgb`` (B, 3, H, W) in [-1, 1], ``opacity`` (B, H, W), ``depth`` (B, H, W).
        """
        size = size or self.image_size
        B = z.shape[0]
        origins, dirs = renderers.get_rays(size, size, self.intrinsics(size, device=z.device), c2w.to(z))
        origins, dirs = origins.reshape(B, size * size, 3), dirs.reshape(B, size * size, 3)
        near, far = self._near_far(c2w.to(z))
        parts = [
            self.render_rays(z, origins[:, i : i + chunk], dirs[:, i : i + chunk], near, far, perturb, 0.0)
            for i in range(0, size * size, chunk)
        ]
        rgb = torch.cat([p["rgb"] for p in parts], 1).reshape(B, size, size, 3).permute(0, 3, 1, 2) * 2 - 1
        opacity = torch.cat([p["opacity"] for p in parts], 1).reshape(B, size, size)
        depth = torch.cat([p["depth"] for p in parts], 1).reshape(B, size, size)
        return {"rgb": rgb, "opacity": opacity, "depth": depth}
