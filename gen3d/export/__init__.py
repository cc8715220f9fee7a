"""Writers of gen3d's outputs: point-cloud grids and thumbnails (PNG), and further exporters.

Names are imported on first use, so ``import gen3d.export`` stays cheap.
"""

from __future__ import annotations

import importlib
from typing import Any

_LAZY = {
    "render_point_grid": "gen3d.export.grid",
    "render_points": "gen3d.export.grid",
    "save_png": "gen3d.export.images",
}

__all__ = sorted(_LAZY)


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'gen3d.export' has no attribute {name!r}")
