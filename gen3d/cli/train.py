"""``gen3d train MODEL``: train a registered model with Lightning's ``LightningCLI``.

Every argument after the ones below goes to ``LightningCLI`` unchanged, so every Trainer flag works
(``--trainer.max_steps``, ``--trainer.devices 2 --trainer.strategy ddp``, ``--trainer.precision``, ...), as do
``--model.*``, ``--data.*`` and ``--ckpt_path`` (resume).

A preset YAML is a LightningCLI config (``trainer``, ``model``, ``data``, ``seed_everything``) plus an optional
``stages`` mapping of per-stage overrides (e.g. ``stages: {vae: {trainer: {max_steps: 2000}}, prior: ...}``).
Models trained in stages (LION: ``vae`` then ``prior``) run the stages of ``--stage`` one after the other, the
second starting from the last checkpoint of the first.

Outputs of run NAME and stage S: ``<out>/<NAME>/<S>/`` with ``checkpoints/`` (``last.ckpt``), ``tb/``
(TensorBoard), ``csv/`` (metrics.csv), ``samples/`` (PNG grids) and ``config.yaml`` (the resolved config).
"""

from __future__ import annotations

import argparse
import os
from dataclasses import dataclass, field
from pathlib import Path

CONFIG_DIR = Path(__file__).resolve().parent.parent / "configs"


@dataclass(frozen=True)
class ModelEntry:
    """How to train one model family.

    Attributes:
        module: ``"package.module:LightningModuleClass"``.
        datamodule: ``"package.module:LightningDataModuleClass"``.
        config: default preset, a file name in ``gen3d/configs`` or a path.
        stages: stage names, run in order (empty: a single stage); passed as ``--model.stage``.
        callbacks: extra callback classes (``"package.module:Class"``) always attached.
        stage_links: for stage S, the model argument that receives the previous stage's last checkpoint.
    """

    module: str
    datamodule: str
    config: str
    stages: tuple[str, ...] = ()
    callbacks: tuple[str, ...] = ()
    stage_links: dict[str, str] = field(default_factory=dict)


MODELS: dict[str, ModelEntry] = {
    "lion": ModelEntry(
        module="gen3d.lit.lion_module:LionModule",
        datamodule="gen3d.data.datamodules:PointCloudDataModule",
        config="lion_shapes.yaml",
        stages=("vae", "prior"),
        callbacks=("gen3d.lit.callbacks:PointCloudSampleCallback",),
        stage_links={"prior": "vae_ckpt"},
    ),
    "pvd": ModelEntry(
        module="gen3d.lit.lion_module:PVDModule",
        datamodule="gen3d.data.datamodules:PointCloudDataModule",
        config="pvd_shapes.yaml",
        callbacks=("gen3d.lit.callbacks:PointCloudSampleCallback",),
    ),
    "graf": ModelEntry(
        module="gen3d.lit.graf_module:GRAFModule",
        datamodule="gen3d.data.datamodules:GRAFDataModule",
        config="graf_shapes.yaml",
    ),
}


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``train`` command."""
    parser = subparsers.add_parser(
        "train",
        help="train a model (LION, ...) with Lightning; any --trainer.* flag works",
        description="Train a registered model with LightningCLI. Arguments not listed here are passed to "
        "LightningCLI unchanged (--trainer.*, --model.*, --data.*, --ckpt_path, --print_config).",
    )
    parser.add_argument("model", choices=sorted(MODELS), help="model family")
    parser.add_argument("--config", default=None, help="preset YAML (default: the model's shapes preset)")
    parser.add_argument("--name", default=None, help="run name: outputs go to <out>/<name> (default: config stem)")
    parser.add_argument("--out", default="runs", help="root folder of runs (default: runs)")
    parser.add_argument("--stage", default="all", help="stage to run: vae, prior or all (models with stages)")
    parser.add_argument("--resume", action="store_true", help="continue each stage from its last.ckpt when one exists")
    parser.add_argument("lightning_args", nargs=argparse.REMAINDER, help="arguments for LightningCLI")
    parser.set_defaults(func=run)


def resolve_config(config: str | os.PathLike | None, entry: ModelEntry) -> Path:
    """The preset path: an existing path, or a file name under ``gen3d/configs``."""
    from gen3d.errors import InputError

    name = config if config is not None else entry.config
    p = Path(name)
    if p.is_file():
        return p
    if (CONFIG_DIR / p.name).is_file() and p.parent == Path("."):
        return CONFIG_DIR / p.name
    raise InputError(
        f"no such config file (presets: {', '.join(sorted(q.name for q in CONFIG_DIR.glob('*.yaml')))})", p
    )


def _merge(base: dict, over: dict) -> dict:
    out = dict(base)
    for k, v in over.items():
        out[k] = _merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def stage_config(config: Path, stage: str | None, dest: Path) -> Path:
    """Write the preset with the overrides of ``stage`` applied (and ``stages`` removed) to ``dest``."""
    import yaml

    from gen3d.errors import InputError
    from gen3d.utils import atomic_write_text

    try:
        data = yaml.safe_load(config.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as exc:
        raise InputError(f"not a valid YAML file ({exc})", config) from exc
    if not isinstance(data, dict):
        raise InputError("expected a YAML mapping with trainer/model/data sections", config)
    stages = data.pop("stages", None) or {}
    if stage is not None and stage in stages:
        data = _merge(data, stages[stage])
    atomic_write_text(dest, yaml.safe_dump(data, sort_keys=False))
    return dest


def _import(path: str) -> type:
    import importlib

    module, _, name = path.partition(":")
    return getattr(importlib.import_module(module), name)


def _has_flag(args: list[str], flag: str) -> bool:
    return any(a == flag or a.startswith(flag + "=") for a in args)


def run_stage(entry: ModelEntry, config: Path, root: Path, stage: str | None, extra: list[str]) -> Path:
    """Run ``LightningCLI`` fit for one stage; return the stage's ``last.ckpt`` path."""
    import warnings

    from lightning.pytorch.cli import LightningCLI

    # LightningCLI warns when given args while sys.argv has its own; here that is by design (DDP workers
    # re-run sys.argv, which must stay the user's command line)
    warnings.filterwarnings("ignore", message=".*LightningCLI's args parameter is intended.*")
    root.mkdir(parents=True, exist_ok=True)
    cfg = stage_config(config, stage, root / "preset.yaml")
    ckpt_dir = root / "checkpoints"
    callbacks = [
        _import("lightning.pytorch.callbacks:ModelCheckpoint")(
            dirpath=str(ckpt_dir),
            filename="step{step:07d}",
            auto_insert_metric_name=False,
            save_last=True,
            save_top_k=1,
        ),
        _import("lightning.pytorch.callbacks:LearningRateMonitor")(logging_interval="step"),
    ]
    if not _has_flag(extra, "--trainer.enable_progress_bar"):
        callbacks.append(_import("gen3d.lit.progress:StepProgressBar")())
    callbacks += [_import(c)() for c in entry.callbacks]
    loggers = [
        {
            "class_path": "lightning.pytorch.loggers.TensorBoardLogger",
            "init_args": {"save_dir": str(root), "name": "tb", "version": ""},
        },
        {
            "class_path": "lightning.pytorch.loggers.CSVLogger",
            "init_args": {"save_dir": str(root), "name": "csv", "version": ""},
        },
    ]
    argv = ["fit", "--config", str(cfg)]
    if stage is not None:
        argv += [f"--model.stage={stage}"]
    argv += extra
    LightningCLI(
        _import(entry.module),
        _import(entry.datamodule),
        args=argv,
        trainer_defaults={"default_root_dir": str(root), "logger": loggers, "callbacks": callbacks},
        save_config_kwargs={"overwrite": True},
        parser_kwargs={"fit": {"default_env": False}},
    )
    return ckpt_dir / "last.ckpt"


def _own_options(args: argparse.Namespace) -> list[str]:
    """Pick this command's options out of the remainder (REMAINDER takes everything after MODEL)."""
    own = argparse.ArgumentParser(add_help=False)
    own.add_argument("--config", default=args.config)
    own.add_argument("--name", default=args.name)
    own.add_argument("--out", default=args.out)
    own.add_argument("--stage", default=args.stage)
    own.add_argument("--resume", action="store_true", default=args.resume)
    rest = list(args.lightning_args)
    if rest and rest[0] == "--":
        rest = rest[1:]
    parsed, extra = own.parse_known_args(rest)
    for key in ("config", "name", "out", "stage", "resume"):
        setattr(args, key, getattr(parsed, key))
    return extra


def run(args: argparse.Namespace) -> int:
    """Train ``args.model`` stage by stage."""
    from gen3d.errors import InputError

    extra = _own_options(args)
    entry = MODELS[args.model]
    config = resolve_config(args.config, entry)
    name = args.name or config.stem
    if entry.stages:
        if args.stage == "all":
            stages: list[str | None] = list(entry.stages)
        elif args.stage in entry.stages:
            stages = [args.stage]
        else:
            raise InputError(f"--stage must be one of {', '.join(entry.stages)} or all, got {args.stage!r}")
    else:
        stages = [None]
    if len(stages) > 1 and _has_flag(extra, "--ckpt_path"):
        raise InputError("--ckpt_path resumes one stage: add --stage (or use --resume to continue every stage)")
    previous: Path | None = None
    for stage in stages:
        root = Path(args.out) / name / (stage or "")
        stage_extra = list(extra)
        link = entry.stage_links.get(stage or "")
        if link and not _has_flag(stage_extra, f"--model.{link}"):
            source = (
                previous
                or Path(args.out) / name / entry.stages[entry.stages.index(stage) - 1] / "checkpoints" / "last.ckpt"
            )
            if not source.is_file():
                raise InputError(f"stage {stage!r} needs the previous stage's checkpoint; train it first", source)
            stage_extra.append(f"--model.{link}={source}")
        last = root / "checkpoints" / "last.ckpt"
        if args.resume and last.is_file() and not _has_flag(stage_extra, "--ckpt_path"):
            stage_extra.append(f"--ckpt_path={last}")
        previous = run_stage(entry, config, root, stage, stage_extra)
        print(f"gen3d train: stage {stage or args.model} done; checkpoint {previous}")
    return 0
