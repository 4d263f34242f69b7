"""Random indoor room descriptions for scenes.py: room box, furniture boxes, rugs, wall items, light.

World frame in metres: x to the right, y up from the floor, z forward (towards the back wall); the
camera stands at x = 0, z = 0. Everything here is a description (numbers and material dicts); scenes.py
ray-casts it. Furniture is built in a local frame per piece: ``a`` along its width, ``b`` up, ``c`` from
its front to its back, then mapped onto the wall it stands against.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .textures import furniture_material, hsv, room_materials

LABELS = ("floor", "ceiling", "wall_left", "wall_right", "wall_back", "wall_front", "furniture")
FLOOR, CEILING, WALL_LEFT, WALL_RIGHT, WALL_BACK, WALL_FRONT, FURNITURE = range(len(LABELS))
FRONT_WALL_GAP_M = 0.3  # the wall behind the camera; never in view, but it closes the box


@dataclass
class Box:
    """An axis-aligned box ``lo``..``hi`` (3,) with a material index; ``front`` = (axis, sign) of the
    face that looks into the room (where cabinet doors are drawn)."""

    lo: np.ndarray
    hi: np.ndarray
    material: int
    front: tuple[int, int]
    panel: dict | None = None  # {"doors": n, "drawers": bool} for cabinet fronts


@dataclass
class Layout:
    """Everything render_room needs: ``bounds`` = (x_min, x_max, z_min, z_max, height) in metres."""

    bounds: tuple[float, float, float, float, float]
    materials: list[dict]  # 0 floor, 1 ceiling, 2 side walls, 3 back wall, then furniture
    pieces: list[list[Box]] = field(default_factory=list)
    rugs: list[dict] = field(default_factory=list)
    wall_items: list[dict] = field(default_factory=list)
    light: np.ndarray = field(default_factory=lambda: np.zeros(3))
    ambient: float = 0.4
    reach_m: float = 3.5
    baseboard: dict = field(default_factory=dict)


def make_layout(rng: np.random.Generator, cfg, n_furniture: int) -> Layout:
    """A random room: ``cfg`` is a SceneConfig (sizes in metres); camera at x = 0, z = 0."""
    width = rng.uniform(*cfg.room_width_m)
    length = rng.uniform(*cfg.room_length_m)
    height = rng.uniform(*cfg.room_height_m)
    x_min = -width * rng.uniform(0.3, 0.7)
    bounds = (x_min, x_min + width, -FRONT_WALL_GAP_M, length, height)
    lay = Layout(bounds=bounds, materials=room_materials(rng))
    footprints: list[tuple[float, float, float, float]] = []
    for _ in range(n_furniture):
        piece = _piece(rng, lay, footprints)
        if piece:
            lay.pieces.append(piece)
    lay.rugs = [_rug(rng, bounds) for _ in range(int(rng.random() < 0.6))]
    lay.wall_items = [_wall_item(rng, bounds) for _ in range(int(rng.integers(0, 4)))]
    lay.light = np.array(
        [
            rng.uniform(x_min + 0.3 * width, x_min + 0.7 * width),
            height - 0.3,
            rng.uniform(1.0, max(1.5, 0.6 * length)),
        ]
    )
    lay.ambient = float(rng.uniform(0.3, 0.45))
    lay.reach_m = float(rng.uniform(2.5, 4.5))
    lay.baseboard = {
        "height": float(rng.uniform(0.05, 0.12)),
        "color": hsv(0.08, 0.3 * rng.random(), 0.3 + 0.65 * rng.random()),
    }
    return lay


# ---------------------------------------------------------------------------------------------------
# Furniture: dimensions (width, height, depth) and parts in the local (a, b, c) frame

_DIMS = {  # (width, height, depth) ranges in metres
    "box": ((0.3, 0.9), (0.25, 0.8), (0.3, 0.8)),
    "table": ((0.8, 1.8), (0.7, 0.78), (0.6, 1.0)),
    "cabinet": ((0.5, 1.6), (0.5, 2.0), (0.4, 0.6)),
    "shelf": ((0.6, 1.4), (1.0, 2.1), (0.28, 0.4)),
}


def _piece(rng: np.random.Generator, lay: Layout, footprints: list) -> list[Box]:
    x_min, x_max, _, z_max, height = lay.bounds
    kind = str(rng.choice(list(_DIMS)))
    w, h, d = (rng.uniform(*span) for span in _DIMS[kind])
    h = min(h, height - 0.2)
    for _ in range(20):
        walls = ["back", "left", "right"] + (["free"] if kind in ("box", "table") else [])
        wall = str(rng.choice(walls))
        frame = _frame(rng, wall, w, d, lay.bounds)
        if frame is None:
            continue
        lo, hi = _to_world(frame, (0, w), (0, h), (0, d))
        fp = (lo[0] - 0.1, hi[0] + 0.1, lo[2] - 0.1, hi[2] + 0.1)
        if lo[0] < x_min - 1e-9 or hi[0] > x_max + 1e-9 or any(_overlap(fp, f) for f in footprints):
            continue
        footprints.append(fp)
        return _build(rng, kind, frame, w, h, d, lay)
    return []


def _frame(rng, wall: str, w: float, d: float, bounds) -> tuple | None:
    """(origin (3,), a axis, a sign, c axis, c sign) of a piece's front-left-bottom corner."""
    x_min, x_max, _, z_max, _ = bounds
    z_near = 1.2  # keep furniture out of the camera's lap
    if wall == "back":
        if x_max - x_min < w + 0.2:
            return None
        return np.array([rng.uniform(x_min, x_max - w), 0.0, z_max - d]), 0, 1, 2, 1
    if wall == "free":  # out in the room, facing the camera, with space to walk around it
        if x_max - x_min < w + 0.8 or z_max - d - 0.8 < z_near + 0.6:
            return None
        x = rng.uniform(x_min + 0.3, x_max - w - 0.3)
        return np.array([x, 0.0, rng.uniform(z_near + 0.6, z_max - d - 0.8)]), 0, 1, 2, 1
    if z_max - z_near < w + 0.2:
        return None
    z = rng.uniform(z_near, z_max - w)
    if wall == "left":  # front faces +x, depth runs towards the wall (-x)
        return np.array([x_min + d, 0.0, z]), 2, 1, 0, -1
    return np.array([x_max - d, 0.0, z]), 2, 1, 0, 1


def _to_world(frame, a: tuple, b: tuple, c: tuple) -> tuple[np.ndarray, np.ndarray]:
    origin, a_axis, a_sign, c_axis, c_sign = frame
    p0, p1 = origin.copy(), origin.copy()
    p0[a_axis] += a_sign * a[0]
    p1[a_axis] += a_sign * a[1]
    p0[1], p1[1] = b
    p0[c_axis] += c_sign * c[0]
    p1[c_axis] += c_sign * c[1]
    return np.minimum(p0, p1), np.maximum(p0, p1)


def _overlap(f, g) -> bool:
    return f[0] < g[1] and g[0] < f[1] and f[2] < g[3] and g[2] < f[3]


def _build(rng, kind: str, frame, w: float, h: float, d: float, lay: Layout) -> list[Box]:
    """The boxes of one piece; materials are appended to ``lay.materials``."""
    front = (frame[3], -frame[4])  # the front face looks against the depth direction

    def material(m: dict) -> int:
        lay.materials.append(m)
        return len(lay.materials) - 1

    def box(a, b, c, mat, panel=None) -> Box:
        lo, hi = _to_world(frame, a, b, c)
        return Box(lo, hi, mat, front, panel)

    body = material(furniture_material(rng))
    if kind == "box":
        parts = [box((0, w), (0, h), (0, d), body)]
        if rng.random() < 0.4:  # a smaller box stacked on top
            top = material(furniture_material(rng))
            a0, c0 = rng.uniform(0, 0.3 * w), rng.uniform(0, 0.3 * d)
            parts.append(
                box((a0, a0 + 0.6 * w), (h, h + rng.uniform(0.15, 0.4)), (c0, c0 + 0.6 * d), top)
            )
        return parts
    if kind == "table":
        leg, top = 0.05, 0.04
        parts = [box((0, w), (h - top, h), (0, d), body)]
        for a0 in (0.03, w - 0.03 - leg):
            for c0 in (0.03, d - 0.03 - leg):
                parts.append(box((a0, a0 + leg), (0, h - top), (c0, c0 + leg), body))
        return parts
    if kind == "cabinet":
        base = material({"kind": "paint", "color": lay.materials[body]["color"] * 0.5})
        panel = {"doors": int(rng.integers(1, 4)), "drawers": bool(rng.random() < 0.35 and h < 1.2)}
        return [
            box((0, w), (0.06, h), (0, d), body, panel),
            box((0.03, w - 0.03), (0, 0.06), (0.03, d), base),
        ]
    return _shelf(rng, box, material, body, w, h, d)


def _shelf(rng, box, material, body: int, w: float, h: float, d: float) -> list[Box]:
    t, plinth = 0.025, 0.06
    parts = [
        box((0, t), (0, h), (0, d), body),
        box((w - t, w), (0, h), (0, d), body),
        box((t, w - t), (h - t, h), (0, d), body),
        box((t, w - t), (0, plinth), (0, d), body),
        box((t, w - t), (plinth, h - t), (d - 0.015, d), body),
    ]
    n = max(2, int((h - 0.1) / 0.35))
    step = (h - plinth - t) / n
    palette = np.stack(
        [hsv(rng.random(), 0.3 + 0.6 * rng.random(), 0.25 + 0.6 * rng.random()) for _ in range(5)]
    )
    for k in range(n):
        floor_y = plinth + k * step + (0.02 if k else 0.0)
        if k:
            parts.append(box((t, w - t), (floor_y - 0.02, floor_y), (0.01, d), body))
        edges = np.sort(rng.uniform(t + 0.01, w - t - 0.01, size=int(rng.integers(1, 4)) + 1))
        for a0, a1 in zip(edges[:-1], edges[1:], strict=True):
            if a1 - a0 < 0.05 or rng.random() < 0.2:
                continue
            top = floor_y + (step - 0.02) * rng.uniform(0.55, 0.88)
            books = material(
                {
                    "kind": "books",
                    "palette": palette,
                    "book": rng.uniform(0.025, 0.05),
                    "band": rng.uniform(0.0, 1.0),
                }
            )
            parts.append(box((a0, a1), (floor_y, top), (rng.uniform(0.02, 0.08), d - 0.015), books))
    return parts


# ---------------------------------------------------------------------------------------------------
# Flat decorations: rugs on the floor, pictures and windows on the walls


def _rug(rng: np.random.Generator, bounds) -> dict:
    x_min, x_max, _, z_max, _ = bounds
    w = min(rng.uniform(1.2, 2.6), x_max - x_min - 0.4)
    d = min(rng.uniform(0.8, 2.0), z_max - 1.6)
    x = rng.uniform(x_min + 0.2, x_max - 0.2 - w)
    z = rng.uniform(1.0, max(1.0, z_max - 0.3 - d))
    r = rng.random
    return {
        "x": (x, x + w),
        "z": (z, z + d),
        "material": {"kind": "carpet", "color": hsv(r(), 0.3 + 0.5 * r(), 0.25 + 0.55 * r())},
        "border_color": hsv(r(), 0.2 + 0.6 * r(), 0.2 + 0.6 * r()),
        "border": rng.uniform(0.05, 0.15),
        "stripe": rng.uniform(0.1, 0.4) if r() < 0.5 else 0.0,
    }


def _wall_item(rng: np.random.Generator, bounds) -> dict:
    x_min, x_max, _, z_max, height = bounds
    wall = str(rng.choice(["back", "back", "left", "right"]))
    window = rng.random() < 0.35
    if window:
        w, h = rng.uniform(0.7, 1.5), min(rng.uniform(1.0, 1.5), height - 1.1)
        bottom = rng.uniform(0.8, min(1.0, height - h - 0.15))
    else:
        w, h = rng.uniform(0.3, 1.0), rng.uniform(0.3, 0.8)
        bottom = rng.uniform(1.1, max(1.1, min(1.7, height - h - 0.2)))
    lo, hi = (x_min + 0.2, x_max - 0.2) if wall == "back" else (1.0, z_max - 0.3)
    w = min(w, hi - lo)
    u0 = rng.uniform(lo, hi - w)
    r = rng.random
    return {
        "wall": wall,
        "window": window,
        "u": (u0, u0 + w),
        "y": (bottom, bottom + h),
        "frame": rng.uniform(0.03, 0.07),
        "frame_color": hsv(0.08, 0.4 * r(), 0.15 + 0.8 * r()),
        "colors": np.stack([hsv(r(), 0.2 + 0.7 * r(), 0.2 + 0.75 * r()) for _ in range(3)]),
        "bar": rng.uniform(0.45, 0.65),  # height of a window's transom, as a fraction
    }
