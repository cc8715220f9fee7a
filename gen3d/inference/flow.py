"""Point-flow checkpoints -> a network ready to sample and score (EMA weights applied), and its viewer adapter.

Imports no training code: :func:`load_flow` rebuilds the network from the checkpoint's hyperparameters and loads
its weights with ``torch.load(weights_only=True)``.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from gen3d.errors import InputError
from gen3d.inference.checkpoint import data_statistics, is_flow_checkpoint, load_trained_weights, read_checkpoint


@dataclass
class LoadedFlow:
    """A trained point flow ready for sampling and scoring.

    Attributes:
        net: the :class:`~gen3d.models.flow.PointFlowModel`, EMA weights applied, in eval mode.
        mean: ``(3,)`` normalisation mean of the training data.
        std: ``(1,)`` normalisation scale.
        hparams: the module's hyperparameters (plain types).
    """

    net: Any
    mean: Tensor
    std: Tensor
    hparams: dict[str, Any]
    stage: str = "flow"

    def denormalize(self, x: Tensor) -> Tensor:
        return x * self.std.to(x) + self.mean.to(x)

    def normalize(self, x: Tensor) -> Tensor:
        return (x - self.mean.to(x)) / self.std.to(x)

    def log_det_per_point(self) -> float:
        """``log |det d x_norm / d x|`` of one point: ``-3 log std`` (add it to a normalised-frame log density to get
        the density of the data's original units)."""
        return -3.0 * math.log(float(self.std.reshape(-1)[0]))


def load_flow(path: str | os.PathLike, use_ema: bool = True) -> LoadedFlow:
    """Load a checkpoint of the flow training module (``weights_only=True``).

    Args:
        path: a ``.ckpt`` written by Lightning for :class:`gen3d.lit.flow_module.FlowModule`.
        use_ema: apply the EMA weights when present.

    Returns:
        :class:`LoadedFlow`.

    Raises:
        InputError: not a flow checkpoint, an invalid configuration, or weights that do not fit it.
    """
    from gen3d.models.flow import FlowConfig, PointFlowModel

    ckpt = read_checkpoint(path)
    if not is_flow_checkpoint(ckpt):
        raise InputError("not a checkpoint of a gen3d flow model", path)
    hp = ckpt["hyper_parameters"]
    if not isinstance(hp.get("config"), dict):
        raise InputError("not a flow checkpoint (no 'config' mapping among its hyperparameters)", path)
    try:
        net = PointFlowModel(FlowConfig.from_dict(dict(hp["config"])))
    except (ValueError, TypeError, KeyError) as exc:
        raise InputError(f"the checkpoint's model configuration is invalid ({str(exc)[:200]})", path) from exc
    state = ckpt["state_dict"]
    mean, std = data_statistics(state, path, "flow")
    load_trained_weights(net, state, path, ema_target=net if use_ema else None, ema_decay=hp.get("ema_decay", 0.999))
    net.eval()
    return LoadedFlow(net, mean, std, hp)


class FlowSampleSource:
    """A trained point flow as a :class:`~gen3d.inference.sources.SampleSource` (samples in the data frame).

    The flow samples in one pass: the ``sampler`` and ``steps`` of the protocol are accepted and ignored.
    ``sample`` draws the same clouds as :meth:`gen3d.lit.flow_module.FlowModule.generate` for the same seed.
    ``interpolate`` decodes a mix of the two seeds' shape codes with one fixed set of point noise.

    Args:
        loaded: :class:`LoadedFlow`.
        num_points: points per generated cloud (default: the model's).
    """

    samplers = ("flow",)
    default_steps = 1

    def __init__(self, loaded: LoadedFlow, num_points: int | None = None):
        self.loaded = loaded
        self.net = loaded.net.eval()
        self.num_points = int(num_points or self.net.cfg.num_points)
        self.temperature = float(loaded.hparams.get("sample_temperature", 1.0) or 1.0)

    def sample(self, seed: int, n: int, sampler: str | None = None, steps: int | None = None) -> np.ndarray:
        """``n`` clouds (N, P, 3) from ``torch.Generator().manual_seed(seed)``."""
        gen = torch.Generator().manual_seed(int(seed))
        with torch.no_grad():
            x = self.net.sample(int(n), self.num_points, generator=gen, temperature=self.temperature)
        return self.loaded.denormalize(x).cpu().numpy()

    def _code_of(self, seed: int) -> Tensor:
        """A shape code of ``seed``'s first sample: the encoder's mean of that cloud (normalised frame)."""
        cloud = torch.from_numpy(self.sample(seed, 1)).float()
        with torch.no_grad():
            mu, _ = self.net.encode(self.loaded.normalize(cloud))
        return mu

    def interpolate(
        self, seed_a: int, seed_b: int, alpha: float, sampler: str | None = None, steps: int | None = None
    ) -> np.ndarray:
        """One cloud (P, 3): the shape codes of the two seeds' first samples (encoder means), mixed linearly by
        ``alpha`` and decoded with the point noise of ``seed_a``, so the cloud changes smoothly with ``alpha``."""
        za, zb = self._code_of(seed_a), self._code_of(seed_b)
        z = (1 - float(alpha)) * za + float(alpha) * zb
        gen = torch.Generator().manual_seed(int(seed_a))
        with torch.no_grad():
            points = self.net.sample_points(z, self.num_points, generator=gen, temperature=self.temperature)
        return self.loaded.denormalize(points)[0].cpu().numpy()


def build_flow_source(path: Path, ckpt: dict) -> FlowSampleSource:
    """Load a flow checkpoint (through :func:`load_flow`) as a sample source."""
    return FlowSampleSource(load_flow(path))
