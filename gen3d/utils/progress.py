"""Progress bars for long work (rich), silent when output is not a terminal or ``GEN3D_QUIET=1``."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable, Iterator
from typing import TypeVar

T = TypeVar("T")


def _enabled(disable: bool | None) -> bool:
    if disable is not None:
        return not disable
    if os.environ.get("GEN3D_QUIET", "") not in ("", "0"):
        return False
    return sys.stderr.isatty()


def progress(
    iterable: Iterable[T], description: str = "", total: int | None = None, disable: bool | None = None
) -> Iterator[T]:
    """Iterate with a rich progress bar on stderr.

    Args:
        iterable: what to iterate over.
        description: label shown left of the bar.
        total: number of items when ``len(iterable)`` is unavailable.
        disable: force the bar off (True) or on (False); by default shown only on a terminal.
    """
    if not _enabled(disable):
        yield from iterable
        return
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    if total is None and hasattr(iterable, "__len__"):
        total = len(iterable)  # type: ignore[arg-type]
    columns = (
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
    )
    with Progress(*columns, console=Console(stderr=True), transient=True) as bar:
        task = bar.add_task(description, total=total)
        for item in iterable:
            yield item
            bar.advance(task)
