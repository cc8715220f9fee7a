"""The per-point flow ``p(x | z)``: each point of a cloud is an independent draw from a 3-D flow conditioned on z."""

from __future__ import annotations

from gen3d.models.flow.layers import NormalizingFlow


class PointFlow(NormalizingFlow):
    """Conditional flow on R^3: points ``x`` (B, N, 3) and shape codes ``z`` (B, z_dim) to ``u ~ N(0, I_3)``.

    As in PointFlow (Yang et al. 2019) and Discrete PointFlow (Klokov et al. 2020), ``log p(X | z)`` is the sum of
    the per-point densities; the coupling networks see the shape code at every hidden layer.

    Args:
        z_dim: shape code size.
        layers: coupling blocks.
        hidden: coupling network width.
        scale_clamp: coupling log-scale bound.
        depth: coupling network hidden layers.
    """

    def __init__(self, z_dim: int, layers: int, hidden: int, scale_clamp: float = 2.0, depth: int = 2):
        super().__init__(3, layers, hidden, cond_dim=z_dim, scale_clamp=scale_clamp, depth=depth)
