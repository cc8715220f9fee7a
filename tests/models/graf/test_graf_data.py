"""Multi-view renders of the procedural shapes and GRAF's dataset layouts (fixtures written in tmp_path)."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
from PIL import Image

from gen3d.data.multiview import (
    GRAF_DATASETS,
    graf_image_dataset,
    look_at_c2w,
    render_mesh,
    render_multiview,
    sphere_point,
)
from gen3d.errors import InputError


def test_render_mesh_sphere_silhouette_and_shading():
    import trimesh

    sphere = trimesh.creation.icosphere(subdivisions=5, radius=0.5)
    size, fov, dist = 64, 30.0, 2.5
    c2w = look_at_c2w(dist * sphere_point(0.1, 0.3))
    albedo = np.array([0.8, 0.4, 0.2])
    img = render_mesh(sphere.vertices, sphere.faces, c2w, size, fov, albedo, background=1.0, supersample=1)
    # Silhouette: a disk of angular radius asin(r / d), i.e. f * tan(asin(r / d)) pixels.
    focal = size / 2 / math.tan(math.radians(fov) / 2)
    r_pix = focal * math.tan(math.asin(0.5 / dist))
    covered = (img != 255).any(-1).sum()
    assert abs(covered - math.pi * r_pix**2) < 0.03 * math.pi * r_pix**2
    # The pixel nearest the image centre sees the sphere head-on: normal = direction to the camera.
    n = c2w[:3, 2]
    light = np.array([0.3, 0.4, 0.866]) / np.linalg.norm([0.3, 0.4, 0.866])
    expected = albedo * (0.35 + 0.65 * max(0.0, float(n @ light)))
    np.testing.assert_allclose(img[size // 2, size // 2] / 255.0, expected, atol=0.02)


def test_render_multiview_is_deterministic(tmp_path):
    a = render_multiview(tmp_path / "a", "mug", per_class=2, views=2, size=16, seed=3)
    b = render_multiview(tmp_path / "b", ["mug"], per_class=2, views=2, size=16, seed=3)
    c = render_multiview(tmp_path / "c", "mug", per_class=2, views=2, size=16, seed=3, first_index=2)
    files = sorted(p.name for p in a.glob("*.png"))
    assert files == ["mug_0000_00.png", "mug_0000_01.png", "mug_0001_00.png", "mug_0001_01.png"]
    for f in files:
        assert (a / f).read_bytes() == (b / f).read_bytes()
    assert (a / "mug_0000_00.png").read_bytes() != (c / "mug_0002_00.png").read_bytes()
    manifest = json.loads((a / "multiview.json").read_text())
    assert len(manifest["images"]) == 4 and manifest["config"]["size"] == 16
    v0, v1 = manifest["config"]["range_v"]
    assert all(v0 <= im["v"] <= v1 for im in manifest["images"])
    img = np.asarray(Image.open(a / files[0]))
    assert img.shape == (16, 16, 3) and (img != 255).any() and (img == 255).all(-1).any()  # object on white
    with pytest.raises(InputError):
        render_multiview(tmp_path / "d", "no_such_class", per_class=1, views=1, size=16)
    with pytest.raises(InputError):
        render_multiview(tmp_path / "e", "mug", per_class=1, views=1, size=16, radius=0.5)


def test_multiview_command_line(tmp_path, capsys):
    from gen3d.cli.main import main as gen3d_main

    render_multiview(tmp_path / "mv", "chair", per_class=1, views=2, size=8)
    argv = ["data", "multiview", "--out", str(tmp_path / "cli"), "--classes", "chair", "--per-class", "1"]
    assert gen3d_main([*argv, "--views", "2", "--size", "8"]) == 0
    assert "wrote 2 images" in capsys.readouterr().out
    for a, b in zip(sorted((tmp_path / "mv").glob("*.png")), sorted((tmp_path / "cli").glob("*.png")), strict=True):
        assert a.name == b.name and a.read_bytes() == b.read_bytes()  # `gen3d data multiview` is the same command


def _save(path, array, fmt):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).save(path, format=fmt, quality=95)


def test_carla_layout(tmp_path):
    for i in range(3):  # Carla: a flat folder of PNGs (GRAF's data/carla/*.png)
        _save(tmp_path / "carla" / f"{i:06d}.png", np.full((128, 128, 3), 40 * i, np.uint8), "PNG")
    ds = graf_image_dataset(tmp_path / "carla", "carla", size=32)
    assert len(ds) == 3
    x = ds[2]
    assert x.shape == (3, 32, 32) and torch.allclose(x, torch.full_like(x, 80 / 127.5 - 1))


def test_celeba_layout_center_crop(tmp_path):
    # img_align_celeba: 178 x 218 JPEGs; GRAF keeps the central 108 x 108 (CenterCrop(108)) then resizes.
    img = np.zeros((218, 178, 3), np.uint8)
    img[...] = (0, 0, 255)
    top, left = (218 - 108) // 2, (178 - 108) // 2
    img[top : top + 108, left : left + 108] = (255, 0, 0)
    for name in ("000001.jpg", "000002.jpg"):
        _save(tmp_path / "img_align_celeba" / name, img, "JPEG")
    ds = graf_image_dataset(tmp_path / "img_align_celeba", "celeba", size=16, train=False)
    x = (ds[0] + 1) / 2  # (3, 16, 16) in [0, 1]
    assert x[0].min() > 0.85 and x[2].max() < 0.15  # only the red centre survives the crop
    assert ds.hflip is False and graf_image_dataset(tmp_path / "img_align_celeba", "celeba", 16).hflip is True
    assert GRAF_DATASETS["celeba"].center_crop == 108


def test_cats_layout(tmp_path):
    # After GRAF's data/preprocess_cats.py: cats/CAT_00/*.jpg (64 x 64 crops), with .cat annotations alongside.
    for d in ("CAT_00", "CAT_01"):
        _save(tmp_path / "cats" / d / "00000001_000.jpg", np.full((64, 64, 3), 128, np.uint8), "JPEG")
        (tmp_path / "cats" / d / "00000001_000.jpg.cat").write_text("9 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18\n")
    ds = graf_image_dataset(tmp_path / "cats", "cats", size=32)
    assert len(ds) == 2 and ds[0].shape == (3, 32, 32)
    _save(tmp_path / "flat" / "a.jpg", np.zeros((8, 8, 3), np.uint8), "JPEG")
    with pytest.raises(InputError, match="CAT_"):
        graf_image_dataset(tmp_path / "flat", "cats")
    with pytest.raises(InputError):
        graf_image_dataset(tmp_path / "nowhere", "carla")
    with pytest.raises(InputError):
        graf_image_dataset(tmp_path / "cats", "imagenet")
