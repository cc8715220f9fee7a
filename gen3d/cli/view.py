"""``gen3d view PATH``: browse samples, meshes and models in the web viewer (viser).

Only the standard library and gen3d's option parsers are imported here; the viewer loads on demand.
"""

from __future__ import annotations

import argparse

from gen3d.cli._options import count

DATA_PER_SPLIT = 4  # gen3d.viewer.content.DATA_PER_SPLIT (not imported: --help stays fast)


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "view",
        help="browse samples, meshes and checkpoints in a local web viewer",
        description="Serve an interactive 3D viewer of PATH: a run directory, a samples file "
        "(.npz/.npy/.ply) or folder, a mesh, or a checkpoint. Open the printed URL in a browser; "
        "Ctrl-C stops it. A run is browsed by group: its samples (each shape once), its training data (the first "
        "clouds of each class and split), its meshes and its checkpoints; every checkpoint can be chosen as the "
        "model to generate from or, for a radiance field, to render and mesh. Files are saved only into the run "
        "directory (its viewer/ folder), under plain names, never over an existing file. Only the viewer's own "
        "page may connect: a browser page from any other origin is refused (HTTP 403) unless allowed with "
        "--allow-origin.",
    )
    parser.add_argument("path", help="run directory, samples file or folder, mesh file, or checkpoint")
    parser.add_argument(
        "--host",
        default="127.0.0.1",
        help="interface to bind (default 127.0.0.1: this machine only; another address makes the viewer "
        "reachable from the network)",
    )
    parser.add_argument("--port", type=int, default=8080, help="port (default 8080; the next free one if busy)")
    parser.add_argument(
        "--data-per-split",
        type=count(0, 100000),
        default=DATA_PER_SPLIT,
        metavar="N",
        help=f"training clouds listed per class and split of a dataset (<class>/<split>/<id>.npy) in PATH "
        f"(default {DATA_PER_SPLIT}; the group shows how many there are)",
    )
    parser.add_argument(
        "--allow-origin",
        action="append",
        default=[],
        metavar="ORIGIN",
        help="also accept connections from pages of ORIGIN (http://HOST:PORT), e.g. the address other machines "
        "use with --host 0.0.0.0; repeatable. By default only http://127.0.0.1:PORT, http://localhost:PORT, "
        "http://[::1]:PORT and the --host address on the served port may connect",
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from gen3d.errors import InputError
    from gen3d.viewer import build_viewer

    if not 0 <= args.port <= 65535:
        raise InputError(f"--port must be between 0 and 65535, got {args.port}")
    build_viewer(
        args.path,
        host=args.host,
        port=args.port,
        allowed_origins=args.allow_origin,
        data_per_split=args.data_per_split,
    ).run()
    return 0
