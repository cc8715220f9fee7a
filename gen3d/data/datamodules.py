"""Lightning DataModules of every model: point clouds (procedural or PC15k layout; LION, PVD) and training images
(GRAF).

This is the only module of :mod:`gen3d.data` that imports Lightning.
"""

from __future__ import annotations

import math
import os
import sys
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from lightning.pytorch import LightningDataModule
from lightning.pytorch.utilities.rank_zero import rank_zero_only
from torch.utils.data import DataLoader

from gen3d.data import pc15k, shapes
from gen3d.data.datasets import PC15kDataset, PointCloudDataset, ProceduralDataset
from gen3d.data.images import ImageFolderDataset
from gen3d.data.normalize import GlobalNorm, check_mode
from gen3d.errors import InputError

PROCEDURAL = "procedural"


class PointCloudDataModule(LightningDataModule):
    """Train/val/test point clouds with PointFlow's protocol (global statistics from the train split).

    Args:
        root: a dataset root in the PC15k layout, or None / ``"procedural"`` to generate the built-in
            procedural shapes in memory.
        classes: class names (None: all classes; for PC15k also synset ids).
        tr_sample_size: training points per item.
        te_sample_size: test points per item.
        batch_size: clouds per batch.
        num_workers: DataLoader workers.
        normalize: "global" (fitted on the train split, reused for val/test), "box" or "none".
        per_class: procedural only: shapes per class over all splits.
        seed: procedural only: dataset seed.
        points: procedural only: points per generated shape.
        split: procedural only: train/val/test fractions.
        replacement: random training subsets drawn with replacement (PointFlow) or without.
        drop_last: drop the last incomplete training batch.

    Small datasets: with fewer training shapes (per device) than ``batch_size`` the training batches are capped
    at the split's size, with a one-line notice, so every epoch has at least one batch even with ``drop_last``.
    An empty (or, in the PC15k layout, missing) val or test split gives no loader for it: validation is
    skipped with a notice. An empty train split is an error.
    """

    def __init__(
        self,
        root: str | os.PathLike | None = None,
        classes: str | Sequence[str] | None = None,
        tr_sample_size: int = 2048,
        te_sample_size: int = 2048,
        batch_size: int = 16,
        num_workers: int = 0,
        normalize: str = "global",
        per_class: int = 20,
        seed: int = 0,
        points: int = shapes.DEFAULT_POINTS,
        split: str | Sequence[float] = shapes.DEFAULT_SPLIT,
        replacement: bool = False,
        drop_last: bool = False,
    ):
        super().__init__()
        self.save_hyperparameters()
        check_mode(normalize)
        if batch_size < 1 or num_workers < 0:
            raise InputError(f"batch_size must be >= 1 and num_workers >= 0, got {batch_size} and {num_workers}")
        self.root = None if root is None or str(root) == PROCEDURAL else os.fspath(root)
        self.classes = classes
        self.tr_sample_size, self.te_sample_size = tr_sample_size, te_sample_size
        self.batch_size, self.num_workers = batch_size, num_workers
        self.normalize = normalize
        self.per_class, self.seed, self.points = per_class, seed, points
        self.split = shapes.parse_split(split)
        self.replacement, self.drop_last = replacement, drop_last
        self._datasets: dict[str, PointCloudDataset] = {}
        self._noticed: set[str] = set()

    def split_size(self, split: str) -> int:
        """Shapes in ``split`` (counted without reading a cloud; 0 for a missing split folder)."""
        if self.root is None:
            per_class = shapes.split_counts(self.per_class, self.split)[shapes.SPLITS.index(split)]
            return per_class * len(shapes.check_classes(self.classes))
        folders = self._class_folders()
        return sum(len(list((Path(self.root) / f / split).glob("*.npy"))) for f in folders)

    def _class_folders(self) -> list[str]:
        """The class folders under ``root``; a folder of mesh files gets a hint to import it first."""
        from gen3d.data.importer import mesh_folder_hint

        if not pc15k.available_classes(self.root):
            hint = mesh_folder_hint(self.root)
            if hint:
                raise InputError(hint, self.root)
        return pc15k.resolve_classes(self.root, self.classes)

    def _notice(self, key: str, message: str) -> None:
        """Print ``message`` on stderr once per ``key`` (on the first process only)."""
        if key not in self._noticed and rank_zero_only.rank == 0:
            print(f"gen3d data: {message}", file=sys.stderr, flush=True)
        self._noticed.add(key)

    def _make(self, split: str, norm: GlobalNorm | None) -> PointCloudDataset:
        common: dict[str, Any] = {
            "tr_sample_size": self.tr_sample_size,
            "te_sample_size": self.te_sample_size,
            "normalize": self.normalize,
            "norm": norm,
            "random_subsample": split == "train",
            "replacement": self.replacement,
        }
        if self.root is None:
            return ProceduralDataset(self.classes, split, self.per_class, self.seed, self.points, self.split, **common)
        self._class_folders()
        return PC15kDataset(self.root, self.classes, split, **common)

    def dataset(self, split: str) -> PointCloudDataset:
        """The dataset of ``split`` ("train", "val", "test"); built on first use, normalised with the train
        split's statistics."""
        if split not in self._datasets:
            norm = None if split == "train" else self.dataset("train").norm
            self._datasets[split] = self._make(split, norm)
        return self._datasets[split]

    @property
    def norm(self) -> GlobalNorm | None:
        """The global normalisation fitted on the train split (None unless ``normalize="global"``)."""
        return self.dataset("train").norm

    def setup(self, stage: str | None = None) -> None:
        wanted = {"fit": ("train", "val"), "validate": ("val",), "test": ("test",), "predict": ("test",)}
        for split in wanted.get(stage or "", ("train", "val", "test")):
            if split == "train" or self.split_size(split) > 0:
                self.dataset(split)

    def train_batch_size(self) -> int:
        """The training batch size: ``batch_size``, capped at the train split's shapes per device."""
        world = self.trainer.world_size if self.trainer is not None else 1
        per_device = math.ceil(len(self.dataset("train")) / max(world, 1))
        if per_device >= self.batch_size:
            return self.batch_size
        self._notice(
            "batch",
            f"the train split has {per_device} shapes per device, fewer than batch_size={self.batch_size}; "
            f"training with batches of {per_device}",
        )
        return per_device

    def _loader(self, split: str, shuffle: bool) -> DataLoader | list:
        if not shuffle and self.split_size(split) == 0:
            loop = {"val": "validation", "test": "testing"}[split]
            self._notice(split, f"the {split} split holds no shapes; {loop} is skipped")
            warnings.filterwarnings("ignore", message=r"Total length of `list` across ranks is zero.*")
            return []
        return DataLoader(
            self.dataset(split),
            batch_size=self.train_batch_size() if shuffle else self.batch_size,
            shuffle=shuffle,
            num_workers=self.num_workers,
            drop_last=self.drop_last and shuffle,
            persistent_workers=self.num_workers > 0,
        )

    def train_dataloader(self) -> DataLoader:
        return self._loader("train", shuffle=True)

    def val_dataloader(self) -> DataLoader | list:
        """The val loader, or an empty list (no validation) when the val split holds no shapes."""
        return self._loader("val", shuffle=False)

    def test_dataloader(self) -> DataLoader | list:
        """The test loader, or an empty list when the test split holds no shapes."""
        return self._loader("test", shuffle=False)


class ImageDataModule(LightningDataModule):
    """An image folder for GAN training (train loader only: GANs have no validation split).

    Args:
        root: folder of PNG/JPEG images (recursive).
        size: image side in pixels.
        batch_size: images per batch.
        num_workers: DataLoader workers.
        center_crop: side of a centre square cut out before resizing (None: none).
        hflip: random horizontal flips.
        drop_last: drop the last incomplete batch.
    """

    def __init__(
        self,
        root: str | os.PathLike,
        size: int = 64,
        batch_size: int = 16,
        num_workers: int = 0,
        center_crop: int | None = None,
        hflip: bool = False,
        drop_last: bool = False,
    ):
        super().__init__()
        self.save_hyperparameters()
        if batch_size < 1 or num_workers < 0:
            raise InputError(f"batch_size must be >= 1 and num_workers >= 0, got {batch_size} and {num_workers}")
        self.root, self.size = os.fspath(root), size
        self.batch_size, self.num_workers = batch_size, num_workers
        self.center_crop, self.hflip, self.drop_last = center_crop, hflip, drop_last
        self._dataset: ImageFolderDataset | None = None

    @property
    def dataset(self) -> ImageFolderDataset:
        """The image dataset (built on first use)."""
        if self._dataset is None:
            self._dataset = ImageFolderDataset(self.root, self.size, self.center_crop, self.hflip)
        return self._dataset

    def setup(self, stage: str | None = None) -> None:
        _ = self.dataset

    def train_dataloader(self) -> DataLoader:
        return DataLoader(
            self.dataset,
            batch_size=self.batch_size,
            shuffle=True,
            num_workers=self.num_workers,
            drop_last=self.drop_last,
            persistent_workers=self.num_workers > 0,
        )


class GRAFDataModule(LightningDataModule):
    """Training images for GRAF: one of GRAF's dataset layouts, or gen3d's multi-view renders.

    With ``kind="shapes"`` and no images under ``root``, the procedural shapes are rendered there first
    (:func:`gen3d.data.multiview.render_multiview` with ``classes``, ``per_class``, ``views``, ``seed``).

    Args:
        root: image folder.
        kind: ``"shapes"``, ``"carla"``, ``"celeba"``, ``"cats"`` or ``"folder"``
            (:data:`gen3d.data.multiview.GRAF_DATASETS`).
        image_size: side of the images fed to the model.
        batch_size: images per batch (GRAF: 8).
        num_workers: data loader workers.
        classes: procedural classes to render (``kind="shapes"`` only).
        per_class: shapes per class to render.
        views: views per shape to render.
        seed: seed of the rendered dataset.
    """

    def __init__(
        self,
        root: str = "datasets/graf_shapes/train",
        kind: str = "shapes",
        image_size: int = 64,
        batch_size: int = 8,
        num_workers: int = 2,
        classes: str = "chair,car,mug",
        per_class: int = 32,
        views: int = 8,
        seed: int = 0,
    ):
        super().__init__()
        self.save_hyperparameters()
        self.dataset = None

    def prepare_data(self) -> None:
        from gen3d.data.images import IMAGE_SUFFIXES
        from gen3d.data.multiview import render_multiview

        hp = self.hparams
        root = Path(hp.root)
        has_images = root.is_dir() and any(p.suffix.lower() in IMAGE_SUFFIXES for p in root.iterdir())
        if hp.kind == "shapes" and not has_images:
            render_multiview(root, hp.classes, hp.per_class, hp.views, hp.image_size, hp.seed)

    def setup(self, stage: str | None = None) -> None:
        from gen3d.data.multiview import graf_image_dataset

        if self.dataset is None:
            self.dataset = graf_image_dataset(self.hparams.root, self.hparams.kind, self.hparams.image_size)
            if len(self.dataset) < self.hparams.batch_size:
                raise InputError(
                    f"{len(self.dataset)} images but batch_size={self.hparams.batch_size}", self.hparams.root
                )

    def train_dataloader(self) -> DataLoader:
        hp = self.hparams
        return DataLoader(
            self.dataset,
            batch_size=hp.batch_size,
            shuffle=True,
            drop_last=True,
            num_workers=hp.num_workers,
            persistent_workers=hp.num_workers > 0,
        )
