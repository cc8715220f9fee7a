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
