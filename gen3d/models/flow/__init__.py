"""Point-cloud normalizing flow with exact likelihood (PointFlow / Discrete PointFlow with RealNVP/Glow layers)."""

from gen3d.models.flow.config import FlowConfig
from gen3d.models.flow.encoder import PointNetEncoder
from gen3d.models.flow.layers import (
    ActNorm,
    AffineCoupling,
    CouplingNet,
    FlowBlock,
    InvertibleMixing,
    NormalizingFlow,
    standard_normal_log_prob,
)
from gen3d.models.flow.model import PointFlowModel, gaussian_entropy
from gen3d.models.flow.point_flow import PointFlow
from gen3d.models.flow.prior import LatentPriorFlow

__all__ = [
    "ActNorm",
    "AffineCoupling",
    "CouplingNet",
    "FlowBlock",
    "FlowConfig",
    "InvertibleMixing",
    "LatentPriorFlow",
    "NormalizingFlow",
    "PointFlow",
    "PointFlowModel",
    "PointNetEncoder",
    "gaussian_entropy",
    "standard_normal_log_prob",
]
