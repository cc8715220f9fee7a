"""Discrete-time variance-preserving noise schedules.

A schedule fixes ``beta_t`` for ``t = 0 .. T-1`` and with it ``alpha_bar_t = prod_{s<=t} (1 - beta_s)``. The
forward (noising) process is ``x_t = sqrt(alpha_bar_t) x_0 + sqrt(1 - alpha_bar_t) eps``. Constants are kept
in float64 and cast to the dtype of the tensors they are applied to.

Symbols follow Ho et al. (DDPM) and Salimans & Ho (v-prediction): ``alpha_t = sqrt(alpha_bar_t)``,
``sigma_t = sqrt(1 - alpha_bar_t)``, ``v = alpha_t eps - sigma_t x_0``.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

import torch
from jaxtyping import Float
from torch import Tensor

PREDICTION_TYPES = ("epsilon", "v_prediction", "sample")


def linear_betas(num_steps: int, beta_start: float, beta_end: float) -> Tensor:
    """Betas evenly spaced from ``beta_start`` to ``beta_end`` (DDPM, PVD and LION: 1e-4 .. 2e-2, T=1000)."""
    return torch.linspace(beta_start, beta_end, num_steps, dtype=torch.float64)


def cosine_alpha_bar(t: Tensor, num_steps: int, s: float = 0.008) -> Tensor:
    """Nichol & Dhariwal's ``f(t) / f(0)`` with ``f(t) = cos^2(((t / T) + s) / (1 + s) * pi / 2)``.

    Args:
        t: continuous time in ``[0, T]`` (any shape, float64 recommended).
        num_steps: T.
        s: small offset that keeps beta_0 from being vanishingly small.

    Returns:
        alpha_bar at ``t``, same shape as ``t``.
    """

    def f(u: Tensor) -> Tensor:
        return torch.cos((u / num_steps + s) / (1 + s) * math.pi / 2) ** 2

    return f(t) / f(torch.zeros_like(t))


def cosine_betas(num_steps: int, s: float = 0.008, max_beta: float = 0.999) -> Tensor:
    """Betas of the cosine schedule: ``1 - alpha_bar(t + 1) / alpha_bar(t)``, clipped at ``max_beta``."""
    t = torch.arange(num_steps + 1, dtype=torch.float64)
    abar = cosine_alpha_bar(t, num_steps, s)
    return (1.0 - abar[1:] / abar[:-1]).clamp(max=max_beta)


def _expand(values: Tensor, like: Tensor) -> Tensor:
    """Reshape per-sample constants ``(B,)`` to broadcast against ``like`` ``(B, ...)``, in ``like``'s dtype."""
    return values.to(device=like.device, dtype=like.dtype).reshape(values.shape + (1,) * (like.ndim - values.ndim))


@dataclass
class NoiseSchedule:
    """A discrete variance-preserving schedule.

    Args:
        kind: ``"linear"`` (betas from ``beta_start`` to ``beta_end``) or ``"cosine"`` (Nichol & Dhariwal).
        num_train_timesteps: T, the number of training timesteps.
        beta_start: first beta of the linear schedule.
        beta_end: last beta of the linear schedule.
        cosine_s: offset ``s`` of the cosine schedule.

    Example:
        >>> sched = NoiseSchedule("linear", 1000, 1e-4, 2e-2)
        >>> x_t = sched.add_noise(x0, torch.randn_like(x0), torch.tensor([999]))
    """

    kind: str = "linear"
    num_train_timesteps: int = 1000
    beta_start: float = 1e-4
    beta_end: float = 2e-2
    cosine_s: float = 0.008
    betas: Tensor = field(init=False, repr=False)
    alphas_cumprod: Tensor = field(init=False, repr=False)

    def __post_init__(self) -> None:
        if self.kind == "linear":
            betas = linear_betas(self.num_train_timesteps, self.beta_start, self.beta_end)
        elif self.kind == "cosine":
            betas = cosine_betas(self.num_train_timesteps, self.cosine_s)
        else:
            raise ValueError(f"unknown noise schedule {self.kind!r}; expected 'linear' or 'cosine'")
        self.betas = betas  # (T,) float64
        self.alphas_cumprod = torch.cumprod(1.0 - betas, dim=0)  # (T,) float64

    # ----------------------------------------------------------------------------------------- config
    def to_dict(self) -> dict[str, Any]:
        """Plain-type configuration (JSON/YAML friendly); :meth:`from_dict` rebuilds an equal schedule."""
        d = asdict(self)
        d.pop("betas")
        d.pop("alphas_cumprod")
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> NoiseSchedule:
        """Inverse of :meth:`to_dict`."""
        return cls(**d)

    # -------------------------------------------------------------------------------------- constants
    def alpha_bar(self, t: Tensor | int) -> Tensor:
        """``alpha_bar_t`` (float64) for integer timesteps; ``t = -1`` means the clean data (``alpha_bar = 1``).

        Args:
            t: integer timesteps in ``[-1, T-1]``, any shape.

        Returns:
            float64 tensor of the same shape as ``t``.
        """
        t = torch.as_tensor(t, dtype=torch.long)
        abar = self.alphas_cumprod[t.clamp(min=0).cpu()]
        return torch.where(t.cpu() < 0, torch.ones_like(abar), abar).to(t.device)

    def alpha_sigma(self, t: Tensor | int) -> tuple[Tensor, Tensor]:
        """``(alpha_t, sigma_t) = (sqrt(alpha_bar_t), sqrt(1 - alpha_bar_t))`` in float64."""
        abar = self.alpha_bar(t)
        return abar.sqrt(), (1.0 - abar).sqrt()

    # --------------------------------------------------------------------------------- forward process
    def add_noise(self, x0: Float[Tensor, "B ..."], noise: Float[Tensor, "B ..."], t: Tensor) -> Tensor:
        """Sample ``q(x_t | x_0)``: ``sqrt(alpha_bar_t) x_0 + sqrt(1 - alpha_bar_t) noise``."""
        alpha, sigma = self.alpha_sigma(t)
        return _expand(alpha, x0) * x0 + _expand(sigma, x0) * noise

    def get_velocity(self, x0: Float[Tensor, "B ..."], noise: Float[Tensor, "B ..."], t: Tensor) -> Tensor:
        """The v-prediction target ``v = alpha_t noise - sigma_t x_0``."""
        alpha, sigma = self.alpha_sigma(t)
        return _expand(alpha, x0) * noise - _expand(sigma, x0) * x0

    def split_prediction(
        self, model_output: Tensor, x_t: Tensor, t: Tensor | int, prediction_type: str = "epsilon"
    ) -> tuple[Tensor, Tensor]:
        """Turn a network output into the pair ``(x0_hat, eps_hat)``.

        Args:
            model_output: ``(B, ...)`` prediction of eps, v or x_0.
            x_t: ``(B, ...)`` noisy input.
            t: timesteps, a scalar or ``(B,)``.
            prediction_type: ``"epsilon"``, ``"v_prediction"`` or ``"sample"``.

        Returns:
            ``(x0_hat, eps_hat)``, each shaped like ``x_t``.
        """
        if isinstance(t, int) or (isinstance(t, Tensor) and t.ndim == 0):  # one timestep: python floats
            alpha, sigma = self.alpha_sigma(int(t))
            a, s = float(alpha), float(sigma)
        else:
            alpha, sigma = self.alpha_sigma(t)
            a, s = _expand(alpha, x_t), _expand(sigma, x_t)
        if prediction_type == "epsilon":
            eps = model_output
            x0 = (x_t - s * eps) / a
        elif prediction_type == "v_prediction":
            x0 = a * x_t - s * model_output
            eps = s * x_t + a * model_output
        elif prediction_type == "sample":
            x0 = model_output
            eps = (x_t - a * x0) / s
        else:
            raise ValueError(f"unknown prediction_type {prediction_type!r}; expected one of {PREDICTION_TYPES}")
        return x0, eps
