"""A tolerant reader of Object File Format (``.off``) meshes, as ModelNet and CGAL ship them.

Handles what real files contain:

* the ModelNet quirk where the keyword and the counts share the first line (``OFF490 518 0``),
* ``COFF``/``NOFF``/``CNOFF``/``STOFF`` variants (extra per-vertex values after x y z are ignored),
* ``#`` comments, blank lines, Windows line endings, colours after the face indices,
* polygons with more than three vertices (triangulated as fans); faces with fewer are skipped.

Anything else (missing header, truncated vertex or face lists, out-of-range indices, NaN/Inf) raises
:class:`gen3d.errors.InputError` naming the file.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import numpy as np

from gen3d.errors import InputError

_HEADER = re.compile(r"^(ST)?C?N?4?n?OFF(?P<rest>.*)$")


def _content_lines(text: str) -> list[str]:
    lines = []
    for raw in text.splitlines():
        line = raw.split("#", 1)[0].strip()
        if line:
            lines.append(line)
    return lines


def parse_off(text: str, source: str | os.PathLike | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Parse OFF text.

    Args:
        text: the file's contents.
        source: the file, named in error messages.

    Returns:
        vertices: (V, 3) float64 positions.
        faces: (F, 3) int64 triangle indices (polygons fan-triangulated; may be empty).
    """
    lines = _content_lines(text)
    if not lines:
        raise InputError("empty OFF file; expected an 'OFF' header", source)
    match = _HEADER.match(lines[0])
    if match is None:
        raise InputError(f"expected an 'OFF' header on the first line, found {lines[0][:40]!r}", source)
    rest = match.group("rest").strip()
    if rest:  # "OFF490 518 0": counts on the header line
        count_line, body = rest, lines[1:]
    elif len(lines) > 1:
        count_line, body = lines[1], lines[2:]
    else:
        raise InputError("truncated OFF file: no vertex/face counts after the header", source)
    try:
        counts = [int(t) for t in count_line.split()[:3]]
    except ValueError as exc:
        raise InputError(f"expected integer counts 'vertices faces edges', found {count_line[:40]!r}", source) from exc
    if len(counts) < 2 or min(counts[:2]) < 0:
        raise InputError(f"expected counts 'vertices faces edges', found {count_line[:40]!r}", source)
    n_vertices, n_faces = counts[0], counts[1]
    if len(body) < n_vertices + n_faces:
        raise InputError(
            f"truncated OFF file: header promises {n_vertices} vertices and {n_faces} faces, "
            f"found {len(body)} data lines",
            source,
        )
    try:
        rows = [line.split()[:3] for line in body[:n_vertices]]
        vertices = np.array(rows, dtype=np.float64).reshape(n_vertices, 3)  # (V, 3)
    except ValueError as exc:
        raise InputError("malformed vertex line: expected at least three numbers x y z per vertex", source) from exc
    if not np.isfinite(vertices).all():
        raise InputError("OFF file has NaN or Inf vertex coordinates", source)
    faces = _parse_faces(body[n_vertices : n_vertices + n_faces], source)
    if len(faces) and (faces.min() < 0 or faces.max() >= n_vertices):
        raise InputError(
            f"face index out of range: indices must lie in [0, {n_vertices}), found {faces.min()}..{faces.max()}",
            source,
        )
    return vertices, faces


def _parse_faces(lines: list[str], source: str | os.PathLike | None) -> np.ndarray:
    if not lines:
        return np.zeros((0, 3), dtype=np.int64)
    try:
        if all(line.startswith("3 ") for line in lines):  # the common all-triangle case, vectorised
            return np.array([line.split()[1:4] for line in lines], dtype=np.int64).reshape(-1, 3)
        tris: list[tuple[int, int, int]] = []
        for line in lines:
            tokens = line.split()
            n = int(tokens[0])
            idx = [int(t) for t in tokens[1 : 1 + n]]
            if len(idx) < n:
                raise InputError(f"malformed face line {line[:40]!r}: expected {n} vertex indices", source)
            tris.extend((idx[0], idx[k], idx[k + 1]) for k in range(1, n - 1))  # fan; skips n < 3
    except InputError:
        raise
    except ValueError as exc:
        raise InputError("malformed face line: expected 'n i1 ... in' with integer indices", source) from exc
    return np.array(tris, dtype=np.int64).reshape(-1, 3)


def read_off(path: str | os.PathLike) -> tuple[np.ndarray, np.ndarray]:
    """Read an ``.off`` file.

    Args:
        path: the file.

    Returns:
        vertices: (V, 3) float64; faces: (F, 3) int64.
    """
    p = Path(path)
    if not p.is_file():
        raise InputError("no such file", p)
    try:
        text = p.read_bytes().decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InputError("not a text OFF file (binary OFF is not supported)", p) from exc
    return parse_off(text, p)
