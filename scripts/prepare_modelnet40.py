#!/usr/bin/env python
"""Turn a local ModelNet40 (or ModelNet10) folder into point clouds in the ShapeNetCore.v2.PC15k layout.

Input: the unpacked ``ModelNet40.zip`` from https://modelnet.cs.princeton.edu/ (``<src>/<class>/{train,test}/
<name>.off``; nothing is downloaded here). Output: ``<out>/<class>/{train,test}/<name>.npy``, each a
(points, 3) float32 array of area-weighted surface samples, readable by ``gen3d.data.PC15kDataset`` and
``gen3d data info``. ModelNet's malformed headers (``OFF490 518 0``) are handled.

Each cloud is rotated from ModelNet's z-up frame to gen3d's y-up frame (``--up z``, the default; use
``--up y`` for already aligned copies) and, by default, box-normalised into [-0.5, 0.5] (ModelNet meshes
come in arbitrary units). Sampling is seeded per file, so reruns give identical files. ModelNet's own
train/test split is kept and no val split is made; ``gen3d data import <src> --out <out> --up z`` imports the
same folder with seeded train/val/test splits instead (as it does any other folder of meshes).

Usage::

    python scripts/prepare_modelnet40.py --src ~/data/ModelNet40 --out datasets/modelnet40/data
    python scripts/prepare_modelnet40.py --src ~/data/ModelNet40 --out /tmp/mn --classes chair,airplane --points 15000
"""

from __future__ import annotations

import argparse
import sys
import zlib
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))


def convert(
    src: Path,
    out: Path,
    classes: str | None,
    points: int,
    seed: int,
    up: str,
    norm: str,
    show_progress: bool | None = None,
) -> tuple[int, list[str]]:
    """Sample every mesh of both splits; returns (files written, error messages of skipped meshes)."""
    import numpy as np

    from gen3d.data.meshes import load_mesh
    from gen3d.data.modelnet import SPLITS, modelnet_files
    from gen3d.data.normalize import normalize_box
    from gen3d.data.sampling import sample_mesh
    from gen3d.errors import InputError
    from gen3d.utils import atomic_path, progress

    jobs = []
    for split in SPLITS:
        try:
            jobs.extend((split, name, f) for name, f in modelnet_files(src, classes, split))
        except InputError:
            if split == "train":
                raise
    written, errors = 0, []
    for split, name, f in progress(
        jobs, "sampling meshes", disable=None if show_progress is None else not show_progress
    ):
        try:
            mesh = load_mesh(f)
            rng = np.random.default_rng(np.random.SeedSequence([seed, zlib.crc32(f"{name}/{split}/{f.name}".encode())]))
            cloud = sample_mesh(mesh, points, rng, source=f).astype(np.float64)  # (P, 3)
        except InputError as exc:
            errors.append(str(exc))
            continue
        if up == "z":  # (x, y, z) z-up -> (x, z, -y) y-up
            cloud = np.stack([cloud[:, 0], cloud[:, 2], -cloud[:, 1]], axis=-1)
        if norm == "box":
            cloud = normalize_box(cloud)
        with atomic_path(out / name / split / f"{f.stem}.npy") as tmp:
            np.save(tmp, cloud.astype(np.float32))
        written += 1
    return written, errors


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--src", type=Path, required=True, help="the ModelNet40 folder (<src>/<class>/{train,test}/*.off)"
    )
    parser.add_argument("--out", type=Path, required=True, help="output root in the PC15k layout")
    parser.add_argument("--classes", default=None, help="comma-separated classes (default: all)")
    parser.add_argument("--points", type=int, default=15000, help="points per shape (default 15000)")
    parser.add_argument("--seed", type=int, default=0, help="sampling seed (default 0)")
    parser.add_argument(
        "--up", choices=("z", "y"), default="z", help="up axis of the source meshes (default z, ModelNet's)"
    )
    parser.add_argument(
        "--norm", choices=("box", "none"), default="box", help="per-shape normalisation (default box: [-0.5, 0.5])"
    )
    parser.add_argument(
        "--strict", action="store_true", help="fail on the first unreadable mesh instead of skipping it"
    )
    args = parser.parse_args(argv)

    from gen3d.errors import Gen3DError

    if args.points < 1 or args.seed < 0:
        print("prepare_modelnet40: error: --points must be >= 1 and --seed >= 0", file=sys.stderr)
        return 2
    try:
        written, errors = convert(args.src, args.out, args.classes, args.points, args.seed, args.up, args.norm)
    except Gen3DError as exc:
        print(f"prepare_modelnet40: error: {exc}", file=sys.stderr)
        return 2
    for message in errors:
        print(f"skipped: {message}", file=sys.stderr)
    print(f"wrote {written} clouds of {args.points} points to {args.out} ({len(errors)} meshes skipped)")
    if errors and args.strict:
        return 2
    return 0 if written else 2


if __name__ == "__main__":
    sys.exit(main())
