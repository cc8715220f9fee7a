"""Fixtures of the metric tests: the native extension (built once per session) and small cloud generators."""

from __future__ import annotations

import numpy as np
import pytest

from renderers.native import native_disabled


@pytest.fixture(scope="session")
def native():
    """The compiled ``gen3d_metrics`` module; the build must succeed unless GEN3D_NO_NATIVE is set."""
    if native_disabled():
        pytest.skip("GEN3D_NO_NATIVE is set")
    from gen3d.metrics._native import load_native

    module = load_native()
    assert module is not None, "the gen3d_metrics native extension failed to build (see the warning)"
    return module


def _sphere_clouds(rng: np.random.Generator, count: int, points: int, radius: float = 0.4) -> np.ndarray:
    """(count, points, 3) float32 samples of sphere surfaces with random radii around ``radius``."""
    v = rng.normal(size=(count, points, 3))
    v /= np.linalg.norm(v, axis=-1, keepdims=True)
    scale = radius * rng.uniform(0.8, 1.2, size=(count, 1, 3))
    return (v * scale).astype(np.float32)


def _box_clouds(rng: np.random.Generator, count: int, points: int, half: float = 0.3) -> np.ndarray:
    """(count, points, 3) float32 samples of box surfaces with random proportions."""
    p = rng.uniform(-1.0, 1.0, size=(count, points, 3))
    axis = rng.integers(0, 3, size=(count, points))
    np.put_along_axis(p, axis[..., None], np.sign(np.take_along_axis(p, axis[..., None], -1)), -1)
    return (p * half * rng.uniform(0.6, 1.0, size=(count, 1, 3))).astype(np.float32)


@pytest.fixture
def sphere_clouds():
    """``sphere_clouds(rng, count, points, radius=0.4)`` -> (count, points, 3) float32 sphere surfaces."""
    return _sphere_clouds


@pytest.fixture
def box_clouds():
    """``box_clouds(rng, count, points, half=0.3)`` -> (count, points, 3) float32 box surfaces."""
    return _box_clouds
