"""Shared test configuration: quiet progress bars, a per-session gen3d cache, deterministic seeds."""

from __future__ import annotations

import os

import pytest

os.environ.setdefault("GEN3D_QUIET", "1")
# Set before torch loads its OpenMP runtime: idle threads sleep instead of spinning on 2 shared cores.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


@pytest.fixture(autouse=True)
def _seed_everything():
    import numpy as np
    import torch

    torch.manual_seed(0)
    np.random.seed(0)
    yield


@pytest.fixture(params=["cpu", pytest.param("cuda", marks=pytest.mark.cuda)])
def device(request):
    """Each test that takes it runs on the CPU and again on CUDA (marked ``cuda``; skipped without a GPU)."""
    import torch

    if request.param == "cuda" and not torch.cuda.is_available():
        pytest.skip("needs a CUDA GPU")
    return torch.device(request.param)
