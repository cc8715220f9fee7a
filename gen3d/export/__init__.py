"""Writers of gen3d's outputs: point-cloud grids and thumbnails (PNG), and further exporters.

Names are imported on first use, so ``import gen3d.export`` stays cheap.
"""

from __future__ import annotations

from gen3d.utils.lazy import lazy_attributes

_LAZY = {
    "render_point_grid": "gen3d.export.grid",
    "render_points": "gen3d.export.raster",
    "render_thumbnails": "gen3d.export.grid",
    "save_png": "gen3d.export.images",
}

__all__ = sorted(_LAZY)
__getattr__, __dir__ = lazy_attributes(__name__, _LAZY)
