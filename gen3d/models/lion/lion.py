"""LION: the hierarchical VAE plus two latent diffusion models, and the point-space baseline (PVD).

Training has two stages: the VAE alone (:meth:`HierarchicalVAE.loss`), then, with the VAE frozen, both
priors on posterior samples of the training clouds (:meth:`LION.prior_losses`). Sampling runs the shape
latent prior, then the latent point prior conditioned on its result, then the decoder (:meth:`LION.sample`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from jaxtyping import Float
from torch import Tensor, nn

from gen3d.diffusion import NoiseSchedule, Sampler, make_loss, make_sampler, sample_loop
from gen3d.models.lion.config import LionConfig
from gen3d.models.lion.priors import PointDenoiser, PointLatentDenoiser, ShapeLatentDenoiser
from gen3d.models.lion.vae import HierarchicalVAE

# walk(model_fn, shape, start): the reverse process of one sampling call, from ``start`` noise (None: drawn)
Walk = Callable[[Callable[[Tensor, Tensor], Tensor], tuple[int, ...], Tensor | None], Tensor]


class _PointGenerator(nn.Module):
    """What LION and the point-space baseline share: the configuration, the noise schedule, the samplers and the
    sampling entry point (:meth:`sample`); subclasses build their networks and implement :meth:`_sample`."""

    def __init__(self, cfg: LionConfig | dict | None = None):
        super().__init__()
        cfg = LionConfig.from_dict(cfg)
        self.cfg = cfg
        self.schedule = NoiseSchedule.from_dict(cfg.schedule)

    def make_sampler(self, name: str = "ddpm", steps: int | None = None, **kwargs) -> Sampler:
        """A sampler for this model's schedule and prediction type."""
        return make_sampler(name, self.schedule, steps, prediction_type=self.cfg.prediction_type, **kwargs)

    @torch.no_grad()
    def sample(
        self,
        n: int,
        sampler: Sampler | str = "ddpm",
        steps: int | None = None,
        generator: torch.Generator | None = None,
        num_points: int | None = None,
        progress: bool = False,
        return_latents: bool = False,
        code_temperature: float = 1.0,
        x_T: Tensor | tuple[Tensor, Tensor] | None = None,
    ) -> Tensor | tuple[Tensor, ...]:
        """Generate ``n`` clouds in the normalised frame.

        Args:
            n: number of clouds.
            sampler: a :class:`Sampler` or a name (``"ddpm"``, ``"ddim"``, ``"dpm"``).
            steps: number of sampling steps when ``sampler`` is a name (default: all).
            generator: RNG (same seed and settings, same samples).
            num_points: points per cloud (default ``cfg.num_points``; the networks work for any count).
            progress: show progress bars.
            return_latents: also return the sampled latents (LION: the shape latents and latent points; the PVD
                baseline has none).
            code_temperature: LION: factor on the sampled shape latent in the priors' frame (standardised codes
                when ``standardize_latents``, else the VAE's N(0, I) frame) before the latent points are drawn for
                it. 1 is LION's sampling; above 1 spreads the shapes wider, which offsets short-trained priors that
                shrink the shape distribution (docs/lion.md, "Shape-code temperature"). PVD: only 1.
            x_T: the starting noise instead of drawing it from ``generator`` (which then only draws the noise of
                stochastic steps). LION: ``(z_T (n, G), h_T (n, num_points, P))`` in the priors' frame; PVD:
                ``(n, num_points, 3)``. Drawing the same tensors from ``generator`` gives the same samples.

        Returns:
            ``(n, num_points, 3)`` points, or ``(points, *latents)`` (LION: ``(points, z_g, h)``).
        """
        if not code_temperature > 0:
            raise ValueError(f"code_temperature must be positive, got {code_temperature}")
        if isinstance(sampler, str):
            sampler = self.make_sampler(sampler, steps)
        device = next(self.parameters()).device

        def walk(model_fn: Callable[[Tensor, Tensor], Tensor], shape: tuple[int, ...], start: Tensor | None) -> Tensor:
            start = _start_noise(start, shape, device)
            return sample_loop(model_fn, sampler, shape, generator, progress, device, x_T=start)

        points, latents = self._sample(walk, n, num_points or self.cfg.num_points, code_temperature, x_T)
        return (points, *latents) if return_latents else points

    def _sample(
        self, walk: Walk, n: int, num_points: int, code_temperature: float, x_T: Any
    ) -> tuple[Tensor, tuple[Tensor, ...]]:
        """``(points, latents)`` of :meth:`sample`; ``walk(model_fn, shape, start)`` runs the reverse process with
        the chosen sampler, generator and device from the given starting noise (None: drawn)."""
        raise NotImplementedError


def _start_noise(x_T: Tensor | None, shape: tuple[int, ...], device: torch.device) -> Tensor | None:
    """Given starting noise on ``device``, checked against the shape the sampler walks (None: the loop draws it)."""
    if x_T is None:
        return None
    if tuple(x_T.shape) != shape:
        raise ValueError(f"the starting noise must have shape {shape}, got {tuple(x_T.shape)}")
    return x_T.to(device)


def _point_network(cfg: LionConfig) -> dict[str, Any]:
    """The PVCNN settings of the latent point prior, shared by the PVD baseline (``loc_prior_*``, ``loc_time_dim``)."""
    return {
        "channels": cfg.loc_prior_channels,
        "resolutions": cfg.loc_prior_resolutions,
        "dropout": cfg.loc_prior_dropout,
        "time_dim": cfg.loc_time_dim,
        "voxel_channels": cfg.loc_prior_voxel_channels,
        "voxel_frame": cfg.loc_prior_voxel_frame,
    }


class LION(_PointGenerator):
    """The full LION model.

    Args:
        cfg: architecture and objective (:class:`LionConfig` or its dict).
    """

    def __init__(self, cfg: LionConfig | dict | None = None):
        super().__init__(cfg)
        cfg = self.cfg
        self.vae = HierarchicalVAE(cfg)
        self.glb_prior = ShapeLatentDenoiser(
            cfg.style_dim, cfg.glb_prior_channels, cfg.glb_prior_blocks, cfg.glb_prior_dropout, cfg.glb_time_dim
        )
        self.loc_prior = PointLatentDenoiser(cfg.point_channels, cfg.style_dim, **_point_network(cfg))

        # latent standardisation (identity unless set_latent_stats is called; see LionConfig.standardize_latents)
        self.register_buffer("glb_mean", torch.zeros(cfg.style_dim))
        self.register_buffer("glb_std", torch.ones(cfg.style_dim))
        self.register_buffer("loc_mean", torch.zeros(cfg.point_channels))
        self.register_buffer("loc_std", torch.ones(cfg.point_channels))

    @torch.no_grad()
    def set_latent_stats(self, z_g: Float[Tensor, "M G"], h: Float[Tensor, "M N P"], eps: float = 1e-6) -> None:
        """Measure the standardisation of the latents from training encodings.

        Shape codes: mean and std per dimension. Latent points: a mean per channel, one std shared by xyz
        (keeps the geometry isotropic) and one std per feature channel.
        """
        self.glb_mean.copy_(z_g.mean(0))
        self.glb_std.copy_(z_g.std(0).clamp_min(eps))
        flat = h.reshape(-1, h.shape[-1])  # (M N, P)
        self.loc_mean.copy_(flat.mean(0))
        std = flat.std(0)
        std[:3] = (flat[:, :3] - flat[:, :3].mean(0)).std()  # one scale for xyz
        self.loc_std.copy_(std.clamp_min(eps))

    def standardize(self, z_g: Tensor, h: Tensor) -> tuple[Tensor, Tensor]:
        """Latents in the priors' frame."""
        return (z_g - self.glb_mean) / self.glb_std, (h - self.loc_mean) / self.loc_std

    def unstandardize(self, z_g: Tensor, h: Tensor) -> tuple[Tensor, Tensor]:
        """Latents from the priors' frame back to the VAE's."""
        return z_g * self.glb_std + self.glb_mean, h * self.loc_std + self.loc_mean

    @torch.no_grad()
    def sample_vae_prior(
        self, n: int, num_points: int | None = None, generator: torch.Generator | None = None
    ) -> Float[Tensor, "B N 3"]:
        """Decode latents drawn from the VAE's own prior, ``N(0, I)`` for the shape latent and the latent points,
        without the latent diffusion models: the VAE as a generator on its own, the baseline that shows what
        LION's priors add.

        Args:
            n: number of clouds.
            num_points: points per cloud (default ``cfg.num_points``).
            generator: CPU RNG of the latents (same seed, same samples on any device).

        Returns:
            ``(n, num_points, 3)`` points in the normalised frame.
        """
        device = next(self.parameters()).device
        num_points = num_points or self.cfg.num_points
        z_g = torch.randn(n, self.cfg.style_dim, generator=generator)
        h = torch.randn(n, num_points, self.cfg.point_channels, generator=generator)
        return self.vae.decode(h.to(device), z_g.to(device))

    def priors(self) -> nn.ModuleList:
        """The two diffusion networks (what stage 2 trains)."""
        return nn.ModuleList([self.glb_prior, self.loc_prior])

    @torch.no_grad()
    def encode_latents(self, x: Float[Tensor, "B N 3"]) -> tuple[Tensor, Tensor]:
        """Posterior samples ``(z_g (B, G), h (B, N, P))`` of the (frozen) VAE (before standardisation)."""
        glb = self.vae.encode_global(x)
        loc = self.vae.encode_local(x, glb.z)
        return glb.z, loc.z

    def prior_losses(
        self,
        x: Float[Tensor, "B N 3"],
        generator: torch.Generator | None = None,
        latents: tuple[Tensor, Tensor] | None = None,
    ) -> tuple[Tensor, Tensor]:
        """Denoising losses of both priors on posterior samples of ``x``.

        Args:
            x: normalised clouds.
            generator: RNG of the timesteps and noise.
            latents: posterior samples ``(z_g, h)`` to use instead of encoding ``x``.

        Returns:
            ``(loss_glb, loss_loc)``, scalars.
        """
        z_g, h = latents if latents is not None else self.encode_latents(x)
        z_g, h = self.standardize(z_g, h)
        loss = make_loss(self.cfg.prediction_type, self.schedule, self.cfg.snr_gamma)
        loss_g = loss(self.glb_prior, z_g, generator=generator)
        loss_l = loss(lambda x_t, t: self.loc_prior(x_t, t, z_g), h, generator=generator)
        return loss_g, loss_l

    def _sample(
        self, walk: Walk, n: int, num_points: int, code_temperature: float, x_T: tuple[Tensor, Tensor] | None
    ) -> tuple[Tensor, tuple[Tensor, Tensor]]:
        """The shape latent, then the latent points conditioned on it, then the decoder."""
        z_T, h_T = x_T if x_T is not None else (None, None)
        z_g = code_temperature * walk(self.glb_prior, (n, self.cfg.style_dim), z_T)
        h = walk(lambda x_t, t: self.loc_prior(x_t, t, z_g), (n, num_points, self.cfg.point_channels), h_T)
        z_g, h = self.unstandardize(z_g, h)
        return self.vae.decode(h, z_g), (z_g, h)


class PointDiffusion(_PointGenerator):
    """PVD-style baseline: a DDPM directly on xyz with the same PVCNN backbone.

    Args:
        cfg: LION configuration; ``loc_prior_*`` sizes, ``loc_time_dim``, ``schedule`` and ``prediction_type``
            are used.
    """

    def __init__(self, cfg: LionConfig | dict | None = None):
        super().__init__(cfg)
        self.denoiser = PointDenoiser(**_point_network(self.cfg))

    def loss(self, x: Float[Tensor, "B N 3"], generator: torch.Generator | None = None) -> Tensor:
        """Denoising loss on normalised clouds."""
        return make_loss(self.cfg.prediction_type, self.schedule, self.cfg.snr_gamma)(
            self.denoiser, x, generator=generator
        )

    def _sample(
        self, walk: Walk, n: int, num_points: int, code_temperature: float, x_T: Tensor | None
    ) -> tuple[Tensor, tuple[()]]:
        """The points themselves: no shape code (``code_temperature`` must stay 1), no latents."""
        if code_temperature != 1.0:
            raise ValueError("code_temperature applies to LION only: the PVD baseline has no shape code")
        return walk(self.denoiser, (n, num_points, 3), x_T), ()
