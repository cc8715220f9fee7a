"""``gen3d data``: build the procedural dataset and inspect datasets in the PC15k layout.

Examples::

    gen3d data shapes --out datasets/procedural/data --classes chair,table --per-class 20 --seed 0
    gen3d data info datasets/procedural/data
"""

from __future__ import annotations

import argparse
import time

from gen3d.cli._options import count, seed
from gen3d.cli.main import add_command_group


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``data`` command and its actions."""
    actions = add_command_group(
        subparsers,
        "data",
        "actions",
        "ACTION",
        help="build the procedural dataset, inspect datasets",
        description="Build gen3d's procedural shapes dataset and inspect point-cloud datasets in the "
        "ShapeNetCore.v2.PC15k layout.",
    )

    shapes = actions.add_parser(
        "shapes",
        help="build the procedural shapes as <out>/<class>/<split>/<id>.npy",
        description="Build the procedural shapes dataset in the ShapeNetCore.v2.PC15k layout: "
        "<out>/<class>/{train,val,test}/<id>.npy, each a (points, 3) float32 array of surface samples. "
        "The same arguments give byte-identical files.",
    )
    shapes.add_argument("--out", required=True, help="output folder (new, empty, or an earlier procedural build)")
    shapes.add_argument("--classes", default="all", help="comma-separated classes, or 'all' (default); see --list")
    shapes.add_argument(
        "--per-class", type=count(1, 100000), default=20, help="shapes per class over all splits (default 20)"
    )
    shapes.add_argument("--seed", type=seed(), default=0, help="dataset seed (default 0)")
    shapes.add_argument(
        "--points", type=count(1, 10**6), default=15000, help="points per shape (default 15000, the PC15k protocol)"
    )
    shapes.add_argument("--split", default="0.8,0.1,0.1", help="train,val,test fractions (default 0.8,0.1,0.1)")
    shapes.add_argument("--list", action="store_true", help="list the procedural classes and exit")
    shapes.set_defaults(func=run_shapes)

    info = actions.add_parser(
        "info",
        help="validate a dataset in the PC15k layout and print statistics",
        description="Read every cloud of a dataset in the PC15k layout (<root>/<class>/<split>/<id>.npy), "
        "validate it, and print shapes per class and split, points per shape, bounding boxes and the train "
        "split's global normalisation.",
    )
    info.add_argument("root", help="dataset root")
    info.add_argument("--classes", default=None, help="comma-separated class names or synset ids (default: all)")
    info.add_argument("--json", default=None, metavar="FILE", help="also write the statistics as JSON")
    info.set_defaults(func=run_info)

    multiview = actions.add_parser(
        "multiview",
        help="render multi-view images of the procedural shapes (GRAF's training images)",
        description="Ray-cast the procedural shapes' meshes from random poses on the upper hemisphere: "
        "<out>/<class>_<index>_<view>.png plus multiview.json (the cameras). See docs/graf.md.",
    )
    multiview.add_argument("--out", required=True, help="output folder of PNGs")
    multiview.add_argument("--classes", default="chair,car,mug", help="comma-separated procedural classes, or 'all'")
    multiview.add_argument("--per-class", type=count(1, 100000), default=16, help="shapes per class")
    multiview.add_argument("--views", type=count(1, 10000), default=8, help="views per shape")
    multiview.add_argument("--size", type=count(8, 4096), default=64, help="image side in pixels")
    multiview.add_argument("--seed", type=seed(), default=0)
    multiview.add_argument("--first-index", type=count(0), default=0, help="index of the first shape of each class")
    multiview.set_defaults(func=run_multiview)


def run_shapes(args: argparse.Namespace) -> int:
    """``gen3d data shapes``."""
    from rich.console import Console

    from gen3d.data import shapes
    from gen3d.utils.fs import check_output_dir

    console = Console()
    if args.list:
        console.print("procedural classes: " + ", ".join(shapes.CLASSES))
        return 0
    check_output_dir(args.out, "--out", replaced=True)
    start = time.perf_counter()
    manifest = shapes.build_dataset(args.out, args.classes, args.per_class, args.seed, args.points, args.split)
    seconds = time.perf_counter() - start
    counts = manifest["counts"]
    first = next(iter(counts.values()))
    total = sum(sum(c.values()) for c in counts.values())
    console.print(
        f"wrote {total} shapes ({len(counts)} classes: {', '.join(counts)}; per class train/val/test = "
        f"{first['train']}/{first['val']}/{first['test']}; {manifest['points']} points each; seed {manifest['seed']}) "
        f"to {args.out} in {seconds:.1f} s",
        highlight=False,
    )
    return 0


def run_info(args: argparse.Namespace) -> int:
    """``gen3d data info``."""
    import json

    from rich.console import Console

    from gen3d.data.stats import dataset_stats, stats_table
    from gen3d.utils import atomic_write_text
    from gen3d.utils.fs import check_output_file

    if args.json:
        check_output_file(args.json, "--json")
    stats = dataset_stats(args.root, args.classes)
    Console().print(stats_table(stats))
    if args.json:
        atomic_write_text(args.json, json.dumps(stats, indent=2) + "\n")
    return 0


def run_multiview(args: argparse.Namespace) -> int:
    """``gen3d data multiview``: render the procedural shapes from random poses; prints the folder."""
    import json

    from gen3d.data.multiview import MANIFEST, render_multiview
    from gen3d.utils.fs import check_output_dir

    check_output_dir(args.out, "--out", replaced=True)
    out = render_multiview(
        args.out, args.classes, args.per_class, args.views, args.size, args.seed, first_index=args.first_index
    )
    n = len(json.loads((out / MANIFEST).read_text())["images"])
    print(f"wrote {n} images to {out}")
    return 0
