"""LightningModules of LION, trained in two stages (``stage="vae"``, then ``stage="prior"``), and of the
PVD-style point-space baseline (:class:`PVDModule`).

* ``vae``: the hierarchical VAE with LION's KL annealing (train/val keys ``rec``, ``kl_*``, ``nelbo``).
* ``prior``: both latent diffusion models on posterior samples of the frozen VAE, which is loaded from the
  ``vae_ckpt`` checkpoint of stage one (keys ``loss_glb``, ``loss_loc``).

One network (:class:`~gen3d.models.lion.LION`) holds both stages, so the checkpoint of stage two is the
complete model. Hyperparameters are stored as plain types and the normalisation statistics as buffers, so
checkpoints load with ``torch.load(..., weights_only=True)`` (see :func:`load_lion`).

Exact resume: the randomness of optimisation step k (posterior samples, timesteps, noise, dropout) is drawn
after reseeding from ``(seed, k, rank)``, and the data order of epoch e after reseeding from ``(seed, e)``,
so a run resumed from a checkpoint continues bit for bit as the uninterrupted run would have.
"""

from __future__ import annotations

import inspect
import math
import os
import zlib
from typing import Any

import lightning as L
import torch
from torch import Tensor

from gen3d.inference.checkpoint import CKPT_KEY
from gen3d.inference.lion import load_vae_weights
from gen3d.lit import quiet_known_warnings
from gen3d.models.ema import EMA
from gen3d.models.lion import LION, LionConfig, PointDiffusion, kl_weight_at, negative_elbo_per_point

quiet_known_warnings()

STAGES = ("vae", "prior")
FUSED_DTYPES = (torch.float16, torch.bfloat16, torch.float32, torch.float64)  # what fused Adam steps


def batch_points(batch: Any) -> Tensor:
    """The ``(B, N, 3)`` normalised points of a batch (a tensor, a dict with ``"points"``, or a tuple)."""
    if isinstance(batch, Tensor):
        return batch
    if isinstance(batch, dict):
        for key in ("points", "train_points", "x"):
            if key in batch:
                return batch[key]
        raise KeyError(f"batch dict has no 'points' entry (keys: {sorted(batch)})")
    if isinstance(batch, (list, tuple)):
        return batch_points(batch[0])
    raise TypeError(f"unsupported batch type {type(batch).__name__}")


def derived_seed(*parts: Any) -> int:
    """A 63-bit seed that is a fixed function of ``parts`` (CRC-32 of their text, mixed)."""
    h = 0
    for p in parts:
        h = (h * 1000003) ^ zlib.crc32(str(p).encode())
    return h & ((1 << 63) - 1)


class _PointCloudModule(L.LightningModule):
    """What the LION and PVD modules share: normalisation buffers, seeding, EMA, sampling, the optimiser.

    Subclasses set ``self.net``, ``self.stage`` and implement :meth:`trained` and :meth:`model_step`.
    """

    default_lr = 2e-4
    ema: EMA | None

    def _init_common(self, ema_decay: float) -> None:
        # only the networks being trained take gradients (DDP requires every trainable parameter to be used)
        self.net.requires_grad_(False)
        self.trained().requires_grad_(True)
        self.ema = EMA(self.trained(), ema_decay) if ema_decay > 0 else None
        # normalisation statistics of the training data (identity until set_normalization)
        self.register_buffer("norm_mean", torch.zeros(3))
        self.register_buffer("norm_std", torch.ones(1))

    def _save_hparams(self, cfg: LionConfig, args: dict[str, Any]) -> None:
        """Save the constructor's arguments (``args``: its ``locals()``) as plain types, in its order: the resolved
        configuration as a dict, ``betas`` as floats, a checkpoint path as a string; ``model`` (a network) is not
        saved. Checkpoints then load with ``weights_only=True`` and LightningCLI can pass them back on resume."""
        names = [name for name in inspect.signature(type(self).__init__).parameters if name not in ("self", "model")]
        hp = {name: args[name] for name in names}
        hp["config"] = cfg.to_dict()
        hp["betas"] = [float(b) for b in hp["betas"]]
        if hp.get("vae_ckpt") is not None:
            hp["vae_ckpt"] = os.fspath(hp["vae_ckpt"])
        self.save_hyperparameters(hp)

    def trained(self) -> torch.nn.Module:
        """The networks this module optimises."""
        raise NotImplementedError

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        # what the checkpoint holds, beside the hyperparameters: those must stay exactly the constructor's
        # arguments, because LightningCLI passes them back to it on --ckpt_path
        checkpoint[CKPT_KEY] = {"model": "pvd" if self.stage == "pvd" else "lion", "stage": self.stage}

    def model_step(self, x: Tensor, latents: tuple[Tensor, Tensor] | None = None) -> dict[str, Tensor]:
        """Losses on normalised points ``x`` ``(B, N, 3)``; ``"loss"`` is optimised."""
        raise NotImplementedError

    # ------------------------------------------------------------------------------------ data frame
    def set_normalization(self, mean: Any, std: Any) -> None:
        """Record the dataset normalisation (``x_norm = (x - mean) / std``) so samples can be de-normalised."""
        self.norm_mean.copy_(torch.as_tensor(mean, dtype=torch.float32).reshape(3))
        self.norm_std.copy_(torch.as_tensor(std, dtype=torch.float32).reshape(1))

    def denormalize(self, x: Tensor) -> Tensor:
        """Points from the model's frame back to the data frame."""
        return x * self.norm_std.to(x) + self.norm_mean.to(x)

    def setup(self, stage: str) -> None:
        dm = getattr(self.trainer, "datamodule", None) if self._trainer is not None else None
        norm = getattr(dm, "norm", None) if dm is not None else None
        if norm is not None and stage == "fit":
            self.set_normalization(norm.mean, norm.std)

    # ------------------------------------------------------------------------------------ randomness
    def _reseed(self, *parts: Any) -> None:
        torch.manual_seed(derived_seed(self.hparams.seed, *parts, self.global_rank))

    def on_train_epoch_start(self) -> None:
        self._reseed("epoch", self.current_epoch)

    # ------------------------------------------------------------------------------------ steps
    def batch_latents(self, batch: Any) -> tuple[Tensor, Tensor] | None:
        """Precomputed latents for a training batch (None: the model step encodes the points itself)."""
        return None

    def training_step(self, batch: Any, batch_idx: int) -> Tensor:
        self._reseed("step", self.global_step)
        x = batch_points(batch)
        out = self.model_step(x, self.batch_latents(batch))
        self.log("train/loss", out["loss"], prog_bar=True, batch_size=x.shape[0])
        self.log_dict({f"train/{k}": v for k, v in out.items() if k != "loss"}, batch_size=x.shape[0])
        return out["loss"]

    def on_train_batch_end(self, outputs: Any, batch: Any, batch_idx: int) -> None:
        if self.ema is not None:
            self.ema.update(self.trained())

    def validation_extra(self, x: Tensor, out: dict[str, Tensor]) -> None:
        """Add validation-only quantities to ``out``."""

    def validation_step(self, batch: Any, batch_idx: int) -> Tensor:
        x = batch_points(batch)
        g = torch.Generator(device="cpu").manual_seed(derived_seed(self.hparams.seed, "val", batch_idx))
        state = torch.get_rng_state()
        torch.manual_seed(int(torch.randint(0, 2**62, (1,), generator=g)))
        try:
            with self.ema_weights():
                out = self.model_step(x)
                self.validation_extra(x, out)
        finally:
            torch.set_rng_state(state)
        out.pop("kl_weight", None)
        self.log_dict({f"val/{k}": v for k, v in out.items()}, sync_dist=True, batch_size=x.shape[0])
        return out["loss"]

    # ------------------------------------------------------------------------------------ sampling
    def ema_weights(self) -> Any:
        """Context manager: the trained networks use their EMA weights inside it."""
        import contextlib

        return self.ema.swapped(self.trained()) if self.ema is not None else contextlib.nullcontext()

    @torch.no_grad()
    def generate(
        self,
        n: int,
        sampler: str = "dpm",
        steps: int | None = 20,
        seed: int = 0,
        num_points: int | None = None,
        code_temperature: float = 1.0,
        **sampler_kwargs: Any,
    ) -> Tensor:
        """``n`` de-normalised samples ``(n, N, 3)`` with the EMA weights (``sampler_kwargs``: e.g. ``eta``).

        ``code_temperature``: see :meth:`gen3d.models.lion.LION.sample` (LION only; PVD has no shape code).
        """
        was_training = self.net.training
        self.net.eval()
        g = torch.Generator(device="cpu").manual_seed(seed)
        smp = self.net.make_sampler(sampler, steps, **sampler_kwargs)
        try:
            with self.ema_weights():
                x = self.net.sample(n, smp, generator=g, num_points=num_points, code_temperature=code_temperature)
        finally:
            self.train(was_training)
        return self.denormalize(x)

    # ------------------------------------------------------------------------------------ optimiser
    def configure_optimizers(self) -> Any:
        hp = self.hparams
        lr = hp.lr if hp.lr is not None else self.default_lr
        params = [p for p in self.trained().parameters() if p.requires_grad]
        # the fused kernel updates all parameters in one pass instead of a loop over the tensors (faster, most of all
        # for many small tensors on a CPU)
        fused = all(p.device.type in ("cpu", "cuda") and p.dtype in FUSED_DTYPES for p in params)
        opt = torch.optim.Adam(
            params, lr=lr, betas=tuple(hp.betas), weight_decay=hp.weight_decay, fused=True if fused else None
        )
        total = self.trainer.max_steps if self.trainer.max_steps and self.trainer.max_steps > 0 else 0
        sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda step: self.lr_factor(step, total))
        return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "step"}}

    def lr_factor(self, step: int, total: int) -> float:
        """Learning-rate multiplier at optimiser step ``step`` of ``total`` (0: unknown): linear warm-up, then
        constant or cosine down to ``lr_min_ratio``."""
        warmup, floor = self.hparams.warmup_steps, self.hparams.lr_min_ratio
        f = min(1.0, (step + 1) / warmup) if warmup > 0 else 1.0
        if self.hparams.lr_schedule == "cosine" and total > warmup:
            p = min(max((step - warmup) / (total - warmup), 0.0), 1.0)
            f *= floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * p))
        return f


def _check_common(lr_schedule: str) -> None:
    if lr_schedule not in ("constant", "cosine"):
        raise ValueError(f"lr_schedule must be 'constant' or 'cosine', got {lr_schedule!r}")


class LionModule(_PointCloudModule):
    """Trains one stage of LION.

    Args:
        config: architecture and loss weights (:class:`LionConfig` or its dict).
        stage: ``"vae"`` or ``"prior"``.
        vae_ckpt: stage-one checkpoint to take the VAE from (stage ``"prior"``; ignored when resuming).
        lr: Adam learning rate (default: LION's 1e-3 for the VAE, 2e-4 for the priors).
        betas: Adam betas (LION: 0.9, 0.99).
        weight_decay: Adam weight decay (LION's priors: 3e-4).
        warmup_steps: linear learning-rate warm-up.
        lr_schedule: ``"constant"`` (LION) or ``"cosine"`` (decay to ``lr_min_ratio * lr`` at ``max_steps``).
        lr_min_ratio: final learning rate ratio of the cosine schedule.
        ema_decay: decay of the weight average used for sampling (0: off; LION's priors: 0.9999).
        kl_anneal_steps: steps over which the KL weight schedule runs (default: ``trainer.max_steps``).
        val_samples: shapes generated (or reconstructed) at each validation for metrics and the grid.
        val_sampler: sampler of those validation samples (``"ddpm"``, ``"ddim"``, ``"dpm"``, ``"dpm-sde"``).
        val_steps: its number of steps.
        val_eta: DDIM's eta for those samples (1: stochastic, robust for briefly trained models).
        seed: base seed of the per-step randomness.
        cache_latents: stage ``"prior"``: encode each training cloud once (the first time its index is seen,
            with the posterior-mean shape code) and reuse that posterior afterwards: the shape code is its
            mean and the latent points are drawn afresh from their posterior at every step. About halves
            the cost of a prior step; each shape's point subset is then fixed. LION re-encodes every step.
        model: an already built network to train (tests); default: built from ``config``.
    """

    def __init__(
        self,
        config: LionConfig | dict | None = None,
        stage: str = "vae",
        vae_ckpt: str | None = None,
        lr: float | None = None,
        betas: tuple[float, float] = (0.9, 0.99),
        weight_decay: float = 0.0,
        warmup_steps: int = 0,
        lr_schedule: str = "constant",
        lr_min_ratio: float = 0.1,
        ema_decay: float = 0.999,
        kl_anneal_steps: int | None = None,
        val_samples: int = 16,
        val_sampler: str = "dpm-sde",
        val_steps: int = 20,
        val_eta: float = 1.0,
        seed: int = 0,
        cache_latents: bool = False,
        model: LION | None = None,
    ):
        super().__init__()
        if stage not in STAGES:
            raise ValueError(f"stage must be one of {STAGES}, got {stage!r}")
        _check_common(lr_schedule)
        cfg = model.cfg if model is not None else LionConfig.from_dict(config)
        self._save_hparams(cfg, locals())
        self.cfg = cfg
        self.stage = stage
        self.default_lr = 1e-3 if stage == "vae" else 2e-4
        self.net = model if model is not None else LION(cfg)
        self._init_common(ema_decay)
        self._vae_loaded = False
        self._stats_done = False
        self._latent_cache: dict[int, tuple[Tensor, ...]] = {}

    def trained(self) -> torch.nn.Module:
        return self.net.vae if self.stage == "vae" else self.net.priors()

    def train(self, mode: bool = True) -> LionModule:
        super().train(mode)
        if self.stage == "prior":  # the VAE stays frozen and deterministic in stage two
            self.net.vae.eval()
        return self

    # ------------------------------------------------------------------------------------ stage two setup
    def setup(self, stage: str) -> None:
        super().setup(stage)
        if self.stage == "prior" and stage == "fit" and not self._vae_loaded and self.hparams.vae_ckpt:
            load_vae_weights(self.net, self.hparams.vae_ckpt)
            self._vae_loaded = True
            if self.ema is not None:
                self.ema.reset(self.trained())

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        self._vae_loaded = True  # resuming: the VAE weights and latent statistics come with the checkpoint
        self._stats_done = True

    def on_fit_start(self) -> None:
        if self.stage == "prior" and self.cfg.standardize_latents and not self._stats_done:
            self.fit_latent_stats()
            self._stats_done = True

    @torch.no_grad()
    def fit_latent_stats(self, max_batches: int = 64) -> None:
        """Encode (up to ``max_batches``) training batches and set the latent standardisation of the priors."""
        loader = self.trainer.datamodule.train_dataloader()
        codes, points = [], []
        state = torch.get_rng_state()
        torch.manual_seed(derived_seed(self.hparams.seed, "latent-stats"))
        self.net.vae.eval()
        try:
            for i, batch in enumerate(loader):
                if i >= max_batches:
                    break
                batch = self.transfer_batch_to_device(batch, self.device, 0)
                z_g, h = self.batch_latents(batch) or self.net.encode_latents(batch_points(batch))
                codes.append(z_g)
                points.append(h)
        finally:
            torch.set_rng_state(state)
        self.net.set_latent_stats(torch.cat(codes), torch.cat(points))

    # ------------------------------------------------------------------------------------ steps
    def kl_weight(self) -> float:
        total = self.hparams.kl_anneal_steps
        if total is None:
            total = self.trainer.max_steps if self._trainer is not None and self.trainer.max_steps > 0 else 0
        return kl_weight_at(self.global_step, total, self.cfg)

    def model_step(self, x: Tensor, latents: tuple[Tensor, Tensor] | None = None) -> dict[str, Tensor]:
        """Losses of the current stage; ``latents``: precomputed ``(z_g, h)`` for the prior stage."""
        if self.stage == "vae":
            out = self.net.vae(x)
            kl_w = self.kl_weight()
            n = x.shape[1]
            return {
                "loss": self.net.vae.loss(out, kl_w),
                "rec": out.rec.mean() / n,  # L1 per point
                "kl_glb": out.kl_glb.mean(),
                "kl_pt": out.kl_pt.mean(),
                "kl_feat": out.kl_feat.mean(),
                "kl_weight": torch.tensor(kl_w),
            }
        self.net.vae.eval()
        loss_g, loss_l = self.net.prior_losses(x, latents=latents)
        return {"loss": loss_g + loss_l, "loss_glb": loss_g, "loss_loc": loss_l}

    def validation_extra(self, x: Tensor, out: dict[str, Tensor]) -> None:
        if self.stage == "vae":
            out["nelbo"] = negative_elbo_per_point(self.net.vae, x).mean()

    def batch_latents(self, batch: Any) -> tuple[Tensor, Tensor] | None:
        if self.stage != "prior" or not self.hparams.cache_latents:
            return None
        if not isinstance(batch, dict) or "idx" not in batch:
            return None
        return self.cached_latents(batch)

    @torch.no_grad()
    def cached_latents(self, batch: dict[str, Any]) -> tuple[Tensor, Tensor]:
        """Latents of a training batch from the cache of posteriors (encoding indices seen for the first time).

        Returns:
            ``(z_g, h)``: the posterior-mean shape codes and fresh samples of the latent points' posteriors.
        """
        x, idx = batch_points(batch), batch["idx"].tolist()
        new = [i for i, j in enumerate(idx) if j not in self._latent_cache]
        if new:
            glb = self.net.vae.encode_global(x[new], sample=False)
            loc = self.net.vae.encode_local(x[new], glb.mu, sample=False)
            for k, i in enumerate(new):
                self._latent_cache[idx[i]] = (glb.mu[k], loc.mu[k], loc.log_sigma[k])
        g_mu, l_mu, l_ls = (torch.stack(t) for t in zip(*(self._latent_cache[j] for j in idx), strict=True))
        return g_mu, l_mu + torch.randn_like(l_mu) * l_ls.exp()

    # ------------------------------------------------------------------------------------ VAE outputs
    @torch.no_grad()
    def reconstruct(self, x: Tensor) -> Tensor:
        """De-normalised reconstructions of normalised clouds (posterior means), with the EMA weights."""
        was_training = self.net.training
        self.net.eval()
        try:
            with self.ema_weights():
                out = self.net.vae(x, sample=False)
        finally:
            self.train(was_training)
        return self.denormalize(out.recon)


class PVDModule(_PointCloudModule):
    """The point-space baseline (PVD-style DDPM on xyz, :class:`~gen3d.models.lion.PointDiffusion`).

    Args:
        config: :class:`LionConfig` (or dict); the ``loc_prior_*`` sizes, ``loc_time_dim``, ``schedule`` and
            ``prediction_type`` are used.
        lr: Adam learning rate (PVD: 2e-4).
        betas: Adam betas.
        weight_decay: Adam weight decay.
        warmup_steps: linear learning-rate warm-up.
        lr_schedule: ``"constant"`` or ``"cosine"``.
        lr_min_ratio: final learning rate ratio of the cosine schedule.
        ema_decay: decay of the weight average used for sampling.
        val_samples: shapes generated at each validation.
        val_sampler: their sampler.
        val_steps: its number of steps.
        seed: base seed of the per-step randomness.
    """

    stage = "pvd"

    def __init__(
        self,
        config: LionConfig | dict | None = None,
        lr: float | None = None,
        betas: tuple[float, float] = (0.5, 0.999),
        weight_decay: float = 0.0,
        warmup_steps: int = 0,
        lr_schedule: str = "constant",
        lr_min_ratio: float = 0.1,
        ema_decay: float = 0.999,
        val_samples: int = 16,
        val_sampler: str = "dpm-sde",
        val_steps: int = 20,
        seed: int = 0,
    ):
        super().__init__()
        _check_common(lr_schedule)
        cfg = LionConfig.from_dict(config)
        self._save_hparams(cfg, locals())
        self.cfg = cfg
        self.net = PointDiffusion(cfg)
        self._init_common(ema_decay)

    def trained(self) -> torch.nn.Module:
        return self.net

    def model_step(self, x: Tensor, latents: tuple[Tensor, Tensor] | None = None) -> dict[str, Tensor]:
        return {"loss": self.net.loss(x)}
