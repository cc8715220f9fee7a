"""LION's hierarchical VAE: a global shape latent and a cloud of latent points (xyz + D features each).

Encoder: ``q(z_g | x)`` from a pooled point-voxel encoder, then ``q(h | x, z_g)`` per point from a PVCNN
conditioned on ``z_g`` (adaptive group norm); the latent points' means are the input points plus a small
learned offset (``skip_weight``). Decoder: a PVCNN on the latent points conditioned on ``z_g`` moves them
onto the surface, again through a scaled skip path. Likelihood: Laplace with unit scale on every coordinate
(LION's ``l1_sum`` loss). Priors of both latents are standard normals while training the VAE; the two latent
diffusion models replace them afterwards.

Dimension names: B batch, N points, G = style_dim, P = 3 + D latent point channels.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from jaxtyping import Float
from torch import Tensor, nn

from gen3d.models.lion.config import LionConfig
from gen3d.models.lion.pvcnn import PVCNN, PointNetEncoder


def gaussian_kl(mu: Tensor, log_sigma: Tensor) -> Tensor:
    """Elementwise ``KL(N(mu, sigma^2) || N(0, 1)) = (mu^2 + sigma^2) / 2 - log sigma - 1/2``."""
    return 0.5 * (mu.square() + torch.exp(2.0 * log_sigma)) - log_sigma - 0.5


def kl_weight_at(step: int, total_steps: int, cfg: LionConfig) -> float:
    """LION's KL annealing: linear from ``kl_weight_min`` to ``kl_weight_max`` over ``kl_anneal_portion``.

    Args:
        step: current optimisation step.
        total_steps: total VAE steps (<= 0: no annealing, the maximum weight).
        cfg: the configuration.
    """
    if total_steps <= 0 or cfg.kl_anneal_portion <= 0:
        return cfg.kl_weight_max
    frac = step / (cfg.kl_anneal_portion * total_steps)
    w = cfg.kl_weight_min + (cfg.kl_weight_max - cfg.kl_weight_min) * frac
    return float(min(max(w, cfg.kl_weight_min), cfg.kl_weight_max))


@dataclass
class Posterior:
    """A diagonal Gaussian posterior and one sample of it."""

    mu: Tensor
    log_sigma: Tensor
    z: Tensor


@dataclass
class VAEOutput:
    """What one pass through the VAE produces.

    Attributes:
        recon: ``(B, N, 3)`` decoded points.
        glb: posterior of the shape latent, tensors ``(B, G)``.
        loc: posterior of the latent points, tensors ``(B, N, P)``.
        rec: ``(B,)`` L1 reconstruction error summed over points and coordinates.
        kl_glb: ``(B,)`` KL of the shape latent.
        kl_pt: ``(B,)`` KL of the latent points' xyz.
        kl_feat: ``(B,)`` KL of the latent points' features.
    """

    recon: Tensor
    glb: Posterior
    loc: Posterior
    rec: Tensor
    kl_glb: Tensor
    kl_pt: Tensor
    kl_feat: Tensor


class HierarchicalVAE(nn.Module):
    """Encoder to (shape latent, latent points) and decoder back to points.

    Args:
        cfg: the LION configuration (sizes only are used here).
    """

    def __init__(self, cfg: LionConfig):
        super().__init__()
        self.cfg = cfg
        g, p = cfg.style_dim, cfg.point_channels
        self.glb_encoder = PointNetEncoder(
            3, 2 * g, cfg.enc_channels, cfg.enc_resolutions, cfg.vae_dropout, voxel_channels=cfg.enc_voxel_channels
        )
        vae = {"cond_dim": g, "dropout": cfg.vae_dropout, "voxel_channels": cfg.vae_voxel_channels}
        self.loc_encoder = PVCNN(3, 2 * p, cfg.vae_channels, cfg.vae_resolutions, **vae)
        self.decoder = PVCNN(p, 3, cfg.vae_channels, cfg.vae_resolutions, **vae)

    # --------------------------------------------------------------------------------------- encoder
    def encode_global(self, x: Float[Tensor, "B N 3"], sample: bool = True) -> Posterior:
        """``q(z_g | x)``; ``sample=False`` returns the mean as ``z``."""
        h = self.glb_encoder(x.transpose(1, 2), x)  # (B, 2G)
        mu, log_sigma = h.chunk(2, dim=1)  # (B, G) each
        z = mu + torch.randn_like(mu) * log_sigma.exp() if sample else mu
        return Posterior(mu, log_sigma, z)

    def encode_local(self, x: Float[Tensor, "B N 3"], style: Float[Tensor, "B G"], sample: bool = True) -> Posterior:
        """``q(h | x, z_g)``: latent points ``(B, N, 3 + D)``; ``sample=False`` returns the mean."""
        d = self.cfg.latent_dim
        h = self.loc_encoder(x.transpose(1, 2), x, style).transpose(1, 2)  # (B, N, 2P)
        pt_mu = x + self.cfg.skip_weight * h[..., :3]  # (B, N, 3)
        pt_ls = h[..., 3:6]
        ft_mu, ft_ls = h[..., 6 : 6 + d], h[..., 6 + d :]
        mu = torch.cat([pt_mu, ft_mu], dim=-1)  # (B, N, P)
        log_sigma = torch.cat([pt_ls, ft_ls], dim=-1) - self.cfg.log_sigma_offset
        z = mu + torch.randn_like(mu) * log_sigma.exp() if sample else mu
        return Posterior(mu, log_sigma, z)

    # --------------------------------------------------------------------------------------- decoder
    def decode(self, latent_points: Float[Tensor, "B N P"], style: Float[Tensor, "B G"]) -> Float[Tensor, "B N 3"]:
        """Map latent points and the shape latent to output points."""
        xyz = latent_points[..., :3]  # (B, N, 3)
        out = self.decoder(latent_points.transpose(1, 2), xyz, style).transpose(1, 2)  # (B, N, 3)
        return xyz + self.cfg.skip_weight * out

    # --------------------------------------------------------------------------------------- forward
    def forward(self, x: Float[Tensor, "B N 3"], sample: bool = True) -> VAEOutput:
        """Encode, sample both latents (or take the means), decode and compute the ELBO terms.

        Args:
            x: normalised input points.
            sample: draw the latents from the posteriors (training, ELBO) or use their means.
        """
        glb = self.encode_global(x, sample)
        loc = self.encode_local(x, glb.z, sample)
        recon = self.decode(loc.z, glb.z)
        rec = (recon - x).abs().flatten(1).sum(dim=1)  # (B,)
        kl_g = gaussian_kl(glb.mu, glb.log_sigma).sum(dim=1)  # (B,)
        kl_loc = gaussian_kl(loc.mu, loc.log_sigma)  # (B, N, P)
        return VAEOutput(
            recon=recon,
            glb=glb,
            loc=loc,
            rec=rec,
            kl_glb=kl_g,
            kl_pt=kl_loc[..., :3].flatten(1).sum(dim=1),
            kl_feat=kl_loc[..., 3:].flatten(1).sum(dim=1),
        )

    def loss(self, out: VAEOutput, kl_weight: float) -> Tensor:
        """LION's training objective: ``rec + kl_weight * (w_g KL_g + w_pt KL_pt + w_feat KL_feat)``, batch mean."""
        c = self.cfg
        kl = c.weight_kl_glb * out.kl_glb + c.weight_kl_pt * out.kl_pt + c.weight_kl_feat * out.kl_feat
        return (out.rec + kl_weight * kl).mean()


def negative_elbo_per_point(vae: HierarchicalVAE, points: Float[Tensor, "B N 3"], samples: int = 1) -> Tensor:
    """Negative ELBO of each cloud under the VAE, in nats per point (lower is more likely).

    ``-ELBO = E_q[-log p(x | z)] + KL(q(z_g|x) || N(0,I)) + KL(q(h|x,z_g) || N(0,I))``, with the Laplace
    likelihood of unit scale that LION's L1 loss implies: ``-log p(x | z) = |x - x_hat|_1 + 3 N log 2``.
    The expectation is estimated with ``samples`` posterior draws. The priors here are the VAE's standard
    normals, so this is the bound of the VAE itself, not of the full model with its latent diffusion priors.

    Args:
        vae: a trained VAE (put in eval mode by the caller).
        points: ``(B, N, 3)`` clouds in the model's normalised frame.
        samples: posterior samples per cloud.

    Returns:
        ``(B,)`` negative ELBO divided by N.
    """
    n = points.shape[1]
    total = torch.zeros(points.shape[0], device=points.device)
    for _ in range(samples):
        out = vae(points, sample=True)
        total += out.rec + 3 * n * math.log(2.0) + out.kl_glb + out.kl_pt + out.kl_feat
    return total / samples / n
