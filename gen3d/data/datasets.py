"""torch Datasets of point clouds: ShapeNetCore.v2.PC15k, the procedural shapes, ModelNet40 and mesh folders.

Point-cloud items are dicts::

    points       (tr_sample_size, 3) float32  training points (from the first 2/3 of each cloud)
    test_points  (te_sample_size, 3) float32  held-out points (from the last 1/3)      [PC15k-style sets]
    idx          int                          item index
    class        str                          class name
    class_idx    int                          index of the class in ``dataset.classes``
    id           str                          shape id (file stem)
    mean         (1, 3) float32               ``points * std + mean`` restores the original units
    std          (1, 1) float32

PointFlow semantics for PC15k: with 15000 points per cloud, the training points are drawn from the first
10000 and the test points from the last 5000; training draws a fresh random subset at every access
(``random_subsample``), evaluation takes the first ``te_sample_size`` points so it is deterministic.
Random draws use torch's generator, which DataLoader seeds differently in every worker.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from gen3d.data import pc15k, shapes
from gen3d.data.meshes import MESH_SUFFIXES, list_mesh_files, load_mesh
from gen3d.data.modelnet import modelnet_files
from gen3d.data.normalize import GlobalNorm, box_stats, check_mode
from gen3d.data.pointsets import PointCloudSet
from gen3d.data.sampling import sample_mesh
from gen3d.errors import InputError


def _subsample(n_available: int, k: int, random: bool, replacement: bool) -> torch.Tensor:
    """Indices of k points among n: random (with or without replacement) or the first k."""
    if not random:
        return torch.arange(k)
    if replacement:
        return torch.randint(n_available, (k,))
    return torch.randperm(n_available)[:k]


class PointCloudDataset(Dataset):
    """Clouds held in memory, normalised once, subsampled per access.

    Args:
        data: the clouds (N, P, 3) with class names and ids.
        tr_sample_size: training points per item, drawn from the first ``round(P * 2/3)`` points.
        te_sample_size: test points per item, drawn from the remaining points.
        normalize: "global" (dataset mean/std, PointFlow), "box" (per shape into [-0.5, 0.5]) or "none".
        norm: the :class:`GlobalNorm` to use with "global" (pass the train split's to val/test sets);
            fitted on ``data`` (all P points of every cloud) when None.
        random_subsample: draw random points at every access (training) instead of the first ones.
        replacement: draw with replacement (PointFlow's ``np.random.choice`` default) or without.
    """

    def __init__(
        self,
        data: PointCloudSet,
        tr_sample_size: int = 2048,
        te_sample_size: int = 2048,
        normalize: str = "global",
        norm: GlobalNorm | None = None,
        random_subsample: bool = False,
        replacement: bool = False,
    ):
        check_mode(normalize)
        n, p, _ = data.points.shape
        self.n_train_points = round(p * pc15k.TRAIN_POINTS / pc15k.PC15K_POINTS)  # 10000 of 15000
        self.n_test_points = p - self.n_train_points
        for name, wanted, have, part in (
            ("tr_sample_size", tr_sample_size, self.n_train_points, "first"),
            ("te_sample_size", te_sample_size, self.n_test_points, "last"),
        ):
            if wanted < 1 or wanted > have:
                src = data.sources[0] or "the clouds"
                raise InputError(
                    f"{name}={wanted} points requested, but clouds of {p} points have {have} "
                    f"in their {part} part ({src})"
                )
        self.data = data
        self.tr_sample_size, self.te_sample_size = tr_sample_size, te_sample_size
        self.normalize, self.random_subsample, self.replacement = normalize, random_subsample, replacement
        self.classes = data.class_names
        self._class_idx = {c: i for i, c in enumerate(self.classes)}
        points = data.points.astype(np.float64)  # (N, P, 3)
        if normalize == "global":
            self.norm: GlobalNorm | None = norm if norm is not None else GlobalNorm.fit(points)
            self.mean = np.broadcast_to(self.norm.mean.reshape(1, 1, 3), (n, 1, 3))  # (N, 1, 3)
            self.std = np.broadcast_to(self.norm.std.reshape(1, 1, 1), (n, 1, 1))  # (N, 1, 1)
        elif normalize == "box":
            self.norm = None
            self.mean, self.std = box_stats(points)  # (N, 1, 3), (N, 1, 1)
        else:
            self.norm = None
            self.mean, self.std = np.zeros((n, 1, 3)), np.ones((n, 1, 1))
        self.points = ((points - self.mean) / self.std).astype(np.float32)  # (N, P, 3)
        self.mean = np.ascontiguousarray(self.mean, dtype=np.float32)
        self.std = np.ascontiguousarray(self.std, dtype=np.float32)

    def __len__(self) -> int:
        return len(self.points)

    def __getitem__(self, idx: int) -> dict[str, Any]:
        cloud = torch.from_numpy(self.points[idx])  # (P, 3)
        tr = _subsample(self.n_train_points, self.tr_sample_size, self.random_subsample, self.replacement)
        te = _subsample(self.n_test_points, self.te_sample_size, self.random_subsample, self.replacement)
        name = self.data.classes[idx]
        return {
            "points": cloud[: self.n_train_points][tr],  # (tr_sample_size, 3)
            "test_points": cloud[self.n_train_points :][te],  # (te_sample_size, 3)
            "idx": idx,
            "class": name,
            "class_idx": self._class_idx[name],
            "id": self.data.ids[idx],
            "mean": torch.from_numpy(self.mean[idx]),  # (1, 3)
            "std": torch.from_numpy(self.std[idx]),  # (1, 1)
        }

    def all_points(self, normalized: bool = True) -> np.ndarray:
        """Every cloud with all its points, (N, P, 3) float32, normalised or in original units."""
        if normalized:
            return self.points
        return (self.points * self.std + self.mean).astype(np.float32)


class PC15kDataset(PointCloudDataset):
    """ShapeNetCore.v2.PC15k (or any folder in its layout) as PointFlow reads it.

    Args:
        root: dataset root, ``<root>/<class>/<split>/<id>.npy``.
        classes: class names or synset ids (None or "all": every class folder).
        split: "train", "val" or "test".
        tr_sample_size: training points per item (from the first 10000 of 15000).
        te_sample_size: test points per item (from the last 5000).
        normalize: "global", "box" or "none".
        norm: the train split's :class:`GlobalNorm` for val/test sets (fitted on this split when None).
        random_subsample: random points per access; defaults to True for the train split only.
        replacement: sample with replacement when random.
    """

    def __init__(
        self,
        root: str | os.PathLike,
        classes: str | Sequence[str] | None = None,
        split: str = "train",
        tr_sample_size: int = 2048,
        te_sample_size: int = 2048,
        normalize: str = "global",
        norm: GlobalNorm | None = None,
        random_subsample: bool | None = None,
        replacement: bool = False,
    ):
        data = pc15k.read_pc15k(root, classes, split)
        self.root, self.split = Path(root), split
        super().__init__(
            data,
            tr_sample_size,
            te_sample_size,
            normalize,
            norm,
            split == "train" if random_subsample is None else random_subsample,
            replacement,
        )


class ProceduralDataset(PointCloudDataset):
    """The procedural shapes of one split, generated in memory (identical to ``gen3d data shapes`` files).

    Args:
        classes: procedural class names (None: all).
        split: "train", "val" or "test".
        per_class: shapes per class over all splits.
        seed: dataset seed.
        points: points per shape (15000 for the PC15k protocol).
        fractions: train/val/test fractions.
        **kwargs: :class:`PointCloudDataset` options (sample sizes, normalize, norm, ...).
    """

    def __init__(
        self,
        classes: str | Sequence[str] | None = None,
        split: str = "train",
        per_class: int = 20,
        seed: int = 0,
        points: int = shapes.DEFAULT_POINTS,
        fractions: Sequence[float] = shapes.DEFAULT_SPLIT,
        **kwargs: Any,
    ):
        data = shapes.generate_split(classes, split, per_class, seed, points, fractions)
        self.split = split
        kwargs.setdefault("random_subsample", split == "train")
        super().__init__(data, **kwargs)


class _MeshPointsDataset(Dataset):
    """Meshes read and surface-sampled at every access."""

    def __init__(
        self,
        files: list[Path],
        labels: list[str],
        num_points: int,
        normalize: str,
        random_subsample: bool,
        seed: int,
        root: Path,
    ):
        check_mode(normalize)
        if normalize == "global":
            raise InputError(
                "mesh datasets normalise per shape ('box') or not at all ('none'); "
                "for 'global' convert them to the PC15k layout first"
            )
        if num_points < 1:
            raise InputError(f"num_points must be at least 1, got {num_points}")
        self.files, self.labels, self.root = files, labels, root
        self.num_points, self.normalize, self.random_subsample, self.seed = (
            num_points,
            normalize,
            random_subsample,
            seed,
        )
        self.classes = list(dict.fromkeys(labels))
        self._class_idx = {c: i for i, c in enumerate(self.classes)}

    def __len__(self) -> int:
        return len(self.files)

    def _rng(self, idx: int) -> np.random.Generator:
        if self.random_subsample:  # a fresh draw each access, from torch's (per-worker) generator
            return np.random.default_rng(int(torch.randint(0, 2**62, (1,)).item()))
        return np.random.default_rng(np.random.SeedSequence([self.seed, idx]))

    def __getitem__(self, idx: int) -> dict[str, Any]:
        path = self.files[idx]
        points = sample_mesh(load_mesh(path), self.num_points, self._rng(idx), source=path).astype(np.float64)  # (P, 3)
        if self.normalize == "box":
            mean, std = box_stats(points)  # (1, 3), (1, 1)
        else:
            mean, std = np.zeros((1, 3)), np.ones((1, 1))
        name = self.labels[idx]
        return {
            "points": torch.from_numpy(((points - mean) / std).astype(np.float32)),  # (P, 3)
            "idx": idx,
            "class": name,
            "class_idx": self._class_idx[name],
            "id": path.stem,
            "path": str(path),
            "mean": torch.from_numpy(mean.astype(np.float32)),  # (1, 3)
            "std": torch.from_numpy(std.astype(np.float32)),  # (1, 1)
        }


class ModelNet40Dataset(_MeshPointsDataset):
    """ModelNet40/10 meshes (``<root>/<class>/{train,test}/*.off``) sampled to points at every access.

    Args:
        root: the ModelNet folder.
        classes: class names (None: every class folder).
        split: "train" or "test".
        num_points: points per item.
        normalize: "box" (per shape into [-0.5, 0.5]) or "none".
        random_subsample: new random samples at every access; defaults to True for "train". Otherwise item
            ``i`` always gets the same points (seeded by ``seed`` and ``i``).
        seed: seed of the deterministic samples.
    """

    def __init__(
        self,
        root: str | os.PathLike,
        classes: str | Sequence[str] | None = None,
        split: str = "train",
        num_points: int = 2048,
        normalize: str = "box",
        random_subsample: bool | None = None,
        seed: int = 0,
    ):
        pairs = modelnet_files(root, classes, split)
        self.split = split
        super().__init__(
            [f for _, f in pairs],
            [c for c, _ in pairs],
            num_points,
            normalize,
            split == "train" if random_subsample is None else random_subsample,
            seed,
            Path(root),
        )


class MeshFolderDataset(_MeshPointsDataset):
    """Every mesh under a folder (recursively; .obj .ply .off .stl .glb .gltf), sampled to points.

    The class of an item is the name of its parent folder relative to ``root`` (``"."`` at the top level).

    Args:
        root: the folder.
        num_points: points per item.
        normalize: "box" or "none".
        random_subsample: new random samples at every access (default: deterministic per item).
        seed: seed of the deterministic samples.
        suffixes: accepted mesh suffixes.
    """

    def __init__(
        self,
        root: str | os.PathLike,
        num_points: int = 2048,
        normalize: str = "box",
        random_subsample: bool = False,
        seed: int = 0,
        suffixes: tuple[str, ...] = MESH_SUFFIXES,
    ):
        r = Path(root)
        files = list_mesh_files(r, suffixes)
        labels = [f.parent.relative_to(r).as_posix() for f in files]
        super().__init__(files, labels, num_points, normalize, random_subsample, seed, r)
