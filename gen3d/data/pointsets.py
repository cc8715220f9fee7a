"""An in-memory set of point clouds with their class names and shape ids (numpy only)."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from gen3d.errors import InputError


@dataclass
class PointCloudSet:
    """N point clouds of P points each, as a reader or the procedural generator returns them.

    Attributes:
        points: (N, P, 3) float32 points.
        classes: N class names (one per cloud).
        ids: N shape ids (file stems, unique within a class and split).
        sources: N source files (empty strings for generated shapes).
    """

    points: np.ndarray
    classes: list[str]
    ids: list[str]
    sources: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        if self.points.ndim != 3 or self.points.shape[-1] != 3:
            raise InputError(f"a point set must have shape (N, P, 3), got {self.points.shape}")
        n = len(self.points)
        if not self.sources:
            self.sources = [""] * n
        if not (len(self.classes) == len(self.ids) == len(self.sources) == n):
            raise InputError(
                f"point set of {n} clouds has {len(self.classes)} classes, {len(self.ids)} ids, "
                f"{len(self.sources)} sources"
            )

    def __len__(self) -> int:
        return len(self.points)

    @property
    def class_names(self) -> list[str]:
        """The distinct classes in order of first appearance."""
        return list(dict.fromkeys(self.classes))

    @staticmethod
    def concatenate(sets: list[PointCloudSet]) -> PointCloudSet:
        """Join sets with the same number of points per cloud."""
        if not sets:
            raise InputError("cannot concatenate an empty list of point sets")
        return PointCloudSet(
            points=np.concatenate([s.points for s in sets]),
            classes=[c for s in sets for c in s.classes],
            ids=[i for s in sets for i in s.ids],
            sources=[f for s in sets for f in s.sources],
        )
