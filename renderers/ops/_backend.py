"""Loading of the ``renderers_ops`` native extension (C++/OpenMP kernels, CUDA twins when a GPU exists).

Importing this module never compiles anything: :func:`load_ops` builds on first call (see
:mod:`renderers.native`) and :func:`native_module` picks the implementation for a given ``impl`` switch.
"""

from __future__ import annotations

from pathlib import Path
from types import ModuleType

import torch

from renderers.native import load_extension, resolve_impl

__all__ = ["CSRC_DIR", "CPU_SOURCES", "CUDA_SOURCES", "load_ops", "native_module"]

CSRC_DIR = Path(__file__).resolve().parent.parent / "csrc"
CPU_SOURCES = (
    CSRC_DIR / "ext.cpp",
    CSRC_DIR / "composite" / "composite_cpu.cpp",
    CSRC_DIR / "raymarch" / "raymarch_cpu.cpp",
)
CUDA_SOURCES = (
    CSRC_DIR / "composite" / "composite.cu",
    CSRC_DIR / "raymarch" / "raymarch.cu",
)


def load_ops() -> ModuleType | None:
    """The compiled ``renderers_ops`` module (built once, then cached), or ``None`` if unavailable."""
    return load_extension("renderers_ops", CPU_SOURCES, CUDA_SOURCES)


def native_module(impl: str, device: torch.device) -> ModuleType | None:
    """The native module to use for tensors on ``device``, or ``None`` for the PyTorch reference.

    Args:
        impl: ``"auto"``, ``"native"`` or ``"torch"``.
        device: device of the inputs.

    Raises:
        RuntimeError: ``impl="native"`` but the extension (or its CUDA part, for CUDA inputs) is unavailable.
    """
    module = resolve_impl(impl, load_ops)
    if module is not None and device.type == "cuda" and not module.with_cuda():
        if impl == "native":
            raise RuntimeError("impl='native' was requested for CUDA tensors but renderers_ops has no CUDA kernels")
        return None
    if module is not None and device.type not in ("cpu", "cuda"):
        if impl == "native":
            raise RuntimeError(f"impl='native' supports CPU and CUDA tensors, not {device.type}")
        return None
    return module
