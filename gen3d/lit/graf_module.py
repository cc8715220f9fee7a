"""GRAF (and pi-GAN) training with Lightning: the GAN module.

:class:`GRAFModule` trains a :class:`~gen3d.models.graf.generator.Generator` against GRAF's patch
discriminator with manual optimisation (one discriminator step, then one generator step per batch):

- real patches: ``F.grid_sample`` of the training images at a random K x K grid (scale annealed as GRAF);
  fake patches: the generator's rays through an independent grid, from random poses (never the data's);
- discriminator: logistic loss + R1 on real patches, ``gamma / 2 * E ||grad D||^2``;
- generator: non-saturating loss; density noise annealed linearly to 0 over ``noise_steps`` iterations;
- an exponential moving average of the generator (used for samples, evaluation and export);
- learning rates halved at ``lr_milestones`` (GRAF's MultiStepLR).

Every ``sample_every`` iterations the EMA generator renders a fixed set of codes and poses into
``<default_root_dir>/samples/it_XXXXXXX.png`` (and TensorBoard when that logger is used). All hyper-parameters are
plain types, so checkpoints load with ``torch.load(..., weights_only=True)``.

Train with ``gen3d train graf --config gen3d/configs/graf_shapes.yaml`` (any ``--trainer.*`` flag works); the
training images come from :class:`gen3d.data.datamodules.GRAFDataModule`.
"""

from __future__ import annotations

import copy
from pathlib import Path

import lightning.pytorch as pl
import torch
import torch.nn.functional as F

import renderers
from gen3d.errors import InputError
from gen3d.export.images import image_grid, save_png
from gen3d.lit import quiet_known_warnings
from gen3d.models.ema import ema_update
from gen3d.models.graf.build import build_generator
from gen3d.models.graf.discriminator import PatchDiscriminator
from gen3d.models.graf.losses import d_loss_logistic, g_loss_nonsaturating, r1_penalty
from gen3d.models.graf.patches import graf_min_scale

quiet_known_warnings()

OPTIMIZERS = ("rmsprop", "adam")


def _check_options(optimizer: str, min_scale: float, max_scale: float) -> None:
    if optimizer not in OPTIMIZERS:
        raise InputError(f"unknown optimizer {optimizer!r}; available: {', '.join(OPTIMIZERS)}")
    if not 0 < min_scale <= max_scale <= 1:
        raise InputError(f"need 0 < min_scale <= max_scale <= 1, got {min_scale}, {max_scale}")


class GRAFModule(pl.LightningModule):
    """GRAF / pi-GAN GAN training (see the module docstring).

    Args:
        field: ``"graf"``, ``"pigan"``, ``"triplane"`` or ``"voxel"``.
        z_dim: latent dimension (GRAF: 256 = 128 shape + 128 appearance).
        z_app_dim: appearance part of z (GRAF only).
        net_depth: MLP / FiLM layers (GRAF, pi-GAN: 8).
        net_width: hidden width (GRAF, pi-GAN: 256).
        skips: GRAF's skip layers.
        pos_freqs: GRAF's point encoding octaves.
        dir_freqs: GRAF's direction encoding octaves.
        mapping_width: pi-GAN's mapping network width.
        box_side: pi-GAN's ``UniformBoxWarp`` side (None: no warp).
        feature_channels: triplane / voxel feature channels (per plane for triplanes).
        feature_resolution: side of the planes or the grid.
        base_channels: channels of the planes' / grid's conv generator at 4 x 4 (x 4).
        min_channels: lower bound of that generator's channels.
        decoder_width: hidden width of the feature decoder (voxel: 0 reads density and colour directly).
        bound: half side of the triplane / voxel field's cube.
        density_shift: added to the feature fields' raw density before the softplus (EG3D: -1).
        colour_code: feature fields add a per-scene colour offset, a linear map of ``z``, to their colour logits.
        view_dependent: colour depends on the viewing direction (GRAF, pi-GAN: True; False for scenes lit
            from a light fixed in the world).
        image_size: training image side.
        fov: camera field of view in degrees.
        radius: camera distance, or ``[min, max]``.
        near: ray range start.
        far: ray range end.
        range_u: azimuth range (fractions of a turn).
        range_v: GRAF's polar ``v`` range.
        pose_dist: ``"uniform"`` (GRAF) or ``"gaussian"`` (pi-GAN).
        yaw_std: pi-GAN's horizontal standard deviation (radians).
        pitch_std: pi-GAN's vertical standard deviation (radians).
        n_samples: stratified samples per ray.
        n_importance: hierarchical samples per ray.
        background: ``"white"``, ``"black"``, ``"last"`` or a grey level.
        noise_std: initial density noise (GRAF's ``raw_noise_std``).
        noise_steps: iterations over which the noise decays linearly to 0 (GRAF: 5000; 0 keeps it constant).
        composite_impl: ``"auto"``, ``"native"`` or ``"torch"``.
        sampler: ``"dense"`` (stratified + hierarchical) or ``"marched"`` (per-scene occupancy grids, batched
            ray marching; constant backgrounds only).
        grid_resolution: cells per axis of the marched sampler's occupancy grids.
        march_step: the marched sampler's step (None: the scene box's side / 32).
        grid_threshold: occupancy threshold of the marched sampler.
        patch_size: K, the side of the training patches (GRAF: 32).
        min_scale: GRAF's ``ray_sampler.min_scale``.
        max_scale: GRAF's ``ray_sampler.max_scale``.
        scale_anneal: GRAF's ``ray_sampler.scale_anneal`` (<= 0: no annealing).
        ndf: discriminator base width.
        hflip: random horizontal flips inside the discriminator.
        d_instance_norm: GRAF's instance normalisation in the discriminator (False: spectral norm only, which
            lets the discriminator see flat colours; see :class:`~gen3d.models.graf.discriminator.PatchDiscriminator`).
        optimizer: ``"rmsprop"`` (GRAF: alpha 0.99, eps 1e-8) or ``"adam"`` (pi-GAN).
        lr_g: generator learning rate.
        lr_d: discriminator learning rate.
        betas: Adam betas.
        r1_gamma: R1 weight gamma (regulariser ``gamma / 2 * E||grad D||^2``; GRAF's ``reg_param: 10`` is 20).
        lr_milestones: iterations at which both learning rates are multiplied by ``lr_decay``.
        lr_decay: the factor.
        grad_clip: clip both networks' gradient norms (0: off; pi-GAN: 10 on CelebA).
        ema_beta: decay of the generator's moving average (GRAF: 0.999).
        sample_every: iterations between sample grids (0: never).
        n_grid: images in each sample grid.
        sample_seed: seed of the fixed codes and poses of the sample grids.
    """

    def __init__(
        self,
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
        feature_channels: int = 16,
        feature_resolution: int = 32,
        base_channels: int = 128,
        min_channels: int = 32,
        decoder_width: int = 32,
        bound: float = 0.6,
        density_shift: float = -1.0,
        colour_code: bool = False,
        view_dependent: bool = True,
        image_size: int = 64,
        fov: float = 30.0,
        radius: float | tuple[float, float] = 2.5,
        near: float = 1.5,
        far: float = 3.5,
        range_u: tuple[float, float] = (0.0, 1.0),
        range_v: tuple[float, float] = (0.0, 0.45642212862617093),
        pose_dist: str = "uniform",
        yaw_std: float = 0.3,
        pitch_std: float = 0.155,
        n_samples: int = 64,
        n_importance: int = 0,
        background: str | float = "white",
        noise_std: float = 1.0,
        noise_steps: int = 5000,
        composite_impl: str = "auto",
        sampler: str = "dense",
        grid_resolution: int = 16,
        march_step: float | None = None,
        grid_threshold: float = 0.01,
        patch_size: int = 32,
        min_scale: float = 0.25,
        max_scale: float = 1.0,
        scale_anneal: float = 0.0025,
        ndf: int = 64,
        hflip: bool = False,
        d_instance_norm: bool = True,
        optimizer: str = "rmsprop",
        lr_g: float = 5e-4,
        lr_d: float = 1e-4,
        betas: tuple[float, float] = (0.0, 0.99),
        r1_gamma: float = 20.0,
        lr_milestones: tuple[int, ...] = (50000, 100000, 200000),
        lr_decay: float = 0.5,
        grad_clip: float = 0.0,
        ema_beta: float = 0.999,
        sample_every: int = 500,
        n_grid: int = 16,
        sample_seed: int = 0,
    ):
        super().__init__()
        _check_options(optimizer, min_scale, max_scale)
        self.save_hyperparameters()
        self.automatic_optimization = False
        self.generator = build_generator(dict(self.hparams))
        self.generator_ema = copy.deepcopy(self.generator).requires_grad_(False)
        self.discriminator = PatchDiscriminator(patch_size, ndf, 3, hflip, d_instance_norm)
        self.register_buffer("iteration", torch.zeros((), dtype=torch.long))
        gen = torch.Generator().manual_seed(sample_seed)
        self.register_buffer("z_grid", self.generator.field.sample_z(n_grid, generator=gen, device="cpu"))
        self.register_buffer("pose_grid", self.generator.sample_poses(n_grid, generator=gen))

    # ------------------------------------------------------------------ optimisation
    def configure_optimizers(self):
        hp = self.hparams
        if hp.optimizer == "rmsprop":
            opt_g = torch.optim.RMSprop(self.generator.parameters(), lr=hp.lr_g, alpha=0.99, eps=1e-8)
            opt_d = torch.optim.RMSprop(self.discriminator.parameters(), lr=hp.lr_d, alpha=0.99, eps=1e-8)
        else:
            opt_g = torch.optim.Adam(self.generator.parameters(), lr=hp.lr_g, betas=tuple(hp.betas), eps=1e-8)
            opt_d = torch.optim.Adam(self.discriminator.parameters(), lr=hp.lr_d, betas=tuple(hp.betas), eps=1e-8)
        milestones = sorted(int(m) for m in hp.lr_milestones)
        sch_g = torch.optim.lr_scheduler.MultiStepLR(opt_g, milestones, gamma=hp.lr_decay)
        sch_d = torch.optim.lr_scheduler.MultiStepLR(opt_d, milestones, gamma=hp.lr_decay)
        return [opt_g, opt_d], [sch_g, sch_d]

    def current_min_scale(self) -> float:
        """GRAF's annealed smallest patch scale at the current iteration."""
        hp = self.hparams
        return graf_min_scale(int(self.iteration), hp.min_scale, hp.max_scale, hp.scale_anneal)

    def current_noise_std(self) -> float:
        """Density noise at the current iteration (linear decay to 0, GRAF's ``decrease_nerf_noise``)."""
        hp = self.hparams
        if hp.noise_steps <= 0:
            return float(hp.noise_std)
        return float(hp.noise_std) * max(0.0, 1.0 - int(self.iteration) / hp.noise_steps)

    def _fake_patches(self, batch_size: int, min_scale: float) -> torch.Tensor:
        z = self.generator.field.sample_z(batch_size, device=self.device)
        c2w = self.generator.sample_poses(batch_size, device=self.device)
        grid, _ = renderers.sample_patch_grid(
            batch_size, self.hparams.patch_size, min_scale, self.hparams.max_scale, device=self.device
        )
        return self.generator(z, c2w, grid)  # (B, 3, K, K)

    def _clip(self, module: torch.nn.Module) -> None:
        if self.hparams.grad_clip > 0:
            torch.nn.utils.clip_grad_norm_(module.parameters(), self.hparams.grad_clip)

    def training_step(self, batch: torch.Tensor, batch_idx: int) -> None:
        x_real = batch[0] if isinstance(batch, (list, tuple)) else batch  # (B, 3, H, W) in [-1, 1]
        hp = self.hparams
        opt_g, opt_d = self.optimizers()
        sch_g, sch_d = self.lr_schedulers()
        B, K = x_real.shape[0], hp.patch_size
        min_scale = self.current_min_scale()
        self.generator.noise_std = self.current_noise_std()

        # Discriminator: logistic loss on real and fake patches + R1 on the real ones.
        self.toggle_optimizer(opt_d)
        grid, _ = renderers.sample_patch_grid(B, K, min_scale, hp.max_scale, device=self.device)
        real = F.grid_sample(x_real, grid.to(x_real), mode="bilinear", align_corners=True)  # (B, 3, K, K)
        real.requires_grad_(hp.r1_gamma > 0)
        d_real = self.discriminator(real)
        with torch.no_grad():
            fake = self._fake_patches(B, min_scale)
        d_fake = self.discriminator(fake)
        loss_d = d_loss_logistic(d_real, d_fake)
        r1 = r1_penalty(d_real, real).mean() if hp.r1_gamma > 0 else torch.zeros((), device=self.device)
        opt_d.zero_grad(set_to_none=True)
        self.manual_backward(loss_d + 0.5 * hp.r1_gamma * r1)
        self._clip(self.discriminator)
        opt_d.step()
        self.untoggle_optimizer(opt_d)

        # Generator: non-saturating loss through the renderer.
        self.toggle_optimizer(opt_g)
        loss_g = g_loss_nonsaturating(self.discriminator(self._fake_patches(B, min_scale)))
        opt_g.zero_grad(set_to_none=True)
        self.manual_backward(loss_g)
        self._clip(self.generator)
        opt_g.step()
        self.untoggle_optimizer(opt_g)

        ema_update(self.generator_ema, self.generator, hp.ema_beta)
        sch_g.step()
        sch_d.step()
        self.iteration += 1
        self.log_dict(
            {"train/loss_d": loss_d.detach(), "train/loss_g": loss_g.detach(), "train/r1": r1.detach()},
            prog_bar=True,
            batch_size=B,
        )
        self.log_dict(
            {
                "train/d_real": d_real.detach().mean(),
                "train/d_fake": d_fake.detach().mean(),
                "train/min_scale": min_scale,
                "train/noise_std": self.generator.noise_std,
                "train/lr_g": opt_g.param_groups[0]["lr"],
            },
            batch_size=B,
        )
        if hp.sample_every > 0 and int(self.iteration) % hp.sample_every == 0:
            self.save_sample_grid()

    # ------------------------------------------------------------------ samples
    @torch.no_grad()
    def render_grid_images(self, size: int | None = None) -> torch.Tensor:
        """The EMA generator's images of the fixed sample codes and poses, (n_grid, 3, H, W) in [-1, 1]."""
        return self.generator_ema.render(self.z_grid, self.pose_grid, size)["rgb"]

    def sample_dir(self) -> Path:
        """Folder of the periodic sample grids: ``<default_root_dir>/samples``."""
        root = self._trainer.default_root_dir if self._trainer is not None else "."
        return Path(root) / "samples"

    def on_fit_start(self) -> None:
        dm = self.trainer.datamodule
        size = getattr(getattr(dm, "hparams", None), "image_size", None) if dm is not None else None
        if size is not None and int(size) != self.hparams.image_size:
            raise InputError(f"data.image_size={size} differs from model.image_size={self.hparams.image_size}")

    def save_sample_grid(self) -> Path | None:
        """Render the sample grid, write it as a PNG and log it to TensorBoard (rank 0 only)."""
        if self._trainer is not None and not self.trainer.is_global_zero:
            return None
        images = self.render_grid_images()
        path = self.sample_dir() / f"it_{int(self.iteration):07d}.png"
        grid = image_grid(images)
        save_png(path, grid)
        logger = self.logger if self._trainer is not None else None
        experiment = getattr(logger, "experiment", None)
        if experiment is not None and hasattr(experiment, "add_image"):
            experiment.add_image("samples", grid, int(self.iteration), dataformats="HWC")
        return path
