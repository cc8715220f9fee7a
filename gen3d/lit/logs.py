"""Training history: a CSV logger that keeps the rows of earlier runs, and the ``loss.png`` chart drawn from it.

:class:`HistoryCSVLogger` is Lightning's :class:`~lightning.pytorch.loggers.CSVLogger` except that a run writing
into a folder that already holds ``metrics.csv`` keeps that file's rows up to the step the new run starts from
(Lightning's logger deletes the file). A run resumed from a checkpoint at step ``s`` therefore leaves one file with
the earlier run's rows before ``s`` and its own rows from ``s`` on; a run started from scratch (step 0) replaces
them all.

:func:`plot_history` draws the columns of such a file against the step as small charts (training losses first,
then the validation curves) in one PNG, with Pillow only.
"""

from __future__ import annotations

import csv
import math
import os
from pathlib import Path
from typing import Any

from lightning.fabric.loggers.logger import rank_zero_experiment
from lightning.pytorch.loggers import CSVLogger
from lightning.pytorch.loggers.csv_logs import ExperimentWriter

__all__ = ["HistoryCSVLogger", "plot_history", "read_history"]


def _step(row: dict[str, Any]) -> float | None:
    try:
        return float(row.get("step", ""))
    except (TypeError, ValueError):
        return None


class _HistoryWriter(ExperimentWriter):
    """CSV writer that starts from the rows already in ``metrics.csv`` instead of deleting the file."""

    def _check_log_dir_exists(self) -> None:
        self._earlier: list[dict[str, str]] | None = None
        if not self._fs.isfile(self.metrics_file_path):
            return
        with self._fs.open(self.metrics_file_path, "r", newline="") as file:
            reader = csv.DictReader(file)
            self._earlier = list(reader)
            self.metrics_keys = list(reader.fieldnames or [])

    def save(self) -> None:
        if self._earlier is not None and self.metrics:
            # the new run starts at its first logged step: earlier rows from there on are the ones it redoes
            start = min(m["step"] for m in self.metrics)
            kept = [row for row in self._earlier if (s := _step(row)) is None or s < start]
            self._write(kept)
            self._earlier = None
        super().save()

    def _write(self, rows: list[dict[str, str]]) -> None:
        from gen3d.utils import atomic_path

        with atomic_path(self.metrics_file_path) as tmp, open(tmp, "w", newline="") as file:
            writer = csv.DictWriter(file, fieldnames=self.metrics_keys)
            writer.writeheader()
            writer.writerows(rows)


class HistoryCSVLogger(CSVLogger):
    """:class:`~lightning.pytorch.loggers.CSVLogger` that keeps earlier runs' rows before the step it starts from.

    Takes the arguments of ``CSVLogger``. With a fixed ``version`` (e.g. ``""``), a resumed run appends to the
    file of the run it continues, so ``metrics.csv`` holds the whole history.
    """

    @property
    @rank_zero_experiment
    def experiment(self) -> _HistoryWriter:
        if self._experiment is not None:
            return self._experiment
        self._fs.makedirs(self.root_dir, exist_ok=True)
        self._experiment = _HistoryWriter(log_dir=self.log_dir)
        return self._experiment


def read_history(path: str | os.PathLike) -> dict[str, tuple[list[float], list[float]]]:
    """The columns of a Lightning ``metrics.csv``: ``{name: (steps, values)}``, empty and non-finite cells skipped.

    When a step was logged twice (a resumed run redoing steps of a file written by another logger), the later row
    wins.
    """
    series: dict[str, dict[float, float]] = {}
    with open(path, newline="", encoding="utf-8") as file:
        for row in csv.DictReader(file):
            step = _step(row)
            if step is None:
                continue
            for name, cell in row.items():
                if name in ("step", "epoch") or name is None or cell in (None, ""):
                    continue
                try:
                    value = float(cell)
                except ValueError:
                    continue
                if math.isfinite(value):
                    series.setdefault(name, {})[step] = value
    return {name: (sorted(pts), [pts[s] for s in sorted(pts)]) for name, pts in series.items() if pts}


def chart_names(names: list[str], limit: int = 12) -> list[str]:
    """The columns :func:`plot_history` draws: training losses (else all training columns), then validation losses
    and the other validation columns."""
    train = [n for n in names if n.startswith("train/") and "loss" in n] or [n for n in names if n.startswith("train")]
    val = [n for n in names if n.startswith("val")]
    val.sort(key=lambda n: "loss" not in n)  # stable: losses first, each group in the file's order
    return (train + val)[:limit]


_COLOURS = ((31, 119, 180), (214, 39, 40), (44, 160, 44), (148, 103, 189))


def plot_history(
    csv_path: str | os.PathLike, png_path: str | os.PathLike, limit: int = 12, columns: int = 3
) -> Path | None:
    """Draw the training losses and validation curves of a ``metrics.csv`` against the step, one chart each.

    Args:
        csv_path: the CSV logger's ``metrics.csv``.
        png_path: the PNG to write (atomically).
        limit: at most this many charts.
        columns: charts per row.

    Returns:
        ``png_path``, or None when the file holds nothing to draw (no training or validation column).
    """
    from PIL import Image, ImageDraw

    from gen3d.utils import atomic_path

    series = read_history(csv_path)
    names = chart_names(list(series), limit)
    if not names:
        return None
    w, h = 360, 220
    cols = min(columns, len(names))
    rows = (len(names) + cols - 1) // cols
    image = Image.new("RGB", (cols * w, rows * h), "white")
    draw = ImageDraw.Draw(image)
    for i, name in enumerate(names):
        x0, y0 = (i % cols) * w, (i // cols) * h
        colour = _COLOURS[0] if name.startswith("train") else _COLOURS[1]
        _chart(draw, (x0, y0, x0 + w, y0 + h), name, *series[name], colour)
    png_path = Path(png_path)
    with atomic_path(png_path) as tmp:
        image.save(tmp, format="PNG")
    return png_path


def _ticks(low: float, high: float, n: int = 4) -> list[float]:
    """About ``n`` round values covering ``[low, high]``."""
    if high <= low:
        return [low]
    raw = (high - low) / n
    mag = 10 ** math.floor(math.log10(raw))
    step = next(m * mag for m in (1, 2, 2.5, 5, 10) if m * mag >= raw)
    first = math.ceil(low / step) * step
    return [first + k * step for k in range(int((high - first) / step + 1e-9) + 1)]


def _chart(
    draw: Any,
    box: tuple[int, int, int, int],
    title: str,
    steps: list[float],
    values: list[float],
    colour: tuple[int, int, int],
) -> None:
    """One line chart of ``values`` against ``steps`` in ``box`` (log y axis when the values span 100x or more)."""
    left, top, right, bottom = box[0] + 58, box[1] + 22, box[2] - 14, box[3] - 28
    grey, dark = (200, 200, 200), (60, 60, 60)
    log = min(values) > 0 and max(values) / min(values) >= 100
    ys = [math.log10(v) for v in values] if log else list(values)
    y_lo, y_hi = min(ys), max(ys)
    if y_hi - y_lo < 1e-12:
        pad = abs(y_lo) * 0.05 or 1.0
        y_lo, y_hi = y_lo - pad, y_hi + pad
    x_lo, x_hi = min(steps), max(steps)
    if x_hi == x_lo:
        x_lo, x_hi = x_lo - 1, x_hi + 1

    def px(s: float) -> float:
        return left + (s - x_lo) / (x_hi - x_lo) * (right - left)

    def py(y: float) -> float:
        return bottom - (y - y_lo) / (y_hi - y_lo) * (bottom - top)

    draw.text((box[0] + 8, box[1] + 5), title + ("  (log scale)" if log else ""), fill=dark)
    draw.rectangle((left, top, right, bottom), outline=dark)
    if log:
        y_ticks = [float(k) for k in range(math.ceil(y_lo), math.floor(y_hi) + 1)] or [y_lo, y_hi]
        labels = [f"{10**t:.3g}" for t in y_ticks]
    else:
        y_ticks = _ticks(y_lo, y_hi)
        labels = [f"{t:.3g}" for t in y_ticks]
    for t, label in zip(y_ticks, labels, strict=True):
        y = py(t)
        draw.line((left, y, right, y), fill=grey)
        draw.text((box[0] + 4, y - 6), label, fill=dark)
    for t in _ticks(x_lo, x_hi, 3):
        x = px(t)
        draw.line((x, bottom, x, bottom + 4), fill=dark)
        draw.text((x - 10, bottom + 6), f"{t:g}", fill=dark)
    draw.text((right - 28, bottom + 14), "step", fill=dark)
    points = [(px(s), py(y)) for s, y in zip(steps, ys, strict=True)]
    if len(points) > 1:
        draw.line(points, fill=colour, width=1 if len(points) > 200 else 2)
    for x, y in points if len(points) <= 50 else points[-1:]:
        draw.ellipse((x - 2, y - 2, x + 2, y + 2), fill=colour)
