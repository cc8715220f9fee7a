"""MMD / COV / 1-NNA on hand-built matrices, JSD and the full protocol on synthetic sets."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from gen3d.errors import InputError
from gen3d.metrics import (
    ReferenceDistances,
    chamfer_distance,
    format_point_cloud_metrics,
    jsd_between_point_cloud_sets,
    mmd_cov,
    one_nn_accuracy,
    pairwise_distances,
    paper_units,
    point_cloud_metrics,
)


def test_mmd_cov_hand_built():
    # rows: samples s0..s2, columns: references r0..r3
    d_sr = np.array(
        [
            [1.0, 5.0, 9.0, 4.0],  # s0 -> nearest r0
            [2.0, 3.0, 8.0, 7.0],  # s1 -> nearest r0
            [6.0, 0.5, 2.0, 9.0],  # s2 -> nearest r1
        ]
    )
    mmd, cov = mmd_cov(d_sr)
    # MMD: closest sample of each reference: r0 -> 1.0, r1 -> 0.5, r2 -> 2.0, r3 -> 4.0; mean = 7.5 / 4
    assert mmd == pytest.approx(7.5 / 4)
    # COV: the nearest references of the samples are {r0, r1}: 2 of 4 references = 50 %
    assert cov == pytest.approx(50.0)


def test_mmd_cov_ties_and_torch_input():
    d_sr = torch.tensor([[1.0, 1.0], [1.0, 1.0]])  # every sample ties: nearest is the first, r0
    mmd, cov = mmd_cov(d_sr)
    assert mmd == 1.0 and cov == 50.0


def test_one_nn_accuracy_hand_built():
    # Two samples (s0, s1) and two references (r0, r1).
    d_ss = np.array([[0.0, 1.0], [1.0, 0.0]])
    d_rr = np.array([[0.0, 1.0], [1.0, 0.0]])
    d_sr = np.array([[5.0, 5.0], [5.0, 0.5]])  # s1 is very close to r1
    # Nearest other cloud: s0 -> s1 (1.0, correct), s1 -> r1 (0.5, wrong),
    # r0 -> r1 (1.0, correct), r1 -> s1 (0.5, wrong): 2 of 4 correct = 50 %.
    assert one_nn_accuracy(d_ss, d_sr, d_rr) == pytest.approx(50.0)
    # Far apart sets: each cloud's nearest is in its own set: 100 %.
    assert one_nn_accuracy(d_ss, np.full((2, 2), 9.0), d_rr) == pytest.approx(100.0)
    # Samples copying references (distance 0): everything is misclassified: 0 %.
    far = np.full((2, 2), 9.0)
    np.fill_diagonal(far, 0.0)
    assert one_nn_accuracy(np.array([[0, 9.0], [9.0, 0]]), far, np.array([[0, 9.0], [9.0, 0]])) == pytest.approx(0.0)


def test_one_nn_accuracy_unbalanced_sets():
    # One sample, three references on a line at 0, 1, 2; the sample sits at 10.
    pos_r = np.array([0.0, 1.0, 2.0])
    d_rr = np.abs(pos_r[:, None] - pos_r[None, :])
    d_sr = np.abs(10.0 - pos_r)[None, :]  # (1, 3)
    d_ss = np.zeros((1, 1))
    # The sample's nearest other cloud is r2 (wrong); each reference's nearest is a reference (right): 3 of 4.
    assert one_nn_accuracy(d_ss, d_sr, d_rr) == pytest.approx(75.0)
    with pytest.raises(InputError, match="inconsistent"):
        one_nn_accuracy(np.zeros((2, 2)), d_sr, d_rr)


def test_pairwise_matches_direct_computation(native, sphere_clouds, box_clouds):
    rng = np.random.default_rng(0)
    a, b = sphere_clouds(rng, 5, 64), box_clouds(rng, 4, 64)
    d = pairwise_distances(a, b, metric="cd", batch_size=3)
    assert isinstance(d, np.ndarray) and d.shape == (5, 4) and d.dtype == np.float64
    direct = np.array(
        [
            [chamfer_distance(torch.tensor(a[i : i + 1]), torch.tensor(b[j : j + 1])).item() for j in range(4)]
            for i in range(5)
        ]
    )
    np.testing.assert_allclose(d, direct, rtol=1e-6)
    sym = pairwise_distances(torch.tensor(a), None, metric="emd", emd_method="exact", batch_size=4)
    assert isinstance(sym, torch.Tensor) and sym.shape == (5, 5)
    np.testing.assert_array_equal(sym.numpy(), sym.numpy().T)
    assert (sym.diagonal() == 0).all()
    full = pairwise_distances(a, a, metric="emd", emd_method="exact")  # computed both ways
    np.testing.assert_allclose(sym.numpy(), full, rtol=1e-9, atol=1e-12)


def test_one_nna_same_distribution_near_half_far_apart_full(native, sphere_clouds):
    rng = np.random.default_rng(1)
    refs = sphere_clouds(rng, 40, 128)
    same = sphere_clouds(rng, 40, 128)  # a second draw of the same distribution
    far = sphere_clouds(rng, 40, 128) + np.float32(3.0)  # moved far away
    res_same = point_cloud_metrics(same, refs, emd="none")
    res_far = point_cloud_metrics(far, refs, emd="none")
    assert 35.0 <= res_same["1-NNA-CD"] <= 65.0
    assert res_far["1-NNA-CD"] == pytest.approx(100.0)
    # Far samples are all closest to the same few references: low coverage, large MMD.
    assert res_far["COV-CD"] < res_same["COV-CD"]
    assert res_far["MMD-CD"] > 10 * res_same["MMD-CD"]


def brute_force_jsd(a: np.ndarray, b: np.ndarray, res: int) -> float:
    """PointFlow's JSD written out independently: kept cell centres, nearest centre of every point by brute force,
    normalised histograms, base-2 entropies."""
    axis = (np.arange(res) / (res - 1) - 0.5).astype(np.float32)
    grid = np.stack(np.meshgrid(axis, axis, axis, indexing="ij"), -1).reshape(-1, 3)
    grid = grid[np.linalg.norm(grid, axis=1) <= 0.5].astype(np.float64)

    def hist(clouds):
        pts = clouds.reshape(-1, 3)
        nearest = ((pts[:, None, :] - grid[None]) ** 2).sum(-1).argmin(1)
        h = np.bincount(nearest, minlength=len(grid)).astype(np.float64)
        return h / h.sum()

    def ent(v):
        v = v[v > 0]
        return -(v * np.log2(v)).sum()

    p, q = hist(a), hist(b)
    return float(ent((p + q) / 2) - (ent(p) + ent(q)) / 2)


def test_jsd_identical_zero_disjoint_one_half_shared_closed_form(sphere_clouds):
    rng = np.random.default_rng(2)
    a = sphere_clouds(rng, 8, 500, radius=0.3)
    assert jsd_between_point_cloud_sets(a, a) == pytest.approx(0.0, abs=1e-12)
    left = rng.uniform(-0.45, -0.25, size=(5, 400, 3)) * np.array([1.0, 0.3, 0.3])
    right = -left
    # Disjoint occupancy: JSD in bits (PointFlow uses base-2 entropies) is exactly 1 = log2(2).
    assert jsd_between_point_cloud_sets(left, right) == pytest.approx(1.0, abs=1e-9)
    # Half of the mass shared: P = (L + R) / 2 and Q = L with L, R on disjoint cells, so M = 3/4 L + 1/4 R and
    # JSD = H(M) - (H(P) + H(Q)) / 2 = H2(3/4) - 1/2 whatever L and R are (H2: the binary entropy).
    h2 = -(0.75 * np.log2(0.75) + 0.25 * np.log2(0.25))
    partly = np.concatenate([left, right], axis=1)
    assert jsd_between_point_cloud_sets(partly, left) == pytest.approx(h2 - 0.5, abs=1e-9)


def test_jsd_matches_direct_histogram():
    rng = np.random.default_rng(3)
    a, b = rng.uniform(-0.5, 0.5, size=(3, 200, 3)), rng.normal(scale=0.15, size=(2, 300, 3))
    assert jsd_between_point_cloud_sets(a, b, resolution=8) == pytest.approx(brute_force_jsd(a, b, 8), rel=1e-9)


def test_point_cloud_metrics_keys_scales_and_emd_none(native, sphere_clouds):
    rng = np.random.default_rng(4)
    samples, refs = sphere_clouds(rng, 6, 96), sphere_clouds(rng, 7, 96)
    full = point_cloud_metrics(samples, refs, emd="approx")
    assert list(full) == ["MMD-CD", "COV-CD", "1-NNA-CD", "MMD-EMD", "COV-EMD", "1-NNA-EMD", "JSD"]
    exact = point_cloud_metrics(samples, refs, emd="exact")
    assert exact["MMD-EMD"] <= full["MMD-EMD"] <= exact["MMD-EMD"] * 1.03
    for key in ("COV-CD", "1-NNA-CD", "COV-EMD", "1-NNA-EMD"):
        assert 0.0 <= full[key] <= 100.0
    # JSD is the divergence itself (PointFlow's value, in bits), not x 100: the brute-force histogram JSD.
    expected_jsd = brute_force_jsd(samples, refs, 28)
    assert 0.0 < expected_jsd < 1.0
    assert full["JSD"] == pytest.approx(expected_jsd, rel=1e-9)
    no_emd = point_cloud_metrics(samples, refs, emd="none")
    assert "MMD-EMD" not in no_emd and no_emd["MMD-CD"] == pytest.approx(full["MMD-CD"])
    assert point_cloud_metrics(samples, refs, emd=False).keys() == no_emd.keys()
    scaled = paper_units(full)
    assert scaled["MMD-CD"] == pytest.approx(1e3 * full["MMD-CD"]) and scaled["COV-CD"] == full["COV-CD"]
    assert scaled["JSD"] == pytest.approx(1e2 * expected_jsd)
    columns = dict(format_point_cloud_metrics(full))  # the factor in the header, the value scaled by it
    assert list(columns) == [
        "MMD-CD x1e3",
        "COV-CD %",
        "1-NNA-CD %",
        "MMD-EMD x1e2",
        "COV-EMD %",
        "1-NNA-EMD %",
        "JSD x1e2",
    ]
    assert columns["JSD x1e2"] == f"{1e2 * expected_jsd:.4f}"
    assert columns["MMD-CD x1e3"] == f"{1e3 * full['MMD-CD']:.4f}"


def test_reference_distances_computed_once_give_the_same_metrics(native, sphere_clouds, box_clouds, monkeypatch):
    import pickle

    import gen3d.metrics.nearest as nearest_module
    import gen3d.metrics.point_cloud as pc

    rng = np.random.default_rng(6)
    refs = sphere_clouds(rng, 7, 64)
    sets = [sphere_clouds(rng, 6, 64), box_clouds(rng, 5, 64)]
    plain = [point_cloud_metrics(s, refs, emd="approx") for s in sets]
    calls, solved = [], []
    real, real_emd = pc.pairwise_distances, nearest_module.emd_rows_bounded
    monkeypatch.setattr(pc, "pairwise_distances", lambda *a, **k: calls.append((a, k)) or real(*a, **k))
    monkeypatch.setattr(
        nearest_module, "emd_rows_bounded", lambda x, *a, **k: solved.append(len(x)) or real_emd(x, *a, **k)
    )
    cache = ReferenceDistances(refs)
    cached = [point_cloud_metrics(s, refs, emd="approx", ref_distances=cache) for s in sets]
    assert cached == plain  # the same numbers, key for key
    # per set: Chamfer samples x refs and samples x samples; Chamfer refs x refs once (EMD: nearest neighbours)
    rr = [k for a, k in calls if a[1] is None and a[0] is cache.refs]
    assert len(calls) == 2 * 2 + 1 and len(rr) == 1
    # it survives pickling (a forked worker fills it) and keeps what it computed: no reference pair again
    again = pickle.loads(pickle.dumps(cache))
    calls.clear()
    solved.clear()
    assert point_cloud_metrics(sets[0], refs, emd="approx", ref_distances=again) == plain[0]
    fresh = ReferenceDistances(refs)
    fresh.matrix("emd")  # the full reference matrix: the search needs no reference pair
    n_again = sum(solved)
    solved.clear()
    assert point_cloud_metrics(sets[0], refs, emd="approx", ref_distances=fresh) == plain[0]
    assert len(calls) == 2 + 1 + 3 and n_again == sum(solved) > 0  # Chamfer refs x refs: a fresh cache
    # full matrices give the same numbers through the cache
    assert point_cloud_metrics(sets[1], refs, emd="approx", ref_distances=again, emd_full=True) == plain[1]
    # EMD with another accuracy is other values
    assert again.emd_known("approx", 0.01) is None
    with pytest.raises(ValueError, match="other references"):
        point_cloud_metrics(sets[0], refs[:6], emd="none", ref_distances=cache)
    with pytest.raises(ValueError, match="other references"):
        point_cloud_metrics(sets[0], refs + 1e-3, emd="none", ref_distances=cache)


def test_argument_order_matters(box_clouds):
    # A mode-collapsed model: every sample is the same reference shape.
    rng = np.random.default_rng(5)
    refs = box_clouds(rng, 10, 64)
    collapsed = np.repeat(refs[:1], 10, axis=0)
    right = point_cloud_metrics(collapsed, refs, emd="none")
    swapped = point_cloud_metrics(refs, collapsed, emd="none")
    assert right["COV-CD"] == pytest.approx(10.0)  # covers one of the ten references
    # MMD-CD is the mean over references of the distance to the closest sample (> 0: nine are missed).
    expected = np.mean(
        [chamfer_distance(torch.tensor(refs[j : j + 1]), torch.tensor(refs[:1])).item() for j in range(10)]
    )
    assert right["MMD-CD"] == pytest.approx(expected, rel=1e-6)
    # Swapped, every "reference" is a copy of a "sample": a perfect-looking MMD of 0.
    assert swapped["MMD-CD"] == 0.0


@pytest.mark.parametrize(
    ("samples", "refs", "match"),
    [
        (np.zeros((0, 10, 3)), np.zeros((2, 10, 3)), "empty"),
        (np.zeros((2, 10, 3)), np.full((2, 10, 3), np.nan), "NaN"),
        (np.zeros((2, 10, 3)), np.zeros((2, 12, 3)), "same number of points"),
    ],
)
def test_bad_sets_raise_input_error(samples, refs, match):
    with pytest.raises(InputError, match=match):
        point_cloud_metrics(samples, refs, emd="approx")
