"""Evaluation of trained GRAF / pi-GAN generators: FID and KID of their renders.

Evaluation follows GRAF's protocol (``eval.py --fid_kid``): ``n_images`` images (GRAF: 1000) rendered at the
training resolution from random latent codes and random poses of the training pose distribution, with the
moving-average generator, quantised to uint8; the reference statistics come from the training images
(GRAF: up to 20 000 of them, without flips). FID and KID use Inception-v3 pool features
(:mod:`gen3d.metrics.fid`); KID is reported as in GRAF (the raw value; multiply by 100 for the x100 tables)
with its standard deviation over subsets.

With ``geometry`` (``--geometry`` on the command line), the generator's 3D surfaces are scored too: point clouds
from marching cubes on its density, against the procedural shapes it was trained on, with the point-cloud
metrics (1-NNA, COV, MMD under Chamfer, JSD), next to an untrained generator and held-out shapes
(:mod:`gen3d.pipelines.graf_geometry`).

Command line: ``gen3d evaluate graf --ckpt runs/graf_shapes/checkpoints/last.ckpt --real datasets/graf_shapes/train``
(add ``--geometry --classes chair,car,mug --heldout-first 32`` for the 3D metrics).
"""

from __future__ import annotations

import os
import time
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # the CLI imports this module for its defaults and must not pull in torch
    import numpy as np

    from gen3d.models.graf.generator import Generator
    from gen3d.pipelines.graf_geometry import GeometryProtocol

GRAF_N_FAKE = 1000  # GRAF eval.py: n_samples = 1000 generated images
GRAF_N_REAL = 20000  # GRAF gan_training.py: FIDEvaluator(n_samples=20000) real images


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

    from gen3d.export.images import to_uint8
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
        out.append(to_uint8(rgb, value_range=(-1.0, 1.0)))
    return (
        np.concatenate(out, 0)
        if out
        else np.zeros((0, size or generator.image_size, size or generator.image_size, 3), np.uint8)
    )


def load_real_images(root: str | os.PathLike, kind: str, size: int, n: int | None = None, seed: int = 0) -> np.ndarray:
    """Up to ``n`` training images (a seeded random subset when there are more), as GRAF's loader yields them.

    Returns:
        (N, size, size, 3) uint8, without random flips.

    Raises:
        InputError: an unknown layout, a folder without at least 2 images in it (FID and KID need 2), or an
            unreadable image.
    """
    import numpy as np
    import torch

    from gen3d.data.multiview import graf_image_dataset
    from gen3d.errors import InputError

    ds = graf_image_dataset(root, kind, size, train=False)
    if len(ds) < 2:
        raise InputError(f"holds {len(ds)} image of the {kind} layout; FID and KID need at least 2", root)
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
    geometry: GeometryProtocol | None = None,
) -> dict[str, Any]:
    """FID / KID of a GRAF checkpoint against its training images (GRAF's protocol, see the module docstring), and
    optionally the point-cloud metrics of its surfaces.

    Args:
        ckpt: a GRAF checkpoint (``gen3d train graf``).
        real_dir: folder of the training images.
        n_images: generated images (GRAF: 1000).
        kind: dataset layout of ``real_dir`` (default: the ``folder`` layout).
        n_real: at most this many real images (GRAF: 20 000).
        batch_size: images rendered at once.
        seed: seed of the generated codes and poses (and of the real subset).
        fast: render through occupancy grids.
        geometry: also score the generator's surfaces (:func:`gen3d.pipelines.graf_geometry.geometry_metrics`,
            codes of ``seed``); the untrained row is the checkpoint's architecture initialised with ``seed``.

    Returns:
        ``{"FID", "KID", "KID_std", "n_fake", "n_real", "image_size", "seconds"}``, and with ``geometry`` also
        ``"geometry": {"rows": {"trained", "untrained", "oracle"}, "protocol"}``.
    """
    start = time.perf_counter()
    from gen3d.inference.graf import load_graf_generator

    gen, hp = load_graf_generator(ckpt)
    size = int(hp["image_size"])
    real = load_real_images(real_dir, kind or "folder", size, n_real, seed)
    reference = reference_statistics(real)
    fake = generate_images(gen, n_images, size, batch_size, seed, fast)
    out: dict[str, Any] = score_against(fake, reference, seed=seed)
    if geometry is not None:
        out["geometry"] = _geometry(gen, hp, geometry, seed)
    out.update(n_fake=len(fake), n_real=len(real), image_size=size, seconds=round(time.perf_counter() - start, 2))
    return out


def _geometry(gen: Generator, hp: dict[str, Any], protocol: GeometryProtocol, seed: int) -> dict[str, Any]:
    """The 3D metrics of ``gen`` and of the same architecture freshly initialised with ``seed``."""
    import torch

    from gen3d.models.graf.build import build_generator
    from gen3d.pipelines.graf_geometry import geometry_metrics

    device = next(gen.parameters()).device
    with torch.random.fork_rng(devices=[]):  # leaves the global random state as it was
        torch.manual_seed(seed)
        untrained = build_generator(hp).requires_grad_(False).to(device).eval()
    return geometry_metrics(gen, untrained, protocol, seed)
