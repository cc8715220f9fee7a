"""Image arrays to files: uint8 conversion, image grids, and PNG writing (:func:`save_png`, the one PNG writer, lives in
:mod:`gen3d.utils.fs` so that the data layer can write its renders with it too)."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from gen3d.utils.fs import save_png

__all__ = ["image_grid", "save_png", "to_uint8"]


def to_uint8(images: Any, value_range: tuple[float, float] = (0.0, 1.0)) -> np.ndarray:
    """Images with values in ``value_range`` -> uint8 with channels last, rounding to nearest, clipping.

    Args:
        images: a torch tensor ``(B, 3, H, W)`` or ``(3, H, W)`` (channels first, as models render), or an
            array ``(..., H, W, 3)`` (channels last). uint8 arrays are returned unchanged.
        value_range: the values that map to 0 and 255 (GRAF renders in ``(-1, 1)``, the rasterisers in
            ``(0, 1)``).

    Returns:
        ``(B, H, W, 3)`` / ``(H, W, 3)`` uint8.
    """
    lo, hi = float(value_range[0]), float(value_range[1])
    scale = 255.0 / (hi - lo)
    if hasattr(images, "detach"):  # a torch tensor: float32 arithmetic, as GRAF's evaluation quantises
        import torch

        x = ((images.detach().float().cpu().clamp(lo, hi) - lo) * scale).round().to(torch.uint8)
        return x.movedim(-3, -1).numpy()
    arr = np.asarray(images)
    if arr.dtype == np.uint8:
        return arr
    return np.round((np.clip(arr.astype(np.float64), lo, hi) - lo) * scale).astype(np.uint8)


def image_grid(images: Any, ncols: int | None = None, pad: int = 2, value_range: tuple[float, float] = (-1.0, 1.0)):
    """Tile images ``(N, 3, H, W)`` (values in ``value_range``) into one uint8 ``(rows * (H + pad) + pad,
    cols * (W + pad) + pad, 3)`` array on a white background."""
    imgs = to_uint8(images, value_range)  # (N, H, W, 3)
    n, h, w, _ = imgs.shape
    ncols = ncols or int(math.ceil(math.sqrt(n)))
    nrows = int(math.ceil(n / ncols))
    out = np.full((nrows * (h + pad) + pad, ncols * (w + pad) + pad, 3), 255, dtype=np.uint8)
    for i in range(n):
        r, c = divmod(i, ncols)
        out[pad + r * (h + pad) : pad + r * (h + pad) + h, pad + c * (w + pad) : pad + c * (w + pad) + w] = imgs[i]
    return out
