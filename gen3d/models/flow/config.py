"""Sizes of the point-cloud normalizing flow, one flat dataclass with plain-type fields (YAML/JSON/checkpoint friendly).

The model follows PointFlow (Yang et al. 2019) and Discrete PointFlow (Klokov et al. 2020): a PointNet encoder
``q(z | X)``, a per-point flow ``p(x | z)`` and a latent prior flow ``p(z)``; both flows are discrete
RealNVP/Glow stacks (actnorm, invertible mixing, affine coupling) rather than continuous normalizing flows.
PointFlow's paper values: shape code 128-d, 2048 points per cloud; the defaults here keep its code size and
point count with coupling networks small enough to train on a CPU.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any


@dataclass
class FlowConfig:
    """Architecture of :class:`~gen3d.models.flow.PointFlowModel`.

    Attributes:
        z_dim: size of the shape code z (PointFlow: 128).
        point_layers: coupling blocks of the per-point flow ``p(x | z)``.
        prior_layers: coupling blocks of the latent prior flow ``p(z)``.
        hidden: width of the coupling networks of both flows.
        encoder_width: width of the PointNet encoder.
        num_points: points per cloud in training (PointFlow: 2048).
        coupling_depth: hidden layers of each coupling network.
        scale_clamp: bound c of the coupling log-scales, softly clamped as ``c * tanh(s / c)``.
        prior_data_init: data-dependent actnorm initialisation in the prior flow (the point flow always has it).
            Off by default: a batch has only B codes in z_dim dimensions, too few for stable statistics.
    """

    z_dim: int = 128
    point_layers: int = 8
    prior_layers: int = 8
    hidden: int = 256
    encoder_width: int = 256
    num_points: int = 2048
    coupling_depth: int = 2
    scale_clamp: float = 2.0
    prior_data_init: bool = False

    def to_dict(self) -> dict[str, Any]:
        """Plain-type copy (numbers only)."""
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any] | FlowConfig | None) -> FlowConfig:
        """Build from a dict (unknown keys raise ``ValueError``), pass a config through, or defaults for None."""
        if d is None:
            return cls()
        if isinstance(d, FlowConfig):
            return d
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise ValueError(f"unknown flow config keys {unknown}; expected some of {sorted(known)}")
        return cls(**d)
