"""Adapters from gen3d's own checkpoints to the viewer's protocols (:mod:`gen3d.viewer.sources`).

- LION (:mod:`gen3d.lit.lion_module`, prior-stage checkpoints) -> :class:`LionSampleSource`, a ``SampleSource``.
- GRAF / pi-GAN (:mod:`gen3d.lit.graf_module`) -> :class:`GrafFieldSource`, a ``FieldSource``.

Frames: the viewer, the turntables and the point-cloud models use y up; GRAF's world has z up. The adapter
turns the viewer's poses and positions into GRAF's frame (a +90 degree rotation about x, taking +y to +z),
so orbits circle the object's vertical axis and meshes come out y up like every other gen3d shape.
Lightning and the model modules are imported only when a matching checkpoint is opened.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from gen3d.errors import InputError

# Rotation taking the viewer's y-up coordinates to GRAF's z-up world: (x, y, z) -> (x, -z, y).
Y_UP_TO_Z_UP = np.array([[1.0, 0.0, 0.0], [0.0, 0.0, -1.0], [0.0, 1.0, 0.0]])


def is_graf_checkpoint(ckpt: dict) -> bool:
    """A Lightning checkpoint of :class:`gen3d.lit.graf_module.GRAFModule` (GRAF or pi-GAN field)."""
    hp = ckpt.get("hyper_parameters")
    state = ckpt.get("state_dict")
    if not isinstance(hp, dict) or not isinstance(state, dict):
        return False
    return hp.get("field") in ("graf", "pigan") and any(str(k).startswith("generator_ema.") for k in state)


class GrafFieldSource:
    """A trained GRAF / pi-GAN generator (its EMA weights) as a :class:`~gen3d.viewer.sources.FieldSource`.

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
        import torch

        gen = torch.Generator().manual_seed(int(seed))
        return self.generator.field.sample_z(1, generator=gen, device="cpu").to(self.device)

    def render(self, c2w: np.ndarray, H: int, W: int, seed: int = 0) -> np.ndarray:
        """Render scene ``seed`` from a y-up camera-to-world pose (4, 4); returns (H, W, 3) in [0, 1]."""
        import torch

        if H != W:
            raise InputError(f"GRAF renders square images; got {H} x {W}")
        pose = np.eye(4)
        pose[:3, :] = Y_UP_TO_Z_UP @ np.asarray(c2w, dtype=np.float64)[:3, :]  # the same camera in GRAF's world
        with torch.no_grad():
            c2w_t = torch.as_tensor(pose, dtype=torch.float32, device=self.device)[None]  # (1, 4, 4)
            rgb = self.generator.render(self.latent(seed), c2w_t, size=int(H))["rgb"]  # (1, 3, H, W) in [-1, 1]
        return ((rgb[0].permute(1, 2, 0).clamp(-1, 1) + 1) / 2).cpu().numpy()

    def density(self, xyz: Any, seed: int = 0) -> Any:
        """Density sigma (M,) at y-up positions ``xyz`` (M, 3) of scene ``seed``."""
        import torch

        rot = torch.as_tensor(Y_UP_TO_Z_UP, dtype=xyz.dtype, device=xyz.device)
        with torch.no_grad():
            x = (xyz.to(self.device) @ rot.to(self.device).T)[None]  # (1, M, 3) in GRAF's world
            return self.generator.field.density(x, self.latent(seed))[0]  # (M,)


def build_graf_source(path: Path, ckpt: dict) -> GrafFieldSource:
    """Load a GRAF checkpoint (through :func:`gen3d.lit.graf_module.load_graf_module`) as a field source."""
    from gen3d.lit.graf_module import load_graf_module

    return GrafFieldSource(load_graf_module(path).generator_ema)


def is_lion_checkpoint(ckpt: dict) -> bool:
    """A Lightning checkpoint of :class:`gen3d.lit.lion_module.LionModule` (either stage)."""
    hp = ckpt.get("hyper_parameters")
    state = ckpt.get("state_dict")
    if not isinstance(hp, dict) or not isinstance(state, dict):
        return False
    return isinstance(hp.get("config"), dict) and hp.get("stage") in ("vae", "prior") and "norm_mean" in state


def slerp(a: Any, b: Any, alpha: float) -> Any:
    """Spherical interpolation between two Gaussian noise tensors (keeps their norm statistics).

    Args:
        a: noise at ``alpha = 0``.
        b: noise at ``alpha = 1``, same shape.
        alpha: weight in [0, 1].

    Returns:
        ``sin((1 - alpha) theta) / sin(theta) a + sin(alpha theta) / sin(theta) b``, with ``theta`` the angle
        between the flattened tensors (linear interpolation when they are parallel).
    """
    import torch

    cos = torch.sum(a * b) / (a.norm() * b.norm()).clamp_min(1e-12)
    theta = torch.arccos(cos.clamp(-1.0, 1.0))
    if float(theta) < 1e-6:
        return (1 - alpha) * a + alpha * b
    return (torch.sin((1 - alpha) * theta) * a + torch.sin(alpha * theta) * b) / torch.sin(theta)


class LionSampleSource:
    """A trained LION model (prior stage, EMA weights) as a :class:`~gen3d.viewer.sources.SampleSource`.

    Samples are de-normalised to the data frame. ``sample`` draws the same clouds as
    :meth:`gen3d.lit.lion_module.LionModule.generate` for the same seed and settings. ``interpolate`` mixes
    the starting noise of the two seeds (shape latent and latent points) by spherical interpolation and
    runs both priors and the decoder from it; with the deterministic samplers (``dpm``, ``ddim``) the
    result changes smoothly with ``alpha``.

    Args:
        loaded: :class:`gen3d.lit.lion_module.LoadedLion`.
        num_points: points per generated cloud (default: the model's).
    """

    samplers = ("dpm", "ddim", "ddpm")
    default_steps = 20

    def __init__(self, loaded: Any, num_points: int | None = None):
        self.loaded = loaded
        self.net = loaded.net.eval()
        self.num_points = int(num_points or self.net.cfg.num_points)

    def _check(self, sampler: str, steps: int) -> None:
        if sampler not in self.samplers:
            raise InputError(f"unknown sampler {sampler!r}; expected one of {', '.join(self.samplers)}")
        if steps < 1:
            raise InputError(f"need at least one sampling step, got {steps}")

    def sample(self, seed: int, n: int, sampler: str, steps: int) -> np.ndarray:
        """``n`` clouds (N, P, 3) from ``torch.Generator().manual_seed(seed)``."""
        import torch

        self._check(sampler, steps)
        gen = torch.Generator().manual_seed(int(seed))
        with torch.no_grad():
            x = self.net.sample(int(n), sampler, int(steps), generator=gen, num_points=self.num_points)
        return self.loaded.denormalize(x).cpu().numpy()

    def _noise(self, seed: int) -> tuple[Any, Any]:
        import torch

        cfg = self.net.cfg
        gen = torch.Generator().manual_seed(int(seed))
        z_g = torch.randn((1, cfg.style_dim), generator=gen)
        h = torch.randn((1, self.num_points, cfg.point_channels), generator=gen)
        return z_g, h

    def interpolate(
        self, seed_a: int, seed_b: int, alpha: float, sampler: str | None = None, steps: int | None = None
    ) -> np.ndarray:
        """One cloud (P, 3) from the slerp of the starting noise of ``seed_a`` and ``seed_b``."""
        import torch

        from gen3d.diffusion import sample_loop

        sampler = sampler or self.samplers[0]
        steps = int(steps or self.default_steps)
        self._check(sampler, steps)
        (za, ha), (zb, hb) = self._noise(seed_a), self._noise(seed_b)
        device = next(self.net.parameters()).device
        gen = torch.Generator().manual_seed(int(seed_a))  # noise of stochastic steps (ddpm)
        with torch.no_grad():
            x_g = slerp(za, zb, alpha).to(device)
            z_g = sample_loop(
                self.net.glb_prior, self.net.make_sampler(sampler, steps), x_g.shape, gen, False, device, x_T=x_g
            )
            x_h = slerp(ha, hb, alpha).to(device)
            loc = lambda x_t, t: self.net.loc_prior(x_t, t, z_g)
            h = sample_loop(loc, self.net.make_sampler(sampler, steps), x_h.shape, gen, False, device, x_T=x_h)
            z_g, h = self.net.unstandardize(z_g, h)  # back to the VAE's frame
            points = self.net.vae.decode(h, z_g)  # (1, P, 3) normalised
        return self.loaded.denormalize(points)[0].cpu().numpy()


def build_lion_source(path: Path, ckpt: dict) -> LionSampleSource:
    """Load a prior-stage LION checkpoint (through :func:`gen3d.lit.lion_module.load_lion`) as a sample source."""
    from gen3d.lit.lion_module import load_lion

    if ckpt["hyper_parameters"].get("stage") != "prior":
        raise InputError(
            "a stage-one (VAE) LION checkpoint has no trained priors to sample from; open the prior-stage checkpoint",
            path,
        )
    return LionSampleSource(load_lion(path))
