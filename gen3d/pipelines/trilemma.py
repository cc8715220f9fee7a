"""The generative-trilemma report: every model family on the same reference shapes, judged on quality, diversity,
speed and likelihood in one run.

For each checkpoint given (:func:`discover` finds them in run folders) the report generates as many shapes as
there are references (or ``n``) and scores them all against the same references with the same settings:

- **Rows.** A LION checkpoint (prior stage) gives three rows: DDPM over all of its training timesteps (LION's
  sampler), the fast sampler (default the stochastic DPM-Solver++ with 20 steps), and LION's VAE sampled from its
  own ``N(0, I)`` prior without the latent diffusion models (:meth:`~gen3d.models.lion.LION.sample_vae_prior`).
  A PVD checkpoint gives DDPM over all of its timesteps, a point flow one pass, a 3D-aware GAN its extracted
  geometry (:func:`~gen3d.pipelines.graf_geometry.generator_clouds`: marching cubes on the density, surface
  samples, back in the shapes' frame). An optional oracle row scores another split of real shapes (the best a
  model can do at this sample size).
- **Quality.** 1-NNA under Chamfer and EMD (percent, 50 is ideal) and P-FID / P-KID
  (:mod:`gen3d.metrics.point_fid`: renders at fixed views through Inception-v3), and MMD.
- **Diversity.** COV under Chamfer and EMD (percent of references matched), and with a shape classifier trained
  on the procedural classes (:mod:`gen3d.metrics.shape_classifier`): the share of shapes classified as a
  reference class, and the class IS and class coverage when the references hold several classes.
- **Speed.** Seconds per generated shape on this machine (wall clock of the generation call over ``n``, batch
  ``batch_size``, the process's torch threads) and the training time recorded in the checkpoint
  (:class:`~gen3d.lit.callbacks.TrainingClock`; LION's counts both stages).
- **Likelihood.** The point flow's exact ``-log2 p(x_i | z)`` per point at the encoder's mean and its negative
  ELBO; LION's VAE row its negative ELBO (the bound of the VAE with its own prior); none for the diffusion rows and
  the GAN. Bits per point of the reference clouds in the model's normalised frame
  (:mod:`gen3d.pipelines.flow_eval`).

:func:`run_trilemma` writes ``trilemma.json`` (every figure, raw, with the protocol), ``trilemma.md`` (the table)
and ``trilemma.png`` (:func:`gen3d.pipelines.trilemma_plot.plot_trilemma`: quality against log sampling time,
marker area the coverage, one colour a family).
"""

from __future__ import annotations

import json
import math
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from gen3d.errors import InputError
from gen3d.metrics.point_cloud import EMD_MODES

FAMILIES = ("lion", "pvd", "flow", "graf")
JSON_NAME, MARKDOWN_NAME, PLOT_NAME = "trilemma.json", "trilemma.md", "trilemma.png"
CLASSIFIER_NAME = "classifier.pt"


@dataclass(frozen=True)
class TrilemmaOptions:
    """Settings of one report (every row is scored with the same).

    Attributes:
        refs: reference clouds: a split folder (e.g. ``ROOT/chair/test``), ``.npz`` or ``.npy``.
        oracle: another set of real clouds scored as a row (e.g. ``ROOT/chair/val``), or None.
        n: shapes generated per row (default: as many as there are references).
        points: points per cloud of every set (default: the smallest training point count of the point models,
            else 2048); larger clouds are subsampled (seeded).
        seed: seed of the generation, the subsampling and the metrics' random parts.
        emd: EMD of 1-NNA / COV / MMD: ``"approx"`` (default), ``"exact"`` or ``"none"``.
        fast_sampler: LION's fast sampler.
        fast_steps: its steps.
        code_temperature: LION's shape-code temperature (1 is the paper's sampling).
        batch_size: shapes per generation call.
        gan_resolution: density grid points per axis of the GAN's surface extraction.
        pfid: compute P-FID / P-KID (needs the Inception weights).
        weights: Inception TorchScript file (default: :func:`gen3d.metrics.fid.default_weights_path`).
        classifier: score with the shape classifier (trained once and cached as ``<out>/classifier.pt``).
        classifier_settings: options of :func:`gen3d.metrics.shape_classifier.load_or_train_classifier`.
        classes: the reference classes (default: the name of the references' parent folder when it is a
            procedural class).
    """

    refs: str
    oracle: str | None = None
    n: int | None = None
    points: int | None = None
    seed: int = 0
    emd: str = "approx"
    fast_sampler: str = "dpm-sde"
    fast_steps: int = 20
    code_temperature: float = 1.0
    batch_size: int = 32
    gan_resolution: int = 64
    pfid: bool = True
    weights: str | None = None
    classifier: bool = True
    classifier_settings: dict[str, Any] = field(default_factory=dict)
    classes: tuple[str, ...] | None = None


@dataclass
class Row:
    """One generator (a checkpoint and a way of sampling it) of the report.

    Attributes:
        name: label in the table and the plot.
        family: ``"lion"``, ``"pvd"``, ``"flow"``, ``"graf"`` or ``"data"`` (the oracle).
        checkpoint: the checkpoint file (None for the oracle).
        sampler: how shapes are drawn, in words.
        generate: ``generate(n, points, seed) -> (n, points, 3)`` float32 clouds in the references' frame.
        likelihood: ``likelihood(refs) -> {name: bits per point}`` or None.
        train_seconds: training wall-clock time recorded in the checkpoint(s), or None.
        train_steps: optimiser steps of that training, or None.
    """

    name: str
    family: str
    checkpoint: str | None
    sampler: str
    generate: Callable[[int, int, int], np.ndarray]
    likelihood: Callable[[np.ndarray], dict[str, float]] | None = None
    train_seconds: float | None = None
    train_steps: int | None = None


# --------------------------------------------------------------------------------------------- checkpoints
def _family(path: Path) -> tuple[str, str, dict[str, Any]]:
    """``(family, stage, checkpoint dict)`` of a checkpoint file."""
    from gen3d.inference.checkpoint import checkpoint_kind, is_graf_checkpoint, read_checkpoint

    ckpt = read_checkpoint(path)
    if is_graf_checkpoint(ckpt):
        return "graf", "graf", ckpt
    hp = ckpt.get("hyper_parameters", {})
    if not isinstance(hp.get("config"), dict):
        raise InputError("not a checkpoint of LION, PVD, the point flow or the 3D-aware GAN", path)
    family, stage = checkpoint_kind(ckpt)
    if family not in FAMILIES:
        raise InputError(f"checkpoint of an unknown model family {family!r}", path)
    return family, stage, ckpt


def discover(paths: Sequence[str | os.PathLike]) -> list[Path]:
    """The checkpoints to report: each path is a checkpoint file, or a run folder whose ``last.ckpt`` files are
    taken (a LION run's VAE-stage checkpoint is skipped: its prior-stage checkpoint holds the same VAE).

    Raises:
        InputError: a path that does not exist, a folder without checkpoints, or the same checkpoint twice.
    """
    found: list[Path] = []
    for raw in paths:
        path = Path(raw)
        if path.is_file():
            found.append(path)
        elif path.is_dir():
            ckpts = sorted(path.rglob("last.ckpt"))
            ckpts = [c for c in ckpts if not (c.parent.parent.name == "vae" and _sibling_prior(c))]
            if not ckpts:
                raise InputError("holds no last.ckpt (a run folder of gen3d train, or a checkpoint file)", path)
            found.extend(ckpts)
        else:
            raise InputError("no such checkpoint or run folder", path)
    resolved = [p.resolve() for p in found]
    if len(set(resolved)) != len(resolved):
        raise InputError("the same checkpoint is given twice", found[0])
    return found


def _sibling_prior(vae_ckpt: Path) -> bool:
    """True when a LION run's ``vae/checkpoints/last.ckpt`` has a ``prior/checkpoints/last.ckpt`` beside it."""
    return (vae_ckpt.parent.parent.parent / "prior" / "checkpoints" / "last.ckpt").is_file()


def training_time(ckpt: dict[str, Any]) -> tuple[float | None, int | None]:
    """``(seconds, steps)`` recorded by :class:`~gen3d.lit.callbacks.TrainingClock`, or ``(None, None)``."""
    record = ckpt.get("train_time")
    if not isinstance(record, dict) or not isinstance(record.get("seconds"), int | float):
        return None, None
    steps = record.get("steps")
    return float(record["seconds"]), int(steps) if isinstance(steps, int) else None


def _lion_training_time(ckpt: dict[str, Any], path: Path) -> tuple[tuple[Any, Any], tuple[Any, Any]]:
    """``((seconds, steps) of both LION stages, (seconds, steps) of the VAE stage)``; None where unknown.

    The VAE stage's checkpoint is the prior's ``vae_ckpt`` hyperparameter, else the run's
    ``vae/checkpoints/last.ckpt`` beside ``prior/``.
    """
    from gen3d.inference.checkpoint import read_checkpoint

    prior_s, prior_steps = training_time(ckpt)
    candidates = [path.parent.parent.parent / "vae" / "checkpoints" / "last.ckpt"]
    vae_path = ckpt.get("hyper_parameters", {}).get("vae_ckpt")
    if isinstance(vae_path, str) and vae_path:
        candidates.insert(0, Path(vae_path))
    vae_s = vae_steps = None
    for candidate in candidates:
        if candidate.is_file():
            vae_s, vae_steps = training_time(read_checkpoint(candidate))
            break
    if prior_s is None or vae_s is None:
        return (None, None), (vae_s, vae_steps)
    return (prior_s + vae_s, (prior_steps or 0) + (vae_steps or 0)), (vae_s, vae_steps)


# --------------------------------------------------------------------------------------------- rows
def _lion_rows(path: Path, ckpt: dict[str, Any], stage: str, opts: TrilemmaOptions) -> list[Row]:
    import torch

    from gen3d.inference.lion import load_lion
    from gen3d.pipelines.flow_eval import lion_scores
    from gen3d.pipelines.sample import sample_lion

    if stage == "vae":
        raise InputError("a LION VAE-stage checkpoint: give the prior stage's checkpoint (or the run folder)", path)
    loaded = load_lion(path)
    steps_all = int(loaded.net.schedule.num_train_timesteps)

    def diffusion(sampler: str, steps: int) -> Callable[[int, int, int], np.ndarray]:
        def generate(n: int, points: int, seed: int) -> np.ndarray:
            return sample_lion(
                str(path),
                n,
                sampler=sampler,
                steps=steps,
                seed=seed,
                points=points,
                batch_size=opts.batch_size,
                progress=False,
                code_temperature=opts.code_temperature,
                device="cpu",
            )[0]

        return generate

    if stage == "pvd":
        seconds, steps = training_time(ckpt)
        return [Row("PVD, DDPM", "pvd", str(path), f"DDPM, {steps_all} steps", diffusion("ddpm", steps_all),
                    None, seconds, steps)]  # fmt: skip

    def vae_prior(n: int, points: int, seed: int) -> np.ndarray:
        g = torch.Generator().manual_seed(seed)
        chunks = []
        for start in range(0, n, opts.batch_size):
            x = loaded.net.sample_vae_prior(min(opts.batch_size, n - start), points, generator=g)
            chunks.append(loaded.denormalize(x.cpu()).numpy().astype(np.float32))
        return np.concatenate(chunks)

    def elbo(refs: np.ndarray) -> dict[str, float]:
        values, _ = lion_scores(loaded, refs, seed=opts.seed)
        return {"nelbo_bits_per_point": float(np.mean(values["nelbo_bits_per_point"]))}

    (seconds, steps), (vae_seconds, vae_steps) = _lion_training_time(ckpt, path)
    fast = f"{opts.fast_sampler}, {opts.fast_steps} steps"
    return [
        Row("LION, DDPM", "lion", str(path), f"DDPM, {steps_all} steps", diffusion("ddpm", steps_all), None,
            seconds, steps),
        Row(f"LION, {opts.fast_sampler}", "lion", str(path), fast, diffusion(opts.fast_sampler, opts.fast_steps),
            None, seconds, steps),
        Row("LION VAE, N(0, I) prior", "lion", str(path), "VAE decoder, latents from N(0, I)", vae_prior, elbo,
            vae_seconds, vae_steps),
    ]  # fmt: skip


def _flow_rows(path: Path, ckpt: dict[str, Any], opts: TrilemmaOptions) -> list[Row]:
    from gen3d.inference.flow import load_flow
    from gen3d.pipelines.flow_eval import flow_scores
    from gen3d.pipelines.sample import sample_flow

    loaded = load_flow(path)

    def generate(n: int, points: int, seed: int) -> np.ndarray:
        return sample_flow(str(path), n, seed=seed, points=points, batch_size=opts.batch_size, device="cpu")[0]

    def likelihood(refs: np.ndarray) -> dict[str, float]:
        values, _ = flow_scores(loaded, refs, seed=opts.seed)
        return {key: float(np.mean(v)) for key, v in values.items()}

    seconds, steps = training_time(ckpt)
    return [Row("point flow", "flow", str(path), "one pass", generate, likelihood, seconds, steps)]


def _graf_rows(path: Path, ckpt: dict[str, Any], opts: TrilemmaOptions) -> list[Row]:
    from gen3d.inference.graf import load_graf_generator
    from gen3d.pipelines.graf_geometry import DEFAULT_LEVEL, generator_clouds

    generator, hp = load_graf_generator(path)

    def generate(n: int, points: int, seed: int) -> np.ndarray:
        return generator_clouds(generator, n, seed=seed, n_points=points, resolution=opts.gan_resolution,
                                progress=False)  # fmt: skip

    seconds, steps = training_time(ckpt)
    field_name = hp.get("field", "graf")
    sampler = f"density {opts.gan_resolution}^3, marching cubes at {DEFAULT_LEVEL:g}"
    return [Row(f"3D-aware GAN ({field_name})", "graf", str(path), sampler, generate, None, seconds, steps)]


def rows_for(path: Path, opts: TrilemmaOptions) -> tuple[list[Row], int | None]:
    """The rows of one checkpoint (see the module docstring) and the point count its model trained with (None for
    the GAN), from one read of the checkpoint."""
    family, stage, ckpt = _family(path)
    config = ckpt.get("hyper_parameters", {}).get("config")
    points = config.get("num_points") if isinstance(config, dict) else None
    if family in ("lion", "pvd"):
        rows = _lion_rows(path, ckpt, stage, opts)
    elif family == "flow":
        rows = _flow_rows(path, ckpt, opts)
    else:
        rows = _graf_rows(path, ckpt, opts)
    return rows, points if isinstance(points, int) else None


# --------------------------------------------------------------------------------------------- references
def _reference_classes(refs: str, classes: Sequence[str] | None) -> tuple[str, ...]:
    from gen3d.data.shapes import check_classes

    if classes:
        return tuple(check_classes(list(classes)))
    parent = Path(refs).resolve().parent.name
    try:
        return tuple(check_classes([parent]))
    except InputError:
        return ()


def _read_set(path: str, points: int, seed: int, name: str) -> tuple[np.ndarray, dict[str, Any]]:
    from gen3d.data.io import read_point_set, resample_points

    clouds = read_point_set(path)
    if len(clouds) < 2:
        raise InputError(f"the {name} set needs at least 2 clouds, got {len(clouds)}", path)
    smallest = min(len(c) for c in clouds)
    if smallest < points:
        raise InputError(f"the {name} clouds have {smallest} points, fewer than --points {points}", path)
    arr = resample_points(clouds, points, seed, path)
    return arr, {"path": str(path), "clouds": len(clouds), "points_read": smallest, "points": points}


# --------------------------------------------------------------------------------------------- scoring
class _Scorer:
    """Everything measured against the references, built once."""

    def __init__(self, refs: np.ndarray, opts: TrilemmaOptions, classes: tuple[str, ...]):
        from gen3d.metrics import ReferenceDistances

        self.refs, self.opts, self.classes = refs, opts, classes
        self.ref_distances = ReferenceDistances(refs)
        self.pfid = None
        if opts.pfid:
            from gen3d.metrics.point_fid import PointFIDReference

            self.pfid = PointFIDReference(refs, weights=opts.weights, device="cpu", progress=False)
        self.classifier = None

    def load_classifier(self, out: Path) -> None:
        """The shape classifier, cached in the report's folder (trained there on first use)."""
        from gen3d.metrics.shape_classifier import load_or_train_classifier

        self.classifier = load_or_train_classifier(out / CLASSIFIER_NAME, **self.opts.classifier_settings)
        unknown = [c for c in self.classes if c not in self.classifier.classes]
        if unknown:
            raise InputError(f"the shape classifier does not know the reference classes {unknown}", out)

    def score(self, clouds: np.ndarray) -> dict[str, Any]:
        from gen3d.metrics import point_cloud_metrics

        metrics: dict[str, Any] = dict(
            point_cloud_metrics(clouds, self.refs, emd=self.opts.emd, progress=False, ref_distances=self.ref_distances)
        )
        if self.pfid is not None:
            scores = self.pfid.score(clouds, seed=self.opts.seed)
            metrics.update(PFID=scores["PFID"], PKID=scores["PKID"], PKID_std=scores["PKID_std"])
        if self.classifier is not None:
            from gen3d.metrics.shape_classifier import class_scores

            probs = self.classifier.predict_proba(clouds)
            scores = class_scores(probs, self.classes or None, self.classifier.classes)
            metrics["in_class"] = 100.0 * scores["in_class"] if self.classes else None
            if len(self.classes) > 1:
                metrics["class_IS"], metrics["class_IS_std"] = scores["class_IS"], scores["class_IS_std"]
                metrics["class_coverage"] = 100.0 * scores["class_coverage"]
            metrics["predicted"] = scores["predicted_counts"]
        return metrics

    def protocol(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if self.pfid is not None:
            out["pfid"] = self.pfid.protocol(len(self.refs))
        if self.classifier is not None:
            c = self.classifier
            out["classifier"] = {"kind": c.kind, "classes": list(c.classes), "heldout_accuracy": c.accuracy,
                                 "settings": c.settings}  # fmt: skip
        return out


def _time_call(fn: Callable[[], np.ndarray]) -> tuple[np.ndarray, float]:
    start = time.perf_counter()
    result = fn()
    return result, time.perf_counter() - start


def run_trilemma(
    paths: Sequence[str | os.PathLike], out: str | os.PathLike, opts: TrilemmaOptions, progress: bool = True
) -> dict[str, Any]:
    """Score every checkpoint of ``paths`` (:func:`discover`) and write the report into ``out``.

    Returns:
        The report (what ``trilemma.json`` holds): ``{"protocol", "rows": [...]}``; each row has ``name``,
        ``family``, ``checkpoint``, ``sampler``, ``metrics`` (the :func:`~gen3d.metrics.point_cloud_metrics` keys,
        ``PFID``/``PKID``/``PKID_std``, ``in_class`` / ``class_IS`` / ``class_coverage``), ``seconds_per_shape``,
        ``train_seconds``, ``train_steps`` and ``likelihood`` (bits per point, or empty).

    Raises:
        InputError: bad paths, checkpoints or reference sets (before anything is written).
    """
    import torch
    from rich.console import Console

    from gen3d.pipelines.sample import provenance
    from gen3d.pipelines.trilemma_plot import plot_trilemma
    from gen3d.utils import atomic_write_text

    console = Console(stderr=True, quiet=not progress)
    out = Path(out)
    if opts.emd not in EMD_MODES:
        raise InputError(f"emd must be one of {', '.join(EMD_MODES)}, got {opts.emd!r}")
    ckpts = discover(paths)
    rows, model_points = [], []
    for path in ckpts:
        found, points = rows_for(path, opts)
        rows += found
        model_points += [points] if points is not None else []
    rows.sort(key=lambda row: FAMILIES.index(row.family))  # stable: the order given within a family
    points = opts.points or min(model_points, default=2048)
    refs, refs_info = _read_set(opts.refs, points, opts.seed, "references")
    n = opts.n or len(refs)
    classes = _reference_classes(opts.refs, opts.classes)
    if opts.oracle is not None:
        oracle, oracle_info = _read_set(opts.oracle, points, opts.seed + 1, "oracle")
        oracle = oracle[:n]
        rows.append(Row("real shapes (held-out)", "data", None, f"{len(oracle)} shapes of {opts.oracle}",
                        lambda n_, p_, s_: oracle))  # fmt: skip
    scorer = _Scorer(refs, opts, classes)  # checks the Inception weights: the last check before writing
    out.mkdir(parents=True, exist_ok=True)
    if opts.classifier:
        scorer.load_classifier(out)
    results = []
    for i, row in enumerate(rows):
        console.print(f"[{i + 1}/{len(rows)}] {row.name}: {row.sampler}")
        clouds, seconds = _time_call(lambda row=row: row.generate(n, points, opts.seed))
        clouds = np.asarray(clouds, dtype=np.float32)
        likelihood = row.likelihood(refs) if row.likelihood is not None else {}
        results.append(
            {
                "name": row.name,
                "family": row.family,
                "checkpoint": row.checkpoint,
                "sampler": row.sampler,
                "n": int(len(clouds)),
                "metrics": scorer.score(clouds),
                "seconds_per_shape": None if row.family == "data" else seconds / len(clouds),
                "train_seconds": row.train_seconds,
                "train_steps": row.train_steps,
                "likelihood": likelihood,
            }
        )
    report = {
        "protocol": {
            "refs": refs_info,
            "oracle": oracle_info if opts.oracle is not None else None,
            "n": n,
            "points": points,
            "classes": list(classes),
            "options": {k: v for k, v in asdict(opts).items() if k not in ("refs", "oracle")},
            "threads": torch.get_num_threads(),
            "speed": "wall clock of the generation call over n shapes, CPU, batch batch_size",
            "likelihood": "bits per point of the references in the model's normalised frame",
            **scorer.protocol(),
            **provenance(),
        },
        "rows": results,
    }
    atomic_write_text(out / JSON_NAME, json.dumps(report, indent=2, default=_plain) + "\n")
    atomic_write_text(out / MARKDOWN_NAME, markdown_table(report) + "\n")
    plot_trilemma(report, out / PLOT_NAME)
    return report


def _plain(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


# --------------------------------------------------------------------------------------------- tables
def _f(value: Any, fmt: str) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "n/a"
    return format(value, fmt)


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "n/a"
    return f"{seconds / 60:.1f} min" if seconds >= 60 else f"{seconds:.0f} s"


def _speed(seconds: float | None) -> str:
    if seconds is None:
        return "n/a"
    return f"{seconds * 1e3:.1f} ms" if seconds < 1 else f"{seconds:.2f} s"


def _likelihood(values: dict[str, float]) -> str:
    parts = []
    if "nll_bits_per_point" in values:
        parts.append(f"{values['nll_bits_per_point']:.3f} exact")
    if "nelbo_bits_per_point" in values:
        parts.append(f"{values['nelbo_bits_per_point']:.3f} nELBO")
    return ", ".join(parts) or "none"


def table_rows(report: dict[str, Any]) -> tuple[list[str], list[list[str]]]:
    """Header and cells of the report's table (the figures as ``trilemma.md`` prints them)."""
    has = {key: any(key in r["metrics"] and r["metrics"][key] is not None for r in report["rows"])
           for key in ("1-NNA-EMD", "PFID", "in_class", "class_IS")}  # fmt: skip
    header = ["model", "sampler", "1-NNA-CD %"]
    header += ["1-NNA-EMD %"] if has["1-NNA-EMD"] else []
    header += ["P-FID"] if has["PFID"] else []
    header += ["COV-CD %"] + (["COV-EMD %"] if has["1-NNA-EMD"] else [])
    header += ["in-class %"] if has["in_class"] else []
    header += ["class IS", "class cov. %"] if has["class_IS"] else []
    header += ["s / shape", "training", "bits / point"]
    cells = []
    for r in report["rows"]:
        m = r["metrics"]
        row = [r["name"], r["sampler"], _f(m["1-NNA-CD"], ".1f")]
        row += [_f(m.get("1-NNA-EMD"), ".1f")] if has["1-NNA-EMD"] else []
        row += [_f(m.get("PFID"), ".1f")] if has["PFID"] else []
        row += [_f(m["COV-CD"], ".1f")] + ([_f(m.get("COV-EMD"), ".1f")] if has["1-NNA-EMD"] else [])
        row += [_f(m.get("in_class"), ".1f")] if has["in_class"] else []
        row += [_f(m.get("class_IS"), ".2f"), _f(m.get("class_coverage"), ".0f")] if has["class_IS"] else []
        train = _duration(r["train_seconds"])
        if r["train_steps"] is not None:
            train += f" ({r['train_steps']} steps)"
        row += [_speed(r["seconds_per_shape"]), train if r["family"] != "data" else "n/a",
                _likelihood(r["likelihood"])]  # fmt: skip
        cells.append(row)
    return header, cells


def markdown_table(report: dict[str, Any]) -> str:
    """``trilemma.md``: the table and a line on the protocol."""
    header, cells = table_rows(report)
    p = report["protocol"]
    lines = [
        "| " + " | ".join(header) + " |",
        "|" + "---|" * len(header),
        *("| " + " | ".join(row) + " |" for row in cells),
        "",
        f"{p['n']} shapes per row against {p['refs']['clouds']} references ({p['refs']['path']}), {p['points']} "
        f"points per cloud, seed {p['options']['seed']}, EMD {p['options']['emd']}; speed on {p['threads']} CPU "
        f"threads, batch {p['options']['batch_size']}; bits per point of the references in the model's "
        "normalised frame (exact: the flow's -log2 p(x_i | z) at the encoder's mean; nELBO: negative ELBO).",
    ]
    return "\n".join(lines)
