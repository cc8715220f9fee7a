"""Evaluation and sampling of trained GRAF / pi-GAN generators.

Evaluation follows GRAF's protocol (``eval.py --fid_kid``): ``n_images`` images (GRAF: 1000) rendered at the
training resolution from random latent codes and random poses of the training pose distribution, with the
moving-average generator, quantised to uint8; the reference statistics come from the training images
(GRAF: up to 20 000 of them, without flips). FID and KID use Inception-v3 pool features
(:mod:`gen3d.metrics.fid`); KID is reported as in GRAF (the raw value; multiply by 100 for the x100 tables)
with its standard deviation over subsets.

Sampling writes images at any resolution and pose, a turntable GIF and a marching-cubes mesh.

Command lines (wired into ``gen3d evaluate graf`` / ``gen3d sample``, which recognises GRAF checkpoints)::

    gen3d evaluate graf --ckpt runs/graf_shapes/last.ckpt --real datasets/graf_shapes/train --n 1000
    gen3d sample --ckpt C --out DIR --n 8 --size 128 [--no-gif] [--no-mesh]
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from gen3d.errors import InputError

if TYPE_CHECKING:  # the argument helpers below are imported by the CLI, which must not pull in torch
    import numpy as np
    import torch

    from gen3d.models.graf.generator import Generator

GRAF_N_FAKE = 1000  # GRAF eval.py: n_samples = 1000 generated images
GRAF_N_REAL = 20000  # GRAF gan_training.py: FIDEvaluator(n_samples=20000) real images


def load_generator(
    ckpt: str | os.PathLike, ema: bool = True, device: str | torch.device = "cpu"
) -> tuple[Generator, dict]:
    """The (moving-average) generator of a GRAF checkpoint and its hyper-parameters."""
    from gen3d.lit.graf_module import load_graf_module

    module = load_graf_module(ckpt)
    gen = module.generator_ema if ema else module.generator
    return gen.to(device).eval(), dict(module.hparams)


def generate_images(
    generator: Generator,
    n: int,
    size: int | None = None,
    batch_size: int = 16,
    seed: int = 0,
    fast: bool = False,
) -> np.ndarray:
    """Render ``n`` images from random codes and random poses of the generator's pose distribution.

    Args:
        generator: the generator (evaluation rendering: bin-centre samples, no density noise).
        n: number of images.
        size: image side (default the training size).
        batch_size: images rendered at once.
        seed: seed of the codes and poses.
        fast: render through per-sample occupancy grids (:mod:`gen3d.models.graf.fast`).

    Returns:
        (n, H, W, 3) uint8.
    """
    import numpy as np
    import torch

    from gen3d.models.graf.export import to_uint8
    from gen3d.models.graf.fast import build_occupancy_grid, render_fast
    from gen3d.utils import progress

    device = next(generator.parameters()).device
    rng = torch.Generator().manual_seed(seed)
    z_all = generator.field.sample_z(n, generator=rng).to(device)  # drawn up front: independent of batch_size
    c2w_all = generator.sample_poses(n, generator=rng, device=device)
    out = []
    for start in progress(range(0, n, batch_size), "rendering", total=(n + batch_size - 1) // batch_size):
        z, c2w = z_all[start : start + batch_size], c2w_all[start : start + batch_size]
        with torch.no_grad():
            if fast:
                rgb = render_fast(generator, z, c2w, build_occupancy_grid(generator, z), size)["rgb"]
            else:
                rgb = generator.render(z, c2w, size)["rgb"]
        out.append(to_uint8(rgb))
    return (
        np.concatenate(out, 0)
        if out
        else np.zeros((0, size or generator.image_size, size or generator.image_size, 3), np.uint8)
    )


def load_real_images(root: str | os.PathLike, kind: str, size: int, n: int | None = None, seed: int = 0) -> np.ndarray:
    """Up to ``n`` training images (a seeded random subset when there are more), as GRAF's loader yields them.

    Returns:
        (N, size, size, 3) uint8, without random flips.
    """
    import numpy as np
    import torch

    from gen3d.data.multiview import graf_image_dataset

    ds = graf_image_dataset(root, kind, size, train=False)
    idx = np.arange(len(ds))
    if n is not None and n < len(ds):
        idx = np.sort(np.random.default_rng(seed).choice(len(ds), n, replace=False))
    imgs = [((ds[int(i)] + 1) * 127.5).round().clamp(0, 255).to(torch.uint8).permute(1, 2, 0).numpy() for i in idx]
    return np.stack(imgs)


def reference_statistics(real: np.ndarray, batch_size: int = 50):
    """Inception statistics (with features, for KID) of the reference images, (N, H, W, 3) uint8."""
    from gen3d.metrics import fid as fidlib

    return fidlib.feature_statistics(real, batch_size=batch_size, description="Inception (real)")


def score_against(
    fake: np.ndarray, reference, kid_subsets: int = 100, kid_subset_size: int = 1000, seed: int = 0
) -> dict[str, float]:
    """FID and KID (raw, with its std over subsets) of uint8 images against precomputed reference statistics.

    Args:
        fake: (N, H, W, 3) uint8 images.
        reference: :class:`gen3d.metrics.fid.FeatureStats` of the reference (from :func:`reference_statistics`).
        kid_subsets: KID subsets (100, as StyleGAN / torch-fidelity).
        kid_subset_size: KID subset size, clamped to the set sizes.
        seed: seed of the KID subsets.

    Returns:
        ``{"FID", "KID", "KID_std"}``.
    """
    from gen3d.metrics import fid as fidlib

    stats = fidlib.feature_statistics(fake, description="Inception (generated)")
    fid = fidlib.frechet_distance(stats.mu, stats.sigma, reference.mu, reference.sigma)
    kid, kid_std = fidlib.kernel_inception_distance(
        stats.features, reference.features, num_subsets=kid_subsets, subset_size=kid_subset_size, seed=seed
    )
    return {"FID": float(fid), "KID": float(kid), "KID_std": float(kid_std)}


def fid_kid(
    fake: np.ndarray, real: np.ndarray, kid_subsets: int = 100, kid_subset_size: int = 1000
) -> dict[str, float]:
    """FID and KID between two sets of uint8 images (N, H, W, 3) (:func:`gen3d.metrics.fid.fid_kid`)."""
    from gen3d.metrics import fid as fidlib

    return fidlib.fid_kid(fake, real, kid_subsets=kid_subsets, kid_subset_size=kid_subset_size)


def evaluate_graf(
    ckpt: str | os.PathLike,
    real_dir: str | os.PathLike,
    n_images: int = GRAF_N_FAKE,
    kind: str | None = None,
    n_real: int = GRAF_N_REAL,
    batch_size: int = 16,
    seed: int = 0,
    fast: bool = False,
) -> dict[str, Any]:
    """FID / KID of a GRAF checkpoint against its training images (GRAF's protocol, see the module docstring).

    Args:
        ckpt: Lightning checkpoint of :class:`~gen3d.lit.graf_module.GRAFModule`.
        real_dir: folder of the training images.
        n_images: generated images (GRAF: 1000).
        kind: dataset layout of ``real_dir`` (default: the ``folder`` layout).
        n_real: at most this many real images (GRAF: 20 000).
        batch_size: images rendered at once.
        seed: seed of the generated codes and poses (and of the real subset).
        fast: render through occupancy grids.

    Returns:
        ``{"FID", "KID", "KID_std", "n_fake", "n_real", "image_size", "seconds"}``.
    """
    start = time.perf_counter()
    gen, hp = load_generator(ckpt)
    size = int(hp["image_size"])
    real = load_real_images(real_dir, kind or "folder", size, n_real, seed)
    reference = reference_statistics(real)
    fake = generate_images(gen, n_images, size, batch_size, seed, fast)
    out: dict[str, Any] = score_against(fake, reference, seed=seed)
    out.update(n_fake=len(fake), n_real=len(real), image_size=size, seconds=round(time.perf_counter() - start, 2))
    return out


def add_evaluate_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of ``gen3d evaluate graf`` (standard library only)."""
    parser.add_argument("--ckpt", required=True, help="GRAF Lightning checkpoint")
    parser.add_argument("--real", required=True, help="folder of the training images (the FID reference)")
    parser.add_argument("--kind", default="folder", help="layout of --real: folder, shapes, carla, celeba, cats")
    parser.add_argument("--n", type=int, default=GRAF_N_FAKE, help=f"generated images (default {GRAF_N_FAKE}, GRAF's)")
    parser.add_argument(
        "--n-real", type=int, default=GRAF_N_REAL, help=f"at most this many real images (default {GRAF_N_REAL})"
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--fast", action="store_true", help="render through occupancy grids")
    parser.add_argument("--json", default=None, help="also write the metrics to this JSON file")


def run_graf_eval(args: argparse.Namespace) -> int:
    """``gen3d evaluate graf``: print FID / KID and optionally write them as JSON."""
    from gen3d.utils import atomic_write_text

    if args.n < 2:
        raise InputError(f"--n must be at least 2, got {args.n}")
    res = evaluate_graf(args.ckpt, args.real, args.n, args.kind, args.n_real, seed=args.seed, fast=args.fast)
    print(
        f"FID {res['FID']:.2f}  KID {res['KID']:.4f} +- {res['KID_std']:.4f}  "
        f"({res['n_fake']} generated vs {res['n_real']} real images at {res['image_size']}px)"
    )
    if args.json:
        atomic_write_text(args.json, json.dumps(res, indent=2) + "\n")
    return 0


# ---------------------------------------------------------------------- sampling
def sample_graf(
    ckpt: str | os.PathLike,
    out_dir: str | os.PathLike,
    n: int = 8,
    size: int | None = None,
    seed: int = 0,
    u: float | None = None,
    v: float | None = None,
    gif: bool = True,
    mesh: bool = True,
    frames: int = 40,
    fast: bool = True,
    mesh_resolution: int = 128,
    device: str | None = None,
) -> dict[str, Any]:
    """Render samples of a checkpoint at any resolution and pose; a turntable GIF and a mesh of the first.

    Args:
        ckpt: GRAF checkpoint.
        out_dir: output folder: ``sample_XX.png``, ``grid.png``, ``turntable.gif``, ``sample_00.ply``.
        n: number of samples.
        size: image side (default the training size).
        seed: seed of the codes (and of the poses when ``u``/``v`` are not given).
        u: azimuth fraction of the camera (default random from the training distribution).
        v: GRAF's polar ``v`` of the camera (default random).
        gif: write a turntable of sample 0.
        mesh: extract a mesh of sample 0 (marching cubes on the density).
        frames: turntable frames.
        fast: render the turntable through an occupancy grid (when the background allows it).
        mesh_resolution: marching-cubes grid points per axis.
        device: where to render (``None``: CUDA when available); codes and poses are drawn on the CPU, so a
            seed gives the same samples on any device up to floating-point rounding.

    Returns:
        Paths written.
    """
    import torch

    from gen3d.lit.graf_module import image_grid, write_png
    from gen3d.models.graf.export import extract_mesh, render_turntable, save_gif, save_mesh, to_uint8
    from gen3d.utils.device import resolve_device

    if n < 1:
        raise InputError(f"n must be positive, got {n}")
    device = resolve_device(device)
    gen, hp = load_generator(ckpt, device=device)
    out = Path(out_dir)
    rng = torch.Generator().manual_seed(seed)
    z = gen.field.sample_z(n, generator=rng)
    if u is None and v is None:
        c2w = gen.sample_poses(n, generator=rng)
    else:
        u0 = sum(gen.range_u) / 2 if u is None else u
        v0 = sum(gen.range_v) / 2 if v is None else v
        c2w = gen.pose_at(torch.full((n,), float(u0)), torch.full((n,), float(v0)))
    z, c2w = z.to(device), c2w.to(device)
    with torch.no_grad():
        rgb = torch.cat([gen.render(z[i : i + 8], c2w[i : i + 8], size)["rgb"] for i in range(0, n, 8)])
    written: dict[str, Any] = {"images": []}
    for i, img in enumerate(to_uint8(rgb)):
        written["images"].append(str(write_png(out / f"sample_{i:02d}.png", img)))
    written["grid"] = str(write_png(out / "grid.png", image_grid(rgb)))
    if gif:
        use_fast = fast and gen.background != "last"
        frames_u8 = render_turntable(gen, z[0], frames, size, fast=use_fast)
        written["gif"] = str(save_gif(frames_u8, out / "turntable.gif"))
    if mesh:
        bound = gen.max_radius - gen.near
        m = extract_mesh(gen.field, z[0], mesh_resolution, bound)
        written["mesh"] = str(save_mesh(m, out / "sample_00.ply"))
        written["mesh_level"] = m.metadata["level"]
    return written


def run_graf_sample(args: argparse.Namespace) -> int:
    """``gen3d sample`` on a GRAF checkpoint: write samples, a turntable and a mesh; print what was written."""
    res = sample_graf(
        args.ckpt,
        args.out,
        args.n,
        args.size,
        args.seed,
        args.u,
        args.v,
        not args.no_gif,
        not args.no_mesh,
        args.frames,
        device=args.device,
    )
    print(
        f"wrote {len(res['images'])} images, {res['grid']}"
        + "".join(f", {res[k]}" for k in ("gif", "mesh") if k in res)
    )
    return 0
