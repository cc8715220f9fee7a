"""Density evaluation in bits per point: the point flow's exact likelihood and ELBO, LION's ELBO, anomaly AUROC.

``gen3d evaluate nll --ckpt C --data D`` calls :func:`evaluate_nll`. The data (an ``.npy``/``.npz`` set or a folder of
clouds, in the data's original frame) is normalised with the checkpoint's statistics and each cloud subsampled to
``num_points`` points (a seeded subset without replacement, as :mod:`gen3d.pipelines.lion_eval` does).

Point flow (:func:`flow_scores`), per cloud ``X = {x_1..x_N}``:

* ``nll_bits_per_point``: ``-1/N sum_i log2 p(x_i | z)`` with ``z`` the encoder's mean: exact, the flow's change of
  variables, no bound. It scores the points given the best code, not the shape's own probability.
* ``nelbo_bits_per_point``: ``-ELBO(X) / (N ln 2)`` with ``ELBO = E_q[sum_i log p(x_i | z)] + E_q[log p(z)] + H[q]``
  (``samples`` posterior draws): an upper bound of ``-log2 p(X) / N`` of the whole model, shape prior included.

LION (a checkpoint of either stage): ``nelbo_bits_per_point`` is :func:`gen3d.models.lion.negative_elbo_per_point` of
its VAE in bits: the bound under the VAE's own standard-normal latent priors (not its latent diffusion priors), with
the unit-scale Laplace likelihood that LION's L1 reconstruction loss implies, ``-log p(x | z) = |x - x_hat|_1 + 3 N
log 2``. That decoder has a fixed scale that is not fitted to the data, and it reconstructs the points of the input in
order, so its bound is much looser than the flow's; both are bounds on ``-log p`` of the same normalised clouds in the
same units, but the gap between them measures mostly that fixed Laplace scale, not the quality of the shapes.

Frames: every value is given in the normalised frame the models are trained in (``x_norm = (x - mean) / std``, the
checkpoint's statistics) and, under ``..._data_frame``, in the data's original units: a density of a point changes by
the normalisation's log-determinant, ``-3 log2(std)`` bits per point, so ``bits_data = bits_norm + 3 log2(std)``.

Anomaly scoring (:func:`anomaly_auroc`): per-shape NLL of two sets (in-distribution, e.g. the test split of the
training class, and out-of-distribution, e.g. another class) and the AUROC of telling them apart by it
(:func:`auroc`, the Mann-Whitney U statistic with ties counted as one half).
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import torch

from gen3d.pipelines.density_inputs import check_reach, points_per_cloud, seeded_subsets

LN2 = math.log(2.0)
SCORES = ("nll_bits_per_point", "nelbo_bits_per_point")


def auroc(negatives: Any, positives: Any) -> float:
    """Area under the ROC curve of scores where higher means positive (Mann-Whitney U / (n_neg n_pos)).

    Ties between a positive and a negative count one half. Computed from average ranks in ``O(n log n)``.

    Args:
        negatives: scores of the negative class (e.g. in-distribution NLLs).
        positives: scores of the positive class (e.g. out-of-distribution NLLs).

    Returns:
        ``P(s_pos > s_neg) + P(s_pos == s_neg) / 2``, in [0, 1].

    Raises:
        ValueError: an empty set or a non-finite score.
    """
    neg = np.asarray(negatives, dtype=np.float64).ravel()
    pos = np.asarray(positives, dtype=np.float64).ravel()
    if len(neg) == 0 or len(pos) == 0:
        raise ValueError("AUROC needs at least one score in each set")
    if not (np.isfinite(neg).all() and np.isfinite(pos).all()):
        raise ValueError("AUROC needs finite scores")
    scores = np.concatenate([neg, pos])
    order = np.argsort(scores, kind="mergesort")
    ranks = np.empty(len(scores), dtype=np.float64)
    sorted_scores = scores[order]
    start = 0
    while start < len(scores):  # average rank (1-based) over each run of equal scores
        end = start + 1
        while end < len(scores) and sorted_scores[end] == sorted_scores[start]:
            end += 1
        ranks[order[start:end]] = 0.5 * (start + 1 + end)
        start = end
    u = ranks[len(neg) :].sum() - len(pos) * (len(pos) + 1) / 2.0
    return float(u / (len(neg) * len(pos)))


def flow_scores(
    loaded: Any,
    clouds: np.ndarray,
    num_points: int | None = None,
    samples: int = 1,
    batch_size: int = 16,
    seed: int = 0,
    source: str | Path | None = None,
) -> tuple[dict[str, np.ndarray], int]:
    """Per-cloud bits per point of a loaded point flow, in its normalised frame.

    Args:
        loaded: :class:`gen3d.inference.flow.LoadedFlow`.
        clouds: checked ``(N, P, 3)`` clouds in the data's original frame.
        num_points: points drawn per cloud (default: the model's ``num_points``, at most P).
        samples: posterior draws of the ELBO.
        batch_size: clouds per forward pass.
        seed: seed of the subsets and the posterior draws.
        source: the file the clouds came from, named in errors.

    Returns:
        ``({"nll_bits_per_point": (N,), "nelbo_bits_per_point": (N,)}, points drawn per cloud)``, float64.
    """
    check_reach(loaded, clouds, source)
    k = points_per_cloud(num_points, loaded.net.cfg.num_points, clouds, source)
    net = loaded.net.eval()
    x_all = loaded.normalize(seeded_subsets(clouds, k, seed))
    g = torch.Generator().manual_seed(seed)
    nll, nelbo = [], []
    with torch.no_grad():
        for i in range(0, len(x_all), batch_size):
            x = x_all[i : i + batch_size]
            mu, _ = net.encode(x)
            nll.append((-net.point_log_prob(x, mu).double().mean(dim=1) / LN2).numpy())
            elbo = net.elbo(x, samples=samples, generator=g)["elbo"].double()
            nelbo.append((-elbo / (k * LN2)).numpy())
    return {"nll_bits_per_point": np.concatenate(nll), "nelbo_bits_per_point": np.concatenate(nelbo)}, k


def lion_scores(
    loaded: Any,
    clouds: np.ndarray,
    num_points: int | None = None,
    samples: int = 1,
    batch_size: int = 16,
    seed: int = 0,
    source: str | Path | None = None,
) -> tuple[dict[str, np.ndarray], int]:
    """Per-cloud negative ELBO of a loaded LION's VAE in bits per point (:func:`gen3d.pipelines.lion_eval._elbo`)."""
    from gen3d.pipelines.lion_eval import _elbo

    nats, k = _elbo(loaded, clouds, num_points, samples, batch_size, seed, source)
    return {"nelbo_bits_per_point": nats / LN2}, k


def load_scorer(ckpt: str | Path) -> tuple[str, Any]:
    """``("flow" | "lion", loaded model)`` of a checkpoint.

    Raises:
        InputError: neither a point-flow nor a LION checkpoint.
    """
    from gen3d.errors import InputError
    from gen3d.inference.checkpoint import is_flow_checkpoint, is_lion_checkpoint, read_checkpoint

    ckpt_dict = read_checkpoint(ckpt)
    if is_flow_checkpoint(ckpt_dict):
        from gen3d.inference.flow import load_flow

        return "flow", load_flow(ckpt)
    if is_lion_checkpoint(ckpt_dict):
        from gen3d.inference.lion import load_lion

        return "lion", load_lion(ckpt)
    raise InputError("not a checkpoint of a point flow or of LION (gen3d train flow / gen3d train lion)", ckpt)


def score_clouds(kind: str, loaded: Any, clouds: np.ndarray, **kwargs: Any) -> tuple[dict[str, np.ndarray], int]:
    """:func:`flow_scores` or :func:`lion_scores` by ``kind``."""
    return (flow_scores if kind == "flow" else lion_scores)(loaded, clouds, **kwargs)


def anomaly_auroc(
    kind: str,
    loaded: Any,
    inliers: np.ndarray,
    outliers: np.ndarray,
    key: str | None = None,
    **kwargs: Any,
) -> dict[str, Any]:
    """Per-shape NLL of two sets and the AUROC of separating them by it (outliers should score higher).

    Args:
        kind: ``"flow"`` or ``"lion"`` (:func:`load_scorer`).
        loaded: the loaded model.
        inliers: ``(N, P, 3)`` clouds of the training distribution (e.g. the test split of the training class).
        outliers: ``(M, Q, 3)`` clouds of another distribution (e.g. another class).
        key: score used (default: ``nll_bits_per_point`` for the flow, ``nelbo_bits_per_point`` for LION).
        **kwargs: ``num_points``, ``samples``, ``batch_size``, ``seed``, ``source`` of :func:`flow_scores`.

    Returns:
        ``{"score", "auroc", "inliers": (N,) scores, "outliers": (M,) scores}``.
    """
    key = key or ("nll_bits_per_point" if kind == "flow" else "nelbo_bits_per_point")
    a = score_clouds(kind, loaded, inliers, **kwargs)[0][key]
    b = score_clouds(kind, loaded, outliers, **kwargs)[0][key]
    return {"score": key, "auroc": auroc(a, b), "inliers": a, "outliers": b}


def _summary(values: dict[str, np.ndarray], shift: float) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, v in values.items():
        out[key] = float(v.mean())
        out[f"{key}_std"] = float(v.std())
        out[f"{key}_data_frame"] = float(v.mean() + shift)
    return out


def evaluate_nll(
    ckpt: str | Path,
    data: str | Path,
    num_points: int | None = None,
    samples: int = 1,
    batch_size: int = 16,
    seed: int = 0,
    outliers: str | Path | None = None,
    json_path: str | Path | None = None,
) -> dict[str, Any]:
    """``gen3d evaluate nll``: bits per point of a point-flow or LION checkpoint on a set of clouds.

    Args:
        ckpt: a point-flow checkpoint, or a LION checkpoint (either stage; its VAE's ELBO).
        data: an ``.npy``/``.npz`` set or a folder of clouds, in the data's original frame.
        num_points: points drawn per cloud (default: the model's).
        samples: posterior draws of the ELBO.
        batch_size: clouds per forward pass.
        seed: seed of the subsets and the posterior draws.
        outliers: another set of clouds: also report the AUROC of telling it from ``data`` by the per-shape score.
        json_path: also write the result there.

    Returns:
        ``{"model", <score>, <score>_std, <score>_data_frame ..., "n", "per_cloud": {...}, "frame", "protocol"}``
        and, with ``outliers``, ``"anomaly": {"score", "auroc", "n_outliers", "outlier_mean"}``. Scores: see the
        module docstring (LION: ``nelbo_bits_per_point`` only).
    """
    from gen3d.data.io import check_points, load_point_set
    from gen3d.pipelines.sample import file_sha256, provenance
    from gen3d.utils import atomic_write_text

    clouds = check_points(load_point_set(data), data, ndim=(3,))
    other = check_points(load_point_set(outliers), outliers, ndim=(3,)) if outliers is not None else None
    kind, loaded = load_scorer(ckpt)
    opts = {"num_points": num_points, "samples": samples, "batch_size": batch_size, "seed": seed}
    values, k = score_clouds(kind, loaded, clouds, source=data, **opts)
    shift = 3.0 * math.log2(float(loaded.std.reshape(-1)[0]))  # bits_data = bits_norm + 3 log2(std)
    result: dict[str, Any] = {
        "model": kind,
        **_summary(values, shift),
        "n": int(len(clouds)),
        "frame": "normalised (x - mean) / std with the checkpoint's statistics; *_data_frame: the data's original "
        f"units (+ 3 log2(std) = {shift:+.4f} bits per point)",
        "per_cloud": {key: [float(x) for x in v] for key, v in values.items()},
    }
    if other is not None:
        key = "nll_bits_per_point" if kind == "flow" else "nelbo_bits_per_point"
        b = score_clouds(kind, loaded, other, source=outliers, **opts)[0][key]
        result["anomaly"] = {
            "score": key,
            "auroc": auroc(values[key], b),
            "n_outliers": int(len(b)),
            "outlier_mean": float(b.mean()),
            "per_outlier": [float(x) for x in b],
        }
    result["protocol"] = {
        "checkpoint": str(ckpt),
        "checkpoint_sha256": file_sha256(ckpt),
        "data": {"path": str(data), "clouds": int(len(clouds)), "points_read": int(clouds.shape[1])},
        "outliers": None if other is None else {"path": str(outliers), "clouds": int(len(other))},
        "points": k,
        "subsample": "a seeded subset of each cloud without replacement" if k < clouds.shape[1] else None,
        "posterior_samples": samples,
        "batch_size": batch_size,
        "seed": seed,
        **provenance(),
    }
    _print(result)
    if json_path:
        atomic_write_text(json_path, json.dumps(result, indent=2) + "\n")
    return result


def _print(result: dict[str, Any]) -> None:
    names = {"nll_bits_per_point": "NLL log p(x|z)", "nelbo_bits_per_point": "negative ELBO"}
    for key, name in names.items():
        if key in result:
            print(
                f"{result['model']} {name}: {result[key]:.4f} bits/point normalised frame "
                f"({result[key + '_data_frame']:.4f} in the data's units; std {result[key + '_std']:.4f}, "
                f"{result['n']} clouds)"
            )
    if "anomaly" in result:
        a = result["anomaly"]
        print(f"AUROC {a['auroc']:.4f} ({a['score']}: {a['n_outliers']} outliers, mean {a['outlier_mean']:.4f})")
