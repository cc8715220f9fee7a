"""Statistics of a dataset in the PC15k layout: shapes per class and split, points per shape, bounding
boxes, and the global normalisation fitted on the train split (what ``gen3d data info`` and ``gen3d demo``
print). Files are read one at a time, so the full ShapeNet (tens of GB in float64) never sits in memory.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from gen3d.data import pc15k
from gen3d.data.io import load_points
from gen3d.data.normalize import GlobalNorm
from gen3d.errors import InputError


def dataset_stats(
    root: str | os.PathLike, classes: str | list[str] | None = None, show_progress: bool | None = None
) -> dict[str, Any]:
    """Read every cloud under ``root`` (validating each) and summarise.

    Args:
        root: dataset root in the PC15k layout.
        classes: class names or synset ids (None: every class folder).
        show_progress: progress bar on (True), off (False) or only on a terminal (None).

    Returns:
        ``{"root", "classes": {name: {"train", "val", "test", "extent": [3 floats]}}, "points_per_shape":
        [distinct counts], "bbox_min", "bbox_max", "total", "normalization": GlobalNorm.to_dict() | None}``;
        ``extent`` is the mean bounding-box size of the class's shapes; the normalisation is PointFlow's,
        fitted on every point of the train split of the listed classes.
    """
    from gen3d.utils import progress

    root = Path(root)
    folders = pc15k.resolve_classes(root, classes)
    jobs = []
    for folder in folders:
        for split in pc15k.SPLITS:
            if (root / folder / split).is_dir():
                jobs.extend((folder, split, f) for f in pc15k.split_files(root, folder, split))
    if not jobs:
        raise InputError("no .npy clouds found in any class or split", root)
    per_class = {pc15k.class_name(f): {**dict.fromkeys(pc15k.SPLITS, 0), "extent": np.zeros(3)} for f in folders}
    counts: set[int] = set()
    lo, hi = np.full(3, np.inf), np.full(3, -np.inf)
    n_train, coord_sum, square_sum = 0, np.zeros(3), 0.0
    for folder, split, f in progress(
        jobs, "reading clouds", disable=None if show_progress is None else not show_progress
    ):
        cloud = load_points(f).astype(np.float64)
        if cloud.ndim != 2:
            raise InputError(f"expected one cloud of shape (P, 3) per file, got shape {cloud.shape}", f)
        entry = per_class[pc15k.class_name(folder)]
        entry[split] += 1
        counts.add(len(cloud))
        c_lo, c_hi = cloud.min(axis=0), cloud.max(axis=0)
        lo, hi = np.minimum(lo, c_lo), np.maximum(hi, c_hi)
        entry["extent"] += c_hi - c_lo
        if split == "train":
            n_train += len(cloud)
            coord_sum += cloud.sum(axis=0)
            square_sum += float(np.square(cloud).sum())
    for entry in per_class.values():
        n = sum(entry[s] for s in pc15k.SPLITS)
        entry["extent"] = (entry["extent"] / max(n, 1)).tolist()
    return {
        "root": str(root),
        "classes": per_class,
        "points_per_shape": sorted(counts),
        "bbox_min": lo.tolist(),
        "bbox_max": hi.tolist(),
        "total": len(jobs),
        "normalization": GlobalNorm.from_moments(n_train, coord_sum, square_sum).to_dict() if n_train else None,
    }


def stats_table(stats: dict[str, Any], title: str | None = None) -> Any:
    """A ``rich.table.Table`` of :func:`dataset_stats` output (one row per class plus a total)."""
    from rich.table import Table

    table = Table(title=title or f"dataset {stats['root']}")
    for col in ("class", "train", "val", "test", "extent x", "extent y", "extent z"):
        table.add_column(col, justify="left" if col == "class" else "right")
    sums = dict.fromkeys(pc15k.SPLITS, 0)
    for name, entry in stats["classes"].items():
        for s in pc15k.SPLITS:
            sums[s] += entry[s]
        table.add_row(name, *(str(entry[s]) for s in pc15k.SPLITS), *(f"{v:.3f}" for v in entry["extent"]))
    table.add_row("[b]total[/b]", *(str(sums[s]) for s in pc15k.SPLITS), "", "", "", end_section=True)
    points = ", ".join(str(p) for p in stats["points_per_shape"])
    lo = ", ".join(f"{v:.3f}" for v in stats["bbox_min"])
    hi = ", ".join(f"{v:.3f}" for v in stats["bbox_max"])
    table.caption = f"points per shape: {points}; bounding box [{lo}] .. [{hi}]"
    norm = stats.get("normalization")
    if norm:
        mean = ", ".join(f"{v:.4f}" for v in norm["mean"])
        table.caption += f"\nglobal normalisation (train split): mean [{mean}], std {norm['std']:.4f}"
    return table
