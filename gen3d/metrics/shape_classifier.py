"""A small shape classifier trained on the procedural classes, for a class Inception Score and class coverage.

The Inception Score of a point-cloud generator needs a classifier of 3D shapes. gen3d trains its own on the
procedural shapes of :mod:`gen3d.data.shapes` (chair, table, airplane, ...) in about a minute on the CPU:

* ``"pointnet"`` (:class:`PointNetClassifier`): a shared per-point MLP 3 -> 64 -> 128 -> 256, a max-pool over
  the points and an MLP head;
* ``"cnn"`` (:class:`RenderCNNClassifier`): a small CNN on grey renders of the cloud from the fixed P-FID
  cameras (:func:`gen3d.metrics.point_fid.render_views`, 4 views of 64 x 64), its per-view logits averaged.

Both normalise every cloud on its own first (bounding box centred, largest side 1) and take ``(B, P, 3)`` clouds.
:func:`class_scores` turns the classifier's predictions on generated clouds into the class IS (Salimans et al.'s
formula through :func:`gen3d.metrics.inception_score.inception_score`) and the class coverage. These numbers are
gen3d's own: they depend on this classifier and its classes, and are not comparable with the Inception Scores of
the papers (ImageNet Inception-v3 on images).

Example:
    >>> clf = load_or_train_classifier("runs/cache/shape_classifier.pt")
    >>> probs = clf.predict_proba(samples)  # (N, P, 3) generated clouds -> (N, K)
    >>> class_scores(probs, ["chair"], clf.classes)["in_class"]
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from jaxtyping import Float
from torch import Tensor, nn

from gen3d.errors import InputError
from gen3d.metrics.inception_score import inception_score
from gen3d.metrics.point_fid import normalize_clouds, render_views
from gen3d.utils.fs import atomic_path, check_output_file
from gen3d.utils.progress import progress as progress_bar

__all__ = [
    "KINDS",
    "PointNetClassifier",
    "RenderCNNClassifier",
    "ShapeClassifier",
    "class_scores",
    "load_or_train_classifier",
    "train_shape_classifier",
]

KINDS = ("pointnet", "cnn")
FORMAT = "gen3d-shape-classifier"
VERSION = 1
SOURCE_POINTS = 2048  # surface samples drawn once per training shape; each step takes a random subset
LEARNING_RATE = 1e-3
MAX_YAW_DEG = 10.0  # augmentation: rotation about the up axis (y)
MAX_STRETCH = 0.1  # augmentation: per-axis scale in [1 - s, 1 + s]
JITTER = 0.005  # augmentation: Gaussian noise per point, in units of the unit box
SUBSET_SEED = 0  # the fixed subset of points kept by predict_proba when a cloud has more than ``points``

DEFAULTS: dict[str, Any] = {
    "per_class": 64,
    "heldout_per_class": 25,
    "points": 512,
    "steps": 400,
    "batch_size": 32,
    "seed": 0,
}
"""Default training settings of :func:`train_shape_classifier` (``kind`` and ``classes`` aside)."""


# ----------------------------------------------------------------------------------------------------
# Networks
# ----------------------------------------------------------------------------------------------------


class PointNetClassifier(nn.Module):
    """PointNet: a shared per-point MLP, a max-pool over the points, an MLP head to ``num_classes`` logits.

    Args:
        num_classes: K.
        widths: output widths of the per-point layers (each Linear + LayerNorm + ReLU).
        hidden: width of the head's hidden layer.
    """

    kind = "pointnet"

    def __init__(self, num_classes: int, widths: Sequence[int] = (64, 128, 256), hidden: int = 128):
        super().__init__()
        self.config = {"num_classes": int(num_classes), "widths": [int(w) for w in widths], "hidden": int(hidden)}
        layers: list[nn.Module] = []
        width = 3
        for w in widths:
            layers += [nn.Linear(width, w), nn.LayerNorm(w), nn.ReLU()]
            width = w
        self.point_mlp = nn.Sequential(*layers)
        self.head = nn.Sequential(
            nn.Linear(width, hidden), nn.LayerNorm(hidden), nn.ReLU(), nn.Dropout(0.3), nn.Linear(hidden, num_classes)
        )

    def prepare(self, clouds: Float[Tensor, "B P 3"]) -> Float[Tensor, "B P 3"]:
        """The network's input: each cloud normalised to the unit box (no gradient needed through it)."""
        return normalize_clouds(clouds.float())

    def classify(self, x: Float[Tensor, "B P 3"]) -> Float[Tensor, "B K"]:
        """Logits of prepared inputs."""
        features = self.point_mlp(x).amax(dim=1)  # (B, C): max-pool over the points
        return self.head(features)

    def forward(self, clouds: Float[Tensor, "B P 3"]) -> Float[Tensor, "B K"]:
        """Class logits of raw clouds."""
        return self.classify(self.prepare(clouds))


class RenderCNNClassifier(nn.Module):
    """A CNN on grey renders of each cloud (:func:`render_views`), its per-view logits averaged over the views.

    Args:
        num_classes: K.
        views: cameras per cloud (the P-FID cameras: evenly spaced azimuths, 30 degrees of elevation).
        size: render side in pixels.
        channels: output channels of the stride-2 convolutions (3 x 3, each followed by GroupNorm + ReLU).
    """

    kind = "cnn"

    def __init__(self, num_classes: int, views: int = 4, size: int = 64, channels: Sequence[int] = (16, 32, 64, 64)):
        super().__init__()
        if size % (2 ** len(channels)):
            raise InputError(f"size must be a multiple of {2 ** len(channels)}, got {size}")
        self.config = {
            "num_classes": int(num_classes),
            "views": int(views),
            "size": int(size),
            "channels": [int(c) for c in channels],
        }
        self.views, self.size = int(views), int(size)
        layers: list[nn.Module] = []
        width = 1
        for c in channels:
            layers += [nn.Conv2d(width, c, 3, stride=2, padding=1), nn.GroupNorm(min(8, c), c), nn.ReLU()]
            width = c
        self.convs = nn.Sequential(*layers)
        side = size // 2 ** len(channels)
        self.head = nn.Sequential(nn.Flatten(), nn.Dropout(0.3), nn.Linear(width * side * side, num_classes))

    @torch.no_grad()
    def prepare(self, clouds: Float[Tensor, "B P 3"]) -> Float[Tensor, "BV 1 S S"]:
        """The network's input: grey renders, cloud-major, 0 on the background and up to 1 on the shape."""
        b = clouds.shape[0]
        pts = clouds.detach().float().cpu()
        if b == 1:  # render_views takes at least two clouds
            pts = pts.expand(2, -1, -1)
        images = render_views(pts, self.views, self.size)[: b * self.views, :, :, 0]  # (BV, S, S) uint8, grey
        return (1.0 - torch.from_numpy(images).float() / 255.0)[:, None].to(clouds.device)

    def classify(self, x: Float[Tensor, "BV 1 S S"]) -> Float[Tensor, "B K"]:
        """Logits of prepared inputs: the mean over each cloud's views."""
        logits = self.head(self.convs(x))  # (BV, K)
        return logits.view(-1, self.views, logits.shape[-1]).mean(dim=1)

    def forward(self, clouds: Float[Tensor, "B P 3"]) -> Float[Tensor, "B K"]:
        """Class logits of raw clouds."""
        return self.classify(self.prepare(clouds))


_NETWORKS: dict[str, type[nn.Module]] = {"pointnet": PointNetClassifier, "cnn": RenderCNNClassifier}


def _build_network(kind: str, num_classes: int, config: dict[str, Any] | None = None) -> nn.Module:
    config = dict(config or {})
    config.pop("num_classes", None)
    return _NETWORKS[kind](num_classes, **config)


# ----------------------------------------------------------------------------------------------------
# Trained classifier
# ----------------------------------------------------------------------------------------------------


def _check_clouds(clouds: Any, name: str = "clouds") -> Tensor:
    arr = clouds.detach().cpu().numpy() if isinstance(clouds, torch.Tensor) else np.asarray(clouds)
    if not np.issubdtype(arr.dtype, np.number) or np.issubdtype(arr.dtype, np.complexfloating):
        raise InputError(f"{name} must hold real numbers, got dtype {arr.dtype}")
    if arr.ndim != 3 or arr.shape[-1] != 3:
        raise InputError(f"{name} must be an array of shape (N, P, 3), got {arr.shape}")
    if arr.shape[0] < 1 or arr.shape[1] < 3:
        raise InputError(f"{name} need at least 1 cloud of at least 3 points, got {arr.shape}")
    if not np.isfinite(arr).all():
        raise InputError(f"{name} contain NaN or Inf")
    return torch.from_numpy(arr.astype(np.float32))


@dataclass(eq=False)
class ShapeClassifier:
    """A trained shape classifier and how it was trained.

    Attributes:
        network: the :class:`PointNetClassifier` or :class:`RenderCNNClassifier` (on the CPU, in eval mode).
        kind: ``"pointnet"`` or ``"cnn"``.
        classes: class names, in the order of the network's outputs.
        accuracy: top-1 accuracy on the held-out procedural shapes, in [0, 1].
        per_class: training shapes per class (indices ``0 .. per_class - 1``).
        heldout_per_class: held-out shapes per class (the next indices).
        points: points per cloud seen in training; :meth:`predict_proba` keeps as many.
        steps: Adam steps.
        batch_size: clouds per step.
        seed: seed of the procedural shapes, the initialisation and the training batches.
        train_seconds: wall-clock training time, data included (information only).
    """

    network: nn.Module
    kind: str
    classes: list[str]
    accuracy: float
    per_class: int
    heldout_per_class: int
    points: int
    steps: int
    batch_size: int
    seed: int
    train_seconds: float = 0.0

    @property
    def settings(self) -> dict[str, Any]:
        """Everything that determines the trained weights, as plain types (what the cache compares)."""
        return {
            "kind": self.kind,
            "classes": list(self.classes),
            "per_class": self.per_class,
            "heldout_per_class": self.heldout_per_class,
            "points": self.points,
            "steps": self.steps,
            "batch_size": self.batch_size,
            "seed": self.seed,
        }

    @torch.no_grad()
    def predict_proba(self, clouds: Any, batch_size: int = 64) -> np.ndarray:
        """Class probabilities of point clouds.

        A cloud with more than :attr:`points` points is classified on a fixed random subset of that many points
        (the same indices for every cloud of a call); a cloud with fewer is classified whole.

        Args:
            clouds: (N, P, 3) array or tensor, N >= 1, P >= 3, in any placement and scale (each is normalised).
            batch_size: clouds per forward pass.

        Returns:
            (N, K) float64 probabilities, columns in the order of :attr:`classes`.

        Raises:
            InputError: not (N, P, 3), non-finite values, or a bad batch size.
        """
        x = _check_clouds(clouds)
        if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
            raise InputError(f"batch_size must be a positive integer, got {batch_size!r}")
        if x.shape[1] > self.points:
            keep = np.random.default_rng(SUBSET_SEED).choice(x.shape[1], self.points, replace=False)
            x = x[:, torch.from_numpy(np.sort(keep))]
        self.network.eval()
        out = [
            torch.softmax(self.network(x[i : i + batch_size]).double(), dim=-1)
            for i in range(0, x.shape[0], batch_size)
        ]
        return torch.cat(out).numpy()

    def save(self, path: str | os.PathLike) -> Path:
        """Write the classifier to ``path`` atomically: a dict of the state dict and plain-type metadata."""
        state = {
            "format": FORMAT,
            "version": VERSION,
            "settings": self.settings,
            "accuracy": float(self.accuracy),
            "train_seconds": float(self.train_seconds),
            "config": self.network.config,
            "state_dict": {k: v.detach().cpu() for k, v in self.network.state_dict().items()},
        }
        with atomic_path(path) as tmp:
            torch.save(state, tmp)
        return Path(path)

    @classmethod
    def load(cls, path: str | os.PathLike) -> ShapeClassifier:
        """Read a classifier written by :meth:`save`.

        Raises:
            InputError: no such file, or the file is not a gen3d shape classifier of this version.
        """
        p = Path(path)
        if not p.is_file():
            raise InputError("no such shape classifier file", p)
        try:
            state = torch.load(p, map_location="cpu", weights_only=True)
        except Exception as exc:
            raise InputError(f"not a gen3d shape classifier (unreadable: {type(exc).__name__})", p) from exc
        if not isinstance(state, dict) or state.get("format") != FORMAT:
            raise InputError("not a gen3d shape classifier", p)
        if state.get("version") != VERSION:
            raise InputError(f"shape classifier of version {state.get('version')!r}, expected {VERSION}", p)
        try:
            settings = dict(state["settings"])
            kind, classes = settings.pop("kind"), [str(c) for c in settings.pop("classes")]
            if kind not in KINDS:
                raise ValueError(f"unknown kind {kind!r}")
            network = _build_network(kind, len(classes), state["config"])
            network.load_state_dict(state["state_dict"])
            clf = cls(
                network=network.eval(),
                kind=kind,
                classes=classes,
                accuracy=float(state["accuracy"]),
                train_seconds=float(state.get("train_seconds", 0.0)),
                **{k: int(settings[k]) for k in DEFAULTS},
            )
        except (KeyError, TypeError, ValueError, RuntimeError) as exc:
            raise InputError(f"corrupt gen3d shape classifier ({type(exc).__name__}: {exc})", p) from exc
        return clf


# ----------------------------------------------------------------------------------------------------
# Training
# ----------------------------------------------------------------------------------------------------


def _check_positive(name: str, value: Any, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise InputError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


def _resolve_settings(kind: str, classes: Sequence[str] | str | None, settings: dict[str, Any]) -> dict[str, Any]:
    """The full, validated settings dict (defaults filled in), as stored in a classifier file."""
    from gen3d.data.shapes import check_classes

    if kind not in KINDS:
        raise InputError(f"kind must be one of {', '.join(KINDS)}, got {kind!r}")
    unknown = sorted(set(settings) - set(DEFAULTS))
    if unknown:
        raise InputError(f"unknown classifier setting {', '.join(unknown)}; expected {', '.join(DEFAULTS)}")
    names = check_classes(classes)
    if len(names) < 2:
        raise InputError(f"a classifier needs at least 2 classes, got {names}")
    full = {**DEFAULTS, **settings}
    resolved: dict[str, Any] = {"kind": kind, "classes": names}
    for name in DEFAULTS:
        resolved[name] = _check_positive(name, full[name], minimum=0 if name == "seed" else 1)
    if resolved["points"] < 3:
        raise InputError(f"points must be at least 3, got {resolved['points']}")
    if resolved["points"] > SOURCE_POINTS:
        raise InputError(f"points must be at most {SOURCE_POINTS}, got {resolved['points']}")
    return resolved


def _augment(clouds: Tensor, points: int, g: torch.Generator) -> Tensor:
    """Random subsets of ``points`` points, a small yaw, per-axis stretch and jitter: (B, S, 3) -> (B, points, 3)."""
    b, s, _ = clouds.shape
    idx = torch.rand(b, s, generator=g).argsort(dim=1)[:, :points]  # (B, points): a subset without repetition
    x = clouds.gather(1, idx[..., None].expand(-1, -1, 3))
    yaw = (torch.rand(b, generator=g) * 2 - 1) * math.radians(MAX_YAW_DEG)
    cos, sin, zero, one = yaw.cos(), yaw.sin(), torch.zeros(b), torch.ones(b)
    rot = torch.stack([cos, zero, sin, zero, one, zero, -sin, zero, cos], dim=-1).view(b, 3, 3)  # about +y
    stretch = 1 + (torch.rand(b, 1, 3, generator=g) * 2 - 1) * MAX_STRETCH
    return (x @ rot.transpose(1, 2)) * stretch + JITTER * torch.randn(x.shape, generator=g)


def _procedural_clouds(classes: Sequence[str], indices: range, seed: int, points: int) -> Tensor:
    """(len(classes) * len(indices), points, 3) surface samples, class-major."""
    from gen3d.data.shapes import shape_points

    return torch.from_numpy(np.stack([shape_points(c, i, seed, points) for c in classes for i in indices]))


def train_shape_classifier(
    kind: str = "pointnet",
    classes: Sequence[str] | str | None = None,
    per_class: int = DEFAULTS["per_class"],
    heldout_per_class: int = DEFAULTS["heldout_per_class"],
    points: int = DEFAULTS["points"],
    steps: int = DEFAULTS["steps"],
    batch_size: int = DEFAULTS["batch_size"],
    seed: int = DEFAULTS["seed"],
    progress: bool = True,
) -> ShapeClassifier:
    """Train a shape classifier on procedural shapes and measure its held-out accuracy.

    Training shapes are the procedural shapes ``0 .. per_class - 1`` of each class (dataset seed ``seed``),
    each sampled once with 2048 surface points; every step draws ``batch_size`` of them at random and augments
    each (a random subset of ``points`` points, a rotation of up to 10 degrees about the up axis, a per-axis
    stretch of up to 10 %, jitter of 0.005). Adam (lr 1e-3, cosine decay) runs for exactly ``steps`` steps;
    the result depends on ``seed`` only. The accuracy is measured on the next ``heldout_per_class`` shapes of
    each class, sampled with ``points`` points.

    Args:
        kind: ``"pointnet"`` or ``"cnn"``.
        classes: procedural class names (a list or comma-separated string); None: every procedural class.
        per_class: training shapes per class.
        heldout_per_class: held-out shapes per class.
        points: points per cloud (at most 2048).
        steps: optimisation steps.
        batch_size: clouds per step.
        seed: seed of the shapes, the initial weights and the batches.
        progress: show a progress bar over the steps (on a terminal only).

    Returns:
        The trained :class:`ShapeClassifier` (network in eval mode, on the CPU).

    Raises:
        InputError: unknown kind or class, fewer than 2 classes, or a non-positive setting.
    """
    settings = _resolve_settings(
        kind,
        classes,
        {
            "per_class": per_class,
            "heldout_per_class": heldout_per_class,
            "points": points,
            "steps": steps,
            "batch_size": batch_size,
            "seed": seed,
        },
    )
    names, n, seed = settings["classes"], settings["per_class"], settings["seed"]
    start = time.perf_counter()
    train = _procedural_clouds(names, range(n), seed, SOURCE_POINTS)  # (K * n, 2048, 3)
    labels = torch.arange(len(names)).repeat_interleave(n)  # (K * n,)
    g = torch.Generator().manual_seed(seed)
    with torch.random.fork_rng(devices=[]):  # initial weights and dropout; the caller's random state is kept
        torch.manual_seed(seed)
        network = _build_network(kind, len(names))
        optimizer = torch.optim.Adam(network.parameters(), lr=LEARNING_RATE)
        schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=settings["steps"])
        network.train()
        bar = progress_bar(range(settings["steps"]), f"training {kind} classifier", disable=None if progress else True)
        for _ in bar:
            batch = torch.randint(len(train), (settings["batch_size"],), generator=g)
            x = network.prepare(_augment(train[batch], settings["points"], g))
            loss = F.cross_entropy(network.classify(x), labels[batch])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            schedule.step()
    network.eval()
    clf = ShapeClassifier(network=network, accuracy=0.0, **settings)
    heldout = _procedural_clouds(names, range(n, n + settings["heldout_per_class"]), seed, settings["points"])
    predicted = clf.predict_proba(heldout).argmax(axis=1)
    expected = np.repeat(np.arange(len(names)), settings["heldout_per_class"])
    clf.accuracy = float((predicted == expected).mean())
    clf.train_seconds = time.perf_counter() - start
    return clf


def load_or_train_classifier(
    cache_path: str | os.PathLike,
    kind: str = "pointnet",
    classes: Sequence[str] | str | None = None,
    progress: bool = True,
    **settings: Any,
) -> ShapeClassifier:
    """The classifier cached at ``cache_path`` if it was trained with these settings; else train and cache it.

    Args:
        cache_path: the classifier file. A missing file, one trained with other settings, or one that is not a
            readable classifier is (re)written atomically after training.
        kind: ``"pointnet"`` or ``"cnn"``.
        classes: procedural class names; None: every procedural class.
        progress: show a progress bar while training.
        **settings: ``per_class``, ``heldout_per_class``, ``points``, ``steps``, ``batch_size``, ``seed`` (the
            defaults of :func:`train_shape_classifier` for those not given).

    Returns:
        The classifier.

    Raises:
        InputError: bad settings, or ``cache_path`` cannot be written.
    """
    wanted = _resolve_settings(kind, classes, settings)
    path = Path(cache_path)
    if path.is_file():
        try:
            cached = ShapeClassifier.load(path)
        except InputError:
            cached = None
        if cached is not None and cached.settings == wanted:
            return cached
    check_output_file(path)  # before training, not after
    wanted.pop("kind")
    clf = train_shape_classifier(kind, progress=progress, **wanted)
    clf.save(path)
    return clf


# ----------------------------------------------------------------------------------------------------
# Scores
# ----------------------------------------------------------------------------------------------------


def _check_names(names: Any, what: str) -> list[str]:
    if isinstance(names, str) or not isinstance(names, (Sequence, np.ndarray)):
        raise InputError(f"{what} must be a sequence of class names, got {names!r}")
    out = [str(c) if isinstance(c, np.str_) else c for c in names]
    if not out or not all(isinstance(c, str) for c in out):
        raise InputError(f"{what} must be a non-empty sequence of class names, got {out!r}")
    if len(set(out)) != len(out):
        raise InputError(f"{what} has duplicates: {', '.join(out)}")
    return out


def class_scores(
    probs: Any, ref_classes: Sequence[str] | None, classes: Sequence[str], splits: int = 1
) -> dict[str, Any]:
    """Class IS, class coverage and in-class rate of generated samples from a shape classifier's predictions.

    These are gen3d's own scores (of its own classifier and classes), not comparable with the papers' IS.

    Args:
        probs: (N, K) class probabilities of the generated samples (e.g. :meth:`ShapeClassifier.predict_proba`).
        ref_classes: the classes present in the reference set (None: all of ``classes``).
        classes: the classifier's class names, in the order of the columns of ``probs``.
        splits: chunks of the Inception Score (see :func:`gen3d.metrics.inception_score.inception_score`);
            1 scores the whole set at once. N >= splits.

    Returns:
        A dict with

        - ``class_IS``, ``class_IS_std``: ``exp(mean_x KL(p(y|x) || p(y)))`` (Salimans et al.), mean and
          population std over the chunks; in [1, K];
        - ``class_coverage``: fraction of ``ref_classes`` that are the top prediction of at least one sample;
        - ``in_class``: fraction of samples whose top prediction is one of ``ref_classes``;
        - ``predicted_counts``: ``{class: number of samples predicted as it}`` over all ``classes``;
        - ``n_samples``: N.

    Raises:
        InputError: ``probs`` not (N, K) probabilities with K = len(classes), duplicate or unknown class names,
            or N < splits.
    """
    names = _check_names(classes, "classes")
    refs = names if ref_classes is None else _check_names(ref_classes, "ref_classes")
    unknown = [c for c in refs if c not in names]
    if unknown:
        raise InputError(f"unknown reference class {', '.join(map(repr, unknown))}; classes: {', '.join(names)}")
    arr = probs.detach().cpu().numpy() if isinstance(probs, torch.Tensor) else np.asarray(probs)
    if arr.ndim != 2 or arr.shape[1] != len(names):
        raise InputError(f"probabilities must be an array of shape (N, K = {len(names)} classes), got {arr.shape}")
    if arr.shape[0] < 1:
        raise InputError("no probabilities given (N = 0)")
    mean, std = inception_score(arr, splits=splits)  # validates values, row sums and splits
    top = np.asarray(arr, dtype=np.float64).argmax(axis=1)
    counts = np.bincount(top, minlength=len(names))
    ref_idx = np.array([names.index(c) for c in refs])
    return {
        "class_IS": mean,
        "class_IS_std": std,
        "class_coverage": float((counts[ref_idx] > 0).mean()),
        "in_class": float(np.isin(top, ref_idx).mean()),
        "predicted_counts": {c: int(k) for c, k in zip(names, counts, strict=True)},
        "n_samples": int(arr.shape[0]),
    }
