"""Shape classifier: class scores against hand computations, a tiny training run, determinism, the file format and
its cache, and the render-CNN end to end."""

from __future__ import annotations

import math
import re

import numpy as np
import pytest
import torch

import gen3d.metrics.shape_classifier as sc
from gen3d.data.shapes import shape_points
from gen3d.errors import InputError
from gen3d.metrics import (
    PointNetClassifier,
    RenderCNNClassifier,
    ShapeClassifier,
    class_scores,
    load_or_train_classifier,
    train_shape_classifier,
)

CLASSES = ["chair", "table", "airplane"]
TINY = {"per_class": 8, "heldout_per_class": 10, "points": 128, "steps": 80, "batch_size": 16, "seed": 0}
MICRO = {"per_class": 2, "heldout_per_class": 1, "points": 64, "steps": 5, "batch_size": 4, "seed": 0}


@pytest.fixture(scope="module")
def tiny_pointnet() -> ShapeClassifier:
    return train_shape_classifier("pointnet", CLASSES, progress=False, **TINY)


@pytest.fixture(scope="module")
def clouds() -> np.ndarray:
    """(6, 256, 3): two procedural shapes of each class of CLASSES from another dataset seed."""
    return np.stack([shape_points(c, i, seed=5, points=256) for c in CLASSES for i in range(2)])


def _is_by_hand(probs: np.ndarray) -> float:
    """exp(mean_i KL(p(y|x_i) || p(y))) for strictly positive probabilities, one split."""
    marginal = probs.mean(axis=0)
    kl = [sum(p * math.log(p / m) for p, m in zip(row, marginal, strict=True)) for row in probs]
    return math.exp(sum(kl) / len(kl))


# ----------------------------------------------------------------------------------------------------
# class_scores
# ----------------------------------------------------------------------------------------------------


def test_confident_uniform_predictions_score_the_number_of_classes():
    names = ["a", "b", "c", "d", "e"]
    probs = np.eye(5)[np.arange(15) % 5]
    scores = class_scores(probs, None, names)
    assert scores["class_IS"] == pytest.approx(5.0, abs=1e-12)
    assert scores["class_IS_std"] == 0.0
    assert scores["class_coverage"] == 1.0 and scores["in_class"] == 1.0
    assert scores["predicted_counts"] == dict.fromkeys(names, 3)
    assert scores["n_samples"] == 15


def test_constant_predictions_score_one_and_cover_one_class():
    probs = np.tile([0.1, 0.7, 0.2], (8, 1))
    scores = class_scores(probs, ["a", "b", "c"], ["a", "b", "c"])
    assert scores["class_IS"] == pytest.approx(1.0, abs=1e-12)
    assert scores["class_coverage"] == pytest.approx(1 / 3)
    assert scores["predicted_counts"] == {"a": 0, "b": 8, "c": 0}


def test_coverage_and_in_class_by_hand():
    names = ["chair", "table", "lamp", "mug"]
    probs = np.array(
        [
            [0.7, 0.1, 0.1, 0.1],  # chair
            [0.4, 0.3, 0.2, 0.1],  # chair
            [0.2, 0.5, 0.2, 0.1],  # table
            [0.1, 0.1, 0.2, 0.6],  # mug
            [0.25, 0.05, 0.3, 0.4],  # mug
        ]
    )
    scores = class_scores(probs, ["chair", "lamp"], names)
    assert scores["class_coverage"] == pytest.approx(1 / 2)  # chair predicted, lamp never
    assert scores["in_class"] == pytest.approx(2 / 5)  # two of five samples are chairs
    assert scores["predicted_counts"] == {"chair": 2, "table": 1, "lamp": 0, "mug": 2}
    assert scores["class_IS"] == pytest.approx(_is_by_hand(probs), rel=1e-12)
    assert class_scores(probs, ["chair"], names)["class_coverage"] == 1.0


def test_splits_are_passed_to_the_inception_score():
    probs = np.eye(2)[[0, 0, 1, 1]]  # chunk 1 all class 0, chunk 2 all class 1: IS 1 per chunk, 2 overall
    assert class_scores(probs, None, ["a", "b"], splits=2)["class_IS"] == pytest.approx(1.0)
    assert class_scores(probs, None, ["a", "b"], splits=1)["class_IS"] == pytest.approx(2.0)


@pytest.mark.parametrize(
    ("probs", "refs", "names", "match"),
    [
        (np.full((4, 3), 1 / 3), None, ["a", "b"], "shape"),
        (np.full(4, 0.5), None, ["a", "b"], "shape"),
        (np.full((0, 2), 0.5), None, ["a", "b"], "N = 0"),
        (np.full((4, 2), 0.5), ["c"], ["a", "b"], "unknown reference class"),
        (np.full((4, 2), 0.5), None, ["a", "a"], "duplicates"),
        (np.full((4, 2), 0.5), None, "ab", "sequence of class names"),
        (np.full((4, 2), 0.9), None, ["a", "b"], "sum to 1"),
        (np.full((4, 2), 0.5), None, [], "non-empty"),
    ],
)
def test_class_scores_rejects_bad_input(probs, refs, names, match):
    with pytest.raises(InputError, match=match):
        class_scores(probs, refs, names)


# ----------------------------------------------------------------------------------------------------
# Networks
# ----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["pointnet", "cnn"])
def test_networks_ignore_placement_and_scale(kind, clouds):
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        network = PointNetClassifier(4) if kind == "pointnet" else RenderCNNClassifier(4, views=2, size=32)
    x = torch.from_numpy(clouds[:3])
    network.eval()
    with torch.no_grad():
        logits = network(x)
        moved = network(x * 3.0 + torch.tensor([0.5, -2.0, 1.0]))
    assert logits.shape == (3, 4)
    torch.testing.assert_close(moved, logits, atol=1e-4, rtol=1e-4)


# ----------------------------------------------------------------------------------------------------
# Training
# ----------------------------------------------------------------------------------------------------


def test_tiny_pointnet_classifies_held_out_shapes(tiny_pointnet, clouds):
    assert tiny_pointnet.kind == "pointnet" and tiny_pointnet.classes == CLASSES
    assert tiny_pointnet.accuracy >= 0.8  # chance is 1/3
    probs = tiny_pointnet.predict_proba(clouds)  # 256 points: a fixed subset of 128 is classified
    assert probs.shape == (6, 3) and probs.dtype == np.float64
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=1e-12)
    assert (probs.argmax(axis=1) == np.repeat(np.arange(3), 2)).mean() >= 4 / 6
    np.testing.assert_allclose(tiny_pointnet.predict_proba(clouds, batch_size=1), probs, atol=1e-6)
    assert tiny_pointnet.settings == {"kind": "pointnet", "classes": CLASSES, **TINY}


def test_training_is_deterministic_for_a_seed(clouds):
    torch.manual_seed(123)
    before = torch.rand(3)
    torch.manual_seed(123)
    a = train_shape_classifier("pointnet", CLASSES, progress=False, **MICRO)
    assert torch.equal(torch.rand(3), before)  # the caller's random state is untouched
    b = train_shape_classifier("pointnet", CLASSES, progress=False, **MICRO)
    c = train_shape_classifier("pointnet", CLASSES, progress=False, **{**MICRO, "seed": 1})
    for key, value in a.network.state_dict().items():
        assert torch.equal(value, b.network.state_dict()[key]), key
    np.testing.assert_array_equal(a.predict_proba(clouds), b.predict_proba(clouds))
    assert not np.array_equal(a.predict_proba(clouds), c.predict_proba(clouds))


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"kind": "transformer"}, "kind"),
        ({"classes": ["chair", "spaceship"]}, "unknown procedural class"),
        ({"classes": ["chair"]}, "at least 2 classes"),
        ({"steps": 0}, "steps"),
        ({"points": 4096}, "at most 2048"),
        ({"batch_size": 2.5}, "batch_size"),
    ],
)
def test_training_rejects_bad_settings(kwargs, match):
    with pytest.raises(InputError, match=match):
        train_shape_classifier(**{"classes": CLASSES, **MICRO, **kwargs, "progress": False})


def test_predict_proba_rejects_bad_clouds(tiny_pointnet):
    with pytest.raises(InputError, match=r"\(N, P, 3\)"):
        tiny_pointnet.predict_proba(np.zeros((2, 10, 2)))
    with pytest.raises(InputError, match="NaN"):
        tiny_pointnet.predict_proba(np.full((2, 10, 3), np.nan))
    with pytest.raises(InputError, match="batch_size"):
        tiny_pointnet.predict_proba(np.zeros((2, 10, 3)), batch_size=0)


# ----------------------------------------------------------------------------------------------------
# Files and cache
# ----------------------------------------------------------------------------------------------------


def test_save_load_round_trip(tiny_pointnet, clouds, tmp_path):
    path = tiny_pointnet.save(tmp_path / "sub" / "clf.pt")
    assert [p.name for p in path.parent.iterdir()] == ["clf.pt"]  # atomic write: no temporary file left
    loaded = ShapeClassifier.load(path)
    assert loaded.settings == tiny_pointnet.settings
    assert loaded.accuracy == tiny_pointnet.accuracy
    np.testing.assert_array_equal(loaded.predict_proba(clouds), tiny_pointnet.predict_proba(clouds))


def test_loading_a_non_classifier_names_the_file(tmp_path):
    text = tmp_path / "notes.pt"
    text.write_text("not a checkpoint")
    other = tmp_path / "other.pt"
    torch.save({"state_dict": {}, "format": "something-else"}, other)
    broken = tmp_path / "broken.pt"
    torch.save({"format": sc.FORMAT, "version": sc.VERSION, "settings": {"kind": "pointnet"}}, broken)
    for path in (text, other, broken, tmp_path / "missing.pt"):
        with pytest.raises(InputError, match=re.escape(str(path))):
            ShapeClassifier.load(path)


def test_load_or_train_reuses_the_cache_and_retrains_on_new_settings(tmp_path, monkeypatch):
    calls = []
    real_train = sc.train_shape_classifier

    def counting_train(*args, **kwargs):
        calls.append(kwargs["steps"])
        return real_train(*args, **kwargs)

    monkeypatch.setattr(sc, "train_shape_classifier", counting_train)
    path = tmp_path / "cache" / "clf.pt"
    first = load_or_train_classifier(path, classes=CLASSES, progress=False, **MICRO)
    assert calls == [MICRO["steps"]] and path.is_file()
    again = load_or_train_classifier(path, classes=CLASSES, progress=False, **MICRO)
    assert calls == [MICRO["steps"]]  # served from the cache
    assert again.settings == first.settings
    changed = load_or_train_classifier(path, classes=CLASSES, progress=False, **{**MICRO, "steps": 6})
    assert calls == [MICRO["steps"], 6] and changed.steps == 6
    assert ShapeClassifier.load(path).steps == 6  # the cache now holds the new classifier
    path.write_text("garbage")
    load_or_train_classifier(path, classes=CLASSES, progress=False, **MICRO)
    assert calls == [MICRO["steps"], 6, MICRO["steps"]] and ShapeClassifier.load(path).steps == MICRO["steps"]
    with pytest.raises(InputError, match="unknown classifier setting"):
        load_or_train_classifier(path, classes=CLASSES, epochs=3)
    with pytest.raises(InputError, match="is a folder"):
        load_or_train_classifier(tmp_path, classes=CLASSES, progress=False, **MICRO)
    assert len(calls) == 3  # checked before any training


# ----------------------------------------------------------------------------------------------------
# Render CNN
# ----------------------------------------------------------------------------------------------------


def test_cnn_end_to_end(clouds, tmp_path):
    clf = train_shape_classifier("cnn", ["chair", "airplane"], progress=False, **MICRO)
    assert clf.kind == "cnn" and isinstance(clf.network, RenderCNNClassifier)
    assert 0.0 <= clf.accuracy <= 1.0
    probs = clf.predict_proba(clouds[:3])
    assert probs.shape == (3, 2)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=1e-12)
    np.testing.assert_allclose(clf.predict_proba(clouds[:1]), probs[:1], atol=1e-6)  # one cloud alone
    loaded = ShapeClassifier.load(clf.save(tmp_path / "cnn.pt"))
    assert loaded.kind == "cnn"
    np.testing.assert_array_equal(loaded.predict_proba(clouds[:3]), probs)
    scores = class_scores(probs, ["chair"], loaded.classes)
    assert 1.0 <= scores["class_IS"] <= 2.0 and sum(scores["predicted_counts"].values()) == 3
