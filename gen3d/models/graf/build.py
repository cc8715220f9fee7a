"""Build GRAF / pi-GAN networks from plain hyper-parameters (a training module's or a checkpoint's)."""

from __future__ import annotations

from typing import Any

from gen3d.errors import InputError
from gen3d.models.graf.field import GRAFField, RadianceField
from gen3d.models.graf.generator import Generator
from gen3d.models.graf.pigan import PiGANField

FIELDS = ("graf", "pigan")


def build_field(
    field: str = "graf",
    z_dim: int = 256,
    z_app_dim: int = 128,
    net_depth: int = 8,
    net_width: int = 256,
    skips: tuple[int, ...] = (4,),
    pos_freqs: int = 10,
    dir_freqs: int = 4,
    mapping_width: int = 256,
    box_side: float | None = 0.24,
) -> RadianceField:
    """The radiance field named ``field`` (``"graf"``: NeRF MLP with z = [z_s, z_a]; ``"pigan"``: SIREN + FiLM)."""
    if field == "graf":
        if not 0 <= z_app_dim < z_dim:
            raise InputError(f"need 0 <= z_app_dim < z_dim, got z_app_dim={z_app_dim}, z_dim={z_dim}")
        return GRAFField(z_dim - z_app_dim, z_app_dim, net_depth, net_width, tuple(skips), pos_freqs, dir_freqs)
    if field == "pigan":
        return PiGANField(z_dim, net_width, net_depth, mapping_width, box_side)
    raise InputError(f"unknown field {field!r}; available: {', '.join(FIELDS)}")


def build_generator(hparams: dict[str, Any]) -> Generator:
    """The generator described by a GRAF training module's hyper-parameters (``hparams`` of a checkpoint)."""
    hp = hparams
    field = build_field(
        hp["field"], hp["z_dim"], hp["z_app_dim"], hp["net_depth"], hp["net_width"], tuple(hp["skips"]),
        hp["pos_freqs"], hp["dir_freqs"], hp["mapping_width"], hp["box_side"],
    )  # fmt: skip
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
