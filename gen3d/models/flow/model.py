"""PointFlow with discrete flows: encoder ``q(z | X)``, per-point flow ``p(x | z)``, latent prior flow ``p(z)``.

Training maximises PointFlow's bound on the log-likelihood of a cloud X of N points,
``log p(X) >= ELBO = E_q[sum_i log p(x_i | z)] + E_q[log p(z)] + H[q(z | X)]``, with every density exact.
Sampling draws ``z = F_prior^{-1}(u)`` and then each point as ``x = F_point^{-1}(v; z)``, ``u, v ~ N(0, I)``.

Dimension names: B batch, N points, Z = z_dim, S posterior samples.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from gen3d.models.flow.config import FlowConfig
from gen3d.models.flow.encoder import PointNetEncoder
from gen3d.models.flow.point_flow import PointFlow
from gen3d.models.flow.prior import LatentPriorFlow


def gaussian_entropy(logvar: Tensor) -> Tensor:
    """Entropy of a diagonal Gaussian, ``sum_j (1 + log(2 pi) + logvar_j) / 2``: (B, Z) -> (B,)."""
    return 0.5 * (logvar + 1.0 + math.log(2.0 * math.pi)).sum(dim=-1)


class PointFlowModel(nn.Module):
    """Point-cloud generative model with an exact per-point likelihood given the shape code.

    Args:
        cfg: the configuration.
    """

    def __init__(self, cfg: FlowConfig):
        super().__init__()
        self.cfg = cfg
        self.encoder = PointNetEncoder(cfg.z_dim, cfg.encoder_width)
        self.point_flow = PointFlow(cfg.z_dim, cfg.point_layers, cfg.hidden, cfg.scale_clamp, cfg.coupling_depth)
        self.prior_flow = LatentPriorFlow(
            cfg.z_dim, cfg.prior_layers, cfg.hidden, cfg.scale_clamp, cfg.coupling_depth, cfg.prior_data_init
        )

    def _like(self) -> Tensor:
        return next(self.parameters())

    # --------------------------------------------------------------------------------------- densities
    def encode(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """Posterior ``q(z | X) = N(mu, diag(exp(logvar)))``: x (B, N, 3) -> mu, logvar (B, Z)."""
        return self.encoder(x)

    def point_log_prob(self, x: Tensor, z: Tensor) -> Tensor:
        """Exact ``log p(x_i | z)`` in nats: x (B, N, 3), z (B, Z) -> (B, N)."""
        return self.point_flow.log_prob(x, z)

    def prior_log_prob(self, z: Tensor) -> Tensor:
        """Exact ``log p(z)`` in nats: z (B, Z) -> (B,)."""
        return self.prior_flow.log_prob(z)

    def elbo(self, x: Tensor, samples: int = 1, generator: torch.Generator | None = None) -> dict[str, Tensor]:
        """PointFlow's evidence lower bound of each cloud, ``log p(X) >= ELBO``, in nats (not divided by N).

        Args:
            x: (B, N, 3) clouds in the model's normalised frame.
            samples: S, posterior draws of the Monte Carlo expectations.
            generator: source of the posterior noise (None: the global one).

        Returns:
            ``elbo``, ``recon`` (``E_q[sum_i log p(x_i | z)]``), ``prior`` (``E_q[log p(z)]``) and ``entropy``
            (``H[q]``, closed form), (B,) each; ``elbo = recon + prior + entropy``.
        """
        if samples < 1:
            raise ValueError(f"samples must be at least 1, got {samples}")
        mu, logvar = self.encode(x)  # (B, Z) each
        std = torch.exp(0.5 * logvar)
        recon = torch.zeros(x.shape[0], dtype=x.dtype, device=x.device)
        prior = torch.zeros_like(recon)
        for _ in range(samples):
            eps = torch.randn(mu.shape, generator=generator, dtype=mu.dtype, device=mu.device)
            z = mu + std * eps  # (B, Z)
            recon = recon + self.point_log_prob(x, z).sum(dim=1)
            prior = prior + self.prior_log_prob(z)
        recon, prior = recon / samples, prior / samples
        entropy = gaussian_entropy(logvar)
        return {"elbo": recon + prior + entropy, "recon": recon, "prior": prior, "entropy": entropy}

    def loss(self, x: Tensor, generator: torch.Generator | None = None) -> dict[str, Tensor]:
        """Training objective: the negative ELBO per point, averaged over the batch (one posterior sample).

        Args:
            x: (B, N, 3) clouds.
            generator: source of the posterior noise (None: the global one).

        Returns:
            ``loss`` (scalar, ``-mean(ELBO) / N``) and the batch means of the three terms divided by N:
            ``recon_nats_per_point``, ``prior_nats_per_point``, ``entropy_nats_per_point``.
        """
        out = self.elbo(x, samples=1, generator=generator)
        n = x.shape[1]
        return {
            "loss": -out["elbo"].mean() / n,
            "recon_nats_per_point": out["recon"].mean() / n,
            "prior_nats_per_point": out["prior"].mean() / n,
            "entropy_nats_per_point": out["entropy"].mean() / n,
        }

    # --------------------------------------------------------------------------------------- sampling
    @torch.no_grad()
    def sample_points(
        self, z: Tensor, n_points: int, generator: torch.Generator | None = None, temperature: float = 1.0
    ) -> Tensor:
        """Points of given shapes through the inverse point flow.

        Args:
            z: (B, Z) shape codes.
            n_points: points per shape (any count).
            generator: source of the base noise (None: the global one).
            temperature: scale of the base noise (below 1: points nearer each shape's modes).

        Returns:
            (B, n_points, 3) points.
        """
        v = torch.randn(z.shape[0], n_points, 3, generator=generator, dtype=z.dtype, device=z.device)
        return self.point_flow.inverse(temperature * v, z)

    @torch.no_grad()
    def sample(
        self, n_shapes: int, n_points: int, generator: torch.Generator | None = None, temperature: float = 1.0
    ) -> Tensor:
        """New clouds: shape codes from the prior flow, then their points.

        Args:
            n_shapes: clouds to draw.
            n_points: points per cloud (any count).
            generator: source of all noise (None: the global one).
            temperature: scale of both base noises.

        Returns:
            (n_shapes, n_points, 3) points.
        """
        like = self._like()
        u = torch.randn(n_shapes, self.cfg.z_dim, generator=generator, dtype=like.dtype, device=like.device)
        z = self.prior_flow.inverse(temperature * u)  # (n_shapes, Z)
        return self.sample_points(z, n_points, generator, temperature)
