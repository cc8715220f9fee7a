"""Preview cameras, colours and the numpy entry to the point rasteriser (``renderers.points``)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from gen3d.data.multiview import look_at_c2w
from gen3d.export.raster import colormap, fit_view, height_colors, orbit_poses, render_points


def test_look_at_is_a_rigid_frame_looking_at_the_target():
    eye, target = np.array([1.0, 2.0, 3.0]), np.array([-0.5, 0.2, 0.1])
    c2w = look_at_c2w(eye, up=(0.0, 1.0, 0.0), target=target)
    rot = c2w[:3, :3]
    np.testing.assert_allclose(rot.T @ rot, np.eye(3), atol=1e-12)
    assert np.linalg.det(rot) == pytest.approx(1.0)
    forward = -rot[:, 2]
    np.testing.assert_allclose(forward, (target - eye) / np.linalg.norm(target - eye), atol=1e-12)
    assert rot[1, 1] > 0  # camera up has a positive world-y component
    assert abs(rot[1, 0]) < 1e-12  # camera right stays horizontal
    straight_down = look_at_c2w(np.array([0.0, 3.0, 0.0]), up=(0.0, 1.0, 0.0))  # along the up axis: still a rotation
    assert np.linalg.det(straight_down[:3, :3]) == pytest.approx(1.0)


def test_orbit_poses_lie_on_the_circle_at_the_elevation():
    target = np.array([0.1, -0.2, 0.3])
    poses = orbit_poses(8, radius=2.5, elevation_deg=30.0, target=target)
    assert poses.shape == (8, 4, 4)
    offsets = poses[:, :3, 3] - target
    np.testing.assert_allclose(np.linalg.norm(offsets, axis=1), 2.5)
    np.testing.assert_allclose(np.degrees(np.arcsin(offsets[:, 1] / 2.5)), 30.0)
    azimuths = np.degrees(np.arctan2(offsets[:, 0], offsets[:, 2]))
    np.testing.assert_allclose(np.diff(np.unwrap(np.radians(azimuths))), 2 * np.pi / 8)
    np.testing.assert_allclose(-poses[:, :3, 2], -offsets / 2.5, atol=1e-12)  # every camera looks at the target


def test_fit_view_keeps_the_cloud_inside_the_view_cone():
    rng = np.random.default_rng(0)
    pts = rng.normal(size=(500, 3)) * [2.0, 0.5, 0.3] + [1.0, -2.0, 0.5]
    center, distance = fit_view(pts, fov_deg=40.0, margin=1.0)
    np.testing.assert_allclose(center, 0.5 * (pts.min(0) + pts.max(0)))
    reach = np.linalg.norm(pts - center, axis=1).max()
    assert distance * math.sin(math.radians(20.0)) == pytest.approx(reach)


def test_render_points_projects_like_a_pinhole_and_keeps_the_nearest_point():
    H, W, fov = 60, 80, 50.0
    c2w = look_at_c2w(np.array([0.0, 0.0, 5.0]), up=(0.0, 1.0, 0.0))
    focal = 0.5 * W / math.tan(math.radians(fov) / 2)  # the field of view spans the width
    # A point off-axis: expected pixel from the pinhole model, computed by hand.
    p = np.array([[0.4, -0.3, 1.0]])  # 4 units in front of the camera
    col = focal * 0.4 / 4.0 + W / 2
    row = focal * 0.3 / 4.0 + H / 2
    img = render_points(p, c2w, (H, W), colors=np.array([[255, 0, 0]], np.uint8), fov_deg=fov, radius_px=0.5)
    redness = 255 - img[..., 1].astype(int)
    assert np.unravel_index(redness.argmax(), redness.shape) == (int(row), int(col))
    assert (redness > 0).sum() <= 9  # a splat of a few pixels
    # Two points on the same ray: the nearer colour wins whatever the input order.
    ray = np.array([[0.0, 0.0, 2.0], [0.0, 0.0, -1.0]])
    colors = np.array([[0, 200, 0], [0, 0, 200]], np.uint8)
    a, b = (
        render_points(ray[order], c2w, (H, W), colors=colors[order], fov_deg=fov, radius_px=3.0, depth_shading=0.0)
        for order in ([0, 1], [1, 0])
    )
    np.testing.assert_array_equal(a, b)
    red, green, blue = a[H // 2, W // 2].tolist()
    assert green > 170 and blue < 30 and red < 10  # the far blue splat only shows through the near one's edge
    # Depth shading: the farther of two green points is darker; points behind the camera are not drawn.
    near_far = np.array([[-1.0, 0.0, 1.0], [1.0, 0.0, -1.0]])  # depths 4 and 6, left and right of the centre
    img = render_points(near_far, c2w, (H, W), colors=colors[[0, 0]], fov_deg=fov, radius_px=3.0, depth_shading=0.35)
    left, right = img[:, : W // 2].reshape(-1, 3), img[:, W // 2 :].reshape(-1, 3)
    near_px, far_px = left[left[:, 0].argmin()], right[right[:, 0].argmin()]  # the splat centres
    assert near_px[0] < 20 and far_px[0] < 20  # both drawn, nearly opaque at their centres
    assert near_px[1] - far_px[1] > 50  # green 200 at the nearest depth, 200 * (1 - 0.35) at the farthest
    behind = render_points(np.array([[0.0, 0.0, 6.0]]), c2w, (H, W))
    assert np.all(behind == 255)


def test_colormap_and_height_colors():
    np.testing.assert_allclose(colormap(np.array([0.0, 1.0])), colormap(np.array([-3.0, 7.0])))
    pts = np.zeros((5, 3))
    pts[:, 1] = np.arange(5)
    cols = height_colors(pts)
    assert cols.dtype == np.uint8 and cols.shape == (5, 3)
    assert len({tuple(c) for c in cols}) == 5
    assert np.all(height_colors(np.zeros((3, 3))) == height_colors(np.zeros((3, 3)))[0])
