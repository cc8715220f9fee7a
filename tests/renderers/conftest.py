"""Shared fixtures of the renderers tests: the native extension is built (or loaded from cache) once."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def native_ops():
    """The compiled ``renderers_ops`` module; the build must succeed unless GEN3D_NO_NATIVE is set."""
    from renderers.native import native_disabled
    from renderers.ops._backend import load_ops

    if native_disabled():
        pytest.skip("GEN3D_NO_NATIVE is set")
    module = load_ops()
    assert module is not None, "the renderers_ops native extension failed to build (see the warning)"
    return module


@pytest.fixture
def native_device(native_ops, device):
    """``device`` for tests of the native kernels: CUDA runs need the CUDA twins compiled in."""
    if device.type == "cuda" and not native_ops.with_cuda():
        pytest.skip("renderers_ops was built without CUDA kernels (nvcc missing?)")
    return device
