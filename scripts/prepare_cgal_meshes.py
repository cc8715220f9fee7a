#!/usr/bin/env python
"""Extract the CGAL example meshes (CC0) into ``datasets/cgal/data/``.

The Debian package ``libcgal-demo`` ships CGAL's example data as one tarball (``data.tar.gz``; find it with
``dpkg -L libcgal-demo | grep data.tar``). Its ``data/meshes`` folder holds 139 ``.off`` and a few ``.ply``
meshes (bunny, armadillo, elephant, camel, cow, fandisk, ...); ``data/points_3`` holds point sets.
Nothing is downloaded: install the package first (``sudo apt-get install libcgal-demo``).

Usage::

    python scripts/prepare_cgal_meshes.py                       # tarball found via dpkg
    python scripts/prepare_cgal_meshes.py --tarball PATH --out datasets/cgal/data --include-points

The extracted meshes then serve as a mesh folder: ``gen3d.data.MeshFolderDataset("datasets/cgal/data/meshes")``,
or, imported as point clouds in the PC15k layout with train/val/test splits, as a training set::

    gen3d data import datasets/cgal/data/meshes --out datasets/cgal/pc --class cgal

Some are deliberately degenerate (open, self-intersecting, with borders); the script loads each with
gen3d's reader and reports which ones hold no faces.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tarfile
from pathlib import Path, PurePosixPath

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

MESH_DIR = "data/meshes/"
POINTS_DIR = "data/points_3/"
SUFFIXES = (".off", ".ply", ".stl", ".obj")


def find_tarball() -> Path:
    """Locate ``data.tar.gz`` of the installed ``libcgal-demo`` package via dpkg."""
    from gen3d.errors import InputError

    try:
        listing = subprocess.run(["dpkg", "-L", "libcgal-demo"], capture_output=True, text=True, check=False)
    except FileNotFoundError as exc:
        raise InputError("dpkg not found; pass --tarball PATH to CGAL's data.tar.gz") from exc
    if listing.returncode != 0:
        raise InputError(
            "the Debian package libcgal-demo is not installed; "
            "run 'sudo apt-get install libcgal-demo' or pass --tarball"
        )
    for line in listing.stdout.splitlines():
        if line.strip().endswith("data.tar.gz") and Path(line.strip()).is_file():
            return Path(line.strip())
    raise InputError("libcgal-demo is installed but lists no data.tar.gz; pass --tarball PATH")


def safe_relative(name: str, prefixes: tuple[str, ...]) -> PurePosixPath | None:
    """The member's path below ``data/`` if it is a plain relative path under one of ``prefixes``."""
    path = PurePosixPath(name)
    if path.is_absolute() or ".." in path.parts or not name.startswith(prefixes):
        return None
    if path.suffix.lower() not in SUFFIXES:
        return None
    return path.relative_to("data")


def extract(tarball: Path, out: Path, include_points: bool) -> list[Path]:
    """Copy the mesh (and optionally point-set) members of ``tarball`` into ``out`` atomically."""
    from gen3d.errors import InputError
    from gen3d.utils import atomic_write_bytes

    prefixes = (MESH_DIR, POINTS_DIR) if include_points else (MESH_DIR,)
    written = []
    try:
        with tarfile.open(tarball, "r:*") as tar:
            for member in tar:
                rel = safe_relative(member.name, prefixes)
                if rel is None or not member.isfile():
                    continue
                data = tar.extractfile(member)
                if data is None:
                    continue
                target = out.joinpath(*rel.parts)
                atomic_write_bytes(target, data.read())
                written.append(target)
    except (tarfile.TarError, OSError, EOFError) as exc:
        raise InputError(f"not a readable tar archive ({exc})", tarball) from exc
    if not written:
        raise InputError(f"archive holds no meshes under {MESH_DIR}", tarball)
    return sorted(written)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--tarball", type=Path, default=None, help="CGAL's data.tar.gz (default: found with dpkg -L libcgal-demo)"
    )
    parser.add_argument(
        "--out",
        type=Path,
        default=REPO / "datasets" / "cgal" / "data",
        help="output folder (default datasets/cgal/data)",
    )
    parser.add_argument(
        "--include-points", action="store_true", help="also extract data/points_3 (point sets, mostly without faces)"
    )
    args = parser.parse_args(argv)

    from gen3d.data.meshes import load_mesh
    from gen3d.errors import Gen3DError, InputError

    try:
        tarball = args.tarball if args.tarball is not None else find_tarball()
        if not tarball.is_file():
            raise InputError("no such file", tarball)
        files = extract(tarball, args.out, args.include_points)
    except Gen3DError as exc:
        print(f"prepare_cgal_meshes: error: {exc}", file=sys.stderr)
        return 2
    meshes, without_faces = 0, []
    for f in files:
        try:
            load_mesh(f)
            meshes += 1
        except InputError:
            without_faces.append(f.relative_to(args.out).as_posix())
    print(f"extracted {len(files)} files from {tarball} into {args.out}: {meshes} load as triangle meshes")
    if without_faces:
        print(f"{len(without_faces)} hold no usable faces (point sets): {', '.join(without_faces)}")
    print(f"to train on them: gen3d data import {args.out / 'meshes'} --out DATASET --class cgal")
    return 0


if __name__ == "__main__":
    sys.exit(main())
