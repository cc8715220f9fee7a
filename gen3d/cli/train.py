"""``gen3d train MODEL``: train a registered model with Lightning's ``LightningCLI``.

Every argument after the ones below goes to ``LightningCLI`` unchanged, so every Trainer flag works
(``--trainer.max_steps``, ``--trainer.devices 2 --trainer.strategy ddp``, ``--trainer.precision``, ...), as do
``--model.*``, ``--data.*`` and ``--ckpt_path`` (resume). Such a flag applies to every stage the command runs
(``--trainer.max_steps 500`` without ``--stage`` gives both LION stages 500 steps, replacing the preset's per-stage
counts); ``--vae-steps N`` / ``--prior-steps N`` set one stage's step count and win over both.

A preset YAML is a LightningCLI config (``trainer``, ``model``, ``data``, ``seed_everything``) plus an optional
``stages`` mapping of per-stage overrides (e.g. ``stages: {vae: {trainer: {max_steps: 2000}}, prior: ...}``).
Models trained in stages (LION: ``vae`` then ``prior``) run the stages of ``--stage`` one after the other, the
second starting from the last checkpoint of the first.

Outputs of run NAME and stage S: ``<out>/<NAME>/<S>/`` with ``checkpoints/`` (``last.ckpt``), ``tb/``
(TensorBoard), ``csv/`` (metrics.csv), ``samples/`` (PNG grids), ``config.yaml`` (the resolved config) and
``loss.png`` (training losses and validation curves against the step, drawn when the stage ends). ``--resume``
continues each stage from its ``last.ckpt``: ``metrics.csv`` keeps the earlier rows before the resumed step and
``tb/`` gains one more event file, which TensorBoard shows as the same run.
"""

from __future__ import annotations

import argparse
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gen3d.cli._options import OneLineParser, count

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
    "flow": ModelEntry(
        module="gen3d.lit.flow_module:FlowModule",
        datamodule="gen3d.data.datamodules:PointCloudDataModule",
        config="flow_shapes.yaml",
        callbacks=("gen3d.lit.callbacks:PointCloudSampleCallback",),
    ),
    "graf": ModelEntry(
        module="gen3d.lit.graf_module:GRAFModule",
        datamodule="gen3d.data.datamodules:GRAFDataModule",
        config="graf_shapes.yaml",
    ),
}

# every stage name of the registered models: each has a --<stage>-steps option
STAGE_NAMES: tuple[str, ...] = tuple(dict.fromkeys(s for e in MODELS.values() for s in e.stages))


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``train`` command."""
    parser = subparsers.add_parser(
        "train",
        help="train a model (LION, ...) with Lightning; any --trainer.* flag works",
        description="Train a registered model with LightningCLI. Arguments not listed here are passed to "
        "LightningCLI unchanged (--trainer.*, --model.*, --data.*, --ckpt_path, --print_config) and apply to every "
        "stage run: --trainer.max_steps N gives each stage N steps, --vae-steps / --prior-steps set one stage's. "
        "Outputs: <out>/<name>/<stage>/ with checkpoints/, csv/metrics.csv, tb/ (tensorboard --logdir <out>/<name>), "
        "samples/, config.yaml and loss.png. 'gen3d train MODEL --help' lists LightningCLI's options.",
    )
    parser.add_argument("model", choices=sorted(MODELS), help="model family")
    parser.add_argument(
        "--config",
        default=None,
        help="preset: a YAML path or a name in gen3d/configs such as lion_shapes (default: the model's shapes preset)",
    )
    parser.add_argument("--name", default=None, help="run name: outputs go to <out>/<name> (default: config stem)")
    parser.add_argument("--out", default="runs", help="root folder of runs (default: runs)")
    parser.add_argument("--stage", default="all", help="stage to run: vae, prior or all (models with stages)")
    parser.add_argument(
        "--resume",
        action="store_true",
        help="continue each stage from its last.ckpt when one exists (with more steps: extend it); metrics.csv and "
        "TensorBoard keep the earlier history",
    )
    for stage in STAGE_NAMES:
        parser.add_argument(
            f"--{stage}-steps",
            type=count(),
            default=None,
            metavar="N",
            help=f"optimiser steps of the {stage} stage (default: the preset's; wins over --trainer.max_steps, "
            "which sets every stage run)",
        )
    parser.add_argument("lightning_args", nargs=argparse.REMAINDER, help="arguments for LightningCLI")
    parser.set_defaults(func=run)


def resolve_config(config: str | os.PathLike | None, entry: ModelEntry) -> Path:
    """The preset path: an existing path, or a preset name under ``gen3d/configs`` with or without ``.yaml``.

    ``lion_shapes``, ``lion_shapes.yaml`` and ``gen3d/configs/lion_shapes.yaml`` name the same preset from any
    working folder; a file of that name in the working folder comes first.
    """
    from gen3d.errors import InputError

    name = config if config is not None else entry.config
    p = Path(name)
    if p.is_file():
        return p
    if p.parent == Path("."):
        for candidate in (CONFIG_DIR / p.name, CONFIG_DIR / f"{p.name}.yaml"):
            if candidate.is_file():
                return candidate
    raise InputError(
        f"no such config file (presets: {', '.join(sorted(q.name for q in CONFIG_DIR.glob('*.yaml')))})", p
    )


def _merge(base: dict, over: dict) -> dict:
    out = dict(base)
    for k, v in over.items():
        out[k] = _merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def read_preset(config: Path, stage_names: tuple[str, ...]) -> dict[str, Any]:
    """The preset as a mapping, its ``stages`` section checked: a mapping from the model's stages to mappings.

    Raises:
        InputError: not readable YAML, not a mapping, or a ``stages`` section that names an unknown stage or
            holds something other than per-stage mappings.
    """
    import yaml

    from gen3d.errors import InputError

    try:
        data = yaml.safe_load(config.read_text(encoding="utf-8"))
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise InputError(f"not a valid YAML file ({first})", config) from exc
    if not isinstance(data, dict) or not data:
        raise InputError("expected a YAML mapping with trainer/model/data sections", config)
    stages = data.get("stages")
    if stages is None:
        return data
    if not stage_names:
        raise InputError("'stages' is only for models trained in stages; this model has one stage", config)
    if not isinstance(stages, dict):
        raise InputError(
            f"'stages' must map stage names ({', '.join(stage_names)}) to overrides, got a {type(stages).__name__}",
            config,
        )
    for name, overrides in stages.items():
        if name not in stage_names:
            raise InputError(f"'stages' names an unknown stage {name!r}; expected {', '.join(stage_names)}", config)
        if not isinstance(overrides, dict):
            raise InputError(
                f"'stages.{name}' must be a mapping of overrides (trainer/model/data), got {type(overrides).__name__}",
                config,
            )
    return data


def stage_config(preset: dict[str, Any], stage: str | None, dest: Path) -> Path:
    """Write the preset with the overrides of ``stage`` applied (and ``stages`` removed) to ``dest``."""
    import yaml

    from gen3d.utils import atomic_write_text

    data = dict(preset)
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


def _lightning_cli(
    entry: ModelEntry, cfg: Path, stage: str | None, extra: list[str], cli_class: type | None = None, **kwargs: Any
) -> Any:
    """Build ``LightningCLI`` (or ``cli_class``) for ``fit`` with the preset file ``cfg`` and the user's arguments."""
    import warnings

    from lightning.pytorch.cli import LightningCLI

    # LightningCLI warns when given args while sys.argv has its own; here that is by design (DDP workers
    # re-run sys.argv, which must stay the user's command line)
    warnings.filterwarnings("ignore", message=".*LightningCLI's args parameter is intended.*")
    argv = ["fit", "--config", str(cfg)]
    if stage is not None:
        argv += [f"--model.stage={stage}"]
    argv += extra
    return (cli_class or LightningCLI)(
        _import(entry.module),
        _import(entry.datamodule),
        args=argv,
        save_config_callback=_import("gen3d.lit.callbacks:RunConfigCallback"),  # config.yaml in the stage folder
        save_config_kwargs={"overwrite": True},
        **kwargs,
    )


class _Parsed(Exception):
    """Raised by the config check once LightningCLI has parsed (and type-checked) its arguments."""


def check_stage(entry: ModelEntry, preset: dict[str, Any], stage: str | None, extra: list[str], config: Path) -> None:
    """Parse one stage's configuration as ``LightningCLI`` will, without building or writing anything.

    Unknown keys and values of the wrong type, in the preset or among the ``--trainer.*`` / ``--model.*`` /
    ``--data.*`` options, are found here, before any run folder exists.

    Args:
        entry: the model.
        preset: the preset (see :func:`read_preset`).
        stage: the stage, or None for a model without stages.
        extra: the user's LightningCLI arguments.
        config: the preset's file, named in the error.

    Raises:
        InputError: one line naming the key and what was expected.
    """
    import tempfile

    from lightning.pytorch.cli import LightningCLI

    from gen3d.errors import InputError

    class _ParseOnly(LightningCLI):
        def parse_arguments(self, parser: Any, args: Any) -> None:
            super().parse_arguments(parser, args)
            raise _Parsed

    with tempfile.TemporaryDirectory(prefix="gen3d-config-") as tmp:
        cfg = stage_config(preset, stage, Path(tmp) / "preset.yaml")
        try:
            _lightning_cli(entry, cfg, stage, extra, _ParseOnly, parser_kwargs={"exit_on_error": False, "fit": _PARSER})
        except _Parsed:
            return
        except argparse.ArgumentError as exc:
            where = f"stage {stage}: " if stage else ""
            raise InputError(f"{where}{_config_message(str(exc))}", config) from None


_PARSER = {"default_env": False, "exit_on_error": False}


def _config_message(text: str) -> str:
    """One line from a jsonargparse error: the key and what was expected."""
    import re

    lines = [part.strip(" -") for part in text.splitlines() if part.strip(" -")]
    line = " ".join(lines[:2]) if lines and lines[0].endswith(":") else (lines[0] if lines else text)
    line = re.sub(r"<class '([\w.]+)'>", r"\1", line)
    line = re.sub(r"Subcommand 'fit' does not accept option '([^']+)'", r"unknown key or option '\1'", line)
    line = re.sub(r'Parser key "([^"]+)":\s*Expected a (.+?)\. Got value: (.*)', r"key '\1': expected \2, got \3", line)
    line = re.sub(r'Parser key "([^"]+)":\s*', r"key '\1': ", line)
    return line if len(line) <= 300 else line[:297] + "..."


def run_stage(entry: ModelEntry, preset: dict[str, Any], root: Path, stage: str | None, extra: list[str]) -> Path:
    """Run ``LightningCLI`` fit for one stage; return the stage's ``last.ckpt`` path."""
    root.mkdir(parents=True, exist_ok=True)
    cfg = stage_config(preset, stage, root / "preset.yaml")
    ckpt_dir = root / "checkpoints"
    callbacks = [
        # first, before any callback logs at a batch's start: resumed runs log at the steps they belong to
        _import("gen3d.lit.callbacks:ResumedLogStep")(),
        _import("gen3d.lit.callbacks:TrainingClock")(),  # checkpoint["train_time"]: seconds, steps, threads
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
    callbacks.append(_import("gen3d.lit.callbacks:LossPlotCallback")())  # <root>/loss.png when training ends
    # fixed folders: a resumed run adds an event file to tb/ (TensorBoard shows one run) and keeps the earlier
    # rows of csv/metrics.csv before the step it resumes from
    loggers = [
        {
            "class_path": "lightning.pytorch.loggers.TensorBoardLogger",
            "init_args": {"save_dir": str(root), "name": "tb", "version": ""},
        },
        {
            "class_path": "gen3d.lit.logs.HistoryCSVLogger",
            "init_args": {"save_dir": str(root), "name": "csv", "version": ""},
        },
    ]
    _lightning_cli(
        entry,
        cfg,
        stage,
        extra,
        trainer_defaults={"default_root_dir": str(root), "logger": loggers, "callbacks": callbacks},
        parser_kwargs={"fit": {"default_env": False}},
    )
    return ckpt_dir / "last.ckpt"


def _print_only(entry: ModelEntry, preset: dict[str, Any], stage: str | None, extra: list[str]) -> None:
    """``--help`` / ``--print_config``: let LightningCLI print, with the preset in a temporary folder."""
    import tempfile

    with tempfile.TemporaryDirectory(prefix="gen3d-config-") as tmp:
        _lightning_cli(entry, stage_config(preset, stage, Path(tmp) / "preset.yaml"), stage, extra,
                       parser_kwargs={"fit": {"default_env": False}})  # fmt: skip


def _own_options(args: argparse.Namespace) -> list[str]:
    """Pick this command's options out of the remainder (REMAINDER takes everything after MODEL)."""
    own = OneLineParser(prog="gen3d train", add_help=False)
    own.add_argument("--config", default=args.config)
    own.add_argument("--name", default=args.name)
    own.add_argument("--out", default=args.out)
    own.add_argument("--stage", default=args.stage)
    own.add_argument("--resume", action="store_true", default=args.resume)
    keys = ["config", "name", "out", "stage", "resume"]
    for stage in STAGE_NAMES:
        own.add_argument(f"--{stage}-steps", type=count(), default=getattr(args, f"{stage}_steps", None))
        keys.append(f"{stage}_steps")
    rest = list(args.lightning_args)
    if rest and rest[0] == "--":
        rest = rest[1:]
    parsed, extra = own.parse_known_args(rest)
    for key in keys:
        setattr(args, key, getattr(parsed, key))
    return extra


def _stage_steps(args: argparse.Namespace, entry: ModelEntry) -> dict[str, int]:
    """The step counts of ``--<stage>-steps``, by stage; refused for a stage the model does not have."""
    from gen3d.errors import InputError

    steps = {}
    for stage in STAGE_NAMES:
        value = getattr(args, f"{stage}_steps", None)
        if value is None:
            continue
        if stage not in entry.stages:
            has = ", ".join(f"--{s}-steps" for s in entry.stages)
            raise InputError(
                f"--{stage}-steps does not apply to {args.model}: "
                + (f"its stages take {has}" if has else "it trains in one stage (use --trainer.max_steps)")
            )
        steps[stage] = value
    return steps


def _with_steps(extra: list[str], stage_steps: dict[str, int], stage: str | None) -> list[str]:
    """``extra`` with the stage's ``--<stage>-steps`` as ``--trainer.max_steps`` last (it wins over the user's)."""
    if stage in stage_steps:
        return [*extra, f"--trainer.max_steps={stage_steps[stage]}"]
    return list(extra)


def _flag_value(args: list[str], flag: str) -> str | None:
    """The value of ``flag`` in ``args`` (``--flag=V`` or ``--flag V``), or None."""
    for i, a in enumerate(args):
        if a.startswith(flag + "="):
            return a[len(flag) + 1 :]
        if a == flag and i + 1 < len(args):
            return args[i + 1]
    return None


def _check_name(name: str) -> str:
    """``--name``: a run name, relative and without ``..``, so the run stays under ``--out``."""
    from gen3d.errors import InputError

    p = Path(name)
    if not name or p.is_absolute() or ".." in p.parts:
        raise InputError(f"--name must be a relative run name without '..', got {name!r}")
    return name


def _check_resume(path: str | Path, model: str, stage: str | None, option: str) -> int:
    """Refuse, before training, a checkpoint Lightning cannot resume this model from (one line naming it).

    Returns:
        The checkpoint's global step.
    """
    from gen3d.errors import InputError
    from gen3d.inference.checkpoint import check_resumable

    try:
        ckpt = check_resumable(path, model, stage)
    except InputError as exc:
        raise InputError(f"{exc} (given as {option})") from None
    return int(ckpt.get("global_step", 0))


def _global_step(path: Path) -> int | None:
    """The global step of a Lightning checkpoint (None when it cannot be read)."""
    import torch

    try:
        return int(torch.load(path, map_location="cpu", weights_only=True, mmap=True).get("global_step", 0))
    except Exception:  # noqa: BLE001 - only used for a notice
        return None


def _stale_notice(args: argparse.Namespace, name: str, stage: str, dependent: str, ckpt: Path, resumed: bool) -> str:
    """The notice printed when ``stage`` changed while ``dependent`` (trained on it) keeps the earlier weights."""
    import shlex

    again = ["gen3d", "train", args.model, "--stage", dependent, "--name", name]
    again += ["--config", str(args.config)] if args.config is not None else []
    again += ["--out", str(args.out)] if args.out != "runs" else []
    how = "continued with the earlier one (its checkpoint holds it)" if resumed else "was trained on the earlier one"
    return (
        f"gen3d train: note: the {stage} stage changed; the {dependent} in {ckpt} {how}, so its {stage} latents are "
        f"out of date: retrain it (without --resume) with: {shlex.join(again)}"
    )


def run(args: argparse.Namespace) -> int:
    """Train ``args.model`` stage by stage (every stage's configuration is checked before the first one runs)."""
    from gen3d.errors import InputError
    from gen3d.utils.fs import check_output_dir

    extra = _own_options(args)
    entry = MODELS[args.model]
    stage_steps = _stage_steps(args, entry)
    config = resolve_config(args.config, entry)
    preset = read_preset(config, entry.stages)
    name = _check_name(args.name or config.stem)
    if entry.stages:
        if args.stage == "all":
            stages: list[str | None] = list(entry.stages)
        elif args.stage in entry.stages:
            stages = [args.stage]
        else:
            raise InputError(f"--stage must be one of {', '.join(entry.stages)} or all, got {args.stage!r}")
    else:
        stages = [None]
    if any(_has_flag(extra, f) for f in ("--help", "-h", "--print_config")):
        _print_only(entry, preset, stages[0], _with_steps(extra, stage_steps, stages[0]))
        return 0
    if len(stages) > 1 and _has_flag(extra, "--ckpt_path"):
        raise InputError("--ckpt_path resumes one stage: add --stage (or use --resume to continue every stage)")
    check_output_dir(args.out, "--out")
    ckpt_path = _flag_value(extra, "--ckpt_path")
    resumed_from: dict[str | None, int] = {}  # stage -> global step of the checkpoint it resumes
    if ckpt_path is not None:
        resumed_from[stages[0]] = _check_resume(ckpt_path, args.model, stages[0], "--ckpt_path")
    # stages trained on another one's weights, whose checkpoints exist before this command: notice when it changes
    dependents = {
        entry.stages[entry.stages.index(s) - 1]: (s, Path(args.out) / name / s / "checkpoints" / "last.ckpt")
        for s in entry.stage_links
        if (Path(args.out) / name / s / "checkpoints" / "last.ckpt").is_file()
    }
    plans = []
    for stage in stages:
        root = Path(args.out) / name / (stage or "")
        stage_extra = _with_steps(extra, stage_steps, stage)
        last = root / "checkpoints" / "last.ckpt"
        if args.resume and last.is_file() and not _has_flag(stage_extra, "--ckpt_path"):
            resumed_from[stage] = _check_resume(last, args.model, stage, "--resume")
            stage_extra.append(f"--ckpt_path={last}")
        link = entry.stage_links.get(stage or "")
        linked = link is not None and not _has_flag(stage_extra, f"--model.{link}")
        check_stage(entry, preset, stage, stage_extra, config)
        plans.append((stage, root, stage_extra, link if linked else None))
    previous: Path | None = None
    notices = []
    for stage, root, stage_extra, link in plans:
        if link is not None:
            source = (
                previous
                or Path(args.out) / name / entry.stages[entry.stages.index(stage) - 1] / "checkpoints" / "last.ckpt"
            )
            if not source.is_file():
                raise InputError(f"stage {stage!r} needs the previous stage's checkpoint; train it first", source)
            stage_extra = [*stage_extra, f"--model.{link}={source}"]
        previous = run_stage(entry, preset, root, stage, stage_extra)
        if not previous.is_file():
            raise InputError(
                f"stage {stage or args.model} ended without writing a checkpoint (no training step ran, or "
                "checkpointing was off); check the train split, --data.batch_size and --trainer.max_steps",
                previous,
            )
        print(f"gen3d train: stage {stage or args.model} done; checkpoint {previous}")
        if stage in dependents and (stage not in resumed_from or _global_step(previous) != resumed_from[stage]):
            dependent, dependent_ckpt = dependents[stage]
            if dependent not in stages or dependent in resumed_from:  # not retrained from scratch here
                notices.append(_stale_notice(args, name, stage, dependent, dependent_ckpt, dependent in resumed_from))
    if os.environ.get("LOCAL_RANK", "0") == "0" and os.environ.get("NODE_RANK", "0") == "0":  # once, not per process
        for notice in notices:
            print(notice, file=sys.stderr)
    return 0
