"""Inception Score (Salimans et al. 2016) of a set of class predictions or of images.

``IS = exp(E_x KL(p(y|x) || p(y)))``: high when each image is confidently classified (low-entropy
``p(y|x)``) and the classes are varied (high-entropy marginal ``p(y)``). Its range is ``[1, K]`` for ``K``
classes.

Conventions (those of torch-fidelity's ``torch_fidelity/metric_isc.py``, ``isc_features_to_metric``):

- the N predictions are cut into ``splits`` consecutive chunks ``[i*N // splits, (i+1)*N // splits)``
  (10 by default); ``p(y)`` is the mean prediction of each chunk, not of the whole set;
- the score of a chunk is ``exp(mean_i sum_y p(y|x_i) (log p(y|x_i) - log p(y)))``, with no epsilon;
- the result is the mean and the population standard deviation (``np.std``, ddof=0) over the chunks;
- everything is computed in float64; from logits, ``log p(y|x)`` is a log-softmax.

torch-fidelity also permutes the predictions first by default (``samples_shuffle=True``, a NumPy
``RandomState(2020)`` permutation); ``shuffle_seed=2020`` reproduces that, the default keeps the given order.

The classifier is a TorchScript file with the Inception-v3 classification head (see :class:`InceptionClassifier`
and docs/metrics.md). The default FID network has no such head: it stops at the 2048-d pool3 features.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from gen3d.errors import InputError
from gen3d.utils.device import resolve_device

__all__ = [
    "MIN_CLASSES",
    "InceptionClassifier",
    "image_inception_score",
    "inception_score",
    "inception_score_from_logits",
]

MIN_CLASSES = 1000  # ImageNet classes; Inception-v3 of 2015 has 1008 outputs
ROW_SUM_TOLERANCE = 1e-3
WEIGHTS_HINT = (
    "a TorchScript Inception-v3 with its classifier head, e.g. NVIDIA's inception-2015-12-05.pt or a file "
    "exported from torch-fidelity's weights (see docs/metrics.md)"
)


def _as_float64(values: Any, name: str) -> np.ndarray:
    arr = values.detach().cpu().numpy() if isinstance(values, torch.Tensor) else np.asarray(values)
    if not np.issubdtype(arr.dtype, np.number):
        raise InputError(f"{name} must be numbers, got dtype {arr.dtype}")
    arr = arr.astype(np.float64)
    if arr.ndim != 2 or arr.shape[1] < 1:
        raise InputError(f"{name} must be an array of shape (N, K), got {arr.shape}")
    if not np.isfinite(arr).all():
        raise InputError(f"{name} contain NaN or Inf")
    return arr


def _check_splits(n: int, splits: int) -> None:
    if isinstance(splits, bool) or not isinstance(splits, (int, np.integer)) or splits < 1:
        raise InputError(f"splits must be a positive integer, got {splits!r}")
    if n < splits:
        raise InputError(f"the Inception Score needs at least as many predictions as splits, got {n} < {splits}")


def _permute(arr: np.ndarray, shuffle_seed: int | None) -> np.ndarray:
    if shuffle_seed is None:
        return arr
    return arr[np.random.RandomState(shuffle_seed).permutation(arr.shape[0])]


def _score(p: np.ndarray, log_p: np.ndarray, splits: int) -> tuple[float, float]:
    """Mean and population std over ``splits`` consecutive chunks of ``exp(mean KL(p(y|x) || p(y)))``."""
    n = p.shape[0]
    scores = np.empty(splits)
    for i in range(splits):
        lo, hi = i * n // splits, (i + 1) * n // splits
        chunk, log_chunk = p[lo:hi], log_p[lo:hi]  # (n_i, K)
        with np.errstate(divide="ignore"):
            log_marginal = np.log(chunk.mean(axis=0, keepdims=True))  # (1, K); -inf only where the column is 0
        # 0 * log 0 = 0: terms of zero probability contribute nothing (p(y) > 0 wherever p(y|x) > 0).
        positive = chunk > 0
        terms = chunk * (np.where(positive, log_chunk, 0.0) - np.where(positive, log_marginal, 0.0))
        scores[i] = np.exp(terms.sum(axis=1).mean())
    return float(scores.mean()), float(scores.std())


def inception_score(probs: Any, splits: int = 10, shuffle_seed: int | None = None) -> tuple[float, float]:
    """Inception Score of class probabilities.

    Args:
        probs: (N, K) array or tensor; each row a distribution p(y|x_i) (non-negative, summing to 1 within 1e-3).
        splits: number of consecutive chunks (torch-fidelity's and the paper's 10 by default); N >= splits.
        shuffle_seed: permute the rows first with ``np.random.RandomState(shuffle_seed)`` (torch-fidelity: 2020);
            None keeps their order.

    Returns:
        (mean, std) of the chunks' scores, std with ddof=0.

    Raises:
        InputError: not (N, K), non-finite or negative values, rows not summing to 1, or N < splits.
    """
    p = _as_float64(probs, "probabilities")
    if (p < 0).any():
        raise InputError("probabilities must be non-negative")
    sums = p.sum(axis=1)
    if np.abs(sums - 1.0).max() > ROW_SUM_TOLERANCE:
        worst = int(np.abs(sums - 1.0).argmax())
        raise InputError(
            f"each row of probabilities must sum to 1 (within {ROW_SUM_TOLERANCE:g}), row {worst} sums to "
            f"{sums[worst]:.6g}; pass logits to inception_score_from_logits"
        )
    _check_splits(p.shape[0], splits)
    p = _permute(p, shuffle_seed)
    with np.errstate(divide="ignore"):
        log_p = np.log(p)
    return _score(p, log_p, splits)


def inception_score_from_logits(logits: Any, splits: int = 10, shuffle_seed: int | None = None) -> tuple[float, float]:
    """Inception Score of classifier logits: :func:`inception_score` of their softmax (log-softmax in float64).

    Args:
        logits: (N, K) array or tensor of finite logits.
        splits: number of consecutive chunks; N >= splits.
        shuffle_seed: as in :func:`inception_score`.

    Returns:
        (mean, std) over the chunks.
    """
    z = _as_float64(logits, "logits")
    _check_splits(z.shape[0], splits)
    z = _permute(z, shuffle_seed)
    log_p = z - z.max(axis=1, keepdims=True)
    log_p -= np.log(np.exp(log_p).sum(axis=1, keepdims=True))
    return _score(np.exp(log_p), log_p, splits)


class InceptionClassifier:
    """Inception-v3 with its classifier head, from a TorchScript file; called like FID's feature extractor.

    Two kinds of file are accepted:

    - ``"logits"``: ``forward(x)`` takes (N, 3, 299, 299) float32 RGB images with values in [0, 255] (gen3d
      resizes them bilinearly first, as for FID) and returns (N, K) logits, K >= 1000 (any scaling of the
      input happens inside the module);
    - ``"nvidia"``: NVIDIA's ``inception-2015-12-05.pt`` (recognised by its ``return_features`` argument), called
      as ``forward(x, no_output_bias=True)``, which returns (N, 1008) softmax probabilities of the original
      TensorFlow graph without the output bias, as StyleGAN's Inception Score does.

    Args:
        weights: the TorchScript file.
        device: where to run (default: CUDA when available, else CPU).

    Attributes:
        kind: ``"logits"`` or ``"nvidia"``.
        outputs: ``"logits"`` or ``"probabilities"``, what :meth:`__call__` returns.
        resize: always ``"bilinear"`` (images are resized to 299 x 299 by gen3d).
        weights_id: file name, size and a digest of its first MiB.
    """

    def __init__(self, weights: str | os.PathLike, device: str | torch.device | None = None):
        path = Path(weights).expanduser()
        if not path.is_file():
            raise InputError(f"no such Inception classifier file; --is needs {WEIGHTS_HINT}", path)
        self.device = resolve_device(device)
        try:
            self.model = torch.jit.load(str(path), map_location=self.device).eval()
        except Exception as exc:
            raise InputError(
                f"not a loadable TorchScript file ({type(exc).__name__}); --is needs {WEIGHTS_HINT}", path
            ) from exc
        schema = str(self.model.forward.schema)
        self.kind = "nvidia" if "return_features" in schema else "logits"
        self.outputs = "probabilities" if self.kind == "nvidia" else "logits"
        self.resize = "bilinear"
        self.path = path
        with open(path, "rb") as f:
            head = hashlib.sha256(f.read(1 << 20)).hexdigest()[:16]
        self.weights_id = f"{path.name}:{path.stat().st_size}:{head}"

    @torch.inference_mode()
    def __call__(self, images: torch.Tensor) -> np.ndarray:
        """Class logits (or probabilities, see :attr:`outputs`) of a batch.

        Args:
            images: (B, 3, H, W) float tensor with values in [0, 255] (or uint8).

        Returns:
            (B, K) float64 array.

        Raises:
            InputError: the module's output is not (B, K) with K >= 1000, i.e. the file has no classifier head.
        """
        from gen3d.metrics.fid import INCEPTION_SIZE

        x = images.to(self.device, torch.float32)
        if tuple(x.shape[-2:]) != (INCEPTION_SIZE, INCEPTION_SIZE):
            x = F.interpolate(
                x, size=(INCEPTION_SIZE, INCEPTION_SIZE), mode="bilinear", align_corners=False, antialias=False
            )
        try:
            with torch.jit.optimized_execution(False):
                out = self.model(x, no_output_bias=True) if self.kind == "nvidia" else self.model(x)
        except Exception as exc:
            raise InputError(
                f"failed on a batch of images ({type(exc).__name__}); --is needs {WEIGHTS_HINT}", self.path
            ) from exc
        if (
            not isinstance(out, torch.Tensor)
            or out.ndim != 2
            or out.shape[0] != x.shape[0]
            or out.shape[1] < MIN_CLASSES
        ):
            shape = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
            raise InputError(
                f"returns {shape}, not (N, >= {MIN_CLASSES}) class scores; --is needs {WEIGHTS_HINT}", self.path
            )
        return out.double().cpu().numpy()


def image_inception_score(
    source: Any,
    weights: str | os.PathLike | InceptionClassifier,
    splits: int = 10,
    batch_size: int = 50,
    device: str | None = None,
    shuffle_seed: int | None = None,
    progress: bool | None = None,
) -> tuple[float, float]:
    """Inception Score of a set of images, read and resized as for FID (:func:`gen3d.metrics.fid.image_features`).

    Args:
        source: (N, H, W, 3) uint8 array/tensor, or a folder of PNG/JPEG images.
        weights: TorchScript classifier file (see :class:`InceptionClassifier`) or a loaded classifier.
        splits: number of chunks (10 by default).
        batch_size: images per forward pass.
        device: where to run the network.
        shuffle_seed: as in :func:`inception_score`.
        progress: show a progress bar.

    Returns:
        (mean, std) over the chunks.
    """
    from gen3d.metrics.fid import image_features

    classifier = weights if isinstance(weights, InceptionClassifier) else InceptionClassifier(weights, device=device)
    scores = image_features(source, classifier, batch_size=batch_size, progress=progress, description="Inception (IS)")
    if classifier.outputs == "probabilities":
        return inception_score(scores, splits=splits, shuffle_seed=shuffle_seed)
    return inception_score_from_logits(scores, splits=splits, shuffle_seed=shuffle_seed)
