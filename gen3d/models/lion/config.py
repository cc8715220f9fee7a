"""Sizes and loss weights of LION, one flat dataclass with plain-type fields (YAML/JSON/checkpoint friendly).

Paper values (Zeng et al. 2022; nv-tlabs/LION ``script/train_vae.sh``, ``script/train_prior.sh`` and
``config/*_prior_cfg.yml``): 2048 points, shape latent 128-d, one extra feature per latent point, VAE
skip weight 0.01 and log-sigma offset 6, Laplace (L1-sum) reconstruction, KL weight annealed from 1e-7 to
0.5 over the first half of training, linear beta schedule 1e-4 .. 2e-2 over 1000 steps, epsilon prediction,
global prior a 8-block 2048-wide ResNet with squeeze-excitation and dropout, local prior a PVCNN with
adaptive group norm. LION's PVCNN has set abstraction (1024/256/64/16 centres); ours is the lighter
single-level point-voxel stack of :mod:`gen3d.models.lion.pvcnn`.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from typing import Any


@dataclass
class LionConfig:
    """Architecture and objective of LION.

    Attributes:
        num_points: points per cloud the model is built for (the latent point count equals it).
        latent_dim: D, extra feature channels per latent point (LION: 1).
        style_dim: width of the global shape latent (LION: 128).
        vae_channels: PVCNN block widths of the VAE's local encoder and decoder.
        vae_resolutions: voxel resolutions of those blocks.
        enc_channels: PVCNN block widths of the global (shape latent) encoder.
        enc_resolutions: voxel resolutions of the global encoder.
        vae_voxel_channels: narrow voxel branches for those blocks (None: PVCNN's layout; see
            :class:`~gen3d.models.lion.pvcnn.PVConv`).
        enc_voxel_channels: the same for the global encoder.
        vae_dropout: dropout in the VAE's voxel branches (LION: 0.1).
        skip_weight: scale of the network outputs added to the skip paths (LION: 0.01).
        log_sigma_offset: subtracted from the local encoder's log-sigma so posteriors start narrow (LION: 6).
        kl_weight_min: KL weight at the start of the annealing (LION: 1e-7).
        kl_weight_max: KL weight after it (LION: 0.5).
        kl_anneal_portion: fraction of VAE training over which the KL weight grows linearly (LION: 0.5).
        weight_kl_glb: weight of the shape-latent KL (LION: 1).
        weight_kl_pt: weight of the latent points' xyz KL (LION: 1).
        weight_kl_feat: weight of the latent points' feature KL (LION: 1).
        glb_prior_channels: width of the shape-latent denoiser (LION: 2048).
        glb_prior_blocks: residual blocks in it (LION: 8).
        glb_prior_dropout: its dropout (LION: 0.2 airplane, 0.4 chair, 0.3 car).
        glb_time_dim: its sinusoidal time-embedding width (LION: 128).
        loc_prior_channels: PVCNN block widths of the latent-point denoiser.
        loc_prior_resolutions: its voxel resolutions.
        loc_prior_voxel_channels: its narrow voxel branches (None: PVCNN's layout).
        loc_prior_dropout: its dropout (LION: 0.1).
        loc_prior_voxel_frame: how its voxel grids fit the latent points: ``"sphere"`` (PVCNN, LION) or
            ``"box"`` (each axis scaled on its own; :func:`gen3d.models.lion.pvcnn.normalize_coords`).
        loc_time_dim: its time-embedding width (LION: 64).
        schedule: noise schedule of both priors (:class:`gen3d.diffusion.NoiseSchedule` fields).
        prediction_type: what the denoisers predict (``"epsilon"`` or ``"v_prediction"``).
        snr_gamma: Min-SNR-gamma weighting of the priors' losses (None: uniform, as LION).
        standardize_latents: run the priors on standardised latents (shape code per dimension, latent
            points with one scale for xyz and one per feature), with statistics measured on the training
            set before stage two. LION does not (its KL weight keeps latents near unit scale); short runs with
            a small KL weight need it, since their latents are far from unit scale.
    """

    num_points: int = 2048
    latent_dim: int = 1
    style_dim: int = 128
    vae_channels: list[int] = field(default_factory=lambda: [64, 128, 64])
    vae_resolutions: list[int] = field(default_factory=lambda: [16, 8, 16])
    enc_channels: list[int] = field(default_factory=lambda: [64, 128])
    enc_resolutions: list[int] = field(default_factory=lambda: [16, 8])
    vae_voxel_channels: list[int] | None = None
    enc_voxel_channels: list[int] | None = None
    vae_dropout: float = 0.1
    skip_weight: float = 0.01
    log_sigma_offset: float = 6.0
    kl_weight_min: float = 1e-7
    kl_weight_max: float = 0.5
    kl_anneal_portion: float = 0.5
    weight_kl_glb: float = 1.0
    weight_kl_pt: float = 1.0
    weight_kl_feat: float = 1.0
    glb_prior_channels: int = 2048
    glb_prior_blocks: int = 8
    glb_prior_dropout: float = 0.3
    glb_time_dim: int = 128
    loc_prior_channels: list[int] = field(default_factory=lambda: [64, 128, 64])
    loc_prior_resolutions: list[int] = field(default_factory=lambda: [16, 8, 16])
    loc_prior_voxel_channels: list[int] | None = None
    loc_prior_dropout: float = 0.1
    loc_prior_voxel_frame: str = "sphere"
    loc_time_dim: int = 64
    schedule: dict[str, Any] = field(
        default_factory=lambda: {"kind": "linear", "num_train_timesteps": 1000, "beta_start": 1e-4, "beta_end": 0.02}
    )
    prediction_type: str = "epsilon"
    snr_gamma: float | None = None
    standardize_latents: bool = False

    def to_dict(self) -> dict[str, Any]:
        """Plain-type copy (lists, dicts, numbers, strings)."""
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any] | LionConfig | None) -> LionConfig:
        """Build from a dict (unknown keys raise ``ValueError``), pass a config through, or defaults for None."""
        if d is None:
            return cls()
        if isinstance(d, LionConfig):
            return d
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise ValueError(f"unknown LION config keys {unknown}; expected some of {sorted(known)}")
        d = {k: (list(v) if isinstance(v, tuple) else v) for k, v in d.items()}
        return cls(**d)

    @property
    def point_channels(self) -> int:
        """Channels of one latent point: xyz plus the D features."""
        return 3 + self.latent_dim
