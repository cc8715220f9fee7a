"""Cameras, the preview rasteriser and turntable animations."""

from __future__ import annotations

import math

import numpy as np
import pytest

from gen3d.errors import Gen3DError, InputError
from gen3d.export.raster import colormap, height_colors, look_at, orbit_poses, render_points
from gen3d.export.turntable import (
    has_mp4_backend,
    turntable_field,
    turntable_mesh,
    turntable_points,
    write_animation,
)


def test_look_at_is_a_rigid_frame_looking_at_the_target():
    eye, target = np.array([1.0, 2.0, 3.0]), np.array([-0.5, 0.2, 0.1])
    c2w = look_at(eye, target)
    rot = c2w[:3, :3]
    np.testing.assert_allclose(rot.T @ rot, np.eye(3), atol=1e-12)
    assert np.linalg.det(rot) == pytest.approx(1.0)
    forward = -rot[:, 2]
    np.testing.assert_allclose(forward, (target - eye) / np.linalg.norm(target - eye), atol=1e-12)
    assert rot[1, 1] > 0  # camera up has a positive world-y component
    assert abs(rot[1, 0]) < 1e-12  # camera right stays horizontal


def test_orbit_poses_lie_on_the_circle_at_the_elevation():
    target = np.array([0.1, -0.2, 0.3])
    poses = orbit_poses(8, radius=2.5, elevation_deg=30.0, target=target)
    assert poses.shape == (8, 4, 4)
    offsets = poses[:, :3, 3] - target
    np.testing.assert_allclose(np.linalg.norm(offsets, axis=1), 2.5)
    np.testing.assert_allclose(np.degrees(np.arcsin(offsets[:, 1] / 2.5)), 30.0)
    azimuths = np.degrees(np.arctan2(offsets[:, 0], offsets[:, 2]))
    np.testing.assert_allclose(np.diff(np.unwrap(np.radians(azimuths))), 2 * np.pi / 8)


def test_render_points_projects_like_a_pinhole_and_keeps_the_nearest_point():
    H, W, fov = 60, 80, 50.0
    c2w = look_at(np.array([0.0, 0.0, 5.0]), np.zeros(3))
    focal = 0.5 * H / math.tan(math.radians(fov) / 2)
    # A point off-axis: expected pixel from the pinhole model, computed by hand.
    p = np.array([[0.4, -0.3, 1.0]])  # 4 units in front of the camera
    col = focal * 0.4 / 4.0 + W / 2
    row = focal * 0.3 / 4.0 + H / 2
    img = render_points(p, c2w, (H, W), colors=np.array([[255, 0, 0]], np.uint8), fov_deg=fov, radius_px=0.5)
    ys, xs = np.nonzero(np.any(img != 255, axis=-1))
    assert list(zip(ys, xs, strict=True)) == [(int(row), int(col))]
    # Two points on the same ray: the nearer colour wins whatever the input order.
    ray = np.array([[0.0, 0.0, 2.0], [0.0, 0.0, -1.0]])
    colors = np.array([[0, 200, 0], [0, 0, 200]], np.uint8)
    for order in ([0, 1], [1, 0]):
        img = render_points(ray[order], c2w, (H, W), colors=colors[order], fov_deg=fov, depth_shading=0.0)
        centre = img[H // 2, W // 2]
        assert centre[1] > 100 and centre[2] == 0
    # Points behind the camera are not drawn.
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


def _asymmetric_cloud() -> np.ndarray:
    rng = np.random.default_rng(0)
    body = rng.normal(size=(1500, 3)) * [0.5, 0.1, 0.1]
    fin = rng.normal(size=(300, 3)) * 0.05 + [0.4, 0.3, 0.0]
    return np.concatenate([body, fin]).astype(np.float32)


def test_point_turntable_gif_has_the_frames_and_size(tmp_path):
    from PIL import Image

    frames = turntable_points(_asymmetric_cloud(), n_frames=6, size=64)
    assert len(frames) == 6 and all(f.shape == (64, 64, 3) and f.dtype == np.uint8 for f in frames)
    assert all(np.any(f != 255) for f in frames)  # the cloud is in view in every frame
    assert not np.array_equal(frames[0], frames[1])  # the camera moves
    path = write_animation(frames, tmp_path / "spin.gif", fps=10)
    with Image.open(path) as gif:  # read back with Pillow, independently of imageio
        assert gif.format == "GIF" and gif.size == (64, 64) and gif.n_frames == 6
        assert gif.info.get("loop") == 0
        assert gif.info.get("duration") == 100


def test_mesh_and_field_turntables(tmp_path):
    import trimesh

    mesh = trimesh.creation.box(extents=(1.0, 0.5, 0.25))
    frames = turntable_mesh(mesh, n_frames=3, size=48)
    assert len(frames) == 3 and frames[0].shape == (48, 48, 3)
    covered = np.mean(np.any(frames[0] != 255, axis=-1))
    assert 0.05 < covered < 0.9

    seen = []

    def render(c2w, h, w):
        seen.append(c2w[:3, 3].copy())
        return np.full((h, w, 3), 0.5)

    frames = turntable_field(render, n_frames=4, size=16, radius=3.0)
    assert [f.shape for f in frames] == [(16, 16, 3)] * 4
    assert frames[0][0, 0].tolist() == [128, 128, 128]
    np.testing.assert_allclose(np.linalg.norm(np.array(seen), axis=1), 3.0)


def test_animation_errors(tmp_path):
    frames = [np.zeros((8, 8, 3), np.uint8)]
    with pytest.raises(InputError, match="unsupported animation format"):
        write_animation(frames, tmp_path / "a.avi")
    with pytest.raises(InputError, match="no frames"):
        write_animation([], tmp_path / "a.gif")
    with pytest.raises(InputError):
        turntable_points(np.zeros((0, 3)))
    if not has_mp4_backend():
        with pytest.raises(Gen3DError, match="imageio-ffmpeg"):
            write_animation(frames, tmp_path / "a.mp4")
    assert list(tmp_path.iterdir()) == []
