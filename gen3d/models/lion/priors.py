"""The two latent denoisers of LION and the point-space denoiser of the PVD-style baseline.

* :class:`ShapeLatentDenoiser`: a residual MLP over the shape latent (LION's ``PriorSEDrop``: blocks of
  ``x + t -> Linear -> ReLU -> Dropout -> Linear -> ReLU -> squeeze-excitation`` with a skip).
* :class:`PointLatentDenoiser`: a PVCNN over the latent points, conditioned on the time embedding and on the
  (clean) shape latent through adaptive group norm (LION's ``PVCNN2Prior``).
* :class:`PointDenoiser`: a PVCNN over raw xyz, conditioned on time only (PVD).

All take ``(x_t, t)`` with integer ``t`` and return the prediction (epsilon or v) shaped like ``x_t``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from jaxtyping import Float
from torch import Tensor, nn

from gen3d.models.lion.pvcnn import PVCNN, TimeEmbedding, timestep_embedding


class SqueezeExcite(nn.Module):
    """Channel gating ``x * sigmoid(W2 relu(W1 x))`` for vectors."""

    def __init__(self, channels: int, reduction: int = 8):
        super().__init__()
        self.fc = nn.Sequential(
            nn.Linear(channels, channels // reduction, bias=False),
            nn.ReLU(),
            nn.Linear(channels // reduction, channels, bias=False),
            nn.Sigmoid(),
        )

    def forward(self, x: Tensor) -> Tensor:
        return x * self.fc(x)


class ResBlockSE(nn.Module):
    """``x + SE(relu(W2 dropout(relu(W1 (x + temb)))))``."""

    def __init__(self, channels: int, dropout: float):
        super().__init__()
        self.fc1 = nn.Linear(channels, channels)
        self.fc2 = nn.Linear(channels, channels)
        self.dropout = nn.Dropout(dropout)
        self.se = SqueezeExcite(channels)

    def forward(self, x: Float[Tensor, "B C"], temb: Float[Tensor, "B C"]) -> Float[Tensor, "B C"]:
        h = torch.relu(self.fc1(x + temb))
        h = torch.relu(self.fc2(self.dropout(h)))
        return x + self.se(h)


class ShapeLatentDenoiser(nn.Module):
    """Denoiser of the global shape latent.

    Args:
        dim: G, the shape latent width.
        channels: hidden width.
        blocks: number of residual blocks.
        dropout: dropout in the blocks.
        time_dim: sinusoidal embedding width.
    """

    def __init__(self, dim: int, channels: int = 2048, blocks: int = 8, dropout: float = 0.3, time_dim: int = 128):
        super().__init__()
        self.time_dim = time_dim
        self.temb = nn.Sequential(nn.Linear(time_dim, 4 * time_dim), nn.SiLU(), nn.Linear(4 * time_dim, channels))
        self.inp = nn.Linear(dim, channels)
        self.blocks = nn.ModuleList(ResBlockSE(channels, dropout) for _ in range(blocks))
        self.out = nn.Linear(channels, dim)

    def forward(self, x: Float[Tensor, "B G"], t: Tensor) -> Float[Tensor, "B G"]:
        temb = self.temb(timestep_embedding(t, self.time_dim))  # (B, C)
        h = self.inp(x)
        for block in self.blocks:
            h = block(h, temb)
        return self.out(h)


class PointLatentDenoiser(nn.Module):
    """Denoiser of the latent points, conditioned on the shape latent.

    Args:
        point_channels: P = 3 + D.
        style_dim: G.
        channels: PVCNN block widths.
        resolutions: PVCNN voxel resolutions.
        dropout: PVCNN dropout.
        time_dim: time-embedding width.
        voxel_channels: PVCNN voxel-branch widths (None: PVCNN's layout).
        voxel_frame: how the latent points are fitted into the voxel grids, ``"sphere"`` (PVCNN) or ``"box"``.
    """

    def __init__(
        self,
        point_channels: int,
        style_dim: int,
        channels: Sequence[int],
        resolutions: Sequence[int],
        dropout: float = 0.1,
        time_dim: int = 64,
        voxel_channels: Sequence[int] | None = None,
        voxel_frame: str = "sphere",
    ):
        super().__init__()
        self.temb = TimeEmbedding(time_dim)
        cond = time_dim + style_dim
        self.net = PVCNN(
            point_channels,
            point_channels,
            channels,
            resolutions,
            cond,
            dropout,
            voxel_channels=voxel_channels,
            voxel_frame=voxel_frame,
        )

    def forward(self, x: Float[Tensor, "B N P"], t: Tensor, style: Float[Tensor, "B G"]) -> Float[Tensor, "B N P"]:
        cond = torch.cat([self.temb(t), style], dim=1)  # (B, T + G)
        return self.net(x.transpose(1, 2), x[..., :3], cond).transpose(1, 2)


class PointDenoiser(PointLatentDenoiser):
    """Point-space denoiser of the PVD-style baseline: xyz in, epsilon (or v) out.

    :class:`PointLatentDenoiser` on raw points (``point_channels = 3``) with no shape latent (``style_dim = 0``):
    conditioned on time only.

    Args:
        channels: PVCNN block widths.
        resolutions: PVCNN voxel resolutions.
        *args: the remaining arguments of :class:`PointLatentDenoiser` (``dropout``, ``time_dim``,
            ``voxel_channels``, ``voxel_frame``).
        **kwargs: the same by name.
    """

    def __init__(self, channels: Sequence[int], resolutions: Sequence[int], *args: Any, **kwargs: Any):
        super().__init__(3, 0, channels, resolutions, *args, **kwargs)

    def forward(self, x: Float[Tensor, "B N 3"], t: Tensor) -> Float[Tensor, "B N 3"]:  # type: ignore[override]
        return super().forward(x, t, x.new_zeros(x.shape[0], 0))
