"""``trilemma.png``: the report of :mod:`gen3d.pipelines.trilemma` as one chart.

Sample quality (1-NNA-CD, percent: 50 means the samples cannot be told from the references, 100 that every one
can; better is up) against sampling time per shape (log scale; faster is left), one marker per row, its area the
coverage (COV-CD) and its colour the family; the likelihood, where the model has one, in its label. The oracle row
(real shapes, no sampling time) is a dashed line: the best score at this sample size.
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any

COLOURS = {
    "lion": (31, 119, 180),
    "pvd": (44, 160, 44),
    "flow": (214, 39, 40),
    "graf": (148, 103, 189),
    "data": (90, 90, 90),
}
FAMILY_NAMES = {"lion": "LION", "pvd": "PVD", "flow": "point flow", "graf": "3D-aware GAN", "data": "real shapes"}
_W, _H = 1000, 620
_LEFT, _TOP, _RIGHT, _BOTTOM = 90, 80, 700, 540  # the axes' box
_DARK, _GREY, _LIGHT = (40, 40, 40), (200, 200, 200), (235, 235, 235)


def _font(size: int) -> Any:
    from PIL import ImageFont

    try:
        return ImageFont.load_default(size=size)  # Pillow >= 10.1 with FreeType
    except (TypeError, OSError):
        return ImageFont.load_default()


def marker_radius(coverage: float | None) -> float:
    """Marker radius in pixels for a COV-CD in percent: the area grows with the coverage."""
    cov = 0.0 if coverage is None or not math.isfinite(coverage) else min(max(coverage, 0.0), 100.0)
    return 4.0 + 18.0 * math.sqrt(cov / 100.0)


def _label(row: dict[str, Any]) -> str:
    lk = row.get("likelihood") or {}
    if "nll_bits_per_point" in lk:
        return f"{row['name']} ({lk['nll_bits_per_point']:.2f} bits/pt)"
    if "nelbo_bits_per_point" in lk:
        return f"{row['name']} (nELBO {lk['nelbo_bits_per_point']:.1f} bits/pt)"
    return row["name"]


def _dashed(draw: Any, y: float, x0: float, x1: float, colour: tuple[int, int, int]) -> None:
    x = x0
    while x < x1:
        draw.line((x, y, min(x + 8, x1), y), fill=colour, width=2)
        x += 14


def _overlaps(a: tuple[float, ...], b: tuple[float, ...]) -> bool:
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]


def _place_label(
    draw: Any, text: str, font: Any, x: float, y: float, radius: float, placed: list[tuple[float, ...]]
) -> tuple[float, float, float, float]:
    """The box of a marker's label: right of the marker (left of it near the right edge), moved up or down in
    steps until it overlaps no label placed before and stays inside the axes."""
    left, top, right, bottom = draw.textbbox((0, 0), text, font=font)
    w, h = right - left, bottom - top + 2
    x0 = x + radius + 4 if x + radius + 4 + w <= _RIGHT - 2 else x - radius - 4 - w
    for k in range(40):
        dy = (k + 1) // 2 * (h + 1) * (-1 if k % 2 else 1)
        y0 = y - h / 2 + dy
        box = (x0, y0, x0 + w, y0 + h)
        if y0 >= _TOP + 2 and y0 + h <= _BOTTOM - 2 and not any(_overlaps(box, other) for other in placed):
            return box
    return (x0, y - h / 2, x0 + w, y + h / 2)


def plot_trilemma(report: dict[str, Any], path: str | os.PathLike) -> Path:
    """Draw the report's rows (see the module docstring) into ``path`` (PNG, written atomically)."""
    from PIL import Image, ImageDraw

    from gen3d.utils import atomic_path

    rows = [r for r in report["rows"] if r["metrics"].get("1-NNA-CD") is not None]
    timed = [r for r in rows if r.get("seconds_per_shape")]
    image = Image.new("RGB", (_W, _H), "white")
    draw = ImageDraw.Draw(image)
    font, small, title = _font(14), _font(12), _font(17)

    speeds = [math.log10(r["seconds_per_shape"]) for r in timed] or [0.0]
    x_lo, x_hi = math.floor(min(speeds) - 0.3), math.ceil(max(speeds) + 0.3)
    y_lo = min([50.0] + [r["metrics"]["1-NNA-CD"] for r in rows]) - 3.0  # the top: 50 is ideal
    y_hi = max([100.0] + [r["metrics"]["1-NNA-CD"] for r in rows]) + 3.0

    def px(log_s: float) -> float:
        return _LEFT + (log_s - x_lo) / (x_hi - x_lo) * (_RIGHT - _LEFT)

    def py(nna: float) -> float:
        return _TOP + (nna - y_lo) / (y_hi - y_lo) * (_BOTTOM - _TOP)

    p = report["protocol"]
    draw.text((_LEFT, 14), "Quality against sampling time; marker area: coverage (COV-CD)", fill=_DARK, font=title)
    for nna in range(int(math.ceil(y_lo / 10) * 10), int(y_hi) + 1, 10):
        draw.line((_LEFT, py(nna), _RIGHT, py(nna)), fill=_LIGHT)
        draw.text((_LEFT - 36, py(nna) - 8), f"{nna}", fill=_DARK, font=small)
    for k in range(x_lo, x_hi + 1):
        draw.line((px(k), _TOP, px(k), _BOTTOM), fill=_LIGHT)
        label = f"{10.0**k * 1e3:g} ms" if k < 0 else f"{10.0**k:g} s"
        draw.text((px(k) - 18, _BOTTOM + 8), label, fill=_DARK, font=small)
    draw.rectangle((_LEFT, _TOP, _RIGHT, _BOTTOM), outline=_DARK)
    draw.text((_LEFT + 150, _BOTTOM + 34), "seconds per shape (log scale; faster is left)", fill=_DARK, font=font)
    draw.text((_LEFT - 80, _TOP - 26), "1-NNA-CD %  (50 is ideal; better is up)", fill=_DARK, font=font)

    for r in rows:
        if r["family"] == "data" or not r.get("seconds_per_shape"):
            y = py(r["metrics"]["1-NNA-CD"])
            _dashed(draw, y, _LEFT, _RIGHT, COLOURS["data"])
            draw.text((_LEFT + 6, y - 18), f"{r['name']}: {r['metrics']['1-NNA-CD']:.1f}", fill=_DARK, font=small)
    for r in sorted(timed, key=lambda r: -(r["metrics"].get("COV-CD") or 0.0)):  # big markers first
        x, y = px(math.log10(r["seconds_per_shape"])), py(r["metrics"]["1-NNA-CD"])
        rad = marker_radius(r["metrics"].get("COV-CD"))
        colour = COLOURS.get(r["family"], _DARK)
        draw.ellipse((x - rad, y - rad, x + rad, y + rad), fill=colour, outline=_DARK)
    placed: list[tuple[float, float, float, float]] = []  # markers and labels drawn so far: labels avoid them
    for r in timed:
        x, y = px(math.log10(r["seconds_per_shape"])), py(r["metrics"]["1-NNA-CD"])
        rad = marker_radius(r["metrics"].get("COV-CD"))
        placed.append((x - rad, y - rad, x + rad, y + rad))
    for r in sorted(timed, key=lambda r: r["seconds_per_shape"]):
        x, y = px(math.log10(r["seconds_per_shape"])), py(r["metrics"]["1-NNA-CD"])
        box = _place_label(draw, _label(r), small, x, y, marker_radius(r["metrics"].get("COV-CD")), placed)
        placed.append(box)
        draw.text(box[:2], _label(r), fill=_DARK, font=small)

    # legend: families, then marker sizes
    lx, ly = _RIGHT + 30, _TOP
    draw.text((lx, ly), "family", fill=_DARK, font=font)
    for fam in dict.fromkeys(r["family"] for r in rows):
        ly += 24
        draw.ellipse((lx, ly + 2, lx + 12, ly + 14), fill=COLOURS.get(fam, _DARK), outline=_DARK)
        draw.text((lx + 20, ly), FAMILY_NAMES.get(fam, fam), fill=_DARK, font=font)
    ly += 44
    draw.text((lx, ly), "COV-CD", fill=_DARK, font=font)
    for cov in (25, 50, 100):
        rad = marker_radius(cov)
        ly += 2 * rad + 10
        draw.ellipse((lx + 22 - rad, ly - rad, lx + 22 + rad, ly + rad), outline=_DARK)
        draw.text((lx + 50, ly - 8), f"{cov} %", fill=_DARK, font=small)
    note = (
        f"{p['n']} shapes per row vs {p['refs']['clouds']} references, {p['points']} points; {p['threads']} CPU threads"
    )
    draw.text((_LEFT, _H - 28), note, fill=_DARK, font=small)
    path = Path(path)
    with atomic_path(path) as tmp:
        image.save(tmp, format="PNG")
    return path
