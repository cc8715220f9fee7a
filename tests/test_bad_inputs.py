"""Bad input on every command: one line on stderr naming the culprit, exit code 2, nothing written, no traceback.

Every case of :data:`CASES` runs ``gen3d`` in-process (``main(argv)``) on generated fixtures: missing, empty,
truncated and corrupt files; NaN / Inf clouds; wrong shapes; a ``.npy`` named ``.npz`` and the reverse; folders
where files are expected and files where folders are; broken and foreign checkpoints; outputs that cannot be
written; out-of-range numeric options; broken ``gen3d train`` configs. Each case asserts:

- ``main(argv) == 2`` (no exception escapes ``main``);
- stderr is exactly one line holding ``error:`` and the expected name (the option, or the file's name), and
  nothing else: output written by native code to the file descriptor (``capfd``) and Python warnings (which the
  command line would print) count as lines;
- no ``Traceback``;
- nothing written: the test's tmp folder (also the working folder) and the fixtures' folder are the same,
  byte for byte, before and after.

Templates name paths with ``{fx}`` (the shared fixtures, built once per module) and ``{tmp}`` (the test's own
empty folder); the fixture files are listed in :func:`fx`.
"""

from __future__ import annotations

import hashlib
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch

from gen3d.cli.main import main
from tests.conftest import TINY_CONFIG


class _Custom:
    """Pickled into a checkpoint: ``torch.load(weights_only=True)`` refuses to rebuild it."""

    def __init__(self) -> None:
        self.payload = [1, 2, 3]


class _TrainingStarted(Exception):
    """Raised by the patched ``Trainer.fit``: the bad config went through to training."""


class _ViewerStarted(Exception):
    """Raised by the patched ``ViewerApp.run``: the bad input went through to serving."""


class _StandInInception(torch.nn.Module):
    """A TorchScript stand-in for the Inception weights (6-d features), fast on a CPU."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([x.mean(dim=(2, 3)), x.square().mean(dim=(2, 3))], dim=1)


TINY_LION = dict(TINY_CONFIG)  # the tiny LION of the other tests
TINY_GRAF = dict(
    z_dim=8, z_app_dim=4, net_depth=2, net_width=16, skips=(), pos_freqs=2, dir_freqs=1, image_size=16, patch_size=8,
    n_samples=6, n_importance=0, ndf=4, n_grid=2,
)  # fmt: skip

# A gen3d train lion preset small enough to instantiate in a blink (training itself never starts here).
BASE_TRAIN = {
    "seed_everything": 0,
    "trainer": {"accelerator": "cpu", "devices": 1, "max_steps": 1, "limit_val_batches": 0},
    "model": {"config": TINY_LION},
    "data": {
        "root": "procedural",
        "classes": ["mug"],
        "per_class": 10,
        "points": 150,
        "tr_sample_size": 48,
        "te_sample_size": 48,
        "batch_size": 4,
        "num_workers": 0,
    },
}


def _with(base: dict, path: tuple[str, ...], value: object) -> dict:
    """A deep copy of ``base`` with ``value`` set at ``path``."""
    import copy

    out = copy.deepcopy(base)
    node = out
    for key in path[:-1]:
        node = node.setdefault(key, {})
    node[path[-1]] = value
    return out


def _save_ply(path: Path, points: np.ndarray) -> None:
    import plyfile

    vertex = np.empty(len(points), dtype=[("x", "<f4"), ("y", "<f4"), ("z", "<f4")])
    vertex["x"], vertex["y"], vertex["z"] = points[:, 0], points[:, 1], points[:, 2]
    plyfile.PlyData([plyfile.PlyElement.describe(vertex, "vertex")], byte_order="<").write(str(path))


def _half(src: Path, dst: Path) -> None:
    data = src.read_bytes()
    dst.write_bytes(data[: len(data) // 2])


@pytest.fixture(scope="module")
def fx(tmp_path_factory) -> Path:
    """The shared fixture files (never written by a case; each test checks that)."""
    import yaml
    from PIL import Image

    root = tmp_path_factory.mktemp("fixtures")
    rng = np.random.default_rng(0)
    sphere = rng.normal(size=(4, 64, 3))
    clouds = (sphere / np.linalg.norm(sphere, axis=-1, keepdims=True)).astype(np.float32)  # (4, 64, 3)

    # point clouds: good, empty, truncated, corrupt, non-finite, wrong shapes, renamed, degenerate
    np.save(root / "cloud.npy", clouds[0])
    np.save(root / "set.npy", clouds)
    np.savez(root / "set.npz", points=clouds)
    _save_ply(root / "cloud.ply", clouds[0])
    for suffix in (".npy", ".npz", ".ply", ".obj", ".ckpt", ".png", ".yaml", ".pt"):
        (root / f"empty{suffix}").write_bytes(b"")
    for name in ("set.npy", "set.npz", "cloud.ply"):
        _half(root / name, root / f"half{Path(name).suffix}")
    junk = rng.integers(0, 256, size=4096, dtype=np.uint8).tobytes()
    for suffix in (".npy", ".npz", ".ply", ".obj", ".ckpt", ".png", ".pt"):
        (root / f"junk{suffix}").write_bytes(junk)
    bad = clouds.copy()
    bad[1, 5, 0] = np.nan
    np.save(root / "nan.npy", bad)
    bad[1, 5, 0] = np.inf
    np.savez(root / "inf.npz", points=bad)
    _save_ply(root / "nan.ply", np.where(np.arange(64)[:, None] == 3, np.nan, clouds[0]))
    np.save(root / "n2.npy", clouds[0, :, :2])  # (P, 2)
    np.save(root / "n1.npy", clouds[0, :, 0])  # (P,)
    np.save(root / "d4.npy", clouds[None])  # (1, 4, 64, 3)
    np.save(root / "npy_named.npz", clouds)  # .npy bytes under a .npz name
    np.savez(root / "npz_named.npy", points=clouds)  # .npz bytes under a .npy name
    np.save(root / "few.npy", clouds[0, :3])  # (3, 3): too few for a surface
    line = np.zeros((64, 3), dtype=np.float32)
    line[:, 0] = np.linspace(-1, 1, 64)
    np.save(root / "line.npy", line)  # collinear
    np.save(root / "plane.npy", np.c_[rng.uniform(-1, 1, (64, 2)), np.zeros(64)].astype(np.float32))  # coplanar
    np.save(root / "dup.npy", np.ones((64, 3), dtype=np.float32))  # one point 64 times
    np.save(root / "dupset.npy", np.ones((4, 64, 3), dtype=np.float32))  # clouds of one repeated point each
    np.save(root / "tetra_dup.npy", np.repeat(np.eye(4, 3, k=-1, dtype=np.float32), 16, axis=0))  # 4 points x 16
    with_line = clouds.copy()
    with_line[2] = line
    np.save(root / "set_line.npy", with_line)  # a set whose third cloud is collinear
    np.save(root / "big.npy", clouds * 1e30)  # finite, but squares overflow float32

    # folders and files in each other's places
    (root / "adir.npy").mkdir()
    (root / "adir.ckpt").mkdir()
    (root / "adir.ply").mkdir()
    (root / "adir.gif").mkdir()
    (root / "adir.png").mkdir()
    (root / "adir.json").mkdir()
    (root / "adir.npz").mkdir()
    (root / "emptydir").mkdir()
    (root / "afile").write_text("a file, not a folder\n")

    # checkpoints
    torch.save([1, 2, 3], root / "list.ckpt")
    torch.save({}, root / "dict0.ckpt")
    torch.save({"state_dict": {"w": torch.zeros(2)}}, root / "nohp.ckpt")
    torch.save({"state_dict": {"w": torch.zeros(2)}, "hyper_parameters": [1, 2]}, root / "hplist.ckpt")
    torch.save({"state_dict": {"w": torch.zeros(2)}, "hyper_parameters": "lion"}, root / "hpstr.ckpt")
    torch.save(_Custom(), root / "custom.ckpt")
    torch.save({"state_dict": {}, "hyper_parameters": {"x": _Custom()}}, root / "custom_hp.ckpt")
    torch.save({"state_dict": {"w": torch.zeros(2)}, "hyper_parameters": {"lr": 1e-3}}, root / "foreign.ckpt")
    torch.save(
        {
            "state_dict": {"norm_mean": torch.zeros(3), "norm_std": torch.ones(1)},
            "hyper_parameters": {"config": "large", "stage": "vae"},
        },
        root / "cfgstr.ckpt",
    )  # LION-shaped, its config of the wrong type
    torch.save(
        {"state_dict": {"generator_ema.w": torch.zeros(2)}, "hyper_parameters": {"field": "graf", "z_dim": "eight"}},
        root / "grafbad.ckpt",
    )  # GRAF-shaped, wrong hyper-parameter type
    from gen3d.lit.graf_module import GRAFModule
    from gen3d.lit.lion_module import LionModule

    torch.manual_seed(0)
    graf = GRAFModule(**TINY_GRAF)
    torch.save({"state_dict": graf.state_dict(), "hyper_parameters": dict(graf.hparams)}, root / "graf.ckpt")
    lion = LionModule(config=TINY_LION, stage="vae")
    torch.save({"state_dict": lion.state_dict(), "hyper_parameters": dict(lion.hparams)}, root / "vae.ckpt")
    _half(root / "vae.ckpt", root / "half.ckpt")
    state = {k: v for k, v in lion.state_dict().items() if k != "norm_mean"}
    torch.save({"state_dict": state, "hyper_parameters": dict(lion.hparams)}, root / "nonorm.ckpt")

    # images and Inception weights
    for name in ("imgs", "imgs_empty_png", "imgs_junk_png", "imgs_one"):
        (root / name).mkdir()
    for i in range(3):
        image = rng.integers(0, 256, size=(20, 20, 3), dtype=np.uint8)
        Image.fromarray(image).save(root / "imgs" / f"{i}.png")
        Image.fromarray(image).save(root / "imgs_empty_png" / f"{i}.png")
        Image.fromarray(image).save(root / "imgs_junk_png" / f"{i}.png")
    Image.fromarray(image).save(root / "imgs_one" / "0.png")
    (root / "imgs_empty_png" / "9.png").write_bytes(b"")
    (root / "imgs_junk_png" / "9.png").write_bytes(junk)
    (root / "emptydir_png").mkdir()
    (root / "emptydir_png" / "notes.txt").write_text("no images here\n")
    torch.jit.script(_StandInInception()).save(str(root / "standin.pt"))

    # datasets in the PC15k layout, each with one bad cloud
    for name, writer in {
        "ds_empty": lambda p: p.write_bytes(b""),
        "ds_junk": lambda p: p.write_bytes(junk),
        "ds_nan": lambda p: np.save(p, bad[1]),
        "ds_n2": lambda p: np.save(p, clouds[0, :, :2]),
        "ds_set": lambda p: np.save(p, clouds),
    }.items():
        split = root / name / "mug" / "train"
        split.mkdir(parents=True)
        np.save(split / "00000.npy", clouds[0])
        writer(split / "00001.npy")

    # gen3d train presets, each with one defect
    def dump(name: str, data: object) -> None:
        (root / name).write_text(yaml.safe_dump(data, sort_keys=False))

    dump("base.yaml", BASE_TRAIN)
    dump("unknown_top.yaml", _with(BASE_TRAIN, ("optimiser",), {"lr": 1}))
    dump("unknown_model.yaml", _with(BASE_TRAIN, ("model", "learning_rat"), 0.1))
    dump("unknown_trainer.yaml", _with(BASE_TRAIN, ("trainer", "max_stepz"), 5))
    dump("wrong_type.yaml", _with(BASE_TRAIN, ("trainer", "max_steps"), "many"))
    dump("stages_list.yaml", _with(BASE_TRAIN, ("stages",), ["vae", "prior"]))
    dump("stages_unknown.yaml", _with(BASE_TRAIN, ("stages",), {"vea": {"trainer": {"max_steps": 2}}}))
    dump("stages_unknown_key.yaml", _with(BASE_TRAIN, ("stages", "vae", "trainer", "max_stepz"), 2))
    dump("list.yaml", [BASE_TRAIN])
    (root / "invalid.yaml").write_text("trainer:\n  max_steps: [1, 2\nmodel: {\n")
    (root / "resume" / "base" / "vae" / "checkpoints").mkdir(parents=True)
    (root / "resume" / "base" / "vae" / "checkpoints" / "last.ckpt").write_bytes(junk)
    return root


# Values refused by each kind of numeric option; "abc" and "1e999" everywhere.
COUNT = ("0", "-1", "nan", "inf", "1e999", "abc", "2.5")
COUNT0 = ("-1", "nan", "inf", "1e999", "abc")  # counts from 0
SEED = ("-1", "4294967296", "nan", "1e999", "abc")
INDEX = ("nan", "1e999", "abc", "1.5")  # any integer is a valid index
REAL = ("nan", "inf", "-inf", "1e999", "abc")


def _options(template: str, option: str, values: tuple[str, ...], tag: str) -> list:
    """One case per value of ``option`` appended to ``template``; the error must name the option."""
    return [pytest.param(f"{template} {option} {v}", option, id=f"{tag}{option}={v}") for v in values]


S = "sample --ckpt {fx}/graf.ckpt --out {tmp}/s"
MESH = "export mesh {fx}/cloud.npy {tmp}/m.obj"
FIELD = "export mesh {fx}/graf.ckpt {tmp}/m.obj"
TURN = "export turntable {fx}/cloud.npy {tmp}/t.gif"
GRID = "export grid {fx}/set.npy {tmp}/g.png"
EP = "evaluate points --samples {fx}/set.npy --refs {fx}/set.npz"
EI = "evaluate images --fake {fx}/imgs --real {fx}/imgs --weights {fx}/standin.pt"
EG = "evaluate graf --ckpt {fx}/graf.ckpt --real {fx}/imgs"
EE = "evaluate elbo --ckpt {fx}/vae.ckpt --data {fx}/set.npy"
TRAIN = "train lion --config {fx}/base.yaml --out {tmp}/runs"
REP = "report trilemma {fx}/graf.ckpt --refs {fx}/set.npy --out {tmp}/r --points 32 --no-pfid --no-classifier"

# fmt: off
CASES = [
    # ---------------------------------------------------------------- export points SRC DST
    pytest.param("export points {fx}/missing.npy {tmp}/o.ply", "missing.npy", id="points-missing"),
    *[pytest.param(f"export points {{fx}}/{n} {{tmp}}/o.npz", n, id=f"points-{n}") for n in (
        "empty.npy", "empty.npz", "empty.ply", "half.npy", "half.npz", "half.ply", "junk.npy", "junk.npz",
        "junk.ply", "nan.npy", "inf.npz", "nan.ply", "n2.npy", "n1.npy", "d4.npy", "npy_named.npz", "npz_named.npy",
        "adir.npy", "emptydir",
    )],
    pytest.param("export points {fx}/set.npy {fx}/afile/o.ply", "afile", id="points-dst-parent-is-file"),
    pytest.param("export points {fx}/set.npy {fx}/adir.ply", "adir.ply", id="points-dst-is-folder"),
    pytest.param("export points {fx}/set.npy {tmp}/o.txt", "o.txt", id="points-dst-suffix"),
    pytest.param("export points {fx}/set.npy {fx}/set.npy", "set.npy", id="points-dst-is-src"),
    pytest.param("export points {fx}/set.npy {tmp}/o.ply --index 99", "index 99", id="points-index-out-of-range"),
    *_options("export points {fx}/set.npy {tmp}/o.ply", "--index", INDEX, "points"),
    # ---------------------------------------------------------------- export mesh SRC DST
    pytest.param("export mesh {fx}/missing.npy {tmp}/m.obj", "missing.npy", id="mesh-missing"),
    *[pytest.param(f"export mesh {{fx}}/{n} {{tmp}}/m.obj", n, id=f"mesh-{n}") for n in (
        "empty.npy", "half.npz", "junk.ply", "nan.npy", "n2.npy", "d4.npy", "few.npy", "line.npy", "plane.npy",
        "dup.npy", "tetra_dup.npy", "set_line.npy", "adir.npy",
        "empty.ckpt", "half.ckpt", "junk.ckpt", "list.ckpt", "dict0.ckpt", "nohp.ckpt", "hplist.ckpt", "custom.ckpt",
        "custom_hp.ckpt", "foreign.ckpt", "vae.ckpt", "grafbad.ckpt", "adir.ckpt",
    )],
    pytest.param("export mesh {fx}/line.npy {tmp}/m.obj --method ball_pivot", "line.npy", id="mesh-line-ball-pivot"),
    pytest.param("export mesh {fx}/dup.npy {tmp}/m.obj --method ball_pivot", "dup.npy", id="mesh-dup-ball-pivot"),
    pytest.param("export mesh {fx}/set.npy {tmp}/m.obj --index 99", "index 99", id="mesh-index-out-of-range"),
    pytest.param("export mesh {fx}/cloud.npy {fx}/afile/m.obj", "afile", id="mesh-dst-parent-is-file"),
    pytest.param("export mesh {fx}/cloud.npy {fx}/adir.ply", "adir.ply", id="mesh-dst-is-folder"),
    pytest.param("export mesh {fx}/cloud.npy {tmp}/m.fbx", "m.fbx", id="mesh-dst-suffix"),
    pytest.param(FIELD + " --aabb 0 0 0 0 1 1", "--aabb", id="mesh--aabb-min=max"),
    pytest.param(FIELD + " --aabb 1 0 0 -1 1 1", "--aabb", id="mesh--aabb-min>max"),
    pytest.param(FIELD + " --aabb 0 0 0 1 1", "--aabb", id="mesh--aabb-five-values"),
    *[pytest.param(FIELD + f" --aabb 0 0 {v} 1 1 1", "--aabb", id=f"mesh--aabb={v}") for v in REAL],
    *_options(MESH, "--depth", ("0", "1", "4", "13", "40", "-1", "nan", "abc"), "mesh"),
    *_options(MESH, "--trim", ("1", "-0.1", *REAL), "mesh"),
    *_options(MESH, "--radii", ("0", "-1", *REAL), "mesh"),
    *_options(MESH, "--knn", ("2", "1001", *COUNT), "mesh"),
    *_options(MESH, "--index", INDEX, "mesh"),
    *_options(FIELD, "--resolution", ("1", "1025", *COUNT), "mesh"),
    *_options(FIELD, "--threshold", REAL, "mesh"),
    *_options(FIELD, "--seed", SEED, "mesh"),
    *_options(FIELD, "--chunk", COUNT, "mesh"),
    *_options(FIELD, "--device", ("tpu", "cuda:x", "gpu", "cuda"), "mesh"),  # cuda: skipped where present
    # ---------------------------------------------------------------- export turntable SRC DST
    pytest.param("export turntable {fx}/missing.ply {tmp}/t.gif", "missing.ply", id="turntable-missing"),
    *[pytest.param(f"export turntable {{fx}}/{n} {{tmp}}/t.gif", n, id=f"turntable-{n}") for n in (
        "empty.ply", "empty.obj", "junk.obj", "junk.ply", "half.ply", "empty.npy", "nan.npy", "nan.ply", "n2.npy",
        "empty.ckpt", "junk.ckpt", "custom.ckpt", "vae.ckpt", "list.ckpt",
    )],
    pytest.param("export turntable {fx}/set.npy {tmp}/t.gif --index 99", "index 99", id="turntable-index-range"),
    pytest.param("export turntable {fx}/cloud.npy {tmp}/t.png", "t.png", id="turntable-dst-suffix"),
    pytest.param("export turntable {fx}/cloud.npy {fx}/afile/t.gif", "afile", id="turntable-dst-parent-is-file"),
    pytest.param("export turntable {fx}/cloud.npy {fx}/adir.gif", "adir.gif", id="turntable-dst-is-folder"),
    *_options(TURN, "--frames", ("3601", *COUNT), "turntable"),
    *_options(TURN, "--size", ("7", "4097", *COUNT), "turntable"),
    *_options(TURN, "--fps", ("0", "-1", "101", *REAL), "turntable"),
    *_options(TURN, "--elevation", ("90.5", "-91", "360", *REAL), "turntable"),
    *_options(TURN, "--index", INDEX, "turntable"),
    *_options(TURN, "--seed", SEED, "turntable"),
    # ---------------------------------------------------------------- export grid SRC DST
    pytest.param("export grid {fx}/missing.npz {tmp}/g.png", "missing.npz", id="grid-missing"),
    *[pytest.param(f"export grid {{fx}}/{n} {{tmp}}/g.png", n, id=f"grid-{n}") for n in (
        "empty.npz", "junk.npz", "half.npz", "inf.npz", "d4.npy", "n1.npy", "npz_named.npy", "emptydir",
    )],
    pytest.param("export grid {fx}/set.npy {tmp}/g.jpg", "g.jpg", id="grid-dst-suffix"),
    pytest.param("export grid {fx}/set.npy {fx}/afile/g.png", "afile", id="grid-dst-parent-is-file"),
    pytest.param("export grid {fx}/set.npy {fx}/adir.png", "adir.png", id="grid-dst-is-folder"),
    *_options(GRID, "--size", ("7", "4097", *COUNT), "grid"),
    *_options(GRID, "--ncols", COUNT, "grid"),
    *_options(GRID, "--max", COUNT, "grid"),
    # ---------------------------------------------------------------- evaluate points
    *[pytest.param(f"evaluate points --samples {{fx}}/{n} --refs {{fx}}/set.npz", n, id=f"eval-points-{n}") for n in (
        "missing.npz", "empty.npz", "empty.npy", "half.npz", "junk.npy", "nan.npy", "inf.npz", "cloud.ply", "cloud.npy",
        "n2.npy", "d4.npy", "npy_named.npz", "npz_named.npy", "emptydir", "afile",
    )],
    pytest.param("evaluate points --samples {fx}/set.npy --refs {fx}/junk.npz", "junk.npz", id="eval-points-refs-junk"),
    pytest.param(EP + " --json {fx}/afile/m.json", "afile", id="eval-points-json-parent-is-file"),
    pytest.param(EP + " --json {fx}/adir.json", "adir.json", id="eval-points-json-is-folder"),
    pytest.param(
        "evaluate points --samples {fx}/set.npy --refs {fx}/dupset.npy --norm global", "dupset.npy",
        id="eval-points-global-norm-of-a-point",
    ),
    *_options(EP, "--max", COUNT, "eval-points"),
    *_options(EP, "--batch-size", COUNT, "eval-points"),
    *_options(EP, "--emd", ("fast",), "eval-points"),
    *_options(EP + " --pfid", "--pfid-views", COUNT, "eval-points"),
    *_options(EP + " --pfid", "--pfid-size", ("7", "1025", *COUNT), "eval-points"),
    *_options(EP + " --pfid", "--pfid-shading", ("colour", "NORMALS"), "eval-points"),
    pytest.param(EP + " --pfid --weights {fx}/missing.pt", "missing.pt", id="eval-points-pfid-weights-missing"),
    pytest.param(EP + " --pfid --weights {fx}/empty.pt", "empty.pt", id="eval-points-pfid-weights-empty"),
    pytest.param(EP + " --pfid --weights {fx}/junk.pt", "junk.pt", id="eval-points-pfid-weights-junk"),
    pytest.param(EP + " --pfid --weights {fx}/adir.npy", "adir.npy", id="eval-points-pfid-weights-folder"),
    pytest.param(EP + " --pfid-views 2", "--pfid-views", id="eval-points-pfid-option-without-pfid"),
    pytest.param(EP + " --weights {fx}/standin.pt", "--weights", id="eval-points-weights-without-pfid"),
    pytest.param(
        EP + " --pfid --weights {fx}/standin.pt --max 1", "at least 2 clouds", id="eval-points-pfid-one-cloud"
    ),
    # ---------------------------------------------------------------- evaluate images
    pytest.param(EI.replace("{fx}/imgs --real", "{fx}/missing --real"), "missing", id="eval-images-fake-missing"),
    pytest.param(EI.replace("{fx}/imgs --real", "{fx}/afile --real"), "afile", id="eval-images-fake-is-file"),
    pytest.param(
        EI.replace("{fx}/imgs --real", "{fx}/emptydir_png --real"), "emptydir_png", id="eval-images-fake-empty"
    ),
    pytest.param(EI.replace("{fx}/imgs --real", "{fx}/imgs_empty_png --real"), "9.png", id="eval-images-empty-png"),
    pytest.param(EI.replace("{fx}/imgs --real", "{fx}/imgs_junk_png --real"), "9.png", id="eval-images-junk-png"),
    pytest.param(EI.replace("{fx}/imgs --real", "{fx}/imgs_one --real"), "imgs_one", id="eval-images-one-image"),
    pytest.param(EI.replace("--real {fx}/imgs", "--real {fx}/junk.png"), "junk.png", id="eval-images-real-is-file"),
    pytest.param(EI.replace("standin.pt", "missing.pt"), "missing.pt", id="eval-images-weights-missing"),
    pytest.param(EI.replace("standin.pt", "empty.pt"), "empty.pt", id="eval-images-weights-empty"),
    pytest.param(EI.replace("standin.pt", "junk.pt"), "junk.pt", id="eval-images-weights-junk"),
    pytest.param(EI.replace("standin.pt", "vae.ckpt"), "vae.ckpt", id="eval-images-weights-checkpoint"),
    pytest.param(EI.replace("standin.pt", "adir.npy"), "adir.npy", id="eval-images-weights-folder"),
    pytest.param(EI + " --real-cache {fx}/junk.npz", "junk.npz", id="eval-images-cache-junk"),
    pytest.param(EI + " --real-cache {fx}/set.npz", "set.npz", id="eval-images-cache-foreign-npz"),
    pytest.param(EI + " --real-cache {fx}/afile/c.npz", "afile", id="eval-images-cache-parent-is-file"),
    pytest.param(EI + " --real-cache {fx}/adir.npz", "adir.npz", id="eval-images-cache-is-folder"),
    pytest.param(EI + " --json {fx}/afile/m.json", "afile", id="eval-images-json-parent-is-file"),
    pytest.param(EI + " --json {fx}/adir.json", "adir.json", id="eval-images-json-is-folder"),
    *_options(EI, "--kid-subsets", COUNT, "eval-images"),
    *_options(EI, "--kid-subset-size", ("1", *COUNT), "eval-images"),
    *_options(EI, "--batch-size", COUNT, "eval-images"),
    *_options(EI, "--seed", SEED, "eval-images"),
    *_options(EI, "--device", ("tpu", "cuda:x", "cuda"), "eval-images"),
    # ---------------------------------------------------------------- evaluate graf
    *[pytest.param(f"evaluate graf --ckpt {{fx}}/{n} --real {{fx}}/imgs", n, id=f"eval-graf-{n}") for n in (
        "missing.ckpt", "empty.ckpt", "half.ckpt", "junk.ckpt", "list.ckpt", "dict0.ckpt", "nohp.ckpt", "hplist.ckpt",
        "custom.ckpt", "foreign.ckpt", "vae.ckpt", "grafbad.ckpt", "adir.ckpt",
    )],
    pytest.param(EG.replace("{fx}/imgs", "{fx}/missing"), "missing", id="eval-graf-real-missing"),
    pytest.param(EG.replace("{fx}/imgs", "{fx}/afile"), "afile", id="eval-graf-real-is-file"),
    pytest.param(EG.replace("{fx}/imgs", "{fx}/emptydir_png"), "emptydir_png", id="eval-graf-real-empty"),
    pytest.param(EG.replace("{fx}/imgs", "{fx}/imgs_junk_png"), "9.png", id="eval-graf-real-junk-png"),
    pytest.param(EG.replace("{fx}/imgs", "{fx}/imgs_one"), "imgs_one", id="eval-graf-real-one-image"),
    pytest.param(EG + " --kind xyz", "--kind", id="eval-graf-kind"),
    pytest.param(EG + " --json {fx}/afile/m.json", "afile", id="eval-graf-json-parent-is-file"),
    pytest.param(EG + " --json {fx}/adir.json", "adir.json", id="eval-graf-json-is-folder"),
    pytest.param(EG + " --geometry --classes spoon", "spoon", id="eval-graf-geometry-class"),
    pytest.param(EG + " --geometry --per-class 4 --heldout-first 2", "--heldout-first", id="eval-graf-heldout"),
    *_options(EG, "--n", ("1", *COUNT), "eval-graf"),
    *_options(EG, "--n-real", ("1", *COUNT), "eval-graf"),
    *_options(EG, "--seed", SEED, "eval-graf"),
    *_options(EG + " --geometry", "--per-class", COUNT, "eval-graf"),
    *_options(EG + " --geometry", "--heldout-first", COUNT0, "eval-graf"),
    *_options(EG + " --geometry", "--heldout-per-class", COUNT, "eval-graf"),
    *_options(EG + " --geometry", "--data-seed", SEED, "eval-graf"),
    *_options(EG + " --geometry", "--points", COUNT, "eval-graf"),
    *_options(EG + " --geometry", "--resolution", ("1", "1025", *COUNT), "eval-graf"),
    *_options(EG + " --geometry", "--level", ("0", "-1", *REAL), "eval-graf"),
    # ---------------------------------------------------------------- evaluate elbo
    *[pytest.param(f"evaluate elbo --ckpt {{fx}}/{n} --data {{fx}}/set.npy", n, id=f"eval-elbo-{n}") for n in (
        "missing.ckpt", "empty.ckpt", "half.ckpt", "junk.ckpt", "list.ckpt", "dict0.ckpt", "nohp.ckpt", "hpstr.ckpt",
        "custom.ckpt", "custom_hp.ckpt", "foreign.ckpt", "graf.ckpt", "cfgstr.ckpt", "nonorm.ckpt",
    )],
    *[pytest.param(f"evaluate elbo --ckpt {{fx}}/vae.ckpt --data {{fx}}/{n}", n, id=f"eval-elbo-data-{n}") for n in (
        "missing.npy", "empty.npy", "half.npz", "junk.npz", "nan.npy", "inf.npz", "cloud.npy", "cloud.ply", "n2.npy",
        "d4.npy", "emptydir", "big.npy",
    )],
    pytest.param(EE + " --json {fx}/afile/e.json", "afile", id="eval-elbo-json-parent-is-file"),
    pytest.param(EE + " --json {fx}/adir.json", "adir.json", id="eval-elbo-json-is-folder"),
    *_options(EE, "--points", COUNT, "eval-elbo"),
    *_options(EE, "--samples", COUNT, "eval-elbo"),
    *_options(EE, "--batch-size", COUNT, "eval-elbo"),
    *_options(EE, "--seed", SEED, "eval-elbo"),
    # ---------------------------------------------------------------- sample
    *[pytest.param(f"sample --ckpt {{fx}}/{n} --out {{tmp}}/s", n, id=f"sample-{n}") for n in (
        "missing.ckpt", "empty.ckpt", "half.ckpt", "junk.ckpt", "list.ckpt", "dict0.ckpt", "nohp.ckpt", "hplist.ckpt",
        "hpstr.ckpt", "custom.ckpt", "custom_hp.ckpt", "foreign.ckpt", "vae.ckpt", "cfgstr.ckpt", "nonorm.ckpt",
        "grafbad.ckpt",
        "adir.ckpt", "set.npz",
    )],
    pytest.param("sample --ckpt {fx}/graf.ckpt --out {fx}/afile/s", "afile", id="sample-out-parent-is-file"),
    pytest.param("sample --ckpt {fx}/graf.ckpt --out {fx}/afile", "afile", id="sample-out-is-file"),
    *_options(S, "--n", COUNT, "sample"),
    *_options(S, "--steps", ("100001", *COUNT), "sample"),
    *_options(S, "--eta", ("-0.1", "1.5", *REAL), "sample"),
    *_options(S, "--code-temperature", ("0", "-1", *REAL), "sample"),
    *_options(S, "--seed", SEED, "sample"),
    *_options(S, "--points", ("10000001", *COUNT), "sample"),
    *_options(S, "--batch-size", COUNT, "sample"),
    *_options(S, "--size", ("7", "4097", *COUNT), "sample"),
    *_options(S, "--u", ("1.5", "-0.1", *REAL), "sample"),
    *_options(S, "--v", ("2", "-1", *REAL), "sample"),
    *_options(S, "--frames", ("3601", *COUNT), "sample"),
    *_options(S, "--device", ("tpu", "cuda:x", "cuda"), "sample"),
    *_options(S, "--sampler", ("euler",), "sample"),
    # ---------------------------------------------------------------- data shapes / info / multiview
    pytest.param("data shapes --out {fx}/afile/d", "afile", id="shapes-out-parent-is-file"),
    pytest.param("data shapes --out {fx}/afile", "afile", id="shapes-out-is-file"),
    *_options("data shapes --out {tmp}/d", "--per-class", ("100001", *COUNT), "shapes"),
    *_options("data shapes --out {tmp}/d", "--seed", SEED, "shapes"),
    *_options("data shapes --out {tmp}/d", "--points", ("1000001", *COUNT), "shapes"),
    *[pytest.param(f"data shapes --out {{tmp}}/d --split {v}", "split", id=f"shapes--split={v}") for v in (
        "a,b,c", "0.8,0.2", "nan,0.5,0.5", "-0.5,1,0.5", "inf,0,0", "0.5,0.5,0.5", "1e999,0,0",
    )],
    pytest.param("data shapes --out {tmp}/d --classes spoon", "spoon", id="shapes-class"),
    pytest.param("data info {fx}/missing", "missing", id="info-missing"),
    pytest.param("data info {fx}/afile", "afile", id="info-root-is-file"),
    pytest.param("data info {fx}/emptydir", "emptydir", id="info-root-empty"),
    pytest.param("data info {fx}/ds_empty", "00001.npy", id="info-empty-cloud"),
    pytest.param("data info {fx}/ds_junk", "00001.npy", id="info-junk-cloud"),
    pytest.param("data info {fx}/ds_nan", "00001.npy", id="info-nan-cloud"),
    pytest.param("data info {fx}/ds_n2", "00001.npy", id="info-n2-cloud"),
    pytest.param("data info {fx}/ds_set", "00001.npy", id="info-set-as-cloud"),
    pytest.param("data info {fx}/ds_nan --classes spoon", "spoon", id="info-class"),
    pytest.param("data info {fx}/ds_nan --json {fx}/afile/s.json", "afile", id="info-json-parent-is-file"),
    pytest.param("data info {fx}/ds_nan --json {fx}/adir.json", "adir.json", id="info-json-is-folder"),
    pytest.param("data multiview --out {fx}/afile/mv", "afile", id="multiview-out-parent-is-file"),
    pytest.param("data multiview --out {fx}/afile", "afile", id="multiview-out-is-file"),
    pytest.param("data multiview --out {tmp}/mv --classes spoon", "spoon", id="multiview-class"),
    *_options("data multiview --out {tmp}/mv", "--per-class", ("100001", *COUNT), "multiview"),
    *_options("data multiview --out {tmp}/mv", "--views", ("10001", *COUNT), "multiview"),
    *_options("data multiview --out {tmp}/mv", "--size", ("7", "4097", *COUNT), "multiview"),
    *_options("data multiview --out {tmp}/mv", "--seed", SEED, "multiview"),
    *_options("data multiview --out {tmp}/mv", "--first-index", COUNT0, "multiview"),
    # ---------------------------------------------------------------- demo
    pytest.param("demo --out {fx}/afile/demo", "afile", id="demo-out-parent-is-file"),
    pytest.param("demo --out {fx}/afile", "afile", id="demo-out-is-file"),
    *_options("demo --out {tmp}/demo", "--per-class", ("2", *COUNT), "demo"),
    *_options("demo --out {tmp}/demo", "--seed", SEED, "demo"),
    *_options("demo --out {tmp}/demo", "--points", ("63", "1000001", *COUNT), "demo"),
    *_options("demo --out {tmp}/demo", "--preview", COUNT0, "demo"),
    *_options("demo --out {tmp}/demo", "--vae-steps", COUNT, "demo"),
    *_options("demo --out {tmp}/demo", "--prior-steps", COUNT, "demo"),
    *_options("demo --out {tmp}/demo", "--graf-iterations", COUNT, "demo"),
    *_options("demo --out {tmp}/demo", "--lion-accelerator", ("tpu",), "demo"),
    # ---------------------------------------------------------------- view
    *[pytest.param(f"view {{fx}}/{n}", n, id=f"view-{n}") for n in (
        "missing.npz", "empty.npy", "empty.npz", "empty.ply", "empty.obj", "empty.ckpt", "half.npz", "half.ply",
        "half.ckpt", "junk.npy", "junk.ply", "junk.obj", "junk.ckpt", "nan.npy", "inf.npz", "nan.ply", "n2.npy",
        "d4.npy", "list.ckpt", "dict0.ckpt", "custom.ckpt", "foreign.ckpt", "cfgstr.ckpt", "afile", "emptydir",
        "ds_junk",
    )],
    *_options("view {fx}/set.npz", "--port", ("-1", "65536", "nan", "1e999", "abc"), "view"),
    pytest.param("view {fx}/set.npz --allow-origin not-an-origin", "not-an-origin", id="view-origin"),
    # ---------------------------------------------------------------- train
    pytest.param("train lion --config {fx}/missing.yaml --out {tmp}/runs", "missing.yaml", id="train-config-missing"),
    pytest.param("train lion --config {fx}/adir.npy --out {tmp}/runs", "adir.npy", id="train-config-is-folder"),
    pytest.param("train lion --config {fx}/invalid.yaml --out {tmp}/runs", "invalid.yaml", id="train-invalid-yaml"),
    pytest.param("train lion --config {fx}/list.yaml --out {tmp}/runs", "list.yaml", id="train-yaml-not-mapping"),
    *[pytest.param(f"train lion --config {{fx}}/{n}.yaml --out {{tmp}}/runs", needle, id=f"train-{n}")
      for n, needle in (
          ("empty", "empty.yaml"),
          ("unknown_top", "optimiser"),
          ("unknown_model", "learning_rat"),
          ("unknown_trainer", "max_stepz"),
          ("wrong_type", "max_steps"),
          ("stages_list", "stages"),
          ("stages_unknown", "vea"),
          ("stages_unknown_key", "max_stepz"),
      )],
    pytest.param(TRAIN + " --stage prio", "--stage", id="train-stage"),
    pytest.param(TRAIN.replace("{tmp}/runs", "{fx}/afile/runs"), "afile", id="train-out-parent-is-file"),
    pytest.param(TRAIN.replace("{tmp}/runs", "{fx}/afile"), "afile", id="train-out-is-file"),
    pytest.param(TRAIN + " --stage vae --ckpt_path {fx}/missing.ckpt", "missing.ckpt", id="train-ckpt-missing"),
    pytest.param(TRAIN + " --stage vae --ckpt_path {fx}/empty.ckpt", "empty.ckpt", id="train-ckpt-empty"),
    pytest.param(TRAIN + " --stage vae --ckpt_path {fx}/junk.ckpt", "junk.ckpt", id="train-ckpt-junk"),
    pytest.param(TRAIN + " --stage vae --ckpt_path {fx}/custom.ckpt", "custom.ckpt", id="train-ckpt-custom"),
    pytest.param(TRAIN + " --stage vae --ckpt_path {fx}/list.ckpt", "list.ckpt", id="train-ckpt-list"),
    pytest.param(TRAIN + " --stage vae --ckpt_path {fx}/graf.ckpt", "graf.ckpt", id="train-ckpt-wrong-family"),
    pytest.param(
        TRAIN.replace("{tmp}/runs", "{fx}/resume") + " --stage vae --resume", "last.ckpt", id="train-resume-junk"
    ),
    pytest.param(TRAIN + " --trainer.max_steps abc", "max_steps", id="train-flag-wrong-type"),
    pytest.param(TRAIN + " --trainer.max_stepz 3", "max_stepz", id="train-flag-unknown"),
    # ---------------------------------------------------------------- report trilemma RUN... --refs R --out D
    *[pytest.param(REP.replace("graf.ckpt", n), n, id=f"report-{n}") for n in (
        "missing.ckpt", "empty.ckpt", "half.ckpt", "junk.ckpt", "list.ckpt", "dict0.ckpt", "nohp.ckpt", "hplist.ckpt",
        "custom.ckpt", "foreign.ckpt", "vae.ckpt", "grafbad.ckpt", "adir.ckpt", "emptydir",
    )],
    pytest.param(REP.replace("graf.ckpt", "graf.ckpt {fx}/graf.ckpt"), "twice", id="report-same-checkpoint-twice"),
    *[pytest.param(REP.replace("set.npy", n), n, id=f"report-refs-{n}") for n in (
        "missing.npy", "empty.npy", "half.npy", "junk.npy", "nan.npy", "n2.npy", "n1.npy", "d4.npy", "adir.npy",
        "emptydir",
    )],
    pytest.param(REP + " --oracle {fx}/missing.npy", "missing.npy", id="report-oracle-missing"),
    pytest.param(REP + " --oracle {fx}/junk.npy", "junk.npy", id="report-oracle-junk"),
    pytest.param(REP + " --points 100", "--points 100", id="report-points-above-the-refs"),
    pytest.param(REP.replace("{tmp}/r", "{fx}/afile"), "afile", id="report-out-is-file"),
    pytest.param(REP.replace("{tmp}/r", "{fx}/afile/r"), "afile", id="report-out-parent-is-file"),
    pytest.param(REP.replace(" --no-pfid", " --weights {fx}/missing.pt"), "missing.pt", id="report-weights-missing"),
    pytest.param(REP.replace(" --no-pfid", " --weights {fx}/junk.pt"), "junk.pt", id="report-weights-junk"),
    pytest.param(REP + " --classes chiar", "chiar", id="report-classes-unknown"),
    pytest.param(REP + " --emd fast", "--emd", id="report-emd"),
    pytest.param(REP + " --fast-sampler euler", "--fast-sampler", id="report-fast-sampler"),
    *_options(REP, "--n", COUNT, "report"),
    *_options(REP, "--points", COUNT, "report"),
    *_options(REP, "--seed", SEED, "report"),
    *_options(REP, "--fast-steps", COUNT, "report"),
    *_options(REP, "--batch-size", COUNT, "report"),
    *_options(REP, "--gan-resolution", COUNT, "report"),
    *_options(REP, "--code-temperature", REAL + ("0", "-1"), "report"),
]
# fmt: on


# Cases that fail today and whose fix belongs to files the lead engineer is changing (see the report).
def _snapshot(*roots: Path) -> dict[str, object]:
    """Every entry under ``roots``: folders as ``"dir"``, files as their SHA-256."""
    snap: dict[str, object] = {}
    for root in roots:
        for p in sorted(root.rglob("*")):
            key = str(p)
            snap[key] = "dir" if p.is_dir() else hashlib.sha256(p.read_bytes()).hexdigest()
    return snap


def _run(argv: list[str]) -> tuple[object, list[str]]:
    """``main(argv)``; any exception that escapes is returned as its repr. Also the warnings a user would see."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            code: object = main(argv)
        except BaseException as exc:  # noqa: BLE001 - reported by the assertion
            code = f"{type(exc).__name__}: {exc}"
    hidden = (DeprecationWarning, PendingDeprecationWarning, ResourceWarning, ImportWarning)
    shown = [f"{w.category.__name__}: {w.message}" for w in caught if not issubclass(w.category, hidden)]
    return code, shown


@pytest.fixture
def no_launch(monkeypatch):
    """Training and serving never start: a bad input must be refused before them."""
    import lightning.pytorch as pl

    import gen3d.viewer.app as viewer_app

    def refuse_fit(*args, **kwargs):
        raise _TrainingStarted("Trainer.fit was reached")

    def refuse_run(self):
        raise _ViewerStarted("the viewer would have started serving")

    monkeypatch.setattr(pl.Trainer, "fit", refuse_fit)
    monkeypatch.setattr(viewer_app.ViewerApp, "run", refuse_run)


@pytest.mark.parametrize(("template", "needle"), CASES)
def test_bad_input(template, needle, fx, tmp_path, capfd, monkeypatch, no_launch):
    if template.endswith("--device cuda") and torch.cuda.is_available():
        pytest.skip("CUDA is available here")
    monkeypatch.chdir(tmp_path)  # a default output folder would land in the snapshot
    argv = template.format(fx=fx, tmp=tmp_path).split()
    before = _snapshot(fx, tmp_path)
    capfd.readouterr()
    code, shown_warnings = _run(argv)
    err = capfd.readouterr().err
    lines = err.splitlines() + shown_warnings
    assert "Traceback" not in err, err
    assert code == 2, f"exit {code!r}; stderr:\n{err}"
    assert len(lines) == 1 and err.endswith("\n"), "expected one line on stderr, got:\n" + "\n".join(lines)
    assert "error:" in err and needle in err, err
    assert _snapshot(fx, tmp_path) == before, "files were written or changed"


def test_the_train_preset_of_the_cases_is_valid(fx, tmp_path, monkeypatch, no_launch):
    """The control of the train cases: their base preset goes through to training (so each case has one defect)."""
    monkeypatch.chdir(tmp_path)
    code, _ = _run(
        ["train", "lion", "--config", str(fx / "base.yaml"), "--out", str(tmp_path / "runs"), "--stage", "vae"]
    )
    assert code == "_TrainingStarted: Trainer.fit was reached"


def test_the_inputs_of_the_cases_are_valid_when_not_broken(fx, tmp_path, capfd):
    """The controls: the good fixtures work, so each case fails for its defect only."""
    assert main(["export", "points", str(fx / "set.npy"), str(tmp_path / "o.npz")]) == 0
    assert main(["export", "points", str(fx / "cloud.ply"), str(tmp_path / "o.npy")]) == 0
    assert (
        main(["evaluate", "points", "--samples", str(fx / "set.npy"), "--refs", str(fx / "set.npz"), "--emd", "none"])
        == 0
    )
    pfid = ["--pfid", "--pfid-size", "16", "--weights", str(fx / "standin.pt")]
    assert main(["evaluate", "points", "--samples", str(fx / "set.npy"), "--refs", str(fx / "set.npz"), *pfid]) == 0
    args = ["evaluate", "images", "--fake", str(fx / "imgs"), "--real", str(fx / "imgs"), "--weights"]
    assert main([*args, str(fx / "standin.pt"), "--kid-subset-size", "2"]) == 0
    assert main(["export", "mesh", str(fx / "cloud.npy"), str(tmp_path / "m.obj"), "--depth", "5"]) == 0
    assert main(["export", "turntable", str(fx / "cloud.npy"), str(tmp_path / "t.gif"), "--frames", "2"]) == 0
    assert main(["export", "grid", str(fx / "set.npy"), str(tmp_path / "g.png"), "--size", "16"]) == 0
    report = f"report trilemma {fx}/graf.ckpt --refs {fx}/set.npy --out {tmp_path}/r --points 32 --no-pfid"
    assert main([*report.split(), "--no-classifier", "--n", "2", "--gan-resolution", "16"]) == 0
    assert (tmp_path / "r" / "trilemma.md").is_file()


def test_one_case_in_a_subprocess_prints_one_line(fx, tmp_path):
    """What a user sees: the whole stderr of the process, native libraries and warnings included."""
    result = subprocess.run(
        [sys.executable, "-m", "gen3d.cli.main", "export", "mesh", str(fx / "line.npy"), str(tmp_path / "m.obj")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 2, result.stderr
    assert result.stderr.count("\n") == 1 and "line.npy" in result.stderr, result.stderr
    assert not list(tmp_path.iterdir())
