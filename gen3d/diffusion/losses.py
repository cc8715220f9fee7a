"""Denoising training losses as small callables.

Each loss draws ``t ~ U{0, T-1}`` and ``noise ~ N(0, I)``, forms ``x_t = sqrt(alpha_bar_t) x_0 + sqrt(1 -
alpha_bar_t) noise`` and regresses the network output onto its target: ``noise`` (epsilon prediction, Ho et
al.) or ``v = alpha_t noise - sigma_t x_0`` (v prediction, Salimans & Ho). Optionally each sample is weighted
by Min-SNR-gamma (Hang et al. 2023): ``min(SNR_t, gamma) / SNR_t`` for epsilon, ``min(SNR_t, gamma) /
(SNR_t + 1)`` for v, with ``SNR_t = alpha_bar_t / (1 - alpha_bar_t)``.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from jaxtyping import Float
from torch import Tensor

from gen3d.diffusion.schedules import NoiseSchedule

ModelFn = Callable[[Tensor, Tensor], Tensor]


class DenoisingLoss:
    """Base class: mean squared error between ``model_fn(x_t, t)`` and :meth:`target`.

    Args:
        schedule: the noise schedule.
        snr_gamma: Min-SNR-gamma loss weighting (None: uniform, as DDPM, PVD and LION).
    """

    prediction_type: str = "epsilon"

    def __init__(self, schedule: NoiseSchedule, snr_gamma: float | None = None):
        self.schedule = schedule
        self.snr_gamma = snr_gamma

    def target(self, x0: Tensor, noise: Tensor, t: Tensor) -> Tensor:
        raise NotImplementedError

    def snr_weight(self, snr: Tensor) -> Tensor:
        """Min-SNR-gamma weight of each sample (ones without ``snr_gamma``)."""
        raise NotImplementedError

    def weights(self, t: Tensor) -> Tensor | None:
        """Per-sample loss weights ``(B,)`` (None: uniform)."""
        if self.snr_gamma is None:
            return None
        abar = self.schedule.alpha_bar(t)
        return self.snr_weight(abar / (1.0 - abar)).float()

    def __call__(
        self,
        model_fn: ModelFn,
        x0: Float[Tensor, "B ..."],
        t: Tensor | None = None,
        noise: Tensor | None = None,
        generator: torch.Generator | None = None,
    ) -> Float[Tensor, ""]:
        """Return the mean squared error over all elements of the batch.

        Args:
            model_fn: ``model_fn(x_t, t) -> prediction`` with ``x_t`` ``(B, ...)`` and ``t`` a long ``(B,)``.
            x0: clean data ``(B, ...)``.
            t: optional timesteps ``(B,)``; drawn uniformly when omitted.
            noise: optional noise like ``x0``; drawn when omitted.
            generator: RNG for ``t`` and ``noise``.
        """
        b = x0.shape[0]
        if t is None:
            t = torch.randint(0, self.schedule.num_train_timesteps, (b,), generator=generator, device="cpu")
            t = t.to(x0.device)
        if noise is None:
            noise = torch.randn(x0.shape, generator=generator, device="cpu", dtype=x0.dtype).to(x0.device)
        x_t = self.schedule.add_noise(x0, noise, t)
        pred = model_fn(x_t, t)
        err = (pred - self.target(x0, noise, t)) ** 2  # (B, ...)
        w = self.weights(t)
        if w is None:
            return err.mean()
        return (err.flatten(1).mean(1) * w.to(err)).mean()


class EpsilonLoss(DenoisingLoss):
    """Epsilon prediction: the network predicts the added noise."""

    prediction_type = "epsilon"

    def target(self, x0: Tensor, noise: Tensor, t: Tensor) -> Tensor:
        return noise

    def snr_weight(self, snr: Tensor) -> Tensor:
        return snr.clamp(max=self.snr_gamma) / snr


class VLoss(DenoisingLoss):
    """v prediction: the network predicts ``alpha_t noise - sigma_t x_0``."""

    prediction_type = "v_prediction"

    def target(self, x0: Tensor, noise: Tensor, t: Tensor) -> Tensor:
        return self.schedule.get_velocity(x0, noise, t)

    def snr_weight(self, snr: Tensor) -> Tensor:
        return snr.clamp(max=self.snr_gamma) / (snr + 1.0)


def make_loss(prediction_type: str, schedule: NoiseSchedule, snr_gamma: float | None = None) -> DenoisingLoss:
    """The loss for ``prediction_type`` (``"epsilon"`` or ``"v_prediction"``), optionally Min-SNR weighted."""
    if prediction_type == "epsilon":
        return EpsilonLoss(schedule, snr_gamma)
    if prediction_type == "v_prediction":
        return VLoss(schedule, snr_gamma)
    raise ValueError(f"no training loss for prediction_type {prediction_type!r}; expected 'epsilon' or 'v_prediction'")
