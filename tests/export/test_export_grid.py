"""Point-cloud thumbnails and grids (``shapes.png``): orientation, occlusion, coverage, grid layout."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from gen3d.errors import InputError
from gen3d.export.grid import BACKGROUND, LABEL_BAND, render_point_grid, render_thumbnails


def render_thumbnail(points, size=128, **kwargs):
    return render_thumbnails([points], size, **kwargs)[0]


def _drawn(img: np.ndarray) -> np.ndarray:
    return (img != np.array(BACKGROUND, dtype=np.uint8)).any(axis=-1)


def test_thumbnail_is_y_up_and_x_right_and_nearer_points_win():
    # Seen head-on (azimuth 0, elevation 0), a large blob at +y lands in the top half of the image and one at
    # +x in the right half; a small blob sits at the origin.
    rng = np.random.default_rng(0)
    small, large = rng.normal(size=(100, 3)) * 0.02, rng.normal(size=(1000, 3)) * 0.15
    for offset, half in (([0, 1, 0], (slice(0, 32), slice(None))), ([1, 0, 0], (slice(None), slice(32, 64)))):
        drawn = _drawn(render_thumbnail(np.concatenate([small, large + offset]), 64, azimuth=0, elevation=0))
        assert drawn[half].sum() > 0.7 * drawn.sum()  # mirrored, it would hold about a fifth
    # Two points in line with the camera (+z is towards it): the nearer one is drawn, at full brightness.
    near_far = np.array([[0, 0, 1.0], [0, 0, -1.0], [1, 1, 0], [-1, -1, 0]])
    img = render_thumbnail(near_far, size=32, azimuth=0, elevation=0, radius=3.0, color=(200, 100, 0))
    assert img[14:18, 14:18, 0].max() > 180  # the far point is shaded to 200 * (1 - 0.55) = 90


def test_thumbnail_covers_the_shape():
    rng = np.random.default_rng(0)
    sphere = rng.normal(size=(3000, 3))
    sphere /= np.linalg.norm(sphere, axis=1, keepdims=True)
    covered = _drawn(render_thumbnail(sphere, size=64))
    yy, xx = np.mgrid[:64, :64]
    r2 = (xx + 0.5 - 32) ** 2 + (yy + 0.5 - 32) ** 2
    assert covered[r2 < 24**2].mean() > 0.9  # the sphere's silhouette (radius 28 px) is filled
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
    np.testing.assert_array_equal(img[LABEL_BAND : LABEL_BAND + 32, :32], render_thumbnail(clouds[0], 32))
    assert (img[:LABEL_BAND, :32] != 255).any()  # the caption was drawn
    ragged = render_point_grid([clouds[0][:50], clouds[1]], size=32)  # clouds of different sizes
    assert ragged.shape == (32, 64, 3)


def test_grid_rejects_bad_input():
    with pytest.raises(InputError, match="no clouds"):
        render_point_grid([])
    with pytest.raises(InputError, match="2 labels for 1 clouds"):
        render_point_grid(np.zeros((1, 10, 3)), labels=["a", "b"])
    with pytest.raises(InputError, match="NaN or Inf"):
        render_thumbnail(np.full((10, 3), np.nan))
