"""PointNet encoder of the posterior ``q(z | X)``."""

from __future__ import annotations

from torch import Tensor, nn


class PointNetEncoder(nn.Module):
    """Shared per-point MLP, max pool over the points, then an MLP to the Gaussian posterior's parameters.

    No batch normalisation, so each cloud's posterior depends on that cloud alone (train and eval alike).

    Args:
        z_dim: shape code size.
        width: W, widest per-point feature.
    """

    def __init__(self, z_dim: int, width: int = 256):
        super().__init__()
        half = max(width // 2, 1)
        self.point_mlp = nn.Sequential(
            nn.Linear(3, half), nn.ReLU(), nn.Linear(half, width), nn.ReLU(), nn.Linear(width, width)
        )
        self.head = nn.Sequential(nn.Linear(width, width), nn.ReLU(), nn.Linear(width, 2 * z_dim))

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """Posterior of each cloud.

        Args:
            x: (B, N, 3) points.

        Returns:
            ``mu`` and ``logvar``, (B, z_dim) each.
        """
        h = self.point_mlp(x).amax(dim=1)  # (B, W)
        mu, logvar = self.head(h).chunk(2, dim=-1)  # (B, z_dim) each
        return mu, logvar
