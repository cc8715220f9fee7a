"""LightningModule of the point normalizing flow (:class:`~gen3d.models.flow.PointFlowModel`).

The flow is a VAE in PointFlow's sense: an encoder ``q(z | X)``, a conditional flow ``p(x_i | z)`` over each point
and a flow prior ``p(z)``, trained in one stage on the negative ELBO of each cloud divided by its point count
(train/val keys ``loss``, ``recon_nats_per_point``, ``prior_nats_per_point``, ``entropy_nats_per_point``).
Validation also logs ``nll_bits_per_point``: the exact ``-log2 p(x_i | z)`` of the validation points, with ``z``
the encoder's mean, in the normalised frame the model is trained in.

Normalisation statistics, seeding, the EMA of the weights, the optimiser and its schedules are LION's
(:class:`gen3d.lit.lion_module._PointCloudModule`): checkpoints load with ``weights_only=True`` (see
:func:`gen3d.inference.flow.load_flow`) and a resumed run continues as the uninterrupted one would.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import Tensor

from gen3d.inference.checkpoint import CKPT_KEY
from gen3d.lit.lion_module import _PointCloudModule
from gen3d.models.flow import FlowConfig, PointFlowModel

LR_SCHEDULES = ("constant", "cosine", "linear")


class FlowModule(_PointCloudModule):
    """Trains the point normalizing flow.

    Args:
        config: architecture (:class:`FlowConfig` or its dict).
        lr: Adam learning rate (PointFlow: 2e-3).
        betas: Adam betas (PointFlow: 0.9, 0.999).
        weight_decay: Adam weight decay (PointFlow: 0).
        warmup_steps: linear learning-rate warm-up.
        lr_schedule: ``"constant"``, ``"cosine"`` (decay to ``lr_min_ratio * lr`` at ``max_steps``) or
            ``"linear"`` (PointFlow's: constant for the first half of ``max_steps``, then linearly down to 0).
        lr_min_ratio: final learning rate ratio of the cosine schedule.
        ema_decay: decay of the weight average used for validation and sampling (0: off).
        val_samples: shapes generated at each validation for the metrics and the grid.
        sample_temperature: scale of the Gaussian noise of generated shape codes and points (1: the model).
        seed: base seed of the per-step randomness.
    """

    stage = "flow"
    default_lr = 2e-3

    def __init__(
        self,
        config: FlowConfig | dict | None = None,
        lr: float | None = None,
        betas: tuple[float, float] = (0.9, 0.999),
        weight_decay: float = 0.0,
        warmup_steps: int = 0,
        lr_schedule: str = "constant",
        lr_min_ratio: float = 0.1,
        ema_decay: float = 0.999,
        val_samples: int = 16,
        sample_temperature: float = 1.0,
        seed: int = 0,
    ):
        super().__init__()
        if lr_schedule not in LR_SCHEDULES:
            raise ValueError(f"lr_schedule must be one of {', '.join(LR_SCHEDULES)}, got {lr_schedule!r}")
        if not sample_temperature > 0:
            raise ValueError(f"sample_temperature must be positive, got {sample_temperature}")
        cfg = FlowConfig.from_dict(config)
        self._save_hparams(cfg, locals())
        self.cfg = cfg
        self.net = PointFlowModel(cfg)
        self._init_common(ema_decay)

    def trained(self) -> torch.nn.Module:
        return self.net

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        checkpoint[CKPT_KEY] = {"model": "flow", "stage": "flow"}

    # ------------------------------------------------------------------------------------ steps
    def model_step(self, x: Tensor, latents: tuple[Tensor, Tensor] | None = None) -> dict[str, Tensor]:
        """The loss (negative ELBO per point, nats) and its three terms on normalised points ``x`` ``(B, N, 3)``."""
        return dict(self.net.loss(x))

    def validation_extra(self, x: Tensor, out: dict[str, Tensor]) -> None:
        mu, _ = self.net.encode(x)
        out["nll_bits_per_point"] = -self.net.point_log_prob(x, mu).mean() / math.log(2.0)
        out["nelbo_bits_per_point"] = out["loss"] / math.log(2.0)

    # ------------------------------------------------------------------------------------ sampling
    @torch.no_grad()
    def generate(
        self,
        n: int,
        sampler: str | None = None,
        steps: int | None = None,
        seed: int = 0,
        num_points: int | None = None,
        temperature: float | None = None,
        **unused: Any,
    ) -> Tensor:
        """``n`` de-normalised samples ``(n, N, 3)`` with the EMA weights.

        ``sampler`` and ``steps`` are accepted for the shared sampling callback and ignored: the flow samples in
        one pass. ``temperature`` defaults to the ``sample_temperature`` hyperparameter.
        """
        was_training = self.net.training
        self.net.eval()
        g = torch.Generator(device=self.device).manual_seed(seed)
        t = float(self.hparams.sample_temperature if temperature is None else temperature)
        try:
            with self.ema_weights():
                x = self.net.sample(n, int(num_points or self.cfg.num_points), generator=g, temperature=t)
        finally:
            self.train(was_training)
        return self.denormalize(x)

    # ------------------------------------------------------------------------------------ optimiser
    def lr_factor(self, step: int, total: int) -> float:
        """The base class's schedules, and PointFlow's ``"linear"``: after the warm-up, constant for the first half
        of ``total`` steps, then linearly down to 0."""
        f = super().lr_factor(step, total)  # the warm-up ("linear" is constant there)
        if self.hparams.lr_schedule == "linear" and total > 0:
            f *= max(0.0, 1.0 - max(0.0, step - 0.5 * total) / (0.5 * total))
        return f
