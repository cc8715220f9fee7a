"""Turntable animations of point clouds, meshes and fields, and the animation writer."""

from __future__ import annotations

import numpy as np
import pytest

from gen3d.errors import Gen3DError, InputError
from gen3d.export.turntable import (
    has_mp4_backend,
    turntable_field,
    turntable_mesh,
    turntable_points,
    write_animation,
)


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
