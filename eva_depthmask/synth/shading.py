"""Shading of ray-cast room hits for scenes.py: textures x point light x cheap ambient occlusion,
plus flat colour-only decorations (rugs, baseboards, pictures, windows) that do not change depth.

Inputs are the flat (N,) arrays of ``raycast.trace``; the output is the uint8 image. Decorations only
recolour floor and wall pixels, so they never change the depth.
"""

from __future__ import annotations

import numpy as np

from .furniture import FLOOR, WALL_BACK, WALL_LEFT, WALL_RIGHT, Layout
from .raycast import Camera
from .textures import albedo, fbm, lambert, lines, panel_lines


def _uv(p: np.ndarray, axis: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Surface coordinates in metres: the two world axes that lie in the hit face."""
    u = np.where(axis == 0, p[:, 2], p[:, 0])
    v = np.where(axis == 1, p[:, 2], p[:, 1])
    return u, v


def shade(camera: Camera, lay: Layout, hit: dict, table: np.ndarray) -> np.ndarray:
    """uint8 (size, size, 3) image of the traced hits: textures x light x ambient occlusion."""
    t, axis, sign, d = hit["t"], hit["axis"], hit["sign"], hit["dirs"]
    p = camera.origin + t[:, None] * d
    normal = np.zeros_like(p)
    normal[np.arange(len(p)), axis] = sign
    cos_view = np.abs(d[np.arange(len(p)), axis]) / np.linalg.norm(d, axis=1)
    fw = t / camera.focal_px / np.maximum(cos_view, 0.2)  # metres of surface under one pixel
    u, v = _uv(p, axis)
    color = np.zeros_like(p)
    order = np.argsort(hit["material"], kind="stable")  # pixels grouped by material
    mats, starts = np.unique(hit["material"][order], return_index=True)
    for m, sel in zip(mats, np.split(order, starts[1:]), strict=True):
        mat = lay.materials[m]
        su, sv = (v[sel], u[sel]) if mat.get("swap_uv") else (u[sel], v[sel])
        if mat["kind"] == "books":  # book bands are measured from the bottom of the books
            sv = p[sel, 1] - np.array([b.lo[1] for b in hit["boxes"]])[hit["box"][sel]]
        color[sel] = albedo(mat, table, su, sv, fw[sel])
    _cabinet_fronts(hit, p, fw, color)
    emit = _decorate(lay, hit["label"], p, u, fw, color, table)
    light = lambert(p, normal, lay.light, lay.ambient, lay.reach_m) * _occlusion(lay, hit, p)
    light = light * (1 - emit) + 1.1 * emit
    rgb = np.clip(color * light[:, None] * 255.0, 0, 255)
    n = camera.size
    return np.rint(rgb).astype(np.uint8).reshape(n, n, 3)


def _cabinet_fronts(hit: dict, p: np.ndarray, fw: np.ndarray, color: np.ndarray) -> None:
    """Door / drawer gaps and handles on the front face of cabinet bodies (in place)."""
    for k, b in enumerate(hit["boxes"]):
        if b.panel is None:
            continue
        ax, sg = b.front
        sel = (hit["box"] == k) & (hit["axis"] == ax) & (hit["sign"] == sg)
        if not sel.any():
            continue
        along = 2 if ax == 0 else 0
        a = p[sel, along] - b.lo[along]
        h = p[sel, 1] - b.lo[1]
        dark = panel_lines(
            a,
            h,
            fw[sel],
            b.hi[along] - b.lo[along],
            b.hi[1] - b.lo[1],
            b.panel["doors"],
            b.panel["drawers"],
        )
        color[sel] *= (1 - 0.7 * dark)[:, None]


def _decorate(
    lay: Layout,
    label: np.ndarray,
    p: np.ndarray,
    u: np.ndarray,
    fw: np.ndarray,
    color: np.ndarray,
    table: np.ndarray,
) -> np.ndarray:
    """Flat colour-only decorations painted over floor and walls (in place): rugs, baseboards,
    pictures, windows. Returns the emission weight (N,) (window glass glows)."""
    emit = np.zeros(len(p))
    floor = np.nonzero(label == FLOOR)[0]
    for rug in lay.rugs:
        x, z = p[floor, 0], p[floor, 2]
        inside = (x >= rug["x"][0]) & (x < rug["x"][1]) & (z >= rug["z"][0]) & (z < rug["z"][1])
        if not inside.any():
            continue
        sel, x, z = floor[inside], x[inside], z[inside]
        edge = np.minimum.reduce(
            [x - rug["x"][0], rug["x"][1] - x, z - rug["z"][0], rug["z"][1] - z]
        )
        base = albedo(rug["material"], table, x, z, fw[sel])
        border = lines(edge - rug["border"] / 2, 1e3, rug["border"], fw[sel])
        if rug["stripe"]:
            border = np.maximum(border, 0.7 * lines(x, rug["stripe"], rug["stripe"] / 4, fw[sel]))
        color[sel] = base * (1 - border[:, None]) + rug["border_color"] * border[:, None]
    walls = np.nonzero(np.isin(label, (WALL_LEFT, WALL_RIGHT, WALL_BACK)))[0]
    bb = lay.baseboard
    low = walls[p[walls, 1] < bb["height"] + 0.5]
    cover = 1 - np.clip((p[low, 1] - bb["height"]) / np.maximum(fw[low], 1e-6) + 0.5, 0, 1)
    color[low] = color[low] * (1 - cover[:, None]) + bb["color"] * cover[:, None]
    wall_of = {"back": WALL_BACK, "left": WALL_LEFT, "right": WALL_RIGHT}
    for item in lay.wall_items:
        (u0, u1), (y0, y1) = item["u"], item["y"]
        on = walls[label[walls] == wall_of[item["wall"]]]
        a, b = u[on] - u0, p[on, 1] - y0
        inside = (a >= 0) & (a < u1 - u0) & (b >= 0) & (b < y1 - y0)
        if not inside.any():
            continue
        sel, a, b = on[inside], a[inside], b[inside]
        edge = np.minimum.reduce([a, u1 - u0 - a, b, y1 - y0 - b])
        frame = np.clip((item["frame"] - edge) / np.maximum(fw[sel], 1e-6) + 0.5, 0, 1)
        if item["window"]:
            sky = np.clip(0.55 + 0.5 * b / (y1 - y0), 0, 1)[:, None] * np.array([0.75, 0.88, 1.0])
            bars = np.maximum(
                lines(a - (u1 - u0) / 2, 1e3, 0.03, fw[sel]),
                lines(b - (y1 - y0) * item["bar"], 1e3, 0.03, fw[sel]),
            )
            frame = np.maximum(frame, bars)
            inner = sky
            emit[sel] = 1 - frame
        else:
            n = fbm(table, a + 50 * u0, b, fw[sel], 2.5 / max(u1 - u0, 0.2), 3)
            pick = np.clip((n - 0.35) * 3.0, 0, 1.999)
            lo_i = pick.astype(int)
            w = (pick - lo_i)[:, None]
            inner = item["colors"][lo_i] * (1 - w) + item["colors"][lo_i + 1] * w
        color[sel] = inner * (1 - frame[:, None]) + item["frame_color"] * frame[:, None]
    return emit


def _occlusion(lay: Layout, hit: dict, p: np.ndarray) -> np.ndarray:
    """Cheap ambient occlusion (N,) in (0, 1]: room corners and the floor around/under furniture."""
    x_min, x_max, z_min, z_max, height = lay.bounds
    room = np.nonzero(hit["box"] < 0)[0]
    q, axis = p[room], hit["axis"][room]
    dist = np.stack([q[:, 0] - x_min, x_max - q[:, 0], q[:, 1], height - q[:, 1], z_max - q[:, 2]])
    dist[np.stack([axis == 0] * 2 + [axis == 1] * 2 + [axis == 2])] = np.inf  # not its own plane
    ao = np.ones(len(p))
    ao[room] = 1 - 0.3 * np.exp(-dist.min(axis=0) / 0.3)
    floor = np.nonzero(hit["label"] == FLOOR)[0]
    for piece in lay.pieces:
        lo = np.min([b.lo for b in piece], axis=0)
        hi = np.max([b.hi for b in piece], axis=0)
        dx = np.maximum(np.maximum(lo[0] - p[floor, 0], p[floor, 0] - hi[0]), 0)
        dz = np.maximum(np.maximum(lo[2] - p[floor, 2], p[floor, 2] - hi[2]), 0)
        ao[floor] *= 1 - 0.45 * np.exp(-np.hypot(dx, dz) / 0.12)
    return ao
