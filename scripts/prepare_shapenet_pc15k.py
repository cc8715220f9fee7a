#!/usr/bin/env python
"""Validate a local ShapeNetCore.v2.PC15k folder and print its statistics.

ShapeNetCore.v2.PC15k is the point-cloud release of PointFlow (Yang et al. 2019): ``<root>/<synset id>/
{train,val,test}/<model id>.npy``, 15000 points per shape. Obtain it from the link in PointFlow's README
(https://github.com/stevenygd/PointFlow) after accepting ShapeNet's terms of use; nothing is downloaded here.
This script reads every file, checks that it is a finite (15000, 3) array, and prints shapes per class and
split, bounding boxes and the global normalisation of the train split (what LION/PointFlow fit).

Usage::

    python scripts/prepare_shapenet_pc15k.py --root datasets/shapenet_pc15k/data
    python scripts/prepare_shapenet_pc15k.py --root datasets/shapenet_pc15k/data --classes airplane,chair,car \\
        --json stats.json
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--root", type=Path, required=True, help="the ShapeNetCore.v2.PC15k folder")
    parser.add_argument(
        "--classes", default=None, help="comma-separated class names or synset ids (default: all found)"
    )
    parser.add_argument("--points", type=int, default=15000, help="expected points per shape (default 15000)")
    parser.add_argument("--json", type=Path, default=None, help="also write the statistics as JSON")
    args = parser.parse_args(argv)

    from rich.console import Console

    from gen3d.data import pc15k
    from gen3d.data.stats import dataset_stats, stats_table
    from gen3d.errors import Gen3DError, InputError
    from gen3d.utils import atomic_write_text

    try:
        stats = dataset_stats(args.root, args.classes)
        wrong = [p for p in stats["points_per_shape"] if p != args.points]
        if wrong:
            raise InputError(
                f"clouds with {', '.join(map(str, wrong))} points found; expected {args.points} per shape", args.root
            )
    except Gen3DError as exc:
        print(f"prepare_shapenet_pc15k: error: {exc}", file=sys.stderr)
        return 2
    Console().print(stats_table(stats, title=f"ShapeNetCore.v2.PC15k in {args.root}"))
    found = set(pc15k.available_classes(args.root))
    missing = sorted(name for sid, name in pc15k.SYNSET_TO_CLASS.items() if sid not in found and name not in found)
    if args.classes is None and missing:
        print(f"{len(missing)} of the 55 categories are absent: {', '.join(missing)}")
    if args.json:
        atomic_write_text(args.json, json.dumps(stats, indent=2) + "\n")
    print(f"ok: {stats['total']} clouds validated")
    return 0


if __name__ == "__main__":
    sys.exit(main())
