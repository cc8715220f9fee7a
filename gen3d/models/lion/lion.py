"""LION: the hierarchical VAE plus two latent diffusion models, and the point-space baseline (PVD).

Training has two stages: the VAE alone (:meth:`HierarchicalVAE.loss`), then, with the VAE frozen, both
priors on posterior samples of the training clouds (:meth:`LION.prior_losses`). Sampling runs the shape
latent prior, then the latent point prior conditioned on its result, then the decoder (:meth:`LION.sample`).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from jaxtyping import Float
from torch import Tensor, nn

from gen3d.diffusion import NoiseSchedule, Sampler, make_loss, make_sampler, sample_loop
from gen3d.models.lion.config import LionConfig
from gen3d.models.lion.priors import PointDenoiser, PointLatentDenoiser, ShapeLatentDenoiser
from gen3d.models.lion.vae import HierarchicalVAE


class LION(nn.Module):
    """The full LION model.

    Args:
        cfg: architecture and objective (:class:`LionConfig` or its dict).
    """

    def __init__(self, cfg: LionConfig | dict | None = None):
        super().__init__()
        cfg = LionConfig.from_dict(cfg)
        self.cfg = cfg
        self.schedule = NoiseSchedule.from_dict(cfg.schedule)
        self.vae = HierarchicalVAE(cfg)
        self.glb_prior = ShapeLatentDenoiser(
            cfg.style_dim, cfg.glb_prior_channels, cfg.glb_prior_blocks, cfg.glb_prior_dropout, cfg.glb_time_dim
        )
        self.loc_prior = PointLatentDenoiser(
            cfg.point_channels,
            cfg.style_dim,
            cfg.loc_prior_channels,
            cfg.loc_prior_resolutions,
            cfg.loc_prior_dropout,
            cfg.loc_time_dim,
            cfg.loc_prior_voxel_channels,
            cfg.loc_prior_voxel_frame,
        )

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
    ) -> Tensor | tuple[Tensor, Tensor, Tensor]:
        """Generate ``n`` clouds in the normalised frame.

        Args:
            n: number of clouds.
            sampler: a :class:`Sampler` or a name (``"ddpm"``, ``"ddim"``, ``"dpm"``).
            steps: number of sampling steps when ``sampler`` is a name (default: all).
            generator: RNG (same seed and settings, same samples).
            num_points: points per cloud (default ``cfg.num_points``; the networks work for any count).
            progress: show progress bars.
            return_latents: also return the sampled shape latents and latent points.
            code_temperature: factor on the sampled shape latent in the priors' frame (standardised codes when
                ``standardize_latents``, else the VAE's N(0, I) frame) before the latent points are drawn for it.
                1 is LION's sampling; above 1 spreads the shapes wider, which offsets short-trained priors that
                shrink the shape distribution (docs/lion.md, "Shape-code temperature").

        Returns:
            ``(n, num_points, 3)`` points, or ``(points, z_g, h)``.
        """
        device = next(self.parameters()).device
        if isinstance(sampler, str):
            sampler = self.make_sampler(sampler, steps)
        num_points = num_points or self.cfg.num_points
        if not code_temperature > 0:
            raise ValueError(f"code_temperature must be positive, got {code_temperature}")
        z_g = code_temperature * sample_loop(
            self.glb_prior, sampler, (n, self.cfg.style_dim), generator, progress, device
        )
        loc_fn: Callable[[Tensor, Tensor], Tensor] = lambda x_t, t: self.loc_prior(x_t, t, z_g)
        h = sample_loop(loc_fn, sampler, (n, num_points, self.cfg.point_channels), generator, progress, device)
        z_g, h = self.unstandardize(z_g, h)
        points = self.vae.decode(h, z_g)
        return (points, z_g, h) if return_latents else points


class PointDiffusion(nn.Module):
    """PVD-style baseline: a DDPM directly on xyz with the same PVCNN backbone.

    Args:
        cfg: LION configuration; ``loc_prior_*`` sizes, ``loc_time_dim``, ``schedule`` and ``prediction_type``
            are used.
    """

    def __init__(self, cfg: LionConfig | dict | None = None):
        super().__init__()
        cfg = LionConfig.from_dict(cfg)
        self.cfg = cfg
        self.schedule = NoiseSchedule.from_dict(cfg.schedule)
        self.denoiser = PointDenoiser(
            cfg.loc_prior_channels,
            cfg.loc_prior_resolutions,
            cfg.loc_prior_dropout,
            cfg.loc_time_dim,
            cfg.loc_prior_voxel_channels,
            cfg.loc_prior_voxel_frame,
        )

    def make_sampler(self, name: str = "ddpm", steps: int | None = None, **kwargs) -> Sampler:
        """A sampler for this model's schedule and prediction type."""
        return make_sampler(name, self.schedule, steps, prediction_type=self.cfg.prediction_type, **kwargs)

    def loss(self, x: Float[Tensor, "B N 3"], generator: torch.Generator | None = None) -> Tensor:
        """Denoising loss on normalised clouds."""
        return make_loss(self.cfg.prediction_type, self.schedule, self.cfg.snr_gamma)(
            self.denoiser, x, generator=generator
        )

    @torch.no_grad()
    def sample(
        self,
        n: int,
        sampler: Sampler | str = "ddpm",
        steps: int | None = None,
        generator: torch.Generator | None = None,
        num_points: int | None = None,
        progress: bool = False,
        code_temperature: float = 1.0,
    ) -> Tensor:
        """Generate ``(n, num_points, 3)`` clouds in the normalised frame (``code_temperature``: only 1, there is no
        shape code; the argument mirrors :meth:`LION.sample`)."""
        if code_temperature != 1.0:
            raise ValueError("code_temperature applies to LION only: the PVD baseline has no shape code")
        device = next(self.parameters()).device
        if isinstance(sampler, str):
            sampler = self.make_sampler(sampler, steps)
        shape = (n, num_points or self.cfg.num_points, 3)
        return sample_loop(self.denoiser, sampler, shape, generator, progress, device)
