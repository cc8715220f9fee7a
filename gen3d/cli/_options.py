"""Option types of gen3d's commands: every numeric option is checked where it is parsed.

Each factory returns an ``argparse`` ``type=`` callable. A value out of range is refused by argparse with one
line naming the option and the accepted range (``gen3d sample: error: argument --n: expected an integer >= 1,
got '0'``), before any file is read or written.

Example:
    >>> parser.add_argument("--n", type=count(), default=16)
    >>> parser.add_argument("--trim", type=real(0, 1, high_open=True), default=0.02)
"""

from __future__ import annotations

import argparse
import math
import re
from collections.abc import Callable

SEED_MAX = 2**32 - 1  # numpy's legacy seeding and Lightning's seed_everything take unsigned 32-bit seeds
DEVICE_PATTERN = re.compile(r"^(cpu|cuda(:\d+)?|mps)$")


class OneLineParser(argparse.ArgumentParser):
    """An ``ArgumentParser`` whose errors are one line (no usage block): ``PROG: error: MESSAGE (see PROG --help)``.

    Sub-parsers created through ``add_subparsers`` inherit the class.
    """

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def _parse_int(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None


def _parse_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"expected a finite number, got {text!r}")
    return value


def integer(low: int | None = None, high: int | None = None) -> Callable[[str], int]:
    """An integer in ``[low, high]`` (either bound may be open-ended with ``None``)."""

    def parse(text: str) -> int:
        value = _parse_int(text)
        if (low is not None and value < low) or (high is not None and value > high):
            raise argparse.ArgumentTypeError(f"expected an integer {_range(low, high)}, got {text!r}")
        return value

    parse.__name__ = "integer"
    return parse


def count(minimum: int = 1, maximum: int | None = None) -> Callable[[str], int]:
    """A count: an integer ``>= minimum`` (1 by default), optionally ``<= maximum``."""
    return integer(minimum, maximum)


def seed() -> Callable[[str], int]:
    """A random seed: an integer in ``[0, 2**32 - 1]``."""
    return integer(0, SEED_MAX)


def real(
    low: float | None = None, high: float | None = None, *, low_open: bool = False, high_open: bool = False
) -> Callable[[str], float]:
    """A finite float in the range ``low .. high`` (each end closed unless ``*_open``; ``None``: unbounded)."""

    def parse(text: str) -> float:
        value = _parse_float(text)
        below = low is not None and (value <= low if low_open else value < low)
        above = high is not None and (value >= high if high_open else value > high)
        if below or above:
            raise argparse.ArgumentTypeError(
                f"expected a number {_range(low, high, low_open, high_open)}, got {text!r}"
            )
        return value

    parse.__name__ = "number"
    return parse


def positive() -> Callable[[str], float]:
    """A finite float ``> 0``."""
    return real(0.0, low_open=True)


def fraction() -> Callable[[str], float]:
    """A finite float in ``[0, 1]``."""
    return real(0.0, 1.0)


def device(text: str) -> str:
    """A torch device name: ``cpu``, ``cuda``, ``cuda:N`` or ``mps`` (whether it is present is checked at run time)."""
    if not DEVICE_PATTERN.match(text.strip().lower()):
        raise argparse.ArgumentTypeError(f"expected a device: cpu, cuda, cuda:N or mps, got {text!r}")
    return text.strip().lower()


def _fmt(value: float) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


def _range(low: float | None, high: float | None, low_open: bool = False, high_open: bool = False) -> str:
    if low is not None and high is not None:
        return f"in {'(' if low_open else '['}{_fmt(low)}, {_fmt(high)}{')' if high_open else ']'}"
    if low is not None:
        return f"{'>' if low_open else '>='} {_fmt(low)}"
    if high is not None:
        return f"{'<' if high_open else '<='} {_fmt(high)}"
    return ""
