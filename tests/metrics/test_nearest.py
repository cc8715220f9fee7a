"""EMD lower bounds and the nearest-neighbour search: bounds never above the exact EMD, metrics equal to the full
matrices' (ties included), fewer pairs solved."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import gen3d.metrics.nearest as nearest_module
from gen3d.metrics import emd_exact, pairwise_distances, point_cloud_metrics
from gen3d.metrics.emd_bounds import lower_bounds, sliced_features, unit_directions
from gen3d.metrics.nearest import emd_nearest


def _pairs_exact(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(A, B) exact EMD by the assignment solver, pair by pair."""
    ii, jj = np.meshgrid(np.arange(len(a)), np.arange(len(b)), indexing="ij")
    x, y = torch.from_numpy(a[ii.ravel()]), torch.from_numpy(b[jj.ravel()])
    return emd_exact(x, y, solver="scipy")[0].numpy().reshape(len(a), len(b))


def test_unit_directions_cover_a_hemisphere():
    theta = unit_directions(64)
    assert theta.shape == (64, 3)
    np.testing.assert_allclose(np.linalg.norm(theta, axis=1), 1.0, rtol=1e-12)
    assert (theta[:, 2] > 0).all()
    # every unit vector (up to sign) is within 0.3 rad of some direction
    rng = np.random.default_rng(0)
    v = rng.normal(size=(2000, 3))
    v /= np.linalg.norm(v, axis=1, keepdims=True)
    assert np.abs(v @ theta.T).max(axis=1).min() > np.cos(0.3)


def test_lower_bounds_never_exceed_the_exact_emd(sphere_clouds, box_clouds):
    rng = np.random.default_rng(1)
    a = np.concatenate([sphere_clouds(rng, 4, 48), box_clouds(rng, 4, 48)])
    b = np.concatenate([box_clouds(rng, 3, 48), sphere_clouds(rng, 3, 48), a[:2] + np.float32(0.05)])
    bounds = lower_bounds(sliced_features(a), sliced_features(b))
    exact = _pairs_exact(a, b)
    assert (bounds <= exact).all()
    assert (bounds > 0.3 * exact).mean() > 0.9  # useful, not trivially zero
    # Grouping ranks only lowers the bound (same directions; 48 points in 5 groups of unequal size).
    fine = lower_bounds(sliced_features(a, directions=16, groups=48), sliced_features(b, directions=16, groups=48))
    coarse = lower_bounds(sliced_features(a, directions=16, groups=5), sliced_features(b, directions=16, groups=5))
    assert (coarse <= fine + 1e-12).all() and (fine <= exact).all() and (coarse < fine).any()


def test_lower_bound_of_a_translation_is_nearly_its_length(sphere_clouds):
    # Translating a cloud by t costs exactly |t| (every point moves by t, and no matching costs less than the
    # distance between the means); the bound sees |t| up to the angle to the nearest direction.
    rng = np.random.default_rng(2)
    x = sphere_clouds(rng, 1, 64)
    t = np.array([0.03, -0.02, 0.05], dtype=np.float32)
    bound = lower_bounds(sliced_features(x), sliced_features(x + t))[0, 0]
    exact = _pairs_exact(x, x + t)[0, 0]
    assert exact == pytest.approx(np.linalg.norm(t), rel=1e-5)
    assert 0.95 * exact < bound <= exact
    assert lower_bounds(sliced_features(x), sliced_features(x))[0, 0] == 0.0


def _sets_with_ties(sphere_clouds, box_clouds, n_samples, n_refs, points=40, seed=3):
    rng = np.random.default_rng(seed)
    refs = np.concatenate([sphere_clouds(rng, n_refs - n_refs // 2, points), box_clouds(rng, n_refs // 2, points)])
    samples = np.concatenate(
        [box_clouds(rng, n_samples - n_samples // 2, points), sphere_clouds(rng, n_samples // 2, points)]
    )
    if n_samples >= 3 and n_refs >= 2:
        samples[0] = refs[1]  # a copy of a reference: distance 0, a tie the references win in 1-NNA
        samples[2] = samples[1]  # two equal samples
    return samples, refs


@pytest.mark.parametrize("method", ["approx", "exact"])
@pytest.mark.parametrize(("n_samples", "n_refs"), [(9, 7), (1, 1), (1, 4), (5, 1)])
def test_metrics_equal_the_full_matrices(native, method, n_samples, n_refs, sphere_clouds, box_clouds):
    samples, refs = _sets_with_ties(sphere_clouds, box_clouds, n_samples, n_refs)
    fast = point_cloud_metrics(samples, refs, emd=method, progress=False)
    full = point_cloud_metrics(samples, refs, emd=method, progress=False, emd_full=True)
    assert fast == full  # exactly: same minima, same first indices, same tie-breaking


def test_nearest_neighbours_match_the_matrices_and_skip_pairs(native, sphere_clouds, box_clouds):
    samples, refs = _sets_with_ties(sphere_clouds, box_clouds, 10, 12, points=64, seed=4)
    s, r = torch.from_numpy(samples), torch.from_numpy(refs)
    found = emd_nearest(s, r, "approx", 0.03, progress=False)
    d_sr = pairwise_distances(samples, refs, metric="emd", progress=False)
    d_ss = pairwise_distances(samples, None, metric="emd", progress=False)
    d_rr = pairwise_distances(refs, None, metric="emd", progress=False)
    np.testing.assert_array_equal(found.sample_to_ref.value, d_sr.min(axis=1))
    np.testing.assert_array_equal(found.sample_to_ref.index, d_sr.argmin(axis=1))
    np.testing.assert_array_equal(found.ref_to_sample.value, d_sr.min(axis=0))
    np.fill_diagonal(d_ss, np.inf)
    np.fill_diagonal(d_rr, np.inf)
    np.testing.assert_array_equal(found.sample_beats_ref, d_ss.min(axis=1) < d_sr.min(axis=1))
    np.testing.assert_array_equal(found.ref_ties_sample, d_rr.min(axis=1) <= d_sr.min(axis=0))
    known = ~np.isnan(found.ref_values)
    np.testing.assert_array_equal(found.ref_values[known], d_rr[known])  # what was computed is the matrix's
    assert found.pairs_total == 10 * 12 + 45 + 66
    assert found.pairs_computed < 0.8 * found.pairs_total


def test_known_reference_distances_are_not_solved_again(native, sphere_clouds, box_clouds, monkeypatch):
    samples, refs = _sets_with_ties(sphere_clouds, box_clouds, 8, 8, seed=5)
    s, r = torch.from_numpy(samples), torch.from_numpy(refs)
    solved = []
    real = nearest_module.emd_rows_bounded
    monkeypatch.setattr(
        nearest_module, "emd_rows_bounded", lambda x, *a, **k: solved.append(len(x)) or real(x, *a, **k)
    )
    first = emd_nearest(s, r, "approx", 0.03, progress=False)
    count_first = sum(solved)
    solved.clear()
    again = emd_nearest(s, r, "approx", 0.03, progress=False, ref_known=(first.ref_values, first.ref_lower))
    d_rr = pairwise_distances(refs, None, metric="emd", progress=False)
    solved_again = sum(solved)
    solved.clear()
    with_matrix = emd_nearest(s, r, "approx", 0.03, progress=False, ref_known=(d_rr, np.full(d_rr.shape, np.nan)))
    assert count_first == first.pairs_computed + first.pairs_given_up
    assert solved_again == sum(solved) < count_first  # no reference pair again
    np.testing.assert_array_equal(again.ref_ties_sample, first.ref_ties_sample)
    np.testing.assert_array_equal(with_matrix.ref_ties_sample, first.ref_ties_sample)


def test_tight_bounds_on_translated_copies(native, sphere_clouds):
    # Translated copies of one cloud: every bound is within a few percent of its distance, so a search that
    # stopped early would miss the nearest copy.
    rng = np.random.default_rng(7)
    base = sphere_clouds(rng, 1, 48)
    refs = base + rng.normal(scale=0.05, size=(12, 1, 3)).astype(np.float32)
    samples = base + rng.normal(scale=0.05, size=(10, 1, 3)).astype(np.float32)
    found = emd_nearest(torch.from_numpy(samples), torch.from_numpy(refs), "approx", 0.03, progress=False)
    d_sr = pairwise_distances(samples, refs, metric="emd", progress=False)
    np.testing.assert_array_equal(found.sample_to_ref.index, d_sr.argmin(axis=1))
    np.testing.assert_array_equal(found.ref_to_sample.value, d_sr.min(axis=0))
    fast = point_cloud_metrics(samples, refs, emd="approx", progress=False)
    assert fast == point_cloud_metrics(samples, refs, emd="approx", progress=False, emd_full=True)
