"""The numpy splat renderer behind ``shapes.png``: z-buffer against brute force, orientation, grid layout."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from gen3d.errors import InputError
from gen3d.export.grid import BACKGROUND, LABEL_BAND, project, render_point_grid, render_points, view_rotation, zbuffer


def _brute_force_zbuffer(pixels, depth, h, w):
    out = np.full((h, w), -1)
    best = np.full((h, w), np.inf)
    for i, ((c, r), d) in enumerate(zip(pixels, depth, strict=True)):
        if 0 <= c < w and 0 <= r < h and d < best[r, c]:
            best[r, c], out[r, c] = d, i
    return out


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_zbuffer_matches_brute_force(seed):
    rng = np.random.default_rng(seed)
    pixels = rng.integers(-3, 12, size=(400, 2))  # some outside a 9 x 10 image, many collisions
    depth = rng.normal(size=400)
    if seed == 2:
        depth = np.round(depth, 1)  # many exact ties: the lower fragment index must win
    np.testing.assert_array_equal(zbuffer(pixels, depth, 9, 10), _brute_force_zbuffer(pixels, depth, 9, 10))


def test_view_rotation_is_a_rotation():
    r = view_rotation(35, 25)
    np.testing.assert_allclose(r @ r.T, np.eye(3), atol=1e-12)
    assert np.linalg.det(r) == pytest.approx(1.0)


def test_orientation_y_up_and_nearer_points_win():
    # Looking straight along -z (azimuth 0, elevation 0): +y is up in the image, +x is right.
    pts = np.array([[0, 1, 0], [0, -1, 0], [1, 0, 0], [-1, 0, 0]], dtype=np.float64)
    xy, depth = project(pts, 64, azimuth=0, elevation=0)
    assert xy[0, 1] < xy[1, 1]  # the +y point is on a smaller row (higher in the image)
    assert xy[2, 0] > xy[3, 0]
    # Two points on the same pixel: the one with larger z (towards the viewer) is drawn.
    near_far = np.array([[0, 0, 1.0], [0, 0, -1.0], [1, 1, 0], [-1, -1, 0]])
    img = render_points(near_far, size=32, azimuth=0, elevation=0, radius=1, color=(200, 100, 0))
    center = img[15:18, 15:18].reshape(-1, 3)
    assert (center[:, 0] == 200).any()  # full brightness: the nearest point's shade


def test_render_points_covers_the_shape():
    rng = np.random.default_rng(0)
    sphere = rng.normal(size=(3000, 3))
    sphere /= np.linalg.norm(sphere, axis=1, keepdims=True)
    img = render_points(sphere, size=64)
    covered = (img != np.array(BACKGROUND, dtype=np.uint8)).any(axis=-1)
    yy, xx = np.mgrid[:64, :64]
    disc = (xx + 0.5 - 32) ** 2 + (yy + 0.5 - 32) ** 2 < (0.8 * 32 * 0.88) ** 2
    assert covered[disc].mean() > 0.97  # the sphere's silhouette is filled
    assert not covered[:2].any() and not covered[-2:].any()  # margins stay empty


def test_grid_layout_labels_and_png(tmp_path):
    rng = np.random.default_rng(1)
    clouds = rng.normal(size=(5, 300, 3))
    path = tmp_path / "grid.png"
    img = render_point_grid(clouds, path, ncols=3, size=32, labels=[f"s{i}" for i in range(5)])
    assert img.shape == (2 * (32 + LABEL_BAND), 96, 3) and img.dtype == np.uint8
    np.testing.assert_array_equal(np.asarray(Image.open(path)), img)
    cell = img[32 + LABEL_BAND + LABEL_BAND :, 64:]  # the sixth cell is empty
    assert (cell == np.array(BACKGROUND, dtype=np.uint8)).all()
    np.testing.assert_array_equal(img[LABEL_BAND : LABEL_BAND + 32, :32], render_points(clouds[0], 32))
    assert (img[:LABEL_BAND, :32] != 255).any()  # the caption was drawn
    ragged = render_point_grid([clouds[0][:50], clouds[1]], size=32)  # clouds of different sizes
    assert ragged.shape == (32, 64, 3)


def test_grid_rejects_bad_input():
    with pytest.raises(InputError, match="no clouds"):
        render_point_grid([])
    with pytest.raises(InputError, match="2 labels for 1 clouds"):
        render_point_grid(np.zeros((1, 10, 3)), labels=["a", "b"])
    with pytest.raises(InputError, match="NaN or Inf"):
        render_points(np.full((10, 3), np.nan))
