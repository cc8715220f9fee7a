"""Build GRAF / pi-GAN networks from plain hyper-parameters (a training module's or a checkpoint's)."""

from __future__ import annotations

from typing import Any

from gen3d.errors import InputError
from gen3d.models.graf.field import GRAFField, RadianceField
from gen3d.models.graf.generator import Generator
from gen3d.models.graf.pigan import PiGANField
from gen3d.models.graf.triplane import TriplaneField
from gen3d.models.graf.voxel import VoxelField

FIELDS = ("graf", "pigan", "triplane", "voxel")
# Keys added after the first checkpoints were written, with the values those checkpoints were trained with.
_LEGACY = {
    "view_dependent": True,
    "sampler": "dense",
    "grid_resolution": 16,
    "march_step": None,
    "grid_threshold": 0.01,
}


def build_field(hparams: dict[str, Any]) -> RadianceField:
    """The radiance field named ``hparams["field"]``, sized by the other keys of a GRAF training module's
    hyper-parameters: ``"graf"`` (NeRF MLP with z = [z_s, z_a]), ``"pigan"`` (SIREN + FiLM), ``"triplane"``
    (EG3D's planes) or ``"voxel"`` (a feature grid)."""
    hp = {**_LEGACY, **hparams}
    view = bool(hp["view_dependent"])
    if hp["field"] == "graf":
        z_dim, z_app_dim = hp["z_dim"], hp["z_app_dim"]
        if not 0 <= z_app_dim < z_dim:
            raise InputError(f"need 0 <= z_app_dim < z_dim, got z_app_dim={z_app_dim}, z_dim={z_dim}")
        return GRAFField(
            z_dim - z_app_dim, z_app_dim, hp["net_depth"], hp["net_width"], tuple(hp["skips"]), hp["pos_freqs"],
            hp["dir_freqs"], use_viewdirs=view,
        )  # fmt: skip
    if hp["field"] == "pigan":
        return PiGANField(
            hp["z_dim"], hp["net_width"], hp["net_depth"], hp["mapping_width"], hp["box_side"], view_dependent=view
        )
    if hp["field"] in ("triplane", "voxel"):
        cls = TriplaneField if hp["field"] == "triplane" else VoxelField
        try:
            return cls(
                hp["z_dim"], hp["feature_channels"], hp["feature_resolution"], hp["base_channels"], hp["min_channels"],
                hp["decoder_width"], hp["bound"], view, hp["dir_freqs"], hp["density_shift"], hp["colour_code"],
            )  # fmt: skip
        except ValueError as exc:
            raise InputError(f"{hp['field']} field: {exc}") from None
    raise InputError(f"unknown field {hp['field']!r}; available: {', '.join(FIELDS)}")


def build_generator(hparams: dict[str, Any]) -> Generator:
    """The generator described by a GRAF training module's hyper-parameters (``hparams`` of a checkpoint)."""
    hp = {**_LEGACY, **hparams}
    field = build_field(hp)
    radius = hp["radius"]
    radius = tuple(float(r) for r in radius) if isinstance(radius, (list, tuple)) else float(radius)
    try:
        return Generator(
            field,
            image_size=hp["image_size"],
            fov=hp["fov"],
            radius=radius,
            near=hp["near"],
            far=hp["far"],
            range_u=tuple(hp["range_u"]),
            range_v=tuple(hp["range_v"]),
            pose_dist=hp["pose_dist"],
            yaw_std=hp["yaw_std"],
            pitch_std=hp["pitch_std"],
            n_samples=hp["n_samples"],
            n_importance=hp["n_importance"],
            background=hp["background"],
            composite_impl=hp["composite_impl"],
            sampler=hp["sampler"],
            grid_resolution=hp["grid_resolution"],
            march_step=hp["march_step"],
            grid_threshold=hp["grid_threshold"],
        )
    except ValueError as exc:
        raise InputError(f"generator: {exc}") from None
