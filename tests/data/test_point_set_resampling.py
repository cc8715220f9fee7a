"""Reading sets whose clouds differ in size, and the seeded resampling that brings them to one count."""

from __future__ import annotations

import numpy as np
import pytest

from gen3d.data.io import load_point_set, read_point_set, resample_points, save_points
from gen3d.errors import InputError


def _distinct_clouds(counts: list[int]) -> list[np.ndarray]:
    """Clouds whose points are all different (row ``j`` of cloud ``i`` is ``(i, j, -j)``)."""
    return [
        np.stack([np.full(n, i), np.arange(n), -np.arange(n)], axis=1).astype(np.float32) for i, n in enumerate(counts)
    ]


def test_read_point_set_keeps_each_cloud_as_stored(tmp_path):
    clouds = _distinct_clouds([30, 25, 40])
    for i, cloud in enumerate(clouds):
        save_points(tmp_path / "ragged" / f"{i}.npy", cloud)
    got = read_point_set(tmp_path / "ragged")
    assert [len(c) for c in got] == [30, 25, 40]
    for a, b in zip(got, clouds, strict=True):
        np.testing.assert_array_equal(a, b)
    with pytest.raises(InputError, match="all clouds need the same count"):  # the strict loader still refuses
        load_point_set(tmp_path / "ragged")
    stacked = np.stack(_distinct_clouds([12, 12]))
    save_points(tmp_path / "set.npz", stacked)
    assert [c.shape for c in read_point_set(tmp_path / "set.npz")] == [(12, 3), (12, 3)]
    with pytest.raises(InputError, match="no such file or folder"):
        read_point_set(tmp_path / "nowhere")


def test_resample_points_draws_distinct_points_in_order_with_the_seed():
    clouds = _distinct_clouds([30, 25, 40])
    out = resample_points(clouds, 25, seed=7)
    assert out.shape == (3, 25, 3) and out.dtype == np.float32
    np.testing.assert_array_equal(out[1], clouds[1])  # already at the count: kept as it is
    for i in (0, 2):
        rows = out[i][:, 1].astype(int)  # the original row of every kept point
        assert len(set(rows)) == 25 and (np.diff(rows) > 0).all()  # without replacement, in stored order
        np.testing.assert_array_equal(out[i], clouds[i][rows])
        keep = np.sort(np.random.default_rng([7, i]).choice(len(clouds[i]), 25, replace=False))
        np.testing.assert_array_equal(rows, keep)  # the documented draw
    np.testing.assert_array_equal(resample_points(clouds, 25, seed=7), out)
    assert not np.array_equal(resample_points(clouds, 25, seed=8)[0], out[0])
    stacked = np.stack(_distinct_clouds([9, 9]))
    assert resample_points(stacked, 9) is stacked  # nothing to do: no copy


def test_resample_points_refuses_clouds_that_are_too_small():
    with pytest.raises(InputError, match="cloud 1 has 10 points, fewer than the 12") as info:
        resample_points(_distinct_clouds([20, 10]), 12, source="refs/")
    assert info.value.path == "refs/"
