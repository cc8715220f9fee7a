"""Image folders for 3D-aware GANs (GRAF): PNG/JPEG files found recursively, in sorted order.

Each item is a float32 tensor (3, size, size) in [-1, 1]: the image is optionally centre-cropped to a
square of ``center_crop`` pixels first (GRAF crops CelebA to 108), its shorter side resized to ``size``
(bilinear, antialiased by PIL), then centre-cropped to ``size`` x ``size``. Transparent pixels are
composited onto ``background`` (white by default, like rendered objects).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from gen3d.errors import InputError
from gen3d.utils.fs import list_files

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")


def list_image_files(root: str | os.PathLike, suffixes: tuple[str, ...] = IMAGE_SUFFIXES) -> list[Path]:
    """Image files under ``root`` (recursively), sorted by relative path; raises if there are none.

    The one image lister: image folders for training and for FID (:mod:`gen3d.metrics.fid`) both use it.
    """
    return list_files(root, suffixes, "image")


def _center_square(img, side: int):
    w, h = img.size
    side = min(side, w, h)
    left, top = (w - side) // 2, (h - side) // 2
    return img.crop((left, top, left + side, top + side))


def load_image(
    path: str | os.PathLike,
    size: int,
    center_crop: int | None = None,
    background: Sequence[int] = (255, 255, 255),
) -> np.ndarray:
    """Read, crop and resize one image.

    Args:
        path: a PNG or JPEG file.
        size: output side in pixels.
        center_crop: side of a centre square cut out before resizing (None: no pre-crop).
        background: RGB behind transparent pixels.

    Returns:
        (size, size, 3) uint8 RGB array.
    """
    from PIL import Image, UnidentifiedImageError

    p = Path(path)
    try:
        with Image.open(p) as im:
            im.load()
            img = im
            if img.mode in ("RGBA", "LA") or (img.mode == "P" and "transparency" in img.info):
                rgba = img.convert("RGBA")
                canvas = Image.new("RGBA", rgba.size, tuple(background) + (255,))
                img = Image.alpha_composite(canvas, rgba)
            img = img.convert("RGB")
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as exc:
        raise InputError(f"not a readable image ({exc}); expected a PNG or JPEG file", p) from exc
    if center_crop is not None:
        img = _center_square(img, center_crop)
    w, h = img.size
    scale = size / min(w, h)
    new = (max(size, round(w * scale)), max(size, round(h * scale)))
    img = img.resize(new, Image.Resampling.BILINEAR)
    return np.array(_center_square(img, size), dtype=np.uint8)  # a writable copy


class ImageFolderDataset(Dataset):
    """Images under a folder as (3, size, size) float32 tensors in [-1, 1].

    Args:
        root: the folder (searched recursively for .png/.jpg/.jpeg).
        size: output side in pixels.
        center_crop: side of a centre square cut out before resizing (e.g. 108 for CelebA as in GRAF).
        hflip: random horizontal flips (augmentation, drawn from torch's generator).
        background: RGB behind transparent pixels.
    """

    def __init__(
        self,
        root: str | os.PathLike,
        size: int = 64,
        center_crop: int | None = None,
        hflip: bool = False,
        background: Sequence[int] = (255, 255, 255),
    ):
        if size < 1:
            raise InputError(f"image size must be positive, got {size}")
        self.root = Path(root)
        self.files = list_image_files(self.root)
        self.size, self.center_crop, self.hflip, self.background = size, center_crop, hflip, tuple(background)

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, idx: int) -> torch.Tensor:
        img = load_image(self.files[idx], self.size, self.center_crop, self.background)  # (H, W, 3) uint8
        x = torch.from_numpy(img).permute(2, 0, 1).float() / 127.5 - 1.0  # (3, H, W) in [-1, 1]
        if self.hflip and bool(torch.rand(()) < 0.5):
            x = x.flip(-1)
        return x
