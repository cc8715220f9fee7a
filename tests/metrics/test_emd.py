"""EMD: the exact solvers (POT, SciPy) against a brute-force permutation search and each other, the auction solver
against exact."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch

import gen3d.metrics.earth_mover as emd_module
from gen3d.errors import InputError
from gen3d.metrics import emd, emd_approx, emd_exact


def brute_force_emd(x: np.ndarray, y: np.ndarray) -> float:
    """Minimum over all n! bijections of the mean Euclidean cost (n <= 6)."""
    cost = np.linalg.norm(x[:, None, :] - y[None, :, :], axis=-1)  # (n, n)
    n = len(x)
    return min(cost[np.arange(n), list(perm)].mean() for perm in itertools.permutations(range(n)))


@pytest.mark.parametrize("solver", ["pot", "scipy"])
@pytest.mark.parametrize("n", [1, 2, 3, 5, 6])
def test_exact_matches_brute_force_permutations(n, solver):
    if solver == "pot":
        pytest.importorskip("ot")
    rng = np.random.default_rng(n)
    x, y = rng.normal(size=(3, n, 3)), rng.normal(size=(3, n, 3))
    cost, assignment = emd_exact(torch.tensor(x), torch.tensor(y), solver=solver)
    expected = [brute_force_emd(x[b], y[b]) for b in range(3)]
    np.testing.assert_allclose(cost.numpy(), expected, rtol=1e-12)
    for b in range(3):  # the assignment is a bijection achieving the cost
        assert sorted(assignment[b].tolist()) == list(range(n))
        achieved = np.linalg.norm(x[b] - y[b][assignment[b].numpy()], axis=-1).mean()
        assert achieved == pytest.approx(expected[b], rel=1e-12)


def test_pot_equals_scipy_on_random_and_structured_clouds(sphere_clouds, box_clouds):
    pytest.importorskip("ot")
    rng = np.random.default_rng(3)
    x = np.concatenate([rng.normal(size=(2, 300, 3)), sphere_clouds(rng, 2, 300), box_clouds(rng, 2, 300)])
    y = np.concatenate([box_clouds(rng, 2, 300), rng.normal(size=(2, 300, 3)), sphere_clouds(rng, 2, 300)])
    grid = np.stack(np.meshgrid(*[np.arange(4.0)] * 3, indexing="ij"), -1).reshape(1, 64, 3)  # many equal costs
    xt, yt = torch.tensor(x), torch.tensor(y)
    pot_cost, pot_assignment = emd_exact(xt, yt, solver="pot")
    scipy_cost, _ = emd_exact(xt, yt, solver="scipy")
    np.testing.assert_allclose(pot_cost.numpy(), scipy_cost.numpy(), rtol=1e-12)
    for b in range(len(x)):
        assert sorted(pot_assignment[b].tolist()) == list(range(300))  # a permutation
    shifted = torch.tensor(grid + 0.5)
    tie_pot, tie_assignment = emd_exact(torch.tensor(grid), shifted, solver="pot")
    assert tie_pot.item() == pytest.approx(emd_exact(torch.tensor(grid), shifted, solver="scipy")[0].item(), rel=1e-12)
    assert sorted(tie_assignment[0].tolist()) == list(range(64))


def test_exact_solver_choice_and_fallbacks(monkeypatch):
    ot = pytest.importorskip("ot")
    assert emd_module.exact_solver("auto") == "pot"
    rng = np.random.default_rng(4)
    x, y = torch.tensor(rng.normal(size=(2, 50, 3))), torch.tensor(rng.normal(size=(2, 50, 3)))
    expected, _ = emd_exact(x, y, solver="scipy")
    # a pair POT leaves unsolved (its iteration cap) is solved by SciPy
    monkeypatch.setattr(ot, "emd", lambda a, b, m, numItermax, log: (np.zeros_like(m), {"result_code": 3}))
    np.testing.assert_allclose(emd_exact(x, y, solver="pot")[0].numpy(), expected.numpy(), rtol=1e-12)
    # without POT: auto is SciPy, and asking for POT is an input error
    monkeypatch.setattr(emd_module, "_pot", lambda: None)
    assert emd_module.exact_solver("auto") == "scipy"
    np.testing.assert_allclose(emd_exact(x, y)[0].numpy(), expected.numpy(), rtol=1e-12)
    with pytest.raises(InputError, match="pip install pot"):
        emd_exact(x, y, solver="pot")
    with pytest.raises(ValueError, match="solver"):
        emd_exact(x, y, solver="hungarian")


@pytest.mark.parametrize("n", [1, 2, 4, 6])
def test_approx_is_exact_on_tiny_sets(native, n):
    rng = np.random.default_rng(10 + n)
    x, y = rng.normal(size=(4, n, 3)), rng.normal(size=(4, n, 3))
    cost = emd(torch.tensor(x), torch.tensor(y), method="approx", impl="native")
    expected = [brute_force_emd(x[b], y[b]) for b in range(4)]
    # The auction's matching is within rel_eps of optimal; on a handful of points it is the optimum.
    np.testing.assert_allclose(cost.numpy(), expected, rtol=1e-6)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("rel_eps", [0.03, 0.005])
def test_approx_within_stated_gap_of_exact(native, dtype, rel_eps, sphere_clouds, box_clouds):
    rng = np.random.default_rng(7)
    x = np.concatenate([sphere_clouds(rng, 3, 400), box_clouds(rng, 3, 400)])
    y = np.concatenate([box_clouds(rng, 3, 400), sphere_clouds(rng, 3, 400)])
    xt, yt = torch.tensor(x, dtype=dtype), torch.tensor(y, dtype=dtype)
    exact, _ = emd_exact(xt, yt)
    approx, assignment = emd_approx(xt, yt, rel_eps=rel_eps, impl="native")
    assert approx.dtype == torch.float64 and approx.shape == (6,)
    # Never below the optimum (it is the cost of a real bijection), at most rel_eps above it.
    assert (approx >= exact * (1 - 1e-6)).all()
    assert (approx <= exact * (1 + rel_eps)).all()
    for b in range(6):
        assert sorted(assignment[b].tolist()) == list(range(400))
        achieved = np.linalg.norm(x[b].astype(np.float64) - y[b][assignment[b].numpy()], axis=-1).mean()
        assert achieved == pytest.approx(approx[b].item(), rel=1e-6)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_auction_lower_bounds_and_giving_up(native, dtype, sphere_clouds, box_clouds):
    rng = np.random.default_rng(8)
    x = np.concatenate([sphere_clouds(rng, 4, 300), box_clouds(rng, 4, 300)])
    y = np.concatenate([box_clouds(rng, 4, 300), sphere_clouds(rng, 2, 300), x[:2] + np.float32(0.02)])
    xt, yt = torch.tensor(x, dtype=dtype), torch.tensor(y, dtype=dtype)
    exact = emd_exact(xt, yt)[0].numpy()
    full, lower = emd_module.emd_rows_bounded(xt, yt, "approx", 0.03)
    np.testing.assert_array_equal(full, emd_approx(xt, yt)[0].numpy())  # never gives up without a threshold
    assert (lower <= exact).all() and (lower > 0.9 * exact).all()  # the final epsilon bound
    # A threshold below every distance: pairs are given up once a phase proves them above it, with a valid bound.
    stop = 0.5 * exact
    values, early = emd_module.emd_rows_bounded(xt, yt, "approx", 0.03, stop_above=stop)
    given_up = np.isnan(values)
    assert given_up.any()
    assert (early[given_up] > stop[given_up]).all() and (early <= exact).all()
    np.testing.assert_array_equal(values[~given_up], full[~given_up])  # the others are solved as usual
    exact_values, exact_lower = emd_module.emd_rows_bounded(xt, yt, "exact", stop_above=stop)
    np.testing.assert_array_equal(exact_values, exact_lower)  # the exact solver never gives up


def test_degenerate_clouds(native):
    same = torch.tensor(np.random.default_rng(0).normal(size=(1, 50, 3)))
    assert emd(same, same, method="approx").item() == 0.0
    assert emd(same, same[:, torch.randperm(50)], method="approx").item() == pytest.approx(0.0, abs=1e-12)
    points, shifted = torch.zeros(1, 20, 3), torch.ones(1, 20, 3)  # all points coincide in each cloud
    assert emd(points, shifted, method="approx").item() == pytest.approx(3**0.5)
    assert emd(points, shifted, method="exact").item() == pytest.approx(3**0.5)


def test_unequal_sizes_and_bad_input_raise():
    with pytest.raises(InputError, match="same number of points"):
        emd(torch.zeros(1, 5, 3), torch.zeros(1, 6, 3))
    with pytest.raises(InputError, match="NaN"):
        emd(torch.full((1, 5, 3), float("nan")), torch.zeros(1, 5, 3), method="exact")
    with pytest.raises(ValueError, match="method"):
        emd(torch.zeros(1, 5, 3), torch.zeros(1, 5, 3), method="sinkhorn")


def test_approx_falls_back_to_exact_without_native(monkeypatch):
    monkeypatch.setattr(emd_module, "resolve", lambda impl: None)
    monkeypatch.setattr(emd_module, "_warned_fallback", False)
    rng = np.random.default_rng(4)
    x, y = torch.tensor(rng.normal(size=(2, 30, 3))), torch.tensor(rng.normal(size=(2, 30, 3)))
    with pytest.warns(RuntimeWarning, match="exact"):
        approx = emd(x, y, method="approx")
    torch.testing.assert_close(approx, emd(x, y, method="exact"))


def test_approx_is_deterministic_across_batches_and_threads(native, sphere_clouds, box_clouds):
    # The nearest-neighbour search solves a pair in whatever batch it lands in and compares it with values from
    # other batches: a pair's result must not depend on its batch, position or the thread count.
    rng = np.random.default_rng(9)
    x = torch.from_numpy(np.concatenate([sphere_clouds(rng, 3, 256), box_clouds(rng, 3, 256)]))
    y = torch.from_numpy(np.concatenate([box_clouds(rng, 3, 256), sphere_clouds(rng, 3, 256)]))
    cost, assignment = emd_approx(x, y)
    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        single = [emd_approx(x[i : i + 1], y[i : i + 1]) for i in reversed(range(6))][::-1]
    finally:
        torch.set_num_threads(threads)
    assert torch.equal(cost, torch.cat([c for c, _ in single]))
    assert torch.equal(assignment, torch.cat([a for _, a in single]))
    again = emd_approx(x.flip(0), y.flip(0))
    assert torch.equal(again[0], cost.flip(0)) and torch.equal(again[1], assignment.flip(0))
