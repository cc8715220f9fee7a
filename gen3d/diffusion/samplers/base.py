"""The common interface of the samplers: ``set_timesteps``, ``timesteps``, ``step`` and a plain-type config.

A sampler walks a decreasing subset ``t_0 > t_1 > ... > t_{n-1}`` of the training timesteps; after the last one
it lands on the clean data (``t = -1``, ``alpha_bar = 1``). Samplers hold no network: the caller evaluates the
model at ``(x_t, t)`` and hands the output to :meth:`Sampler.step`, as in diffusers.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import torch
from torch import Tensor

from gen3d.diffusion.schedules import PREDICTION_TYPES, NoiseSchedule


@dataclass
class StepOutput:
    """Result of one sampler step.

    Attributes:
        prev_sample: ``x_{t_prev}``, shaped like the input sample.
        pred_original_sample: the model's estimate of ``x_0`` at this step.
    """

    prev_sample: Tensor
    pred_original_sample: Tensor


TIMESTEP_SPACINGS = ("quadratic", "linspace")


def spaced_timesteps(num_train_timesteps: int, num_inference_steps: int, spacing: str = "quadratic") -> Tensor:
    """``num_inference_steps`` distinct integer timesteps from ``T-1`` down to ``0``, strictly decreasing.

    ``"linspace"`` spreads them evenly in ``t``; ``"quadratic"`` evenly in ``sqrt(t)`` (denser at low noise, the
    DDIM paper's and LION's ``quad`` choice), which keeps few-step walks accurate where the linear schedule's
    signal-to-noise ratio changes fastest. Collisions after rounding are pushed up by one step.

    Args:
        num_train_timesteps: T.
        num_inference_steps: n, ``1 <= n <= T``.
        spacing: ``"quadratic"`` or ``"linspace"``.

    Returns:
        long tensor ``(n,)``, strictly decreasing, starting at ``T-1`` and ending at ``0`` (for ``n > 1``).
    """
    T, n = num_train_timesteps, num_inference_steps
    if not 1 <= n <= T:
        raise ValueError(f"num_inference_steps must be in [1, {T}], got {n}")
    if n == 1:
        return torch.tensor([T - 1])
    if spacing == "linspace":
        ts = np.linspace(T - 1, 0, n)
    elif spacing == "quadratic":
        ts = np.linspace(np.sqrt(T - 1), 0, n) ** 2
    else:
        raise ValueError(f"unknown timestep spacing {spacing!r}; expected one of {TIMESTEP_SPACINGS}")
    ts = ts.round().astype(np.int64)
    for i in range(n - 2, -1, -1):  # make strictly decreasing from the low end up
        ts[i] = max(ts[i], ts[i + 1] + 1)
    return torch.from_numpy(ts)


def randn_like(x: Tensor, generator: torch.Generator | None) -> Tensor:
    """Standard normal noise shaped like ``x``, drawn from ``generator`` (on the generator's device)."""
    device = generator.device if generator is not None else x.device
    return torch.randn(x.shape, generator=generator, device=device, dtype=x.dtype).to(x.device)


class Sampler:
    """Base class of the reverse-process samplers.

    Args:
        schedule: the noise schedule the model was trained with.
        prediction_type: what the model predicts: ``"epsilon"``, ``"v_prediction"`` or ``"sample"``.
        clip_sample: clamp the predicted ``x_0`` to ``[-clip_sample, clip_sample]`` (None: no clamp).
        timestep_spacing: how :meth:`set_timesteps` spreads the steps (``"quadratic"`` or ``"linspace"``).
    """

    name: ClassVar[str] = ""
    registry: ClassVar[dict[str, type[Sampler]]] = {}
    init_noise_sigma: float = 1.0

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if cls.name:
            Sampler.registry[cls.name] = cls

    def __init__(
        self,
        schedule: NoiseSchedule,
        prediction_type: str = "epsilon",
        clip_sample: float | None = None,
        timestep_spacing: str = "quadratic",
    ):
        if timestep_spacing not in TIMESTEP_SPACINGS:
            raise ValueError(f"unknown timestep spacing {timestep_spacing!r}; expected one of {TIMESTEP_SPACINGS}")
        self.timestep_spacing = timestep_spacing
        if prediction_type not in PREDICTION_TYPES:
            raise ValueError(f"unknown prediction_type {prediction_type!r}; expected one of {PREDICTION_TYPES}")
        self.schedule = schedule
        self.prediction_type = prediction_type
        self.clip_sample = clip_sample
        self.num_inference_steps = schedule.num_train_timesteps
        self.set_timesteps(schedule.num_train_timesteps)

    # ------------------------------------------------------------------------------------- timesteps
    def set_timesteps(self, num_inference_steps: int) -> None:
        """Choose the ``num_inference_steps`` timesteps to walk and reset any solver state."""
        self.num_inference_steps = int(num_inference_steps)
        self.timesteps = spaced_timesteps(
            self.schedule.num_train_timesteps, self.num_inference_steps, self.timestep_spacing
        )
        ts = self.timesteps.tolist()
        self._prev = dict(zip(ts, ts[1:] + [-1], strict=True))
        self._index = {t: i for i, t in enumerate(ts)}

    def prev_timestep(self, t: int) -> int:
        """The timestep after ``t`` in the walk (``-1`` after the last one)."""
        if t not in self._prev:
            raise ValueError(f"timestep {t} is not in this sampler's timesteps; call set_timesteps first")
        return self._prev[t]

    # ------------------------------------------------------------------------------------------ step
    def predict(self, model_output: Tensor, t: int, x: Tensor) -> tuple[Tensor, Tensor]:
        """``(x0_hat, eps_hat)`` from the model output, applying ``clip_sample`` to ``x0_hat``."""
        x0, eps = self.schedule.split_prediction(model_output, x, t, self.prediction_type)
        if self.clip_sample is not None:
            x0 = x0.clamp(-self.clip_sample, self.clip_sample)
            alpha, sigma = (float(v) for v in self.schedule.alpha_sigma(t))
            eps = (x - alpha * x0) / sigma
        return x0, eps

    def step(
        self, model_output: Tensor, t: int | Tensor, x: Tensor, generator: torch.Generator | None = None
    ) -> StepOutput:
        """Move ``x`` from timestep ``t`` to the next timestep of the walk.

        Args:
            model_output: network output at ``(x, t)``, shaped like ``x``.
            t: current timestep (one of :attr:`timesteps`).
            x: current sample ``x_t``, ``(B, ...)``.
            generator: RNG for the noise of stochastic samplers.

        Returns:
            :class:`StepOutput` with ``prev_sample`` and ``pred_original_sample``.
        """
        t = int(t)
        prev = self.prev_timestep(t)
        x0, eps = self.predict(model_output, t, x)
        return StepOutput(prev_sample=self.update(x, t, prev, x0, eps, generator), pred_original_sample=x0)

    def update(
        self, x: Tensor, t: int, prev: int, x0: Tensor, eps: Tensor, generator: torch.Generator | None
    ) -> Tensor:
        """The sampler's rule: ``x_prev`` from ``x_t`` and the model's estimates ``x0_hat`` and ``eps_hat``
        (``prev`` is ``-1`` on the last step)."""
        raise NotImplementedError

    # ---------------------------------------------------------------------------------------- config
    def extra_config(self) -> dict[str, Any]:
        """Sampler-specific constructor arguments (plain types)."""
        return {}

    def to_dict(self) -> dict[str, Any]:
        """Plain-type description; :meth:`from_dict` rebuilds an equivalent sampler."""
        return {
            "sampler": self.name,
            "schedule": self.schedule.to_dict(),
            "prediction_type": self.prediction_type,
            "clip_sample": self.clip_sample,
            "timestep_spacing": self.timestep_spacing,
            "num_inference_steps": self.num_inference_steps,
            **self.extra_config(),
        }

    @staticmethod
    def from_dict(d: dict[str, Any]) -> Sampler:
        """Rebuild a sampler from :meth:`to_dict` output (the class is chosen by ``d["sampler"]``)."""
        d = dict(d)
        name = d.pop("sampler")
        if name not in Sampler.registry:
            raise ValueError(f"unknown sampler {name!r}; expected one of {sorted(Sampler.registry)}")
        schedule = NoiseSchedule.from_dict(d.pop("schedule"))
        steps = d.pop("num_inference_steps", None)
        sampler = Sampler.registry[name](schedule, **d)
        if steps is not None:
            sampler.set_timesteps(steps)
        return sampler

    def save_config(self, path: str | os.PathLike) -> None:
        """Write :meth:`to_dict` as JSON to ``path`` (atomically)."""
        from gen3d.utils import atomic_write_text

        atomic_write_text(path, json.dumps(self.to_dict(), indent=2))

    @staticmethod
    def load_config(path: str | os.PathLike) -> Sampler:
        """Read a sampler written by :meth:`save_config`."""
        with open(path, encoding="utf-8") as f:
            return Sampler.from_dict(json.load(f))

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.to_dict()})"
