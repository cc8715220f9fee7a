"""The ShapeNetCore.v2.PC15k layout (PointFlow's), read with numpy only.

Layout: ``<root>/<class>/<split>/<id>.npy``, each file a (15000, 3) float32 array of points sampled
uniformly on one shape's surface. ``<class>`` is a ShapeNet synset id (``03001627``) or a class name
(``chair``, as gen3d's procedural shapes and converted ModelNet use); both are accepted for every class.
PointFlow's protocol splits each cloud's points: the first 10000 feed training and the last 5000 serve as
held-out test points (:data:`TRAIN_POINTS`, :data:`TEST_POINTS`). The torch Dataset built on this is
:class:`gen3d.data.datasets.PC15kDataset`.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from gen3d.data.io import load_clouds
from gen3d.data.pointsets import PointCloudSet
from gen3d.errors import InputError

SPLITS = ("train", "val", "test")
PC15K_POINTS = 15000
TRAIN_POINTS = 10000
TEST_POINTS = 5000

# ShapeNetCore.v2 synset ids of the 55 PC15k categories (the taxonomy PointFlow and LION use).
SYNSET_TO_CLASS = {
    "02691156": "airplane",
    "02747177": "can",
    "02773838": "bag",
    "02801938": "basket",
    "02808440": "bathtub",
    "02818832": "bed",
    "02828884": "bench",
    "02843684": "birdhouse",
    "02871439": "bookshelf",
    "02876657": "bottle",
    "02880940": "bowl",
    "02924116": "bus",
    "02933112": "cabinet",
    "02942699": "camera",
    "02946921": "tin_can",
    "02954340": "cap",
    "02958343": "car",
    "02992529": "cellphone",
    "03001627": "chair",
    "03046257": "clock",
    "03085013": "keyboard",
    "03207941": "dishwasher",
    "03211117": "monitor",
    "03261776": "earphone",
    "03325088": "faucet",
    "03337140": "file",
    "03467517": "guitar",
    "03513137": "helmet",
    "03593526": "jar",
    "03624134": "knife",
    "03636649": "lamp",
    "03642806": "laptop",
    "03691459": "speaker",
    "03710193": "mailbox",
    "03759954": "microphone",
    "03761084": "microwave",
    "03790512": "motorcycle",
    "03797390": "mug",
    "03928116": "piano",
    "03938244": "pillow",
    "03948459": "pistol",
    "03991062": "pot",
    "04004475": "printer",
    "04074963": "remote_control",
    "04090263": "rifle",
    "04099429": "rocket",
    "04225987": "skateboard",
    "04256520": "sofa",
    "04330267": "stove",
    "04379243": "table",
    "04401088": "telephone",
    "04460130": "tower",
    "04468005": "train",
    "04530566": "vessel",
    "04554684": "washer",
}
CLASS_TO_SYNSET = {v: k for k, v in SYNSET_TO_CLASS.items()}


def class_name(folder: str) -> str:
    """Readable class name of a class folder (synset ids are translated)."""
    return SYNSET_TO_CLASS.get(folder, folder)


def available_classes(root: str | os.PathLike) -> list[str]:
    """Class folders under ``root`` that contain at least one split folder, sorted."""
    r = Path(root)
    if not r.is_dir():
        raise InputError("no such folder" if not r.exists() else "expected a dataset folder, found a file", r)
    return sorted(d.name for d in r.iterdir() if d.is_dir() and any((d / s).is_dir() for s in SPLITS))


def resolve_class_dir(root: str | os.PathLike, name: str) -> Path:
    """The folder of class ``name`` (a class name or a synset id) under ``root``."""
    r = Path(root)
    for candidate in (name, CLASS_TO_SYNSET.get(name), SYNSET_TO_CLASS.get(name)):
        if candidate and (r / candidate).is_dir():
            return r / candidate
    found = available_classes(r)
    shown = ", ".join(f"{f} ({class_name(f)})" if f in SYNSET_TO_CLASS else f for f in found) or "none"
    raise InputError(f"no folder for class {name!r} (looked for {name!r} and its synset id); classes found: {shown}", r)


def resolve_classes(root: str | os.PathLike, classes: str | Sequence[str] | None) -> list[str]:
    """Expand ``None``/``"all"``/a comma-separated string into a list of class folder names under ``root``."""
    if classes is None or classes == "all" or list(classes) == ["all"]:
        found = available_classes(root)
        if not found:
            raise InputError("no class folders with train/val/test sub-folders found", root)
        return found
    if isinstance(classes, str):
        classes = [c.strip() for c in classes.split(",") if c.strip()]
    return [resolve_class_dir(root, c).name for c in classes]


def split_files(root: str | os.PathLike, class_folder: str, split: str) -> list[Path]:
    """Sorted ``.npy`` files of one class and split; raises if the split folder is missing."""
    if split not in SPLITS:
        raise InputError(f"unknown split {split!r}; expected one of {', '.join(SPLITS)}")
    folder = Path(root) / class_folder / split
    if not folder.is_dir():
        raise InputError(f"missing split folder; expected <root>/<class>/{split}/<id>.npy", folder)
    return sorted(folder.glob("*.npy"))


def read_pc15k(
    root: str | os.PathLike,
    classes: str | Sequence[str] | None,
    split: str = "train",
    min_points: int | None = None,
) -> PointCloudSet:
    """Load every cloud of the given classes and split.

    Args:
        root: dataset root (``<root>/<class>/<split>/<id>.npy``).
        classes: class names or synset ids (None or "all": every class folder).
        split: "train", "val" or "test".
        min_points: raise :class:`InputError` for a cloud with fewer points.

    Returns:
        A :class:`PointCloudSet` (N, P, 3), ordered by class (as given) then file name; class labels are
        readable names (synset ids translated).
    """
    folders = resolve_classes(root, classes)
    files = [(folder, f) for folder in folders for f in split_files(root, folder, split)]
    if not files:
        raise InputError(f"no .npy clouds in split {split!r} of classes {', '.join(folders)}", root)
    return PointCloudSet(
        points=load_clouds([f for _, f in files], min_points=min_points),
        classes=[class_name(folder) for folder, _ in files],
        ids=[f.stem for _, f in files],
        sources=[str(f) for _, f in files],
    )


def scan(root: str | os.PathLike, classes: str | list[str] | None = None) -> dict[str, dict[str, int]]:
    """Number of ``.npy`` files per class and split, without reading them.

    Returns:
        ``{class name: {split: count}}`` (missing split folders count 0).
    """
    out: dict[str, dict[str, int]] = {}
    for folder in resolve_classes(root, classes):
        out[class_name(folder)] = {s: len(list((Path(root) / folder / s).glob("*.npy"))) for s in SPLITS}
    return out
