"""The ShapeNetCore.v2.PC15k reader with PointFlow's semantics, on fixtures written in its real layout."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from gen3d.data import pc15k
from gen3d.data.datasets import PC15kDataset
from gen3d.data.stats import dataset_stats
from gen3d.errors import InputError

CHAIR, TABLE = "03001627", "04379243"


def _cloud(rng, offset):
    """15000 points: the first 10000 with x in [0, 1), the last 5000 with x in [10, 11), tagged in z."""
    pts = rng.uniform(0, 1, size=(15000, 3))
    pts[10000:, 0] += 10.0
    pts[:, 2] = np.arange(15000) + offset  # a unique tag per point: z identifies the row
    return pts.astype(np.float32)


@pytest.fixture
def root(tmp_path):
    rng = np.random.default_rng(0)
    r = tmp_path / "ShapeNetCore.v2.PC15k"
    for k, (synset, split, n) in enumerate(
        [
            (CHAIR, "train", 3),
            (CHAIR, "val", 2),
            (CHAIR, "test", 1),
            (TABLE, "train", 2),
            (TABLE, "val", 1),
            (TABLE, "test", 1),
        ]
    ):
        (r / synset / split).mkdir(parents=True)
        for i in range(n):
            np.save(r / synset / split / f"model{i:02d}.npy", _cloud(rng, offset=100000 * (10 * k + i)))
    (r / CHAIR / "train" / "notes.txt").write_text("not a cloud")
    return r


def test_reads_classes_by_name_or_synset(root):
    a = pc15k.read_pc15k(root, ["chair", "table"], "train")
    b = pc15k.read_pc15k(root, [CHAIR, TABLE], "train")
    np.testing.assert_array_equal(a.points, b.points)
    assert a.points.shape == (5, 15000, 3)
    assert a.classes == ["chair"] * 3 + ["table"] * 2
    assert a.ids == ["model00", "model01", "model02", "model00", "model01"]
    assert pc15k.resolve_classes(root, "all") == [CHAIR, TABLE]
    with pytest.raises(InputError, match=r"no folder for class 'sofa'.*03001627 \(chair\)"):
        pc15k.read_pc15k(root, ["sofa"], "train")


def test_train_points_from_first_10000_test_points_from_last_5000(root):
    ds = PC15kDataset(root, ["chair"], "train", tr_sample_size=2048, te_sample_size=1000, normalize="none")
    assert ds.random_subsample  # default for the train split
    item = ds[1]
    assert item["points"].shape == (2048, 3) and item["test_points"].shape == (1000, 3)
    assert item["points"].dtype == torch.float32
    assert (item["points"][:, 0] < 1).all() and (item["test_points"][:, 0] >= 10).all()
    rows = item["points"][:, 2].long() - 100000  # the row tags of chair/train/model01 (k=0, i=1)
    assert rows.min() >= 0 and rows.max() < 10000
    test_rows = item["test_points"][:, 2].long() - 100000
    assert test_rows.min() >= 10000 and test_rows.max() < 15000
    assert len(torch.unique(rows)) == 2048  # without replacement by default
    again = ds[1]
    assert not torch.equal(item["points"], again["points"])  # a fresh random subset per access
    assert item["class"] == "chair" and item["class_idx"] == 0 and item["id"] == "model01" and item["idx"] == 1


def test_eval_split_is_deterministic_first_points(root):
    raw = np.load(root / CHAIR / "val" / "model01.npy")
    ds = PC15kDataset(root, ["chair"], "val", tr_sample_size=500, te_sample_size=2048, normalize="none")
    assert not ds.random_subsample
    a, b = ds[1], ds[1]
    assert torch.equal(a["test_points"], b["test_points"])
    np.testing.assert_array_equal(a["test_points"].numpy(), raw[10000:12048])
    np.testing.assert_array_equal(a["points"].numpy(), raw[:500])


def test_global_normalization_fitted_on_train_and_reused(root):
    train = PC15kDataset(root, ["chair", "table"], "train", tr_sample_size=64, te_sample_size=64)
    raw_train = np.stack(
        [np.load(f) for c in (CHAIR, TABLE) for f in sorted((root / c / "train").glob("*.npy"))]
    ).astype(np.float64)
    np.testing.assert_allclose(train.norm.mean, raw_train.reshape(-1, 3).mean(axis=0), rtol=1e-10)
    assert float(train.norm.std) == pytest.approx(raw_train.reshape(-1).std(), rel=1e-10)  # PointFlow: all coordinates
    val = PC15kDataset(root, ["chair", "table"], "val", tr_sample_size=64, te_sample_size=64, norm=train.norm)
    assert val.norm is train.norm
    item = val[2]  # the table's val shape
    raw = np.load(root / TABLE / "val" / "model00.npy")
    restored = item["test_points"] * item["std"] + item["mean"]  # de-normalise with the item's statistics
    np.testing.assert_allclose(restored.numpy(), raw[10000:10064], rtol=1e-5, atol=1e-3)
    assert item["mean"].shape == (1, 3) and item["std"].shape == (1, 1)


def test_box_normalization_per_shape(root):
    ds = PC15kDataset(root, ["table"], "test", tr_sample_size=100, te_sample_size=100, normalize="box")
    full = ds.all_points()  # (1, 15000, 3)
    lo, hi = full[0].min(axis=0), full[0].max(axis=0)
    assert (hi - lo).max() == pytest.approx(1.0, abs=1e-6)
    np.testing.assert_allclose((hi + lo) / 2, 0.0, atol=1e-6)
    raw = np.load(root / TABLE / "test" / "model00.npy")
    np.testing.assert_allclose(ds.all_points(normalized=False)[0], raw, rtol=1e-5, atol=1e-2)


def test_collates_into_batches(root):
    ds = PC15kDataset(root, None, "train", tr_sample_size=128, te_sample_size=32)
    batch = next(iter(DataLoader(ds, batch_size=4, shuffle=False)))
    assert batch["points"].shape == (4, 128, 3) and batch["test_points"].shape == (4, 32, 3)
    assert batch["mean"].shape == (4, 1, 3) and batch["std"].shape == (4, 1, 1)
    assert batch["class"] == ["chair", "chair", "chair", "table"]


def test_requesting_more_points_than_available(root):
    with pytest.raises(
        InputError, match="tr_sample_size=10001 points requested, but clouds of 15000 points have 10000"
    ):
        PC15kDataset(root, ["chair"], "train", tr_sample_size=10001)
    with pytest.raises(InputError, match="te_sample_size=5001"):
        PC15kDataset(root, ["chair"], "val", te_sample_size=5001)


@pytest.mark.parametrize(
    ("array", "match"),
    [
        (np.zeros((15000, 2), np.float32), r"shape \(P, 3\)"),
        (np.full((15000, 3), np.nan, np.float32), "NaN or Inf"),
        (np.zeros((2, 15000, 3), np.float32), r"one cloud of shape \(P, 3\)"),
        (np.zeros((14000, 3), np.float32), "has 14000 points but"),
    ],
)
def test_bad_files_name_the_file(root, array, match):
    np.save(root / CHAIR / "train" / "zz_bad.npy", array)
    with pytest.raises(InputError, match=match) as info:
        PC15kDataset(root, ["chair"], "train")
    assert "zz_bad.npy" in str(info.value)


def test_truncated_file(root):
    good = (root / CHAIR / "train" / "model00.npy").read_bytes()
    (root / CHAIR / "train" / "zz_cut.npy").write_bytes(good[: len(good) // 2])
    with pytest.raises(InputError, match="zz_cut.npy: not a readable .npy"):
        PC15kDataset(root, ["chair"], "train")


def test_missing_split_and_root(root, tmp_path):
    import shutil

    shutil.rmtree(root / TABLE / "val")
    with pytest.raises(InputError, match="missing split folder"):
        PC15kDataset(root, ["table"], "val")
    with pytest.raises(InputError, match="no such folder"):
        PC15kDataset(tmp_path / "nowhere", ["chair"], "train")


def test_dataset_stats(root):
    stats = dataset_stats(root)
    assert stats["total"] == 10 and stats["points_per_shape"] == [15000]
    assert {k: stats["classes"]["chair"][k] for k in ("train", "val", "test")} == {"train": 3, "val": 2, "test": 1}
    assert {k: stats["classes"]["table"][k] for k in ("train", "val", "test")} == {"train": 2, "val": 1, "test": 1}
    raw_train = pc15k.read_pc15k(root, None, "train").points.astype(np.float64)
    np.testing.assert_allclose(stats["normalization"]["mean"], raw_train.reshape(-1, 3).mean(axis=0), rtol=1e-9)
    assert stats["normalization"]["std"] == pytest.approx(raw_train.reshape(-1).std(), rel=1e-9)
