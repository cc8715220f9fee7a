"""P-FID / P-KID: fixed-camera renders of point clouds scored with a tiny TorchScript stand-in for Inception."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from gen3d.data.shapes import shape_points
from gen3d.errors import InputError
from gen3d.metrics.point_fid import point_fid, render_views

POINTS = 1024


class _PooledStandIn(torch.nn.Module):
    """Like fid-helper's file (forward(x) on 299 x 299 inputs): 2 x 2 pooled means and mean squares."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pooled = torch.nn.functional.adaptive_avg_pool2d(x, 2).flatten(1)
        squares = torch.nn.functional.adaptive_avg_pool2d(x * x, 2).flatten(1)
        return torch.cat([pooled, squares], dim=1)


@pytest.fixture(scope="module")
def stand_in(tmp_path_factory) -> str:
    path = tmp_path_factory.mktemp("pfid") / "standin.pt"
    torch.jit.script(_PooledStandIn()).save(str(path))
    return str(path)


@pytest.fixture(scope="module")
def chairs() -> np.ndarray:
    """(12, POINTS, 3) procedural chairs: the first 6 and the last 6 are disjoint sets."""
    return np.stack([shape_points("chair", i, points=POINTS) for i in range(12)])


def _blobs(count: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return (rng.normal(size=(count, POINTS, 3)) * rng.uniform(0.1, 0.3, size=(count, 1, 3))).astype(np.float32)


@pytest.mark.parametrize("shading", ["normals", "depth"])
def test_renders_are_deterministic_and_cover_the_cloud(chairs, shading):
    images = render_views(chairs[:2], views=3, size=64, shading=shading)
    assert images.shape == (6, 64, 64, 3) and images.dtype == np.uint8
    np.testing.assert_array_equal(images, render_views(chairs[:2], views=3, size=64, shading=shading))
    grey = images.astype(np.int64)
    assert (grey[..., 0] == grey[..., 1]).all() and (grey[..., 1] == grey[..., 2]).all()
    white = (images == 255).all(axis=-1)  # (6, 64, 64)
    covered = (images < 200).all(axis=-1)
    for k in range(6):
        assert 0.05 < covered[k].mean() < 0.6, "the cloud covers part of the image"
        # The border (the unit box's bounding sphere fits inside the image) stays white.
        assert white[k, 0].all() and white[k, -1].all() and white[k, :, 0].all() and white[k, :, -1].all()
    assert not np.array_equal(images[0], images[1]), "the views differ"


def test_renders_ignore_placement_and_scale(chairs):
    moved = chairs[:2] * 3.0 + np.array([5.0, -2.0, 1.0], dtype=np.float32)
    np.testing.assert_allclose(
        render_views(moved, views=2, size=48).astype(float), render_views(chairs[:2], views=2, size=48), atol=2
    )


def test_point_fid_of_a_set_with_itself_is_zero(chairs, stand_in):
    result = point_fid(chairs[:6], chairs[:6], weights=stand_in, views=2, size=64, kid_subsets=5, device="cpu")
    assert abs(result["PFID"]) < 1e-6
    # KID is an unbiased estimate over random subsets: around 0, not exactly 0, for identical sets.
    assert abs(result["PKID"]) < 1e-2
    protocol = result["protocol"]
    assert protocol["views"] == 2 and protocol["size"] == 64 and protocol["shading"] == "normals"
    assert protocol["n_samples"] == 6 and protocol["n_refs"] == 6 and protocol["weights_id"].startswith("standin.pt")


def test_blobs_score_far_worse_than_other_chairs(chairs, stand_in):
    kwargs = dict(weights=stand_in, views=2, size=64, kid_subsets=5, device="cpu")
    oracle = point_fid(chairs[:6], chairs[6:], **kwargs)
    blobs = point_fid(_blobs(6), chairs[6:], **kwargs)
    assert blobs["PFID"] > 10 * oracle["PFID"] > 0
    assert blobs["PKID"] > oracle["PKID"]


@pytest.mark.parametrize(
    ("clouds", "match"),
    [
        (np.zeros((4, 10, 2)), r"\(N, P, 3\)"),
        (np.zeros((10, 3)), r"\(N, P, 3\)"),
        (np.zeros((1, 10, 3)), "at least 2 clouds"),
        (np.zeros((3, 2, 3)), "at least 3 points"),
        (np.concatenate([np.zeros((2, 5, 3)), np.full((1, 5, 3), np.nan)]), "NaN"),
        (np.full((2, 5, 3), np.inf), "NaN or Inf"),
        (np.array([[["a", "b", "c"]] * 3] * 2), "real numbers"),
    ],
)
def test_bad_clouds_raise_input_error(clouds, match, stand_in):
    with pytest.raises(InputError, match=match):
        render_views(clouds)
    with pytest.raises(InputError, match=match):
        point_fid(np.zeros((2, 10, 3)), clouds, weights=stand_in, device="cpu")


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"views": 0}, "views"),
        ({"size": 4}, "size"),
        ({"point_size": -1.0}, "point_size"),
        ({"point_size": float("nan")}, "point_size"),
        ({"shading": "colour"}, "shading"),
    ],
)
def test_bad_settings_raise_input_error(kwargs, match):
    with pytest.raises(InputError, match=match):
        render_views(np.zeros((2, 10, 3)), **kwargs)
