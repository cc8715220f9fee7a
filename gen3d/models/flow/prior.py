"""The latent prior ``p(z)``: an unconditional flow from shape codes to ``N(0, I)``."""

from __future__ import annotations

from gen3d.models.flow.layers import NormalizingFlow


class LatentPriorFlow(NormalizingFlow):
    """Unconditional flow on R^{z_dim} (PointFlow's prior CNF, here a RealNVP/Glow stack).

    Args:
        z_dim: shape code size (at least 2).
        layers: coupling blocks.
        hidden: coupling network width.
        scale_clamp: coupling log-scale bound.
        depth: coupling network hidden layers.
        data_init: data-dependent actnorm initialisation on the first batch of codes. Off by default: a batch
            holds one code per cloud, too few (B of them in z_dim dimensions) for stable statistics, and the noise
            compounds over the blocks; the encoder's codes start near N(0, I) anyway.
    """

    def __init__(
        self, z_dim: int, layers: int, hidden: int, scale_clamp: float = 2.0, depth: int = 2, data_init: bool = False
    ):
        super().__init__(z_dim, layers, hidden, cond_dim=0, scale_clamp=scale_clamp, depth=depth, data_init=data_init)
