"""Procedural shapes: gen3d's built-in dataset, assembled from trimesh primitives.

Every class (chair, table, airplane, lamp, mug, car, sofa, bottle) is a small parametric model: random
proportions and optional parts (armrests, 3 or 4 legs or a pedestal, different lamp shades, a mug handle,
engines, spoilers, ...). A shape is fully determined by ``(seed, class, index)``: its random generator is
seeded from those three numbers alone, so shapes never depend on each other, on the order they are built
in, or on any global random state.

Canonical frame: y up, the shape's bounding box centred at the origin, its largest side scaled to 1
(so it fits in [-0.5, 0.5]^3). Meshes are the concatenation of closed primitives (each part watertight,
parts may interpenetrate), which is all that surface sampling and rendering need.

:func:`build_dataset` writes the ShapeNetCore.v2.PC15k layout, ``<root>/<class>/<split>/<id>.npy``
(15000 x 3 float32 each), so one reader serves procedural shapes and ShapeNet alike.
"""

from __future__ import annotations

import json
import math
import os
import re
import zlib
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import trimesh
from trimesh import creation
from trimesh.geometry import align_vectors

from gen3d.data.pointsets import PointCloudSet
from gen3d.data.sampling import sample_mesh
from gen3d.errors import InputError

SPLITS = ("train", "val", "test")
DEFAULT_SPLIT = (0.8, 0.1, 0.1)
DEFAULT_POINTS = 15000
GENERATOR_VERSION = 1
MANIFEST = "dataset.json"
NORMALIZATION = "normalization.json"

Parts = list[trimesh.Trimesh]

# ----------------------------------------------------------------------------------------------------
# Primitive helpers (all positions in the shape's own frame, y up)
# ----------------------------------------------------------------------------------------------------


def _translation(offset: Sequence[float]) -> np.ndarray:
    t = np.eye(4)
    t[:3, 3] = offset
    return t


def _rotation(axis: int, angle: float) -> np.ndarray:
    """4x4 rotation by ``angle`` (radians, right-handed) about coordinate axis ``axis`` (0 = x, 1 = y, 2 = z)."""
    c, s = math.cos(angle), math.sin(angle)
    i, j = (axis + 1) % 3, (axis + 2) % 3  # the plane that turns: (y, z), (z, x) or (x, y)
    r = np.eye(4)
    r[i, i], r[i, j], r[j, i], r[j, j] = c, -s, s, c
    return r


def _segment_transform(p0: Sequence[float], p1: Sequence[float]) -> tuple[np.ndarray, float]:
    """Transform taking the z axis (centred at the origin) onto the segment p0 -> p1, and its length."""
    p0, p1 = np.asarray(p0, dtype=np.float64), np.asarray(p1, dtype=np.float64)
    d = p1 - p0
    length = float(np.linalg.norm(d))
    t = align_vectors([0.0, 0.0, 1.0], d / length)
    t[:3, 3] = (p0 + p1) / 2
    return t, length


def _box(center: Sequence[float], extents: Sequence[float], rotation: np.ndarray | None = None) -> trimesh.Trimesh:
    t = _translation(center) if rotation is None else _translation(center) @ rotation
    return creation.box(extents=extents, transform=t)


def _rod(p0: Sequence[float], p1: Sequence[float], radius: float, sections: int = 16) -> trimesh.Trimesh:
    return creation.cylinder(radius=radius, segment=[p0, p1], sections=sections)


def _capsule(p0: Sequence[float], p1: Sequence[float], radius: float) -> trimesh.Trimesh:
    t, length = _segment_transform(p0, p1)
    return creation.capsule(height=length, radius=radius, count=[12, 12], transform=t)


def _sphere(center: Sequence[float], radius: float) -> trimesh.Trimesh:
    mesh = creation.icosphere(subdivisions=2, radius=radius)
    mesh.apply_translation(center)
    return mesh


def _frustum(p0: Sequence[float], p1: Sequence[float], r0: float, r1: float, sections: int = 24) -> trimesh.Trimesh:
    """Truncated cone from p0 (radius r0) to p1 (radius r1)."""
    mesh = creation.cylinder(radius=1.0, height=1.0, sections=sections)  # z in [-0.5, 0.5]
    v = mesh.vertices.copy()
    radius = np.where(v[:, 2] < 0, r0, r1)  # (V,)
    v[:, :2] *= radius[:, None]
    mesh.vertices = v
    t, length = _segment_transform(p0, p1)
    mesh.apply_transform(t @ np.diag([1.0, 1.0, length, 1.0]))
    return mesh


def _arc_tube(center: Sequence[float], radius: float, tube: float, a0: float, a1: float, segments: int = 8) -> Parts:
    """A tube bent along a circular arc in the xy plane (angles in radians, from +x towards +y)."""
    angles = np.linspace(a0, a1, segments + 1)
    c = np.asarray(center, dtype=np.float64)
    pts = [c + radius * np.array([math.cos(a), math.sin(a), 0.0]) for a in angles]
    return [_capsule(pts[i], pts[i + 1], tube) for i in range(segments)]


def _transformed(parts: Parts, transform: np.ndarray) -> Parts:
    for part in parts:
        part.apply_transform(transform)
    return parts


# ----------------------------------------------------------------------------------------------------
# Classes
# ----------------------------------------------------------------------------------------------------


def _chair(rng: np.random.Generator) -> Parts:
    w, d = rng.uniform(0.42, 0.6), rng.uniform(0.4, 0.55)
    seat_t, seat_h = rng.uniform(0.03, 0.08), rng.uniform(0.38, 0.5)
    parts: Parts = [_box([0, seat_h - seat_t / 2, 0], [w, seat_t, d])]
    under = seat_h - seat_t  # bottom of the seat
    legs = rng.choice(["square", "round", "swivel"], p=[0.45, 0.35, 0.2])
    if legs == "swivel":
        r = rng.uniform(0.02, 0.035)
        foot_y = rng.uniform(0.05, 0.08)
        parts.append(_rod([0, foot_y, 0], [0, under, 0], r))
        spoke = rng.uniform(0.24, 0.32)
        for k in range(5):
            a = 2 * math.pi * k / 5 + math.pi / 2
            tip = [spoke * math.cos(a), 0.03, spoke * math.sin(a)]
            parts.append(_capsule([0, foot_y, 0], tip, 0.018))
            parts.append(_sphere([tip[0], 0.025, tip[2]], 0.025))
    else:
        t = rng.uniform(0.025, 0.05)
        inset = rng.uniform(0.0, 0.04)
        x, z = w / 2 - inset - t / 2, d / 2 - inset - t / 2
        for sx in (-1, 1):
            for sz in (-1, 1):
                if legs == "square":
                    parts.append(_box([sx * x, under / 2, sz * z], [t, under, t]))
                else:
                    parts.append(_rod([sx * x, 0, sz * z], [sx * x, under, sz * z], t / 2))
        if rng.random() < 0.4:  # stretchers between front and back legs
            y = rng.uniform(0.1, 0.2)
            for sx in (-1, 1):
                parts.append(_box([sx * x, y, 0], [t * 0.6, t * 0.6, 2 * z]))
    # Backrest, built upright at the seat's back edge, then tilted backwards about the x axis.
    bh, bt = rng.uniform(0.3, 0.55), rng.uniform(0.02, 0.05)
    style = rng.choice(["solid", "slats", "frame"])
    back: Parts = []
    if style == "solid":
        back.append(_box([0, bh / 2, 0], [w, bh, bt]))
    else:
        post = rng.uniform(0.025, 0.045)
        for sx in (-1, 1):
            back.append(_box([sx * (w / 2 - post / 2), bh / 2, 0], [post, bh, bt]))
        rail = rng.uniform(0.05, 0.12)
        back.append(_box([0, bh - rail / 2, 0], [w, rail, bt]))
        if style == "slats":
            n = int(rng.integers(2, 6))
            for k in range(n):
                x = -w / 2 + post + (k + 1) * (w - 2 * post) / (n + 1)
                back.append(_box([x, (bh - rail) / 2, 0], [0.03, bh - rail, bt * 0.7]))
        else:
            back.append(_box([0, bh * 0.35, 0], [w, rail * 0.7, bt]))
    tilt = rng.uniform(0.0, math.radians(14))
    parts += _transformed(back, _translation([0, seat_h, -d / 2 + bt / 2]) @ _rotation(0, -tilt))
    if rng.random() < 0.4:  # armrests
        arm_h = seat_h + rng.uniform(0.16, 0.26)
        at = rng.uniform(0.04, 0.07)
        for sx in (-1, 1):
            x = sx * (w / 2 + at / 2 - 0.01)
            parts.append(_box([x, arm_h, -d * 0.05], [at, 0.03, d * 0.85]))
            parts.append(_rod([x, seat_h - seat_t / 2, d * 0.3], [x, arm_h, d * 0.3], 0.015))
    return parts


def _table(rng: np.random.Generator) -> Parts:
    h = rng.uniform(0.65, 0.8)
    top_t = rng.uniform(0.03, 0.06)
    under = h - top_t
    parts: Parts = []
    if rng.random() < 0.6:  # rectangular top
        w, d = rng.uniform(0.9, 1.6), rng.uniform(0.5, 0.9)
        parts.append(_box([0, h - top_t / 2, 0], [w, top_t, d]))
        if rng.random() < 0.8:  # four legs
            t = rng.uniform(0.04, 0.08)
            inset = rng.uniform(0.02, 0.1)
            x, z = w / 2 - inset - t / 2, d / 2 - inset - t / 2
            round_legs = rng.random() < 0.4
            for sx in (-1, 1):
                for sz in (-1, 1):
                    if round_legs:
                        parts.append(_rod([sx * x, 0, sz * z], [sx * x, under, sz * z], t / 2))
                    else:
                        parts.append(_box([sx * x, under / 2, sz * z], [t, under, t]))
            if rng.random() < 0.35:  # lower shelf
                parts.append(_box([0, rng.uniform(0.12, 0.25), 0], [2 * x, 0.025, 2 * z]))
            elif rng.random() < 0.5:  # apron under the top
                parts.append(_box([0, under - 0.04, 0], [2 * x, 0.08, 2 * z]))
        else:  # trestle: two panels at the ends joined by a beam
            x = w / 2 - rng.uniform(0.08, 0.15)
            for sx in (-1, 1):
                parts.append(_box([sx * x, under / 2, 0], [0.05, under, d * 0.75]))
                parts.append(_box([sx * x, 0.02, 0], [0.1, 0.04, d * 0.85]))
            parts.append(_box([0, under * 0.4, 0], [2 * x, 0.06, 0.05]))
    else:  # round top
        r = rng.uniform(0.35, 0.6)
        parts.append(_rod([0, h - top_t, 0], [0, h, 0], r, sections=32))
        kind = rng.choice(["three", "four", "pedestal"], p=[0.35, 0.25, 0.4])
        if kind == "pedestal":
            parts.append(_rod([0, 0.03, 0], [0, under, 0], rng.uniform(0.04, 0.08)))
            if rng.random() < 0.5:
                parts.append(_rod([0, 0, 0], [0, 0.04, 0], r * rng.uniform(0.45, 0.7), sections=32))
            else:
                foot = r * rng.uniform(0.55, 0.8)
                for k in range(4):
                    a = math.pi / 4 + k * math.pi / 2
                    parts.append(_capsule([0, 0.03, 0], [foot * math.cos(a), 0.02, foot * math.sin(a)], 0.025))
        else:
            n = 3 if kind == "three" else 4
            lr = rng.uniform(0.02, 0.035)
            spread = rng.uniform(0.0, 0.12)
            for k in range(n):
                a = 2 * math.pi * k / n
                top = 0.7 * r * np.array([math.cos(a), 0, math.sin(a)])
                foot = (0.7 * r + spread) * np.array([math.cos(a), 0, math.sin(a)])
                parts.append(_rod(foot, top + [0, under, 0], lr))
    return parts


def _airplane(rng: np.random.Generator) -> Parts:
    length = rng.uniform(0.9, 1.3)
    radius = rng.uniform(0.045, 0.075)
    parts: Parts = [_capsule([0, 0, -length / 2 + radius], [0, 0, length / 2 - radius], radius)]
    span = length * rng.uniform(0.8, 1.2)
    chord = rng.uniform(0.14, 0.26)
    sweep = rng.uniform(0.0, math.radians(35))
    dihedral = rng.uniform(0.0, math.radians(6))
    wing_y = radius * rng.choice([-0.6, 0.6])
    wing_z = rng.uniform(-0.05, 0.1)
    for s in (-1, 1):
        wing = _box([s * span / 4, 0, 0], [span / 2, 0.02, chord])
        wing.apply_transform(_translation([0, wing_y, wing_z]) @ _rotation(1, s * sweep) @ _rotation(2, s * dihedral))
        parts.append(wing)
    engines = int(rng.choice([0, 2, 4], p=[0.25, 0.5, 0.25]))
    er, el = rng.uniform(0.03, 0.045), rng.uniform(0.15, 0.22)
    for k in range(engines // 2):
        frac = 0.35 if k == 0 else 0.65
        for s in (-1, 1):
            x = s * frac * span / 2
            z = wing_z - abs(x) * math.tan(sweep) + 0.06
            parts.append(_rod([x, wing_y - 0.05, z - el / 2], [x, wing_y - 0.05, z + el / 2], er))
    # Tail: a vertical fin and a horizontal stabiliser, the latter low or on top of the fin (T-tail).
    fin_h, fin_c = rng.uniform(0.12, 0.2), rng.uniform(0.15, 0.25)
    tail_z = -length / 2 + fin_c / 2 + 0.02
    fin_sweep = rng.uniform(0.2, 0.6)
    fin = _box([0, fin_h / 2, 0], [0.015, fin_h, fin_c])
    fin.apply_transform(_translation([0, radius * 0.5, tail_z]) @ _rotation(0, -fin_sweep))
    parts.append(fin)
    stab_span, stab_c = span * rng.uniform(0.3, 0.45), chord * rng.uniform(0.45, 0.7)
    if rng.random() < 0.2:  # T-tail: on top of the swept fin
        stab = [0, radius * 0.5 + fin_h * math.cos(fin_sweep), tail_z - fin_h * math.sin(fin_sweep)]
    else:
        stab = [0, 0, tail_z]
    parts.append(_box(stab, [stab_span, 0.015, stab_c]))
    return parts


def _lamp(rng: np.random.Generator) -> Parts:
    kind = rng.choice(["floor", "desk", "arm"], p=[0.35, 0.35, 0.3])
    base_h = rng.uniform(0.02, 0.05)
    parts: Parts = []
    if rng.random() < 0.7:
        parts.append(_rod([0, 0, 0], [0, base_h, 0], rng.uniform(0.1, 0.18), sections=32))
    else:
        s = rng.uniform(0.16, 0.3)
        parts.append(_box([0, base_h / 2, 0], [s, base_h, s]))
    pole_r = rng.uniform(0.01, 0.02)
    height = rng.uniform(1.2, 1.6) if kind == "floor" else rng.uniform(0.35, 0.6)
    parts.append(_rod([0, base_h, 0], [0, height, 0], pole_r))
    if kind == "arm":  # a bent arm ending in a downward shade
        reach = rng.uniform(0.2, 0.4)
        end = np.array([0.0, height + rng.uniform(0.05, 0.25), reach])
        parts.append(_sphere([0, height, 0], pole_r * 1.6))
        parts.append(_rod([0, height, 0], end, pole_r))
        sh, r0 = rng.uniform(0.1, 0.18), rng.uniform(0.08, 0.14)
        parts.append(_frustum(end, end - [0, sh, 0], rng.uniform(0.02, 0.04), r0))
        return parts
    shade = rng.choice(["cone", "drum", "globe"], p=[0.45, 0.35, 0.2])
    if kind == "floor":
        sh, sr = rng.uniform(0.25, 0.4), rng.uniform(0.18, 0.28)
    else:
        sh, sr = rng.uniform(0.15, 0.25), rng.uniform(0.12, 0.2)
    if shade == "globe":
        parts.append(_sphere([0, height + sr * 0.8, 0], sr))
    else:
        y0 = height - sh * rng.uniform(0.3, 0.6)
        top_r = sr * (rng.uniform(0.45, 0.75) if shade == "cone" else 1.0)
        parts.append(_frustum([0, y0, 0], [0, y0 + sh, 0], sr, top_r, sections=32))
        if rng.random() < 0.5:  # visible bulb under the shade
            parts.append(_sphere([0, y0 - 0.02, 0], sr * 0.25))
    return parts


def _mug(rng: np.random.Generator) -> Parts:
    height, radius = rng.uniform(0.6, 1.0), rng.uniform(0.35, 0.5)
    wall = rng.uniform(0.04, 0.07)
    body = creation.annulus(r_min=radius - wall, r_max=radius, segment=[[0, 0, 0], [0, height, 0]], sections=40)
    flare = rng.uniform(1.0, 1.25) if rng.random() < 0.35 else 1.0  # wider at the rim
    if flare != 1.0:
        v = body.vertices.copy()
        v[:, [0, 2]] *= 1.0 + (flare - 1.0) * v[:, 1:2] / height
        body.vertices = v
    parts: Parts = [body, _rod([0, 0, 0], [0, wall, 0], radius - wall / 2, sections=40)]
    if rng.random() < 0.85:  # handle on the +x side
        tube = rng.uniform(0.035, 0.06)
        cy = height * rng.uniform(0.45, 0.55)
        if rng.random() < 0.7:  # round handle: an arc of a circle
            a = height * rng.uniform(0.26, 0.36)
            cx = radius + a * rng.uniform(0.1, 0.4)
            half = math.acos(min(1.0, max(-1.0, (radius - cx) / a)))  # where the arc meets the body
            parts += _arc_tube([cx, cy, 0], a, tube, -half, half)
        else:  # square handle: two bars and an upright
            reach, half_h = rng.uniform(0.18, 0.3), height * rng.uniform(0.2, 0.3)
            x0, x1 = radius - wall, radius + reach
            parts.append(_capsule([x0, cy + half_h, 0], [x1, cy + half_h, 0], tube))
            parts.append(_capsule([x0, cy - half_h, 0], [x1, cy - half_h, 0], tube))
            parts.append(_capsule([x1, cy - half_h, 0], [x1, cy + half_h, 0], tube))
    return parts


def _car(rng: np.random.Generator) -> Parts:
    length, width = rng.uniform(3.8, 4.8), rng.uniform(1.6, 1.9)
    body_h, clearance = rng.uniform(0.45, 0.65), rng.uniform(0.15, 0.3)
    wheel_r, wheel_w = rng.uniform(0.3, 0.38), rng.uniform(0.2, 0.25)
    parts: Parts = [_box([0, clearance + wheel_r * 0.3 + body_h / 2, 0], [width, body_h, length])]
    roof_base = clearance + wheel_r * 0.3 + body_h
    style = rng.choice(["sedan", "hatch", "van", "pickup"], p=[0.4, 0.25, 0.15, 0.2])
    cabin_l = length * {"sedan": 0.5, "hatch": 0.55, "van": 0.85, "pickup": 0.35}[str(style)] * rng.uniform(0.9, 1.05)
    cabin_h = rng.uniform(0.4, 0.6) * (1.25 if style == "van" else 1.0)
    shift = {"sedan": 0.0, "hatch": -0.12, "van": -0.05, "pickup": 0.12}[str(style)] * length
    cabin = _box([0, 0, 0], [width * rng.uniform(0.82, 0.94), cabin_h, cabin_l])
    v = cabin.vertices.copy()
    top = v[:, 1] > 0
    v[top, 2] *= rng.uniform(0.6, 0.85) if style != "van" else 0.95  # slanted windscreens
    cabin.vertices = v
    cabin.apply_translation([0, roof_base + cabin_h / 2, shift])
    parts.append(cabin)
    base = length * rng.uniform(0.55, 0.65) / 2
    for sx in (-1, 1):
        x = sx * (width / 2 + wheel_w / 2 - 0.06)  # tyres stand slightly proud of the body
        for z in (-base, base):
            parts.append(_rod([x - wheel_w / 2, wheel_r, z], [x + wheel_w / 2, wheel_r, z], wheel_r, sections=24))
    if style in ("sedan", "hatch") and rng.random() < 0.25:  # rear spoiler
        z = -length / 2 + 0.15
        for sx in (-1, 1):
            parts.append(_box([sx * width * 0.3, roof_base + 0.08, z], [0.05, 0.16, 0.05]))
        parts.append(_box([0, roof_base + 0.17, z], [width * 0.9, 0.03, 0.25]))
    return parts


def _sofa(rng: np.random.Generator) -> Parts:
    w, d = rng.uniform(1.6, 2.4), rng.uniform(0.8, 1.0)
    seat_h, cushion_t = rng.uniform(0.38, 0.48), rng.uniform(0.08, 0.14)
    leg_h = rng.uniform(0.06, 0.14) if rng.random() < 0.7 else 0.0
    base_top = seat_h - cushion_t
    parts: Parts = [_box([0, (leg_h + base_top) / 2, 0], [w, base_top - leg_h, d])]
    if leg_h > 0:
        for sx in (-1, 1):
            for sz in (-1, 1):
                parts.append(
                    _rod(
                        [sx * (w / 2 - 0.08), 0, sz * (d / 2 - 0.08)],
                        [sx * (w / 2 - 0.08), leg_h, sz * (d / 2 - 0.08)],
                        0.025,
                    )
                )
    back_h, back_t = rng.uniform(0.35, 0.55), rng.uniform(0.15, 0.25)
    parts.append(_box([0, base_top + back_h / 2, -d / 2 + back_t / 2], [w, back_h, back_t]))
    arm_t = 0.0
    if rng.random() < 0.85:
        arm_t, arm_h = rng.uniform(0.12, 0.25), rng.uniform(0.15, 0.3)
        rounded = rng.random() < 0.35
        for sx in (-1, 1):
            x = sx * (w / 2 - arm_t / 2)
            if rounded:
                parts.append(_box([x, (leg_h + seat_h + arm_h) / 2, 0], [arm_t, seat_h + arm_h - leg_h, d]))
                parts.append(
                    _capsule([x, seat_h + arm_h, -d / 2 + arm_t / 2], [x, seat_h + arm_h, d / 2 - arm_t / 2], arm_t / 2)
                )
            else:
                parts.append(_box([x, (leg_h + seat_h + arm_h) / 2, 0], [arm_t, seat_h + arm_h - leg_h, d]))
    n = int(rng.integers(1, 4))
    inner = w - 2 * arm_t
    cw = inner / n
    for k in range(n):
        x = -inner / 2 + cw * (k + 0.5)
        parts.append(_box([x, base_top + cushion_t / 2, back_t / 2], [cw - 0.02, cushion_t, d - back_t - 0.02]))
        if rng.random() < 0.5:
            parts.append(
                _box([x, base_top + cushion_t + back_h * 0.35, -d / 2 + back_t + 0.05], [cw - 0.02, back_h * 0.6, 0.1])
            )
    if rng.random() < 0.2:  # chaise extension on one side
        s = rng.choice([-1, 1])
        ext = rng.uniform(0.5, 0.8)
        parts.append(
            _box(
                [s * (w / 2 - arm_t - inner * 0.2), (leg_h + seat_h) / 2, d / 2 + ext / 2],
                [inner * 0.4, seat_h - leg_h, ext],
            )
        )
    return parts


def _bottle(rng: np.random.Generator) -> Parts:
    radius, body_h = rng.uniform(0.3, 0.5), rng.uniform(1.0, 1.8)
    neck_r = radius * rng.uniform(0.25, 0.4)
    shoulder_h, neck_h = rng.uniform(0.2, 0.5), rng.uniform(0.2, 0.6)
    parts: Parts = []
    if rng.random() < 0.3:  # rounded base: a flattened half-ellipsoid under the cylinder
        r_b = radius * rng.uniform(0.3, 0.6)
        base = creation.icosphere(subdivisions=3, radius=1.0)
        base.apply_transform(_translation([0, r_b, 0]) @ np.diag([radius, r_b, radius, 1.0]))
        parts += [base, _rod([0, r_b, 0], [0, body_h, 0], radius, sections=40)]
    else:
        parts.append(_rod([0, 0, 0], [0, body_h, 0], radius, sections=40))
    if rng.random() < 0.3:  # round shoulder
        shoulder = creation.icosphere(subdivisions=3, radius=1.0)
        shoulder.apply_transform(_translation([0, body_h, 0]) @ np.diag([radius, shoulder_h, radius, 1.0]))
        parts.append(shoulder)
    else:
        parts.append(_frustum([0, body_h, 0], [0, body_h + shoulder_h, 0], radius, neck_r, sections=40))
    top = body_h + shoulder_h + neck_h
    parts.append(_rod([0, body_h + shoulder_h * 0.5, 0], [0, top, 0], neck_r, sections=24))
    if rng.random() < 0.7:  # cap
        parts.append(
            _rod([0, top - 0.02, 0], [0, top + rng.uniform(0.08, 0.2), 0], neck_r * rng.uniform(1.1, 1.3), sections=24)
        )
    else:  # lip ring
        parts.append(_rod([0, top - 0.04, 0], [0, top, 0], neck_r * 1.2, sections=24))
    return parts


CLASSES: dict[str, Callable[[np.random.Generator], Parts]] = {
    "chair": _chair,
    "table": _table,
    "airplane": _airplane,
    "lamp": _lamp,
    "mug": _mug,
    "car": _car,
    "sofa": _sofa,
    "bottle": _bottle,
}
"""The procedural classes and their builders, in display order."""


# ----------------------------------------------------------------------------------------------------
# Seeding, meshes, points
# ----------------------------------------------------------------------------------------------------


def check_classes(classes: Sequence[str] | str | None) -> list[str]:
    """Validate class names (a list or a comma-separated string; None or "all" means every class)."""
    if classes is None or classes == "all" or list(classes) == ["all"]:
        return list(CLASSES)
    if isinstance(classes, str):
        classes = [c for c in classes.split(",") if c.strip()]
    names = [c.strip() for c in classes]
    unknown = [c for c in names if c not in CLASSES]
    if unknown:
        raise InputError(f"unknown procedural class {', '.join(map(repr, unknown))}; available: {', '.join(CLASSES)}")
    if not names:
        raise InputError(f"no classes given; available: {', '.join(CLASSES)}")
    if len(set(names)) != len(names):
        raise InputError(f"class list has duplicates: {', '.join(names)}")
    return names


def shape_seed(seed: int, name: str, index: int, stream: int = 0) -> np.random.SeedSequence:
    """The seed of one shape: a function of (seed, class name, index) only.

    Args:
        seed: the dataset seed (>= 0).
        name: class name (hashed with CRC-32, so adding classes never changes existing shapes).
        index: shape index within the class (>= 0).
        stream: 0 for the mesh, 1 for the surface samples.

    Returns:
        A ``numpy.random.SeedSequence``.
    """
    if seed < 0 or index < 0:
        raise InputError(f"seed and index must be non-negative, got seed={seed}, index={index}")
    return np.random.SeedSequence([int(seed), zlib.crc32(name.encode("utf-8")), int(index), int(stream)])


def canonicalize(mesh: trimesh.Trimesh) -> trimesh.Trimesh:
    """Centre the mesh's bounding box at the origin and scale its largest side to 1 (in place)."""
    lo, hi = mesh.bounds
    mesh.apply_translation(-(lo + hi) / 2)
    mesh.apply_scale(1.0 / float((hi - lo).max()))
    return mesh


def make_shape(name: str, index: int, seed: int = 0) -> trimesh.Trimesh:
    """Build one procedural shape.

    Args:
        name: class name (see :data:`CLASSES`).
        index: shape index within the class.
        seed: dataset seed.

    Returns:
        A ``trimesh.Trimesh`` in the canonical frame (y up, centred, largest side 1).
    """
    check_classes([name])
    rng = np.random.default_rng(shape_seed(seed, name, index, stream=0))
    parts = CLASSES[name](rng)
    mesh = trimesh.util.concatenate(parts)
    return canonicalize(mesh)


def shape_points(name: str, index: int, seed: int = 0, points: int = DEFAULT_POINTS) -> np.ndarray:
    """Surface samples of one procedural shape (area-weighted, seeded).

    Args:
        name: class name.
        index: shape index within the class.
        seed: dataset seed.
        points: number of points P.

    Returns:
        (P, 3) float32 points.
    """
    mesh = make_shape(name, index, seed)
    rng = np.random.default_rng(shape_seed(seed, name, index, stream=1))
    return sample_mesh(mesh, points, rng)


def parse_split(split: str | Sequence[float]) -> tuple[float, float, float]:
    """Parse train/val/test fractions (``"0.8,0.1,0.1"`` or a 3-sequence) that sum to 1."""
    try:
        values = [float(v) for v in (split.split(",") if isinstance(split, str) else split)]
    except ValueError as exc:
        raise InputError(f"split must be three numbers train,val,test (e.g. 0.8,0.1,0.1), got {split!r}") from exc
    if len(values) != 3 or any(not math.isfinite(v) or v < 0 for v in values):
        raise InputError(f"split must be three non-negative numbers train,val,test, got {split!r}")
    if abs(sum(values) - 1.0) > 1e-6:
        raise InputError(f"split fractions must sum to 1, got {split!r} (sum {sum(values):g})")
    return values[0], values[1], values[2]


def split_counts(n: int, fractions: Sequence[float]) -> tuple[int, int, int]:
    """Shapes per split: largest-remainder rounding, at least one per non-zero split when n allows.

    Args:
        n: shapes per class.
        fractions: train/val/test fractions summing to 1.

    Returns:
        (n_train, n_val, n_test), summing to n.
    """
    exact = [n * f for f in fractions]
    counts = [math.floor(e) for e in exact]
    for i in sorted(range(3), key=lambda i: (counts[i] - exact[i], i))[: n - sum(counts)]:
        counts[i] += 1
    for i in range(3):  # give every requested split one shape, taken from the largest
        if fractions[i] > 0 and counts[i] == 0 and n >= sum(f > 0 for f in fractions):
            counts[counts.index(max(counts))] -= 1
            counts[i] += 1
    return counts[0], counts[1], counts[2]


def split_indices(per_class: int, split: Sequence[float]) -> dict[str, range]:
    """Shape indices of each split: train first, then val, then test (every shape is an independent draw)."""
    n_train, n_val, n_test = split_counts(per_class, split)
    return {
        "train": range(0, n_train),
        "val": range(n_train, n_train + n_val),
        "test": range(n_train + n_val, per_class),
    }


def shape_id(index: int) -> str:
    """File stem of shape ``index``."""
    return f"{index:05d}"


def generate_split(
    classes: Sequence[str] | str | None,
    split: str,
    per_class: int,
    seed: int = 0,
    points: int = DEFAULT_POINTS,
    fractions: Sequence[float] = DEFAULT_SPLIT,
) -> PointCloudSet:
    """The clouds of one split in memory, identical to what :func:`build_dataset` writes.

    Args:
        classes: class names (None = all).
        split: "train", "val" or "test".
        per_class: shapes per class over all splits.
        seed: dataset seed.
        points: points per shape.
        fractions: train/val/test fractions.

    Returns:
        A :class:`PointCloudSet` of shape (N, points, 3), classes in the given order, ids sorted.
    """
    names = check_classes(classes)
    if split not in SPLITS:
        raise InputError(f"unknown split {split!r}; expected one of {', '.join(SPLITS)}")
    indices = split_indices(per_class, parse_split(fractions))[split]
    clouds, labels, ids = [], [], []
    for name in names:
        for i in indices:
            clouds.append(shape_points(name, i, seed, points))
            labels.append(name)
            ids.append(shape_id(i))
    if not clouds:
        raise InputError(f"split {split!r} is empty with {per_class} shapes per class and fractions {tuple(fractions)}")
    return PointCloudSet(points=np.stack(clouds), classes=labels, ids=ids)


def _check_output_root(root: Path) -> None:
    """Refuse an output folder that holds anything but a procedural build (complete, or interrupted before its
    manifest was written)."""
    if (root / MANIFEST).is_file():
        if not _is_procedural_manifest(root / MANIFEST):
            message = f"{MANIFEST} does not describe a gen3d procedural build; choose an empty or new folder"
            raise InputError(message, root)
    elif not all(_in_layout(p.relative_to(root).parts) for p in root.rglob("*")):
        raise InputError(f"output folder is not empty and holds no {MANIFEST}; choose an empty or new folder", root)


def _is_procedural_manifest(path: Path) -> bool:
    try:
        content = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return isinstance(content, dict) and content.get("generator") == "gen3d.procedural"


def _in_layout(parts: tuple[str, ...]) -> bool:
    """Whether a relative path is a folder or cloud of the layout ``<class>/<split>/<id>.npy`` (or the temporary
    file of a cloud being written)."""
    if not parts or parts[0] not in CLASSES or len(parts) > 3:
        return False
    if len(parts) >= 2 and parts[1] not in SPLITS:
        return False
    return len(parts) < 3 or re.fullmatch(r"\d{5,}\.npy|\.\d{5,}\.npy\..+\.npy", parts[2]) is not None


def build_dataset(
    root: str | os.PathLike,
    classes: Sequence[str] | str | None = None,
    per_class: int = 20,
    seed: int = 0,
    points: int = DEFAULT_POINTS,
    split: str | Sequence[float] = DEFAULT_SPLIT,
    show_progress: bool | None = None,
) -> dict:
    """Write the procedural dataset in the ShapeNetCore.v2.PC15k layout.

    Files: ``<root>/<class>/<split>/<id>.npy`` ((points, 3) float32 each), ``<root>/dataset.json`` (what was
    built) and ``<root>/normalization.json`` (the :class:`~gen3d.data.normalize.GlobalNorm` fitted on the
    train split); the same arguments give byte-identical files. The dataset is built in a hidden sibling of
    ``root`` and renamed into place when complete (:func:`gen3d.utils.staging.staged_build`), so ``root``
    always holds one complete build: an earlier procedural build is replaced as a whole, a build of the same
    arguments is kept as it is, and concurrent builds of one folder run one after the other. A killed build
    leaves ``root`` untouched and is resumed by the next build with the same arguments.

    Args:
        root: output folder (new, empty, or a procedural build, complete or interrupted).
        classes: class names (a list or comma-separated string; None = all).
        per_class: shapes per class over all splits (>= 1).
        seed: dataset seed (>= 0).
        points: points per shape (>= 1; 15000 for the PC15k protocol).
        split: train/val/test fractions.
        show_progress: progress bar on (True), off (False) or only on a terminal (None).

    Returns:
        The manifest (also written to ``dataset.json``): classes, counts per class and split, seed, ...

    Raises:
        InputError: bad arguments, or ``root`` holds files that are not a procedural build.
    """
    from gen3d.utils.staging import staged_build

    names = check_classes(classes)
    fractions = parse_split(split)
    for flag, value, lowest in (("--per-class", per_class, 1), ("--points", points, 1), ("--seed", seed, 0)):
        if value < lowest:
            raise InputError(f"{flag} must be {'non-negative' if lowest == 0 else 'at least 1'}, got {value}")
    indices = split_indices(per_class, fractions)
    manifest = {
        "generator": "gen3d.procedural",
        "version": GENERATOR_VERSION,
        "classes": names,
        "per_class": per_class,
        "seed": seed,
        "points": points,
        "split": list(fractions),
        "counts": {name: {s: len(indices[s]) for s in SPLITS} for name in names},
        "layout": "<root>/<class>/<split>/<id>.npy",
    }
    jobs = [(name, s, i) for name in names for s in SPLITS for i in indices[s]]
    staged_build(
        root, manifest, lambda stage: _write_dataset(stage, manifest, jobs, show_progress), check=_check_output_root
    )
    return manifest


def _write_dataset(root: Path, manifest: dict, jobs: list[tuple[str, str, int]], show_progress: bool | None) -> None:
    """Write the clouds of ``jobs``, the (possibly empty) split folders, the manifest and the normalisation."""
    from gen3d.data.normalize import GlobalNorm
    from gen3d.utils import atomic_write_text

    moments = _write_clouds(root, jobs, manifest["seed"], manifest["points"], show_progress)
    for name in manifest["classes"]:
        for s in SPLITS:
            (root / name / s).mkdir(parents=True, exist_ok=True)
    atomic_write_text(root / MANIFEST, json.dumps(manifest, indent=2) + "\n")
    if moments[0]:
        GlobalNorm.from_moments(*moments).save(root / NORMALIZATION)


def _write_clouds(
    root: Path, jobs: list[tuple[str, str, int]], seed: int, points: int, show_progress: bool | None
) -> tuple[int, np.ndarray, float]:
    """Write the cloud of every ``(class, split, index)`` job that ``root`` does not hold yet.

    Returns:
        The moments of the train clouds' coordinates (count, per-axis sum, sum of squares) from which the
        normalisation is fitted.
    """
    from gen3d.utils import progress

    n_train, coord_sum, square_sum = 0, np.zeros(3), 0.0
    for name, s, i in progress(jobs, "building shapes", disable=None if show_progress is None else not show_progress):
        cloud = _cloud(root / name / s / f"{shape_id(i)}.npy", name, i, seed, points)  # (P, 3)
        if s == "train":
            c64 = cloud.astype(np.float64)
            n_train, coord_sum, square_sum = (
                n_train + len(c64),
                coord_sum + c64.sum(axis=0),
                square_sum + float(np.square(c64).sum()),
            )
    return n_train, coord_sum, square_sum


def _cloud(path: Path, name: str, index: int, seed: int, points: int) -> np.ndarray:
    """The cloud of one shape: read back when ``path`` holds it (a resumed build), else sampled and written."""
    from gen3d.utils import atomic_path

    if path.is_file():
        try:
            cloud = np.load(path, allow_pickle=False)
        except (OSError, ValueError):
            cloud = None
        if cloud is not None and cloud.dtype == np.float32 and cloud.shape == (points, 3):
            return cloud
    cloud = shape_points(name, index, seed, points)
    with atomic_path(path) as tmp:
        np.save(tmp, cloud)
    return cloud
