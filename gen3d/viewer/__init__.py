"""The gen3d viewer: a local web app (viser) to browse samples and meshes and to drive models.

Names are imported on first use, so ``import gen3d.viewer`` stays cheap.
"""

from __future__ import annotations

import importlib
from typing import Any

_LAZY = {
    "ViewerApp": "gen3d.viewer.app",
    "build_viewer": "gen3d.viewer.app",
    "open_input": "gen3d.viewer.content",
    "FieldSource": "gen3d.inference.sources",
    "SampleSource": "gen3d.inference.sources",
    "load_checkpoint_source": "gen3d.inference.sources",
}

__all__ = sorted(_LAZY)


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'gen3d.viewer' has no attribute {name!r}")
