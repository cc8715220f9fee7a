"""GRAF / pi-GAN checkpoints -> generators ready to render, and the viewer's GRAF adapter.

Imports no training code: :func:`load_graf_generator` rebuilds the generator from the checkpoint's
hyper-parameters (:func:`gen3d.models.graf.build.build_generator`) and loads its (moving-average) weights with
``torch.load(weights_only=True)``.

Frames: the viewer, the turntables and the point-cloud models use y up; GRAF's world has z up. The adapter
turns the viewer's poses and positions into GRAF's frame (a +90 degree rotation about x, taking +y to +z),
so orbits circle the object's vertical axis and meshes come out y up like every other gen3d shape.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import torch

from gen3d.data.multiview import Y_UP_TO_Z_UP
from gen3d.errors import InputError
from gen3d.inference.checkpoint import is_graf_checkpoint, prefixed, read_checkpoint


class GrafFieldSource:
    """A trained GRAF / pi-GAN generator (its EMA weights) as a :class:`~gen3d.inference.sources.FieldSource`.

    Args:
        generator: :class:`gen3d.models.graf.generator.Generator`.
        device: torch device to render on.

    Attributes:
        aabb: the box the generator's rays sample, ``[-b, b]^3`` with ``b = (far - near) / 2``.
        radius: the generator's (largest) camera distance.
    """

    def __init__(self, generator: Any, device: str = "cpu"):
        self.generator = generator.to(device).eval()
        self.device = device
        self.radius = float(generator.max_radius)
        half = 0.5 * (float(generator.far) - float(generator.near))
        self.aabb = (-half, -half, -half, half, half, half)

    def latent(self, seed: int) -> Any:
        """The latent code (1, Z) of scene ``seed`` (a standard-normal draw from a generator seeded with it)."""
        gen = torch.Generator().manual_seed(int(seed))
        return self.generator.field.sample_z(1, generator=gen, device="cpu").to(self.device)

    def render(self, c2w: np.ndarray, H: int, W: int, seed: int = 0) -> np.ndarray:
        """Render scene ``seed`` from a y-up camera-to-world pose (4, 4); returns (H, W, 3) in [0, 1]."""
        if H != W:
            raise InputError(f"GRAF renders square images; got {H} x {W}")
        pose = np.eye(4)
        pose[:3, :] = (
            np.asarray(Y_UP_TO_Z_UP) @ np.asarray(c2w, dtype=np.float64)[:3, :]
        )  # the same camera in GRAF's world
        with torch.no_grad():
            c2w_t = torch.as_tensor(pose, dtype=torch.float32, device=self.device)[None]  # (1, 4, 4)
            rgb = self.generator.render(self.latent(seed), c2w_t, size=int(H))["rgb"]  # (1, 3, H, W) in [-1, 1]
        return ((rgb[0].permute(1, 2, 0).clamp(-1, 1) + 1) / 2).cpu().numpy()

    def density(self, xyz: Any, seed: int = 0) -> Any:
        """Density sigma (M,) at y-up positions ``xyz`` (M, 3) of scene ``seed``."""
        rot = torch.as_tensor(Y_UP_TO_Z_UP, dtype=xyz.dtype, device=xyz.device)
        with torch.no_grad():
            x = (xyz.to(self.device) @ rot.to(self.device).T)[None]  # (1, M, 3) in GRAF's world
            return self.generator.field.density(x, self.latent(seed))[0]  # (M,)


def load_graf_generator(
    ckpt: str | os.PathLike, ema: bool = True, device: str | torch.device = "cpu"
) -> tuple[Any, dict[str, Any]]:
    """The generator of a GRAF checkpoint (its moving average by default), in eval mode, and its hyper-parameters.

    Raises:
        InputError: missing, unreadable or non-GRAF checkpoint, or weights that do not fit its configuration.
    """
    from gen3d.models.graf.build import build_generator

    state = read_checkpoint(ckpt)
    if not is_graf_checkpoint(state):
        raise InputError("not a GRAF checkpoint (no radiance-field hyper-parameters / generator weights)", ckpt)
    hp = {k: v for k, v in state["hyper_parameters"].items() if not k.startswith("_")}  # LightningCLI's _instantiator
    try:
        generator = build_generator(hp)
        generator.load_state_dict(prefixed(state["state_dict"], "generator_ema." if ema else "generator."))
    except (KeyError, TypeError, RuntimeError) as exc:
        raise InputError(f"not a GRAF checkpoint ({str(exc).splitlines()[0][:200]})", ckpt) from exc
    return generator.requires_grad_(False).to(device).eval(), hp


def build_graf_source(path: Path, ckpt: dict) -> GrafFieldSource:
    """Load a GRAF checkpoint (through :func:`load_graf_generator`) as a field source."""
    return GrafFieldSource(load_graf_generator(path)[0])
