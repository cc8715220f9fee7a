"""LION and PVD checkpoints -> networks ready to sample (EMA weights applied), and the viewer's LION adapter.

Imports no training code: :func:`load_lion` rebuilds the network from the checkpoint's hyper-parameters and loads
its weights with ``torch.load(weights_only=True)``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from gen3d.errors import InputError
from gen3d.inference.checkpoint import (
    checkpoint_kind,
    data_statistics,
    load_trained_weights,
    prefixed,
    read_checkpoint,
)
from gen3d.models.ema import EMA
from gen3d.models.lion import LION, PointDiffusion

SAMPLING_STAGES = ("prior", "pvd")  # checkpoints that can generate shapes
DEFAULT_SAMPLER = "ddpm"  # gen3d sample --sampler
DEFAULT_CODE_TEMPERATURE = 1.0  # gen3d sample --code-temperature
OTHER_SAMPLER_STEPS = 50  # gen3d sample --steps for every sampler but ddpm


def default_sampling_steps(sampler: str, num_train_timesteps: int) -> int:
    """``gen3d sample``'s default ``--steps``: every training timestep for ddpm, else 50 (at most the timesteps).

    Args:
        sampler: sampler name.
        num_train_timesteps: the model's diffusion timesteps (1000 for the presets).
    """
    if sampler == "ddpm":
        return int(num_train_timesteps)
    return min(OTHER_SAMPLER_STEPS, int(num_train_timesteps))


def load_vae_weights(net: LION, path: str | os.PathLike) -> None:
    """Copy the VAE of a stage-one checkpoint into ``net`` (its EMA weights when the checkpoint has them)."""
    ckpt = read_checkpoint(path)
    state = ckpt["state_dict"]
    vae_state = prefixed(state, "net.vae.")
    if not vae_state:
        raise InputError("checkpoint holds no VAE weights (net.vae.*)", path)
    net.vae.load_state_dict(vae_state)
    ema_state = prefixed(state, "ema.")
    if checkpoint_kind(ckpt)[1] == "vae" and ema_state:
        ema = EMA(net.vae, ckpt["hyper_parameters"].get("ema_decay", 0.999))
        ema.load_state_dict(ema_state)
        ema.copy_to(net.vae)


@dataclass
class LoadedLion:
    """A trained network ready for sampling, with what is needed to use it.

    Attributes:
        net: the network (:class:`LION`, or :class:`PointDiffusion` for PVD checkpoints), EMA weights applied,
            in eval mode.
        mean: ``(3,)`` normalisation mean of the training data.
        std: ``(1,)`` normalisation scale.
        hparams: the module's hyperparameters (plain types).
        stage: the stage the checkpoint was trained in (``"vae"``, ``"prior"`` or ``"pvd"``).
    """

    net: LION | PointDiffusion
    mean: Tensor
    std: Tensor
    hparams: dict[str, Any]
    stage: str

    def denormalize(self, x: Tensor) -> Tensor:
        return x * self.std.to(x) + self.mean.to(x)

    def normalize(self, x: Tensor) -> Tensor:
        return (x - self.mean.to(x)) / self.std.to(x)


def load_lion(path: str | os.PathLike, use_ema: bool = True) -> LoadedLion:
    """Load a checkpoint of the LION or PVD training modules (``weights_only=True``).

    Args:
        path: a ``.ckpt`` written by Lightning for one of those modules.
        use_ema: apply the EMA weights of the trained networks when present.

    Returns:
        :class:`LoadedLion`.

    Raises:
        InputError: the file is not a LION or PVD checkpoint, its configuration is invalid, or its weights do not
            fit the configuration.
    """
    ckpt = read_checkpoint(path)
    hp = ckpt["hyper_parameters"]
    if "config" not in hp:
        raise InputError("not a LION or PVD checkpoint (no 'config' hyperparameter)", path)
    if not isinstance(hp["config"], dict):
        raise InputError(
            f"expected the 'config' hyperparameter to be a mapping, got {type(hp['config']).__name__}", path
        )
    kind, stage = checkpoint_kind(ckpt)
    try:
        net: LION | PointDiffusion = PointDiffusion(hp["config"]) if kind == "pvd" else LION(hp["config"])
    except (ValueError, TypeError, KeyError) as exc:
        raise InputError(f"the checkpoint's model configuration is invalid ({str(exc)[:200]})", path) from exc
    state = ckpt["state_dict"]
    mean, std = data_statistics(state, path, "LION or PVD")
    trained = net if kind == "pvd" else (net.vae if stage == "vae" else net.priors())
    ema_target = trained if use_ema else None
    load_trained_weights(net, state, path, ema_target=ema_target, ema_decay=hp.get("ema_decay", 0.999))
    net.eval()
    return LoadedLion(net, mean, std, hp, stage)


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
    cos = torch.sum(a * b) / (a.norm() * b.norm()).clamp_min(1e-12)
    theta = torch.arccos(cos.clamp(-1.0, 1.0))
    if float(theta) < 1e-6:
        return (1 - alpha) * a + alpha * b
    return (torch.sin((1 - alpha) * theta) * a + torch.sin(alpha * theta) * b) / torch.sin(theta)


class LionSampleSource:
    """A trained LION model (prior stage, EMA weights) as a :class:`~gen3d.inference.sources.SampleSource`.

    Samples are de-normalised to the data frame. ``sample`` draws the same clouds as
    :meth:`gen3d.lit.lion_module.LionModule.generate` for the same seed and settings. ``interpolate`` mixes
    the starting noise of the two seeds (shape latent and latent points) by spherical interpolation and
    samples from it (:meth:`gen3d.models.lion.LION.sample` with ``x_T``); with the deterministic samplers (``dpm``,
    ``ddim``) the result changes smoothly with ``alpha``.

    Args:
        loaded: :class:`LoadedLion`.
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
        self._check(sampler, steps)
        gen = torch.Generator().manual_seed(int(seed))
        with torch.no_grad():
            x = self.net.sample(int(n), sampler, int(steps), generator=gen, num_points=self.num_points)
        return self.loaded.denormalize(x).cpu().numpy()

    def _noise(self, seed: int) -> tuple[Any, Any]:
        """The starting noise :meth:`sample` draws for ``seed`` and one cloud: ``(z_T (1, G), h_T (1, P, C))``."""
        cfg = self.net.cfg
        gen = torch.Generator().manual_seed(int(seed))
        z_g = torch.randn((1, cfg.style_dim), generator=gen)
        h = torch.randn((1, self.num_points, cfg.point_channels), generator=gen)
        return z_g, h

    def interpolate(
        self, seed_a: int, seed_b: int, alpha: float, sampler: str | None = None, steps: int | None = None
    ) -> np.ndarray:
        """One cloud (P, 3) from the slerp of the starting noise of ``seed_a`` and ``seed_b``."""
        sampler = sampler or self.samplers[0]
        steps = int(steps or self.default_steps)
        self._check(sampler, steps)
        (za, ha), (zb, hb) = self._noise(seed_a), self._noise(seed_b)
        x_T = (slerp(za, zb, alpha), slerp(ha, hb, alpha))
        gen = torch.Generator().manual_seed(int(seed_a))  # noise of stochastic steps (ddpm)
        with torch.no_grad():
            points = self.net.sample(1, sampler, steps, generator=gen, num_points=self.num_points, x_T=x_T)
        return self.loaded.denormalize(points)[0].cpu().numpy()


def build_lion_source(path: Path, ckpt: dict) -> LionSampleSource:
    """Load a prior-stage LION checkpoint (through :func:`load_lion`) as a sample source."""
    if ckpt["hyper_parameters"].get("stage") != "prior":
        raise InputError(
            "a stage-one (VAE) LION checkpoint has no trained priors to sample from; open the prior-stage checkpoint",
            path,
        )
    return LionSampleSource(load_lion(path))
