"""``gen3d data``: build the procedural dataset, import your own shapes, inspect datasets in the PC15k layout.

Examples::

    gen3d data shapes --out datasets/procedural/data --classes chair,table --per-class 20 --seed 0
    gen3d data import ~/my_meshes --out datasets/mine --class things --points 2048
    gen3d data info datasets/procedural/data
    gen3d data multiview --meshes datasets/mine --out datasets/mine_views --views 8
"""

from __future__ import annotations

import argparse
import math
import time

from gen3d.cli._options import count, seed
from gen3d.cli.main import add_command_group


def split_fractions(text: str) -> tuple[float, float, float]:
    """``--split``: three non-negative fractions ``train,val,test`` that sum to 1 (checked where parsed)."""
    try:
        values = [float(v) for v in text.split(",")]
    except ValueError:
        values = []
    if len(values) != 3 or any(not math.isfinite(v) or v < 0 for v in values):
        raise argparse.ArgumentTypeError(f"split must be three non-negative numbers train,val,test, got {text!r}")
    if abs(sum(values) - 1.0) > 1e-6:
        raise argparse.ArgumentTypeError(f"split fractions must sum to 1, got {text!r} (sum {sum(values):g})")
    return values[0], values[1], values[2]


def class_name(text: str) -> str:
    """``--class``: a name usable as a class folder (letters, digits and ``_ . + -``)."""
    from gen3d.data.importer import check_class_name
    from gen3d.errors import InputError

    try:
        return check_class_name(text)
    except InputError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``data`` command and its actions."""
    actions = add_command_group(
        subparsers,
        "data",
        "actions",
        "ACTION",
        help="build the procedural dataset, import your own shapes, inspect datasets",
        description="Build gen3d's procedural shapes dataset, import a folder of your own meshes or point clouds, "
        "and inspect point-cloud datasets in the ShapeNetCore.v2.PC15k layout.",
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
    shapes.add_argument(
        "--split", type=split_fractions, default="0.8,0.1,0.1", help="train,val,test fractions (default 0.8,0.1,0.1)"
    )
    shapes.add_argument("--list", action="store_true", help="list the procedural classes and exit")
    shapes.set_defaults(func=run_shapes)

    imp = actions.add_parser(
        "import",
        help="turn a folder of your meshes or point clouds into a dataset (<out>/<class>/<split>/<id>.npy)",
        description="Read every mesh (.obj .ply .off .stl .glb .gltf) and point cloud (.npy .npz, or a .ply/.off "
        "without faces) under SRC, sample it, turn it y-up, normalise it and write the ShapeNetCore.v2.PC15k "
        "layout <out>/<class>/{train,val,test}/<id>.npy with seeded splits and dataset.json (the source of every "
        "id). Each sub-folder of SRC is a class; --class NAME imports everything under SRC as one class. Files "
        "that cannot be used are skipped and listed with their reasons. See docs/data.md.",
    )
    imp.add_argument(
        "src", metavar="SRC", help="folder of meshes or point clouds (one sub-folder per class, or use --class)"
    )
    imp.add_argument("--out", required=True, help="output dataset folder (new, empty, or an earlier import)")
    imp.add_argument(
        "--class",
        dest="class_name",
        type=class_name,
        default=None,
        metavar="NAME",
        help="import every file under SRC (sub-folders too) as this one class; needed for a flat folder",
    )
    imp.add_argument(
        "--points", type=count(1, 10**6), default=15000, help="points per shape (default 15000, the PC15k protocol)"
    )
    imp.add_argument("--seed", type=seed(), default=0, help="sampling and split seed (default 0)")
    imp.add_argument(
        "--split", type=split_fractions, default="0.8,0.1,0.1", help="train,val,test fractions (default 0.8,0.1,0.1)"
    )
    imp.add_argument(
        "--up",
        choices=("y", "z"),
        default="y",
        help="up axis of the sources: y (default; kept) or z (turned y-up, gen3d's frame: (x, y, z) -> (x, z, -y))",
    )
    imp.add_argument(
        "--normalize",
        choices=("unit-box", "unit-sphere", "none"),
        default="unit-box",
        help="per-shape normalisation: unit-box (default; bounding box centred, largest side 1), unit-sphere "
        "(mean centred, farthest point at distance 1) or none (source units)",
    )
    imp.set_defaults(func=run_import)

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
        help="render multi-view images of the procedural shapes or your imported meshes (GRAF's training images)",
        description="Ray-cast meshes from random poses on the upper hemisphere into a folder of PNGs plus "
        "multiview.json (the cameras): the procedural shapes (<out>/<class>_<index>_<view>.png), or with "
        "--meshes ROOT the meshes of a dataset imported with 'gen3d data import' (<out>/<class>_<id>_<view>.png; "
        "shapes imported as point clouds are skipped). The same arguments give byte-identical files. "
        "See docs/graf.md.",
    )
    multiview.add_argument("--out", required=True, help="output folder of PNGs")
    multiview.add_argument(
        "--meshes",
        default=None,
        metavar="ROOT",
        help="render the meshes of this imported dataset (made by 'gen3d data import') instead of procedural shapes",
    )
    multiview.add_argument(
        "--split",
        choices=("train", "val", "test", "all"),
        default=None,
        help="with --meshes: the split of the import to render (default train)",
    )
    multiview.add_argument(
        "--classes",
        default=None,
        help="comma-separated classes, or 'all': procedural classes (default chair,car,mug), or with --meshes the "
        "imported classes (default all)",
    )
    multiview.add_argument(
        "--per-class", type=count(1, 100000), default=None, help="procedural shapes per class (default 16)"
    )
    multiview.add_argument("--views", type=count(1, 10000), default=8, help="views per shape (default 8)")
    multiview.add_argument("--size", type=count(8, 4096), default=64, help="image side in pixels (default 64)")
    multiview.add_argument("--seed", type=seed(), default=0, help="render seed: shapes, views, colours (default 0)")
    multiview.add_argument(
        "--first-index",
        type=count(0),
        default=None,
        help="index of the first procedural shape of each class (default 0)",
    )
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


def run_import(args: argparse.Namespace) -> int:
    """``gen3d data import``: import a folder of meshes or point clouds; prints what was read and skipped."""
    from gen3d.data.importer import import_shapes, summary_lines
    from gen3d.utils.fs import check_exists, check_output_dir

    check_exists(args.src, "folder")
    check_output_dir(args.out, "--out", replaced=True)
    manifest = import_shapes(
        args.src, args.out, args.class_name, args.points, args.seed, args.split, args.up, args.normalize
    )
    print("\n".join(summary_lines(manifest, args.out)))
    return 0


def run_info(args: argparse.Namespace) -> int:
    """``gen3d data info``."""
    import json

    from rich.console import Console

    from gen3d.data.importer import mesh_folder_hint
    from gen3d.data.pc15k import available_classes
    from gen3d.data.stats import dataset_stats, stats_table
    from gen3d.errors import InputError
    from gen3d.utils import atomic_write_text
    from gen3d.utils.fs import check_output_file

    if args.json:
        check_output_file(args.json, "--json")
    hint = mesh_folder_hint(args.root) if not available_classes(args.root) else None
    if hint:
        raise InputError(hint, args.root)
    stats = dataset_stats(args.root, args.classes)
    Console().print(stats_table(stats))
    if args.json:
        atomic_write_text(args.json, json.dumps(stats, indent=2) + "\n")
    return 0


def run_multiview(args: argparse.Namespace) -> int:
    """``gen3d data multiview``: render the procedural shapes, or an import's meshes, from random poses; prints
    what was written."""
    import json

    from gen3d.data.multiview import MANIFEST, render_mesh_dataset, render_multiview
    from gen3d.errors import InputError
    from gen3d.utils.fs import check_output_dir

    if args.meshes is None and args.split is not None:
        raise InputError("--split selects the split of an imported dataset; it needs --meshes ROOT")
    if args.meshes is not None and (args.per_class is not None or args.first_index is not None):
        raise InputError("--per-class and --first-index choose procedural shapes; --meshes renders every mesh")
    check_output_dir(args.out, "--out", replaced=True)
    if args.meshes is None:
        out = render_multiview(
            args.out,
            "chair,car,mug" if args.classes is None else args.classes,
            16 if args.per_class is None else args.per_class,
            args.views,
            args.size,
            args.seed,
            first_index=0 if args.first_index is None else args.first_index,
        )
        n = len(json.loads((out / MANIFEST).read_text())["images"])
        print(f"wrote {n} images to {out}")
        return 0
    split = args.split or "train"
    out = render_mesh_dataset(args.out, args.meshes, split, args.classes, args.views, args.size, args.seed)
    manifest = json.loads((out / MANIFEST).read_text(encoding="utf-8"))
    dataset, classes = manifest["dataset"], manifest["config"]["classes"]
    meshes = f"{dataset['meshes']} mesh{'' if dataset['meshes'] == 1 else 'es'}"
    print(
        f"wrote {len(manifest['images'])} images of {meshes} ({args.views} view{'' if args.views == 1 else 's'} "
        f"each, {args.size} x {args.size}; "
        f"split {split}; {', '.join(classes)}) from {args.meshes} to {out}"
    )
    clouds = dataset["skipped_point_clouds"]
    if clouds:
        print(f"skipped {clouds} point cloud{'' if clouds == 1 else 's'} (imported without a surface to render)")
    if dataset["rescaled_to_unit_box"]:
        print(
            f"rescaled every mesh to the unit box for rendering (the import used --normalize "
            f"{dataset['import']['normalize']}; the cameras expect shapes in [-0.5, 0.5]^3)"
        )
    return 0
