"""Sampling and evaluation pipelines of GRAF checkpoints."""

from __future__ import annotations

import hashlib
import json

import numpy as np
import pytest
import torch
from PIL import Image

from gen3d.errors import InputError
from gen3d.inference.graf import load_graf_generator as load_generator
from gen3d.lit.graf_module import GRAFModule
from gen3d.pipelines.graf_eval import generate_images, load_real_images
from gen3d.pipelines.sample import sample_graf_to_files

TINY = dict(
    z_dim=8, z_app_dim=4, net_depth=2, net_width=16, skips=(), pos_freqs=2, dir_freqs=1, image_size=16, patch_size=8,
    n_samples=6, n_importance=0, ndf=4, n_grid=2,
)  # fmt: skip


@pytest.fixture
def ckpt(tmp_path):
    torch.manual_seed(0)
    module = GRAFModule(**TINY)
    with torch.no_grad():  # a density that varies in space, so the mesh has a surface
        module.generator_ema.field.sigma_head.bias.fill_(0.5)
    path = tmp_path / "tiny.ckpt"
    torch.save({"state_dict": module.state_dict(), "hyper_parameters": dict(module.hparams)}, path)
    return path


def test_generate_images_is_seeded(ckpt):
    gen, hp = load_generator(ckpt)
    a = generate_images(gen, 5, batch_size=2, seed=3)
    b = generate_images(gen, 5, batch_size=4, seed=3)
    c = generate_images(gen, 5, batch_size=2, seed=4)
    assert a.shape == (5, 16, 16, 3) and a.dtype == np.uint8 and hp["image_size"] == 16
    assert np.array_equal(a[:2], b[:2])  # same codes and poses for the same seed (first batch)
    assert not np.array_equal(a, c)
    assert generate_images(gen, 2, size=24).shape == (2, 24, 24, 3)


def test_sample_graf_to_files_writes_images_gif_and_mesh(ckpt, tmp_path):
    import imageio.v3 as iio
    import trimesh

    res = sample_graf_to_files(ckpt, tmp_path / "out", n=3, size=20, u=0.25, v=0.3, frames=4, mesh_resolution=24)
    assert len(res["images"]) == 3
    assert np.asarray(Image.open(res["images"][0])).shape == (20, 20, 3)
    assert iio.imread(res["gif"], index=None).shape[0] == 4
    mesh = trimesh.load(res["mesh"], force="mesh")
    assert len(mesh.vertices) > 0 and len(mesh.faces) > 0
    # The --u/--v pose is the one rendered: re-render sample 0 from that pose.
    gen, _ = load_generator(ckpt)
    z = gen.field.sample_z(3, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        img = gen.render(z[:1], gen.pose_at(torch.tensor([0.25]), torch.tensor([0.3])), 20)["rgb"]
    ref = ((img[0].permute(1, 2, 0).clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).numpy()
    assert np.abs(ref.astype(int) - np.asarray(Image.open(res["images"][0])).astype(int)).max() <= 1


def test_load_real_images(tmp_path):
    for i in range(6):
        Image.fromarray(np.full((20, 20, 3), 10 * i, np.uint8)).save(tmp_path / f"{i}.png")
    all_ = load_real_images(tmp_path, "folder", 8)
    sub = load_real_images(tmp_path, "folder", 8, n=3, seed=1)
    assert all_.shape == (6, 8, 8, 3) and sub.shape == (3, 8, 8, 3)
    assert {int(x[0, 0, 0]) for x in sub} <= {10 * i for i in range(6)}
    with pytest.raises(InputError):
        load_generator(tmp_path / "0.png")
    one = tmp_path / "one"
    one.mkdir()
    Image.fromarray(np.zeros((20, 20, 3), np.uint8)).save(one / "0.png")
    with pytest.raises(InputError, match="holds 1 image of the folder layout; FID and KID need at least 2") as info:
        load_real_images(one, "folder", 8)
    assert info.value.path == str(one)


@pytest.mark.slow
def test_evaluate_graf_protocol(ckpt, tmp_path):
    """GRAF's protocol through the CLI entry: generated images at random poses vs the training images.

    Two FIDs (each a 2048 x 2048 matrix square root, ~30 s on 2 cores)."""

    from gen3d.cli.main import main
    from gen3d.metrics import fid as fidlib

    real_dir = tmp_path / "real"
    real_dir.mkdir()
    rng = np.random.default_rng(0)
    for i in range(8):
        Image.fromarray(rng.integers(0, 255, (16, 16, 3), dtype=np.uint8)).save(real_dir / f"{i}.png")
    out = tmp_path / "fid.json"
    argv = [
        "evaluate",
        "graf",
        "--ckpt",
        str(ckpt),
        "--real",
        str(real_dir),
        "--n",
        "4",
        "--n-real",
        "6",
        "--seed",
        "2",
    ]
    assert main([*argv, "--json", str(out)]) == 0
    res = json.loads(out.read_text())
    assert (res["n_fake"], res["n_real"], res["image_size"]) == (4, 6, 16)
    # Independent recomputation: the same images (same seed) through gen3d.metrics.fid directly.
    gen, _ = load_generator(ckpt)
    fake = generate_images(gen, 4, seed=2)
    real = load_real_images(real_dir, "folder", 16, 6, seed=2)
    ref = fidlib.fid_kid(fake, real, seed=2)
    assert res["FID"] == pytest.approx(ref["FID"], rel=1e-6) and res["KID"] == pytest.approx(ref["KID"], rel=1e-6)
    assert res["FID"] > 0 and res["KID_std"] >= 0
    protocol = res["protocol"]  # what was compared, beside the unchanged top-level keys
    assert protocol["checkpoint_sha256"] == hashlib.sha256(ckpt.read_bytes()).hexdigest()
    assert protocol["real"] == {"path": str(real_dir), "kind": "folder", "images": 6}
    assert (protocol["fake"]["images"], protocol["fake"]["image_size"], protocol["seed"]) == (4, 16, 2)
    assert protocol["kid_subset_size"] == 4 and "gen3d_version" in protocol and "created" in protocol


def test_gen3d_sample_recognises_graf_checkpoints(ckpt, tmp_path):
    """`gen3d sample` on a GRAF checkpoint renders images (seeded) instead of sampling point clouds."""
    from gen3d.cli.main import main
    from gen3d.inference.checkpoint import is_graf_checkpoint, read_checkpoint

    assert is_graf_checkpoint(read_checkpoint(ckpt))
    for name in ("a", "b"):
        argv = ["sample", "--ckpt", str(ckpt), "--n", "2", "--size", "12", "--no-gif", "--no-mesh", "--seed", "5"]
        assert main([*argv, "--out", str(tmp_path / name)]) == 0
    a, b = (np.asarray(Image.open(tmp_path / n / "images" / "sample_01.png")) for n in ("a", "b"))
    assert a.shape == (12, 12, 3) and np.array_equal(a, b)
    assert not (tmp_path / "a" / "samples.npz").exists()


class _MeanColour(torch.nn.Module):
    """A stand-in for the Inception network (299 x 299 inputs): 6 features, the channel means and mean squares."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([x.mean(dim=(2, 3)), x.square().mean(dim=(2, 3))], dim=1)


def test_gen3d_sample_graf_outputs_feed_evaluate_images_and_record_the_sampling(ckpt, tmp_path):
    """``OUT/images`` holds the samples only, so ``gen3d evaluate images --fake OUT/images`` takes it as it is;
    ``OUT/sampler.json`` beside it records the checkpoint, its SHA-256 and the options."""
    import gen3d
    from gen3d.cli.main import main
    from gen3d.data.images import list_image_files

    out = tmp_path / "graf"
    argv = ["sample", "--ckpt", str(ckpt), "--n", "3", "--size", "12", "--seed", "4", "--v", "0.3", "--no-gif"]
    assert main([*argv, "--no-mesh", "--device", "cpu", "--out", str(out)]) == 0
    assert [f.name for f in list_image_files(out / "images")] == [f"sample_{i:02d}.png" for i in range(3)]
    assert sorted(f.name for f in out.iterdir()) == ["grid.png", "images", "sampler.json"]
    record = json.loads((out / "sampler.json").read_text())
    assert record["checkpoint"] == str(ckpt)
    assert record["checkpoint_sha256"] == hashlib.sha256(ckpt.read_bytes()).hexdigest()
    gen, _ = load_generator(ckpt)
    expected = {
        "model": "graf", "seed": 4, "n": 3, "ema": True, "image_size": 12, "poses": "fixed",
        "u": sum(gen.range_u) / 2, "v": 0.3, "device": "cpu", "gen3d_version": gen3d.__version__,
    }  # fmt: skip
    assert {k: record[k] for k in expected} == pytest.approx(expected)
    weights = tmp_path / "stand_in.pt"
    torch.jit.script(_MeanColour()).save(str(weights))
    real = tmp_path / "real"
    real.mkdir()
    for i in range(4):
        Image.fromarray(np.full((16, 16, 3), 50 * i, np.uint8)).save(real / f"{i}.png")
    fid = tmp_path / "fid.json"
    argv = ["evaluate", "images", "--fake", str(out / "images"), "--real", str(real), "--weights", str(weights)]
    assert main([*argv, "--device", "cpu", "--kid-subsets", "2", "--json", str(fid)]) == 0
    assert json.loads(fid.read_text())["protocol"]["fake"] == {"path": str(out / "images"), "images": 3}
