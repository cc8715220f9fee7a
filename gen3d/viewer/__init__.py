"""The gen3d viewer: a local web app (viser) to browse samples and meshes and to drive models.

Names are imported on first use, so ``import gen3d.viewer`` stays cheap.
"""

from __future__ import annotations

from gen3d.utils.lazy import lazy_attributes

_LAZY = {
    "ViewerApp": "gen3d.viewer.app",
    "build_viewer": "gen3d.viewer.app",
    "open_input": "gen3d.viewer.content",
    "FieldSource": "gen3d.inference.sources",
    "SampleSource": "gen3d.inference.sources",
    "load_checkpoint_source": "gen3d.inference.sources",
}

__all__ = sorted(_LAZY)
__getattr__, __dir__ = lazy_attributes(__name__, _LAZY)
