"""Entry point of the ``gen3d`` console script.

Subcommands are discovered from the modules of :mod:`gen3d.cli` that define ``register(subparsers)``.
Each registers an ``argparse`` sub-parser and sets ``func`` (called with the parsed namespace, returning an
exit code or ``None``). Heavy imports happen inside ``func`` only.

A :class:`gen3d.errors.Gen3DError` is printed on one line (no traceback) and exits with code 2.
"""

from __future__ import annotations

import argparse
import importlib
import os
import pkgutil
import sys

# Idle OpenMP threads sleep rather than spin (must be set before torch loads its OpenMP runtime);
# spinning threads slow small CPU models many times over when other processes share the cores.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

from gen3d import __version__
from gen3d.cli._options import OneLineParser
from gen3d.errors import Gen3DError

# Preferred order in --help; modules not listed follow alphabetically.
_ORDER = ["demo", "data", "train", "sample", "evaluate", "report", "export", "view"]


def _subcommand_modules() -> list[str]:
    import gen3d.cli as pkg

    names = [
        m.name for m in pkgutil.iter_modules(pkg.__path__) if m.name not in ("main",) and not m.name.startswith("_")
    ]
    return sorted(names, key=lambda n: (_ORDER.index(n) if n in _ORDER else len(_ORDER), n))


def add_command_group(
    subparsers: argparse._SubParsersAction, name: str, title: str, metavar: str, **parser_kwargs: str
) -> argparse._SubParsersAction:
    """Add a command made of sub-commands (``gen3d NAME WHAT ...``) and return the action for adding them.

    Without a sub-command the command prints its help and exits with code 2.

    Args:
        subparsers: the ``gen3d`` command's sub-parsers.
        name: the command.
        title: heading of the sub-commands in its help.
        metavar: how the help names a sub-command.
        **parser_kwargs: ``help`` and ``description`` of the command.
    """
    parser = subparsers.add_parser(name, **parser_kwargs)
    parser.set_defaults(func=lambda args: (parser.print_help(), 2)[1])
    return parser.add_subparsers(title=title, metavar=metavar)


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(
        prog="gen3d",
        description="gen3d: train, sample, evaluate, export and view 3D generative models.",
    )
    parser.add_argument("--version", action="version", version=f"gen3d {__version__}")
    sub = parser.add_subparsers(title="commands", metavar="COMMAND")
    for name in _subcommand_modules():
        module = importlib.import_module(f"gen3d.cli.{name}")
        if hasattr(module, "register"):
            module.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help, --version, or a bad option (already reported on one line)
        return exc.code if isinstance(exc.code, int) else 2
    func = getattr(args, "func", None)
    if func is None:
        parser.print_help()
        return 2
    try:
        code = func(args)
    except Gen3DError as exc:
        print(f"gen3d: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("gen3d: interrupted", file=sys.stderr)
        return 130
    return int(code or 0)


if __name__ == "__main__":
    sys.exit(main())
