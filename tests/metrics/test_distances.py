"""Chamfer / nearest-neighbour distances against a float64 numpy brute force."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch

from gen3d.errors import InputError
from gen3d.metrics import chamfer_distance, nn_distances, nn_distances_ref


def brute_force(x: np.ndarray, y: np.ndarray):
    """float64 squared distances of every pair, then the minima and first arg-minima both ways."""
    d = ((x[:, :, None, :].astype(np.float64) - y[:, None, :, :].astype(np.float64)) ** 2).sum(-1)  # (B, N, M)
    return d.min(2), d.min(1), d.argmin(2), d.argmin(1)


SHAPES = [(1, 1, 1), (1, 5, 3), (2, 17, 40), (3, 300, 257), (1, 1100, 900)]  # (B, N, M): tiny, ragged, > 1 tile


@pytest.mark.parametrize(("shape", "dtype"), list(itertools.product(SHAPES, (torch.float32, torch.float64))))
@pytest.mark.parametrize("impl", ["native", "torch"])
def test_nn_distances_match_brute_force(shape, dtype, impl, request):
    if impl == "native":
        request.getfixturevalue("native")
    b, n, m = shape
    rng = np.random.default_rng(n * 31 + m)
    x = rng.normal(size=(b, n, 3))
    y = rng.normal(size=(b, m, 3)) * 0.7 + 0.1
    dxy, dyx, ixy, iyx = nn_distances(
        torch.tensor(x, dtype=dtype), torch.tensor(y, dtype=dtype), impl=impl, return_index=True
    )
    ref_xy, ref_yx, ref_ixy, ref_iyx = brute_force(x, y)
    tol = dict(rtol=1e-5, atol=1e-5) if dtype == torch.float32 else dict(rtol=1e-10, atol=1e-12)
    assert dxy.dtype == dtype and dxy.shape == (b, n) and dyx.shape == (b, m)
    np.testing.assert_allclose(dxy.double().numpy(), ref_xy, **tol)
    np.testing.assert_allclose(dyx.double().numpy(), ref_yx, **tol)
    # Indices: the found neighbour must be as close as the true nearest (ties may pick another one).
    got_xy = ((x - np.take_along_axis(y, ixy.numpy()[..., None], 1)) ** 2).sum(-1)
    got_yx = ((y - np.take_along_axis(x, iyx.numpy()[..., None], 1)) ** 2).sum(-1)
    np.testing.assert_allclose(got_xy, ref_xy, **tol)
    np.testing.assert_allclose(got_yx, ref_yx, **tol)
    if dtype == torch.float64:  # continuous random data: no ties, indices equal
        assert (ixy.numpy() == ref_ixy).all() and (iyx.numpy() == ref_iyx).all()


def test_chamfer_is_pointflow_definition(native):
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(4, 64, 3)), rng.normal(size=(4, 80, 3))
    ref_xy, ref_yx, _, _ = brute_force(x, y)
    expected = ref_xy.mean(1) + ref_yx.mean(1)  # mean squared NN distance both ways, no square root
    for impl in ("native", "torch"):
        got = chamfer_distance(torch.tensor(x), torch.tensor(y), impl=impl)
        np.testing.assert_allclose(got.numpy(), expected, rtol=1e-10)
    assert chamfer_distance(torch.tensor(x), torch.tensor(x), impl="native").abs().max() == 0  # self-distance


def test_ties_resolve_to_lowest_index(native):
    x = torch.zeros(1, 1, 3, dtype=torch.float64)
    y = torch.tensor([[[1.0, 0, 0], [0, 1.0, 0], [-1.0, 0, 0], [0, 0, 1.0]]], dtype=torch.float64)  # all at 1
    for impl in ("native", "torch"):
        _, _, ixy, _ = nn_distances(x, y, impl=impl, return_index=True)
        assert ixy.item() == 0


def test_native_runs_threaded_and_small_batches_alike(native):
    rng = np.random.default_rng(3)
    x = torch.tensor(rng.normal(size=(7, 700, 3)), dtype=torch.float32)
    y = torch.tensor(rng.normal(size=(7, 650, 3)), dtype=torch.float32)
    whole = chamfer_distance(x, y, impl="native")
    one_by_one = torch.cat([chamfer_distance(x[i : i + 1], y[i : i + 1], impl="native") for i in range(7)])
    torch.testing.assert_close(whole, one_by_one, rtol=0, atol=0)  # chunking over threads changes nothing


def test_gradients_flow_through_native_path(native):
    rng = np.random.default_rng(5)
    x = torch.tensor(rng.normal(size=(2, 12, 3)), dtype=torch.float64, requires_grad=True)
    y = torch.tensor(rng.normal(size=(2, 9, 3)), dtype=torch.float64, requires_grad=True)
    torch.autograd.gradcheck(lambda a, b: chamfer_distance(a, b, impl="native"), (x, y))
    g_native = torch.autograd.grad(chamfer_distance(x, y, impl="native").sum(), (x, y))
    g_torch = torch.autograd.grad(chamfer_distance(x, y, impl="torch").sum(), (x, y))
    for a, b in zip(g_native, g_torch, strict=True):
        torch.testing.assert_close(a, b)


def test_numpy_input_and_empty_batch():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(2, 10, 3)).astype(np.float32)
    assert chamfer_distance(x, x, impl="torch").shape == (2,)
    out = nn_distances_ref(torch.zeros(0, 4, 3), torch.zeros(0, 5, 3))
    assert out[0].shape == (0, 4) and out[1].shape == (0, 5)


@pytest.mark.parametrize(
    "bad",
    [
        torch.zeros(2, 5, 2),  # not xyz
        torch.zeros(5, 3),  # no batch dimension
        torch.zeros(2, 0, 3),  # clouds without points
        torch.tensor([[[0.0, float("nan"), 0.0]]]),
        torch.tensor([[[0.0, float("inf"), 0.0]]]),
    ],
)
def test_bad_clouds_raise_input_error(bad):
    good = torch.zeros(bad.shape[0] if bad.dim() == 3 else 1, 4, 3)
    with pytest.raises(InputError):
        chamfer_distance(bad, good, impl="torch")


def test_unknown_impl_is_rejected():
    with pytest.raises(ValueError, match="impl"):
        chamfer_distance(torch.zeros(1, 2, 3), torch.zeros(1, 2, 3), impl="fast")


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_cuda_tensors_use_the_reference_and_agree_with_cpu():
    rng = np.random.default_rng(2)
    x = torch.tensor(rng.normal(size=(3, 500, 3)), dtype=torch.float32)
    y = torch.tensor(rng.normal(size=(3, 400, 3)), dtype=torch.float32)
    cpu = chamfer_distance(x, y)
    gpu = chamfer_distance(x.cuda(), y.cuda())
    torch.testing.assert_close(gpu.cpu(), cpu, rtol=1e-4, atol=1e-6)
