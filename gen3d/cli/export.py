"""``gen3d export``: convert point clouds, build meshes, render turntables and sample grids.

Subcommands:
    points     convert between .ply, .npz and .npy
    mesh       mesh point clouds (Poisson, ball pivoting) or a radiance-field checkpoint (marching cubes)
    turntable  GIF (or MP4 with imageio-ffmpeg) of a camera orbiting a cloud, a mesh or a field
    grid       PNG grid of point clouds

Only the standard library is imported here; the work happens in :mod:`gen3d.export` on demand.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from gen3d.cli._options import count, device, integer, positive, real, seed
from gen3d.cli.main import add_command_group

CHECKPOINT_SUFFIXES = (".ckpt", ".pt", ".pth")
MESH_INPUT_SUFFIXES = (".obj", ".glb", ".gltf", ".stl", ".off")


def register(subparsers: argparse._SubParsersAction) -> None:
    sub = add_command_group(
        subparsers,
        "export",
        "export commands",
        "WHAT",
        help="convert point clouds, build meshes, render turntables and grids",
        description="Export samples and models to files other tools open: PLY/NPZ/NPY point clouds, "
        "OBJ/PLY/GLB/STL meshes, GIF turntables and PNG grids.",
    )

    p = sub.add_parser("points", help="convert point clouds between .ply, .npz and .npy")
    p.add_argument("src", help="point-cloud file (.ply/.npz/.npy) or folder of them")
    p.add_argument("dst", help="output file; its suffix picks the format (a set to .ply gives dst_000.ply, ...)")
    p.add_argument("--index", type=integer(), default=None, help="export only cloud INDEX of a set")
    p.add_argument("--ascii", action="store_true", help="write ASCII instead of binary PLY")
    p.set_defaults(func=run_points)

    p = sub.add_parser(
        "mesh",
        help="mesh point clouds (Poisson / ball pivoting) or a radiance-field checkpoint (marching cubes)",
        description="Build a triangle mesh. From a point cloud: normals are estimated and oriented, then "
        "Poisson reconstruction (with density trimming) or ball pivoting. From a radiance-field checkpoint: "
        "marching cubes on the density grid. Output format from the suffix: .obj .ply .glb .stl.",
    )
    p.add_argument("src", help="point-cloud file (.ply/.npz/.npy) or a radiance-field checkpoint (.ckpt/.pt)")
    p.add_argument("dst", help="output mesh (.obj/.ply/.glb/.stl); a set of clouds gives dst_000.obj, ...")
    p.add_argument("--method", choices=("poisson", "ball_pivot"), default="poisson", help="point-cloud mesher")
    p.add_argument("--depth", type=integer(5, 12), default=8, help="Poisson octree depth, 5-12 (default 8)")
    p.add_argument(
        "--trim",
        type=real(0, 1, high_open=True),
        default=0.02,
        help="Poisson: drop vertices below this density quantile",
    )
    p.add_argument(
        "--radii", type=positive(), nargs="+", default=None, help="ball-pivoting radii (default: from spacing)"
    )
    p.add_argument("--knn", type=count(3, 1000), default=30, help="neighbours for normal estimation (default 30)")
    p.add_argument("--index", type=integer(), default=None, help="mesh only cloud INDEX of a set")
    p.add_argument("--resolution", type=count(2, 1024), default=128, help="field: marching-cubes grid points per axis")
    p.add_argument("--threshold", type=real(), default=10.0, help="field: density iso level (default 10)")
    p.add_argument("--seed", type=seed(), default=0, help="field: latent seed of the generated scene")
    p.add_argument("--aabb", type=real(), nargs=6, default=None, help="field: box xmin ymin zmin xmax ymax zmax")
    p.add_argument("--chunk", type=count(), default=65536, help="field: positions per network call")
    p.add_argument("--device", type=device, default="cpu", help="field: torch device (default cpu)")
    p.set_defaults(func=run_mesh)

    p = sub.add_parser("turntable", help="GIF/MP4 of a camera orbiting a point cloud, mesh or field checkpoint")
    p.add_argument("src", help="point-cloud file, mesh file (.obj/.glb/.stl/.off/.ply) or field checkpoint")
    p.add_argument("dst", help="output .gif (or .mp4, which needs the imageio-ffmpeg package)")
    p.add_argument("--frames", type=count(1, 3600), default=36, help="frames per revolution (default 36)")
    p.add_argument("--size", type=count(8, 4096), default=256, help="image side in pixels (default 256)")
    p.add_argument("--fps", type=real(0, 100, low_open=True), default=12.0, help="frames per second (default 12)")
    p.add_argument("--elevation", type=real(-90, 90), default=20.0, help="camera elevation in degrees (default 20)")
    p.add_argument("--index", type=integer(), default=0, help="which cloud of a set (default 0)")
    p.add_argument("--seed", type=seed(), default=0, help="field: latent seed of the generated scene")
    p.set_defaults(func=run_turntable)

    p = sub.add_parser("grid", help="PNG grid of point clouds")
    p.add_argument("src", help="set of clouds (.npz/.npy file or folder) or one cloud")
    p.add_argument("dst", help="output .png")
    p.add_argument("--size", type=count(8, 4096), default=128, help="cell side in pixels (default 128)")
    p.add_argument("--ncols", type=count(), default=None, help="cells per row (default: square-ish)")
    p.add_argument("--max", type=count(), default=64, help="render at most this many clouds (default 64)")
    p.add_argument("--labels", action="store_true", help="caption each cell with its index")
    p.set_defaults(func=run_grid)


def _check_suffix(path: str, allowed: tuple[str, ...], what: str) -> Path:
    """The output ``path`` (the DST argument), checked for its format and that it can be written."""
    from gen3d.errors import InputError
    from gen3d.utils.fs import check_output_file

    p = Path(path)
    if p.suffix.lower() not in allowed:
        raise InputError(f"unsupported {what} format {p.suffix!r}; expected one of {', '.join(allowed)}", p)
    return check_output_file(p, "DST")


def run_points(args: argparse.Namespace) -> int:
    from gen3d.data.io import POINT_SUFFIXES
    from gen3d.export.points import convert_points

    dst = _check_suffix(args.dst, POINT_SUFFIXES, "point-cloud")
    written = convert_points(args.src, dst, index=args.index, binary=not args.ascii)
    _report(written)
    return 0


def _select(clouds: Any, index: int | None, source: str) -> list[Any]:
    from gen3d.errors import InputError

    if clouds.ndim == 2:
        return [clouds]
    if index is None:
        return list(clouds)
    if not -len(clouds) <= index < len(clouds):
        raise InputError(f"index {index} is out of range for a set of {len(clouds)} clouds", source)
    return [clouds[index]]


def _numbered(dst: Path, count: int) -> list[Path]:
    if count == 1:
        return [dst]
    width = max(3, len(str(count - 1)))
    return [dst.with_name(f"{dst.stem}_{i:0{width}d}{dst.suffix}") for i in range(count)]


def run_mesh(args: argparse.Namespace) -> int:
    from gen3d.errors import InputError
    from gen3d.export.mesh import MESH_SUFFIXES, marching_cubes_field, mesh_from_points, save_mesh
    from gen3d.utils import check_exists

    dst = _check_suffix(args.dst, MESH_SUFFIXES, "mesh")
    src = check_exists(args.src, "file or folder")
    if args.aabb is not None and not all(lo < hi for lo, hi in zip(args.aabb[:3], args.aabb[3:], strict=True)):
        raise InputError(f"--aabb: expected xmin ymin zmin xmax ymax zmax with each min < max, got {args.aabb}")
    if src.suffix.lower() in CHECKPOINT_SUFFIXES:
        from gen3d.utils.device import resolve_device

        resolve_device(args.device)  # a device this machine lacks is refused before the model loads
        field = _load_field(src)
        aabb = args.aabb if args.aabb is not None else field.aabb
        mesh = marching_cubes_field(
            lambda xyz: field.density(xyz, seed=args.seed),
            aabb,
            resolution=args.resolution,
            threshold=args.threshold,
            chunk=args.chunk,
            device=args.device,
        )
        _report([save_mesh(mesh, dst)], mesh)
        return 0

    from gen3d.export.points import read_clouds

    clouds = _select(read_clouds(src), args.index, str(src))
    kwargs = {"k": args.knn}
    if args.method == "poisson":
        kwargs.update(depth=args.depth, trim=args.trim)
    else:
        kwargs.update(radii=args.radii)
    # Every cloud is meshed before the first file is written: a bad cloud in a set leaves no partial output.
    names = [str(src)] if len(clouds) == 1 else [f"{src} (cloud {i})" for i in range(len(clouds))]
    meshes = [mesh_from_points(c, method=args.method, source=n, **kwargs) for c, n in zip(clouds, names, strict=True)]
    for mesh, name in zip(meshes, names, strict=True):
        if len(mesh.faces) == 0:
            raise InputError(f"no surface could be built from these points (--method {args.method})", name)
    for mesh, out in zip(meshes, _numbered(dst, len(clouds)), strict=True):
        _report([save_mesh(mesh, out)], mesh)
    return 0


def _load_field(path: Path) -> Any:
    from gen3d.errors import InputError
    from gen3d.inference.sources import FieldSource, load_checkpoint_source

    source = load_checkpoint_source(path)
    if not isinstance(source, FieldSource):
        raise InputError("this checkpoint is not a radiance field; mesh its samples instead", path)
    return source


def run_turntable(args: argparse.Namespace) -> int:
    from gen3d.export.turntable import (
        ANIMATION_SUFFIXES,
        turntable_field,
        turntable_mesh,
        turntable_points,
        write_animation,
    )
    from gen3d.utils import check_exists

    dst = _check_suffix(args.dst, ANIMATION_SUFFIXES, "animation")
    src = check_exists(args.src, "file or folder")
    suffix = src.suffix.lower()
    if suffix in CHECKPOINT_SUFFIXES:
        field = _load_field(src)
        frames = turntable_field(
            lambda c2w, h, w: field.render(c2w, h, w, seed=args.seed),
            n_frames=args.frames,
            size=args.size,
            radius=field.radius,
            elevation_deg=args.elevation,
        )
    elif suffix in MESH_INPUT_SUFFIXES or (suffix == ".ply" and _ply_is_mesh(src)):
        from gen3d.data.meshes import load_mesh

        frames = turntable_mesh(load_mesh(src), n_frames=args.frames, size=args.size, elevation_deg=args.elevation)
    else:
        from gen3d.export.points import read_clouds

        cloud = _select(read_clouds(src), args.index, str(src))[0]
        frames = turntable_points(cloud, n_frames=args.frames, size=args.size, elevation_deg=args.elevation)
    _report([write_animation(frames, dst, fps=args.fps)])
    return 0


def _ply_is_mesh(path: Path) -> bool:
    from gen3d.viewer.content import ply_has_faces

    return ply_has_faces(path)


def run_grid(args: argparse.Namespace) -> int:
    from gen3d.export.grid import render_point_grid
    from gen3d.export.points import read_clouds

    dst = _check_suffix(args.dst, (".png",), "image")
    clouds = read_clouds(args.src)
    clouds = clouds[None] if clouds.ndim == 2 else clouds[: args.max]  # (N, P, 3)
    labels = [str(i) for i in range(len(clouds))] if args.labels else None
    render_point_grid(clouds, dst, ncols=args.ncols, size=args.size, labels=labels)
    _report([dst])
    return 0


def _report(paths: list[Path], mesh: object | None = None) -> None:
    detail = ""
    if mesh is not None:
        detail = f" ({len(mesh.vertices)} vertices, {len(mesh.faces)} faces)"  # type: ignore[attr-defined]
    for p in paths:
        print(f"wrote {p}{detail}")
