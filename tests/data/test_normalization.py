"""Normalisation: PointFlow's global statistics, LION's box convention, numpy/torch round trips."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

from gen3d.data.normalize import GlobalNorm, box_stats, normalize, normalize_box
from gen3d.errors import InputError


def _clouds(seed=0, n=6, p=200):
    rng = np.random.default_rng(seed)
    # Anisotropic, off-centre clouds so per-axis and flattened statistics differ.
    return (rng.normal(size=(n, p, 3)) * [0.3, 1.2, 0.6] + [2.0, -1.0, 0.5]).astype(np.float32)


def test_fit_matches_pointflow_formula():
    x = _clouds()
    norm = GlobalNorm.fit(x)
    flat = [float(v) for v in x.reshape(-1)]  # every coordinate of every point, as Python floats
    count = len(flat) // 3
    mean = [math.fsum(flat[k::3]) / count for k in range(3)]
    scalar_mean = math.fsum(flat) / len(flat)
    std = math.sqrt(math.fsum((v - scalar_mean) ** 2 for v in flat) / len(flat))  # PointFlow: reshape(-1).std()
    np.testing.assert_allclose(norm.mean, mean, rtol=1e-12, atol=1e-12)
    assert float(norm.std) == pytest.approx(std, rel=1e-12)
    # It is not "centre per axis, then std": that value is smaller for off-centre data like this.
    centred = math.sqrt(math.fsum((v - mean[i % 3]) ** 2 for i, v in enumerate(flat)) / len(flat))
    assert float(norm.std) > centred * 1.05


def test_from_moments_equals_fit():
    x = _clouds(1).astype(np.float64)
    norm = GlobalNorm.from_moments(x.shape[0] * x.shape[1], x.reshape(-1, 3).sum(axis=0), float((x**2).sum()))
    ref = GlobalNorm.fit(x)
    np.testing.assert_allclose(norm.mean, ref.mean, rtol=1e-12)
    assert float(norm.std) == pytest.approx(float(ref.std), rel=1e-9)


def test_apply_centres_each_axis():
    x = _clouds(2)
    y = GlobalNorm.fit(x).apply(x.astype(np.float64))
    np.testing.assert_allclose(y.reshape(-1, 3).mean(axis=0), 0.0, atol=1e-9)


@pytest.mark.parametrize("shape", [(50, 3), (4, 50, 3), (2, 3, 7, 3)])
@pytest.mark.parametrize("kind", ["np32", "np64", "torch32", "torch64"])
def test_round_trip_numpy_and_torch(shape, kind):
    norm = GlobalNorm.fit(_clouds(3))
    raw = np.random.default_rng(4).normal(size=shape)
    x = {
        "np32": raw.astype(np.float32),
        "np64": raw,
        "torch32": torch.tensor(raw, dtype=torch.float32),
        "torch64": torch.tensor(raw, dtype=torch.float64),
    }[kind]
    y = norm.apply(x)
    z = norm.invert(y)
    assert type(y) is type(x) and y.dtype == x.dtype and tuple(y.shape) == shape
    expected = (raw - norm.mean) / float(norm.std)
    tol = 1e-6 if "32" in kind else 1e-12
    np.testing.assert_allclose(np.asarray(y), expected, rtol=tol, atol=tol)
    np.testing.assert_allclose(np.asarray(z), raw, rtol=tol * 10, atol=tol * 10)


def test_dict_and_file_round_trip(tmp_path):
    norm = GlobalNorm.fit(_clouds(5))
    again = GlobalNorm.from_dict(json.loads(json.dumps(norm.to_dict())))
    assert again == norm
    norm.save(tmp_path / "normalization.json")
    assert GlobalNorm.load(tmp_path / "normalization.json") == norm
    assert json.loads((tmp_path / "normalization.json").read_text())["mode"] == "global"


def test_bad_statistics_and_inputs():
    with pytest.raises(InputError, match="NaN or Inf"):
        GlobalNorm.fit(np.array([[0.0, np.nan, 1.0]]))
    with pytest.raises(InputError, match="zero spread"):
        GlobalNorm.fit(np.ones((2, 5, 3)))
    with pytest.raises(InputError, match=r"^refs\.npy: cannot fit a normalisation: all coordinates are equal"):
        GlobalNorm.fit(np.ones((2, 5, 3)), source="refs.npy")
    with pytest.raises(InputError, match=r"\(\.\.\., 3\)"):
        GlobalNorm.fit(np.zeros((5, 2)))
    with pytest.raises(InputError, match="expected keys"):
        GlobalNorm.from_dict({"mean": [0, 0, 0]})
    with pytest.raises(InputError, match="invalid normalisation"):
        GlobalNorm.from_dict({"mean": [0, 0, 0], "std": -1.0})


def test_load_reports_missing_and_corrupt_files(tmp_path):
    with pytest.raises(InputError, match="no such normalisation file"):
        GlobalNorm.load(tmp_path / "none.json")
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(InputError, match="bad.json"):
        GlobalNorm.load(tmp_path / "bad.json")


def test_normalize_box_convention():
    rng = np.random.default_rng(6)
    x = rng.uniform(-1, 1, size=(5, 100, 3)) * rng.uniform(0.1, 10, size=(5, 1, 3)) + rng.normal(size=(5, 1, 3)) * 5
    y = normalize_box(x)
    for shape_in, shape_out in zip(x, y, strict=True):
        lo, hi = shape_out.min(axis=0), shape_out.max(axis=0)
        np.testing.assert_allclose((lo + hi) / 2, 0.0, atol=1e-12)  # box centred
        assert (hi - lo).max() == pytest.approx(1.0)  # longest side spans [-0.5, 0.5]
        # LION: 0.5 * (x - c) / (max extent / 2), written out from the raw shape.
        c = (shape_in.max(axis=0) + shape_in.min(axis=0)) / 2
        half = (shape_in.max(axis=0) - shape_in.min(axis=0)).max() / 2
        np.testing.assert_allclose(shape_out, 0.5 * (shape_in - c) / half, rtol=1e-12, atol=1e-12)
    # Invariant to translation and positive uniform scaling of each shape.
    np.testing.assert_allclose(normalize_box(3.7 * x + [1.0, -2.0, 0.5]), y, atol=1e-12)


def test_box_torch_matches_numpy():
    x = np.random.default_rng(7).normal(size=(3, 64, 3))
    np.testing.assert_allclose(normalize_box(torch.tensor(x)).numpy(), normalize_box(x), rtol=1e-12)
    c, s = box_stats(x)
    assert c.shape == (3, 1, 3) and s.shape == (3, 1, 1)


def test_normalize_dispatch():
    x = _clouds(8)
    stats = GlobalNorm.fit(x)
    np.testing.assert_allclose(normalize(x, "global", stats), stats.apply(x))
    np.testing.assert_allclose(normalize(x, "global"), stats.apply(x))  # fitted on x when no stats
    np.testing.assert_allclose(normalize(x, "box"), normalize_box(x))
    assert normalize(x, "none") is x
    with pytest.raises(InputError, match="unknown normalisation mode 'unit'"):
        normalize(x, "unit")
