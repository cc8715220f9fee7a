"""Build GRAF / pi-GAN networks from plain hyper-parameters (a training module's or a checkpoint's)."""

from __future__ import annotations

from typing import Any

from gen3d.errors import InputError
from gen3d.models.graf.field import GRAFField, RadianceField
from gen3d.models.graf.generator import Generator
from gen3d.models.graf.pigan import PiGANField

FIELDS = ("graf", "pigan")


def build_field(hparams: dict[str, Any]) -> RadianceField:
    """The radiance field named ``hparams["field"]``: ``"graf"`` (NeRF MLP with z = [z_s, z_a]) or ``"pigan"``
    (SIREN + FiLM), sized by the other keys of a GRAF training module's hyper-parameters."""
    hp = hparams
    if hp["field"] == "graf":
        z_dim, z_app_dim = hp["z_dim"], hp["z_app_dim"]
        if not 0 <= z_app_dim < z_dim:
            raise InputError(f"need 0 <= z_app_dim < z_dim, got z_app_dim={z_app_dim}, z_dim={z_dim}")
        return GRAFField(
            z_dim - z_app_dim, z_app_dim, hp["net_depth"], hp["net_width"], tuple(hp["skips"]), hp["pos_freqs"],
            hp["dir_freqs"],
        )  # fmt: skip
    if hp["field"] == "pigan":
        return PiGANField(hp["z_dim"], hp["net_width"], hp["net_depth"], hp["mapping_width"], hp["box_side"])
    raise InputError(f"unknown field {hp['field']!r}; available: {', '.join(FIELDS)}")


def build_generator(hparams: dict[str, Any]) -> Generator:
    """The generator described by a GRAF training module's hyper-parameters (``hparams`` of a checkpoint)."""
    hp = hparams
    field = build_field(hp)
    radius = hp["radius"]
    radius = tuple(float(r) for r in radius) if isinstance(radius, (list, tuple)) else float(radius)
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
    )
