"""Inception Score: closed-form cases, a hand-computed case, input validation, and ``gen3d evaluate images --is``."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from gen3d.cli.main import main
from gen3d.errors import InputError
from gen3d.metrics import (
    InceptionClassifier,
    image_inception_score,
    inception_score,
    inception_score_from_logits,
)


def test_confident_balanced_classifier_scores_the_number_of_classes():
    k, splits = 7, 10
    labels = np.arange(k * splits) % k  # every chunk of k consecutive rows holds each class once
    probs = np.eye(k)[labels]
    mean, std = inception_score(probs, splits=splits)
    assert mean == pytest.approx(k, abs=1e-9) and std == pytest.approx(0.0, abs=1e-9)


def test_constant_classifier_scores_one():
    row = np.random.default_rng(0).dirichlet(np.ones(5))
    mean, std = inception_score(np.tile(row, (40, 1)), splits=4)
    assert mean == pytest.approx(1.0, abs=1e-12) and std == pytest.approx(0.0, abs=1e-12)


HAND = np.array([[1.0, 0.0], [0.0, 1.0], [0.5, 0.5], [1.0, 0.0]])


def test_hand_computed_two_classes_one_split():
    # p(y) = mean of the 4 rows = (5/8, 3/8).
    # KL([1, 0] || p(y)) = log(8/5) (rows 0 and 3), KL([0, 1] || p(y)) = log(8/3),
    # KL([1/2, 1/2] || p(y)) = 1/2 log((1/2)/(5/8)) + 1/2 log((1/2)/(3/8)) = 1/2 log(16/15).
    # IS = exp(mean KL) = ((8/5)^2 (8/3) (16/15)^(1/2))^(1/4).
    expected = ((8 / 5) ** 2 * (8 / 3) * math.sqrt(16 / 15)) ** 0.25
    mean, std = inception_score(HAND, splits=1)
    assert mean == pytest.approx(expected, abs=1e-12) and std == 0.0


def test_hand_computed_two_classes_two_splits():
    # Chunk 1 = rows 0, 1: p(y) = (1/2, 1/2), each KL = log 2, IS = 2.
    # Chunk 2 = rows 2, 3: p(y) = (3/4, 1/4); KL([1/2, 1/2]) = 1/2 log(2/3) + 1/2 log 2 = 1/2 log(4/3),
    # KL([1, 0]) = log(4/3); mean KL = 3/4 log(4/3), IS = (4/3)^(3/4).
    # Mean (2 + (4/3)^(3/4)) / 2; population std |2 - (4/3)^(3/4)| / 2.
    second = (4 / 3) ** 0.75
    mean, std = inception_score(HAND, splits=2)
    assert mean == pytest.approx((2 + second) / 2, abs=1e-12)
    assert std == pytest.approx((2 - second) / 2, abs=1e-12)


def test_uneven_splits_cut_like_torch_fidelity():
    # N = 5, splits = 2: chunks [0, 2) and [2, 5) (i * N // splits).
    probs = np.random.default_rng(1).dirichlet(np.ones(3), size=5)
    parts = [inception_score(probs[:2], splits=1)[0], inception_score(probs[2:], splits=1)[0]]
    mean, std = inception_score(probs, splits=2)
    assert mean == pytest.approx(np.mean(parts), abs=1e-12) and std == pytest.approx(np.std(parts), abs=1e-12)


def test_logits_match_probabilities_and_shuffle_seed():
    logits = np.random.default_rng(2).normal(scale=3.0, size=(30, 6))
    probs = torch.from_numpy(logits).softmax(dim=1).numpy()
    assert inception_score_from_logits(logits, splits=3) == pytest.approx(inception_score(probs, splits=3), abs=1e-12)
    permuted = probs[np.random.RandomState(2020).permutation(30)]
    assert inception_score(probs, splits=3, shuffle_seed=2020) == pytest.approx(
        inception_score(permuted, splits=3), abs=1e-12
    )
    # Large logits stay finite (log-softmax), and float32 tensors are accepted.
    mean, _ = inception_score_from_logits(torch.tensor([[1000.0, 0.0], [0.0, 1000.0]]), splits=1)
    assert mean == pytest.approx(2.0, abs=1e-9)


@pytest.mark.parametrize(
    ("probs", "splits", "message"),
    [
        (np.array([[0.5, 0.5], [1.5, -0.5]]), 1, "non-negative"),
        (np.array([[0.5, 0.6], [0.5, 0.5]]), 1, "sum to 1"),
        (np.array([[np.nan, 1.0], [0.5, 0.5]]), 1, "NaN"),
        (np.array([0.5, 0.5]), 1, r"shape \(N, K\)"),
        (np.eye(3), 4, "at least as many"),
        (np.eye(3), 0, "positive integer"),
    ],
)
def test_invalid_probabilities_are_input_errors(probs, splits, message):
    with pytest.raises(InputError, match=message):
        inception_score(probs, splits=splits)


def test_invalid_logits_are_input_errors():
    with pytest.raises(InputError, match="NaN or Inf"):
        inception_score_from_logits(np.array([[np.inf, 0.0], [0.0, 1.0]]), splits=1)
    with pytest.raises(InputError, match="at least as many"):
        inception_score_from_logits(np.zeros((2, 3)), splits=10)


# ------------------------------------------------------------------------------------------------ images / CLI


class _MeanLogits(torch.nn.Module):
    """A stand-in classifier: 1008 logits, the first three the channel means / 32, the others 0."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        means = x.mean(dim=(2, 3)) / 32.0
        return torch.cat([means, torch.zeros(x.shape[0], 1005, dtype=x.dtype, device=x.device)], dim=1)


class _NvidiaLike(torch.nn.Module):
    """A stand-in with the signature of NVIDIA's file: softmax probabilities unless ``return_features``."""

    def __init__(self):
        super().__init__()
        self.head = _MeanLogits()

    def forward(self, x: torch.Tensor, return_features: bool = False, no_output_bias: bool = False) -> torch.Tensor:
        logits = self.head(x)
        return logits if return_features else logits.softmax(dim=1)


class _Features(torch.nn.Module):
    """No classifier head: 6 features per image."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([x.mean(dim=(2, 3)), x.square().mean(dim=(2, 3))], dim=1)


def _images(count: int = 6, size: int = 24) -> np.ndarray:
    rng = np.random.default_rng(3)
    base = rng.integers(0, 256, size=(count, 1, 1, 3))
    noise = rng.integers(-20, 21, size=(count, size, size, 3))
    return np.clip(base + noise, 0, 255).astype(np.uint8)  # (N, H, W, 3), one dominant colour each


def _folder(path, images: np.ndarray):
    path.mkdir()
    for i, im in enumerate(images):
        Image.fromarray(im).save(path / f"{i:03d}.png")
    return path


def _expected(images: np.ndarray, splits: int) -> tuple[float, float]:
    """The stand-in's softmax on images resized as the pipeline resizes them, scored by ``inception_score``."""
    x = torch.from_numpy(images).permute(0, 3, 1, 2).float()
    x = F.interpolate(x, size=(299, 299), mode="bilinear", align_corners=False, antialias=False)
    probs = _MeanLogits()(x).double().softmax(dim=1)
    return inception_score(probs, splits=splits)


def _save(module: torch.nn.Module, path) -> str:
    torch.jit.script(module).save(str(path))
    return str(path)


def test_cli_is_matches_the_library(tmp_path, capsys):
    images = _images()
    fake = _folder(tmp_path / "fake", images)
    weights = _save(_MeanLogits(), tmp_path / "cls.pt")
    out = tmp_path / "is.json"
    argv = ["evaluate", "images", "--fake", str(fake), "--is", "--is-weights", weights, "--is-splits", "3"]
    assert main([*argv, "--device", "cpu", "--json", str(out)]) == 0
    got = json.loads(out.read_text())
    mean, std = _expected(images, 3)
    assert got["IS"] == pytest.approx(mean, rel=1e-6) and got["IS_std"] == pytest.approx(std, rel=1e-5, abs=1e-9)
    assert got["IS"] > 1.0 and "FID" not in got
    protocol = got["protocol"]["inception_score"]
    assert protocol["splits"] == 3 and protocol["outputs"] == "logits"
    assert "IS" in capsys.readouterr().out


def test_nvidia_like_file_gives_probabilities(tmp_path):
    images = _images()
    classifier = InceptionClassifier(_save(_NvidiaLike(), tmp_path / "nv.pt"), device="cpu")
    assert classifier.outputs == "probabilities"
    mean, std = image_inception_score(images, classifier, splits=2, progress=False)
    expected = _expected(images, 2)
    assert mean == pytest.approx(expected[0], rel=1e-5) and std == pytest.approx(expected[1], rel=1e-4, abs=1e-8)


def test_cli_is_without_weights_exits_2_and_writes_nothing(tmp_path, capsys):
    fake = _folder(tmp_path / "fake", _images())
    out = tmp_path / "is.json"
    assert main(["evaluate", "images", "--fake", str(fake), "--is", "--json", str(out)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--is needs --is-weights FILE" in err[0]
    assert not out.exists()


def test_cli_is_with_a_headless_network_exits_2_and_writes_nothing(tmp_path, capsys):
    fake = _folder(tmp_path / "fake", _images())
    weights = _save(_Features(), tmp_path / "features.pt")
    out = tmp_path / "is.json"
    argv = ["evaluate", "images", "--fake", str(fake), "--is", "--is-weights", weights, "--is-splits", "2"]
    assert main([*argv, "--device", "cpu", "--json", str(out)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "features.pt" in err[0] and "classifier head" in err[0]
    assert not out.exists()


def test_cli_without_real_or_is_and_too_few_images_exit_2(tmp_path, capsys):
    fake = _folder(tmp_path / "fake", _images(count=3))
    assert main(["evaluate", "images", "--fake", str(fake)]) == 2
    assert "--real is needed" in capsys.readouterr().err
    weights = _save(_MeanLogits(), tmp_path / "cls.pt")
    assert main(["evaluate", "images", "--fake", str(fake), "--is", "--is-weights", weights]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--is-splits" in err[0]
