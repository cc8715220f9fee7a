"""LION (Zeng et al. 2022): latent point diffusion, built from pure-torch point-voxel networks."""

from gen3d.models.lion.config import LionConfig
from gen3d.models.lion.lion import LION, PointDiffusion
from gen3d.models.lion.priors import PointDenoiser, PointLatentDenoiser, ShapeLatentDenoiser
from gen3d.models.lion.pvcnn import PVCNN, AdaGN, PointNetEncoder, PVConv, devoxelize, normalize_coords, voxelize
from gen3d.models.lion.vae import HierarchicalVAE, VAEOutput, gaussian_kl, kl_weight_at, negative_elbo_per_point

__all__ = [
    "LION",
    "PVCNN",
    "AdaGN",
    "HierarchicalVAE",
    "LionConfig",
    "PVConv",
    "PointDenoiser",
    "PointDiffusion",
    "PointLatentDenoiser",
    "PointNetEncoder",
    "ShapeLatentDenoiser",
    "VAEOutput",
    "devoxelize",
    "gaussian_kl",
    "kl_weight_at",
    "negative_elbo_per_point",
    "normalize_coords",
    "voxelize",
]
