"""Image folders for GRAF: PNG/JPEG fixtures written with PIL, value range, crop/resize, bad files."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from gen3d.data.images import ImageFolderDataset, list_image_files, load_image
from gen3d.errors import InputError


def _solid(path, color, size=(20, 20), mode="RGB"):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new(mode, size, color).save(path)
    return path


def test_recursive_sorted_listing(tmp_path):
    for rel in ["b/2.png", "a/1.JPG", "a/0.jpeg", "top.png", "skip.txt", "skip.gif"]:
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_bytes(b"")
    expected = ["a/0.jpeg", "a/1.JPG", "b/2.png", "top.png"]
    assert [f.relative_to(tmp_path).as_posix() for f in list_image_files(tmp_path)] == expected


def test_items_are_chw_in_minus_one_one(tmp_path):
    _solid(tmp_path / "red.png", (255, 0, 0))
    _solid(tmp_path / "sub" / "gray.jpg", (128, 128, 128))
    ds = ImageFolderDataset(tmp_path, size=8)
    assert len(ds) == 2
    red, gray = ds[0], ds[1]
    assert red.shape == (3, 8, 8) and red.dtype == torch.float32
    torch.testing.assert_close(red[0], torch.ones(8, 8))
    torch.testing.assert_close(red[1:], -torch.ones(2, 8, 8))
    torch.testing.assert_close(gray, torch.full((3, 8, 8), 128 / 127.5 - 1), atol=4 / 127.5, rtol=0)  # JPEG is lossy


def test_resize_shorter_side_then_center_crop(tmp_path):
    img = np.zeros((20, 60, 3), np.uint8)  # 60 wide, 20 high: red | green | blue thirds
    img[:, :20, 0] = img[:, 20:40, 1] = img[:, 40:, 2] = 255
    Image.fromarray(img).save(tmp_path / "wide.png")
    out = load_image(tmp_path / "wide.png", size=10)
    assert out.shape == (10, 10, 3)
    # Shorter side 20 -> 10 scales the width to 30; the central 10 columns are the green third.
    assert (out[:, 2:8, 1] == 255).all() and (out[:, 2:8, [0, 2]] == 0).all()


def test_center_crop_before_resize(tmp_path):
    img = np.zeros((100, 100, 3), np.uint8)
    img[40:60, 40:60] = (255, 0, 0)  # a red square in the middle of black
    Image.fromarray(img).save(tmp_path / "c.png")
    out = load_image(tmp_path / "c.png", size=8, center_crop=20)
    assert (out == (255, 0, 0)).all()
    assert (load_image(tmp_path / "c.png", size=10)[0, 0] == 0).all()  # without the crop the corner stays black


def test_transparency_on_white(tmp_path):
    _solid(tmp_path / "t.png", (0, 0, 0, 0), mode="RGBA")
    x = ImageFolderDataset(tmp_path, size=4)[0]
    torch.testing.assert_close(x, torch.ones(3, 4, 4))


def test_hflip_gives_the_image_or_its_mirror(tmp_path):
    img = np.zeros((8, 8, 3), np.uint8)
    img[:, :4] = 255  # white left half
    Image.fromarray(img).save(tmp_path / "h.png")
    ds = ImageFolderDataset(tmp_path, size=8, hflip=True)
    plain = ImageFolderDataset(tmp_path, size=8)[0]
    seen = set()
    for _ in range(30):
        x = ds[0]
        if torch.equal(x, plain):
            seen.add("plain")
        elif torch.equal(x, plain.flip(-1)):
            seen.add("flipped")
        else:
            raise AssertionError("hflip produced neither the image nor its mirror")
    assert seen == {"plain", "flipped"}


def test_bad_image_files(tmp_path):
    with pytest.raises(InputError, match="no such image folder"):
        ImageFolderDataset(tmp_path / "none")
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match=r"holds no image files \(.png, .jpg, .jpeg\)"):
        ImageFolderDataset(tmp_path / "empty")
    (tmp_path / "file.png").write_bytes(b"")
    with pytest.raises(InputError, match="expected a folder of image files, found a file"):
        ImageFolderDataset(tmp_path / "file.png")
    _solid(tmp_path / "ok" / "a.png", (1, 2, 3))
    (tmp_path / "ok" / "b.png").write_bytes(b"\x89PNG\r\n\x1a\nnot really")
    good = (tmp_path / "ok" / "a.png").read_bytes()
    (tmp_path / "ok" / "c.png").write_bytes(good[: len(good) // 2])
    ds = ImageFolderDataset(tmp_path / "ok", size=4)
    assert ds[0].shape == (3, 4, 4)
    for i, name in ((1, "b.png"), (2, "c.png")):
        with pytest.raises(InputError, match=f"{name}: not a readable image"):
            ds[i]
