"""Shared fixtures of the renderers tests: the native extension is built (or loaded from cache) once."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def native_ops():
    """The compiled ``renderers_ops`` module; skips the test when it cannot be built."""
    from renderers.ops._backend import load_ops

    module = load_ops()
    if module is None:
        pytest.skip("renderers_ops native extension unavailable (no compiler, or GEN3D_NO_NATIVE=1)")
    return module


@pytest.fixture
def native_device(native_ops, device):
    """``device`` for tests of the native kernels: CUDA runs need the CUDA twins compiled in."""
    if device.type == "cuda" and not native_ops.with_cuda():
        pytest.skip("renderers_ops was built without CUDA kernels (nvcc missing?)")
    return device
