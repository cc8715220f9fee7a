"""Density evaluation of LION: the VAE's negative ELBO per point on a set of clouds.

``gen3d evaluate elbo --ckpt C --data D`` calls :func:`evaluate_elbo`. The data (an ``.npy``/``.npz`` set or a folder
of clouds, in the data's original frame) is normalised with the checkpoint's statistics, subsampled to the
model's point count, and scored with :func:`gen3d.models.lion.negative_elbo_per_point`.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import torch

from gen3d.models.lion import negative_elbo_per_point
from gen3d.pipelines.density_inputs import check_reach, points_per_cloud, seeded_subsets


def elbo_of_points(
    ckpt: str | Path,
    clouds: np.ndarray,
    num_points: int | None = None,
    samples: int = 1,
    batch_size: int = 16,
    seed: int = 0,
    source: str | Path | None = None,
) -> np.ndarray:
    """Negative ELBO per point of every cloud.

    Args:
        ckpt: a LION checkpoint (either stage: only the VAE is used).
        clouds: ``(N, P, 3)`` clouds in the original data frame.
        num_points: points drawn per cloud (default: the model's ``num_points``, at most P).
        samples: posterior samples per cloud.
        batch_size: clouds per forward pass.
        seed: seed of the subsampling and the posterior samples.
        source: the file the clouds came from, named in errors.

    Returns:
        ``(N,)`` float64 nats per point.

    Raises:
        InputError: clouds that are not finite ``(N, P, 3)`` points, or that lie far outside the scale of the
            model's training data (more than :data:`gen3d.pipelines.density_inputs.MAX_NORMALISED` of its
            standard deviations).
    """
    from gen3d.data.io import check_points
    from gen3d.inference.lion import load_lion

    clouds = check_points(clouds, source, ndim=(3,))
    return _elbo(load_lion(ckpt), clouds, num_points, samples, batch_size, seed, source)[0]


def _elbo(
    loaded: Any,
    clouds: np.ndarray,
    num_points: int | None,
    samples: int,
    batch_size: int,
    seed: int,
    source: str | Path | None,
) -> tuple[np.ndarray, int]:
    """:func:`elbo_of_points` of a loaded checkpoint on checked clouds; returns ``(values, points drawn per cloud)``."""
    check_reach(loaded, clouds, source)
    k = points_per_cloud(num_points, loaded.net.cfg.num_points, clouds, source)
    vae = loaded.net.vae.eval()
    x_all = loaded.normalize(seeded_subsets(clouds, k, seed))  # (N, k, 3)
    out = []
    state = torch.get_rng_state()
    torch.manual_seed(seed)
    try:
        with torch.no_grad():
            for i in range(0, len(x_all), batch_size):
                out.append(negative_elbo_per_point(vae, x_all[i : i + batch_size], samples).double().numpy())
    finally:
        torch.set_rng_state(state)
    return np.concatenate(out), k


def evaluate_elbo(
    ckpt: str | Path,
    data: str | Path,
    num_points: int | None = None,
    samples: int = 1,
    batch_size: int = 16,
    seed: int = 0,
    json_path: str | Path | None = None,
) -> dict[str, Any]:
    """``gen3d evaluate elbo``: the negative ELBO per point of a LION checkpoint's VAE on a set of clouds.

    Args:
        ckpt: a LION checkpoint (either stage).
        data: an ``.npy``/``.npz`` set or a folder of clouds, in the data's original frame.
        num_points, samples, batch_size, seed: as :func:`elbo_of_points`.
        json_path: also write the result there.

    Returns:
        ``{"nelbo_per_point": mean, "std", "n", "per_cloud": [...], "protocol": {...}}`` (the mean also printed);
        ``protocol`` names the checkpoint and its SHA-256, the data, the points drawn per cloud, the options, gen3d's
        version and the time.
    """
    from gen3d.data.io import check_points, load_point_set
    from gen3d.inference.lion import load_lion
    from gen3d.pipelines.sample import file_sha256, provenance
    from gen3d.utils import atomic_write_text

    clouds = check_points(load_point_set(data), data, ndim=(3,))
    values, k = _elbo(load_lion(ckpt), clouds, num_points, samples, batch_size, seed, data)
    result = {
        "nelbo_per_point": float(values.mean()),
        "std": float(values.std()),
        "n": int(len(values)),
        "per_cloud": [float(v) for v in values],
        "protocol": {
            "checkpoint": str(ckpt),
            "checkpoint_sha256": file_sha256(ckpt),
            "data": {"path": str(data), "clouds": int(len(clouds)), "points_read": int(clouds.shape[1])},
            "points": k,
            "subsample": "a seeded subset of each cloud without replacement" if k < clouds.shape[1] else None,
            "posterior_samples": samples,
            "batch_size": batch_size,
            "seed": seed,
            **provenance(),
        },
    }
    print(f"negative ELBO: {result['nelbo_per_point']:.4f} nats/point (std {result['std']:.4f}, {result['n']} clouds)")
    if json_path:
        atomic_write_text(json_path, json.dumps(result, indent=2))
    return result
