"""Lazy loading of the ``gen3d_metrics`` native extension (C++/OpenMP kernels in ``csrc/``).

Importing this module compiles nothing; :func:`load_native` builds the extension on first use (cached
across processes) and returns ``None`` when native code is unavailable, in which case callers use their
PyTorch/SciPy references.
"""

from __future__ import annotations

from pathlib import Path
from types import ModuleType

from renderers.native import IMPLS, load_extension, resolve_impl

__all__ = ["IMPLS", "load_native", "resolve"]

_CSRC = Path(__file__).resolve().parent / "csrc"
_SOURCES = ("ext.cpp", "nn_distance_cpu.cpp", "emd_auction_cpu.cpp")


def load_native() -> ModuleType | None:
    """The compiled ``gen3d_metrics`` module, or ``None`` (build failed or ``GEN3D_NO_NATIVE=1``)."""
    return load_extension("gen3d_metrics", [_CSRC / name for name in _SOURCES])


def resolve(impl: str) -> ModuleType | None:
    """``impl`` (``"auto"``, ``"native"`` or ``"torch"``) -> the native module, or ``None`` for the reference."""
    return resolve_impl(impl, load_native)
