"""Procedural surface textures and lighting for scenes.py: vectorised, deterministic, filtered.

Texture functions take flat arrays of surface coordinates ``u, v`` in metres (N,) and the pixel
footprint ``fw`` in metres on the surface (N,), and return albedo float64 ``(N, 3)`` in [0, 1]. Detail
finer than a pixel is box-filtered towards its mean (lines) or faded out (noise octaves), so distant
planks and grout do not alias even though each pixel is traced with one ray.

Randomness comes only from the ``table`` (``noise_table(rng)``) and the colours the caller draws.
"""

from __future__ import annotations

import colorsys

import numpy as np

NOISE_SIZE = 256  # lattice of the value noise; coordinates wrap around it


def noise_table(rng: np.random.Generator) -> np.ndarray:
    """Random lattice values in [0, 1), ``(NOISE_SIZE, NOISE_SIZE)``, shared by one room or sprite."""
    return rng.random((NOISE_SIZE, NOISE_SIZE))


def hsv(h: float, s: float, v: float) -> np.ndarray:
    """An RGB colour (3,) in [0, 1] from hue (turns), saturation and value."""
    return np.array(colorsys.hsv_to_rgb(h % 1.0, s, v))


def cell_hash(table: np.ndarray, i: np.ndarray, j: np.ndarray | int = 0) -> np.ndarray:
    """A repeatable pseudo-random value in [0, 1) per integer cell ``(i, j)`` (planks, tiles, books)."""
    i = np.asarray(i, dtype=np.int64)
    j = np.asarray(j, dtype=np.int64)
    return table[(j * 37 + i * 11 + 5) % NOISE_SIZE, (i * 101 + j * 7 + 3) % NOISE_SIZE]


def value_noise(table: np.ndarray, u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Smoothly interpolated lattice noise in [0, 1]; the lattice spacing is 1 unit of u and v."""
    iu, iv = np.floor(u), np.floor(v)
    fu, fv = u - iu, v - iv
    su, sv = fu * fu * (3 - 2 * fu), fv * fv * (3 - 2 * fv)
    mask = NOISE_SIZE - 1  # NOISE_SIZE is a power of two: & wraps negative cells too
    i0 = iu.astype(np.int64) & mask
    j0 = (iv.astype(np.int64) & mask) * NOISE_SIZE
    i1, j1 = (i0 + 1) & mask, (j0 + NOISE_SIZE) & (NOISE_SIZE * NOISE_SIZE - 1)
    flat = table.ravel()
    top = flat.take(j0 + i0) * (1 - su) + flat.take(j0 + i1) * su
    bottom = flat.take(j1 + i0) * (1 - su) + flat.take(j1 + i1) * su
    return top * (1 - sv) + bottom * sv


def fbm(
    table: np.ndarray,
    u: np.ndarray,
    v: np.ndarray,
    fw: np.ndarray,
    freq: float | tuple[float, float],
    octaves: int = 3,
) -> np.ndarray:
    """Fractal value noise in [0, 1]; ``freq`` is lattice cells per metre (one value, or (along u,
    along v) for streaks). Octaves finer than about two pixels fade to the mean, 0.5."""
    fu, fv = (freq, freq) if np.isscalar(freq) else freq
    total = np.zeros_like(u)
    norm = 0.0
    for k in range(octaves):
        scale = 2.0**k
        # a lattice cell must span a couple of pixels before its value is worth showing
        cells_per_px = fw * max(fu, fv) * scale
        weight = np.clip(1.5 - 2.0 * cells_per_px, 0.0, 1.0)
        shift = 17.0 * k  # decorrelate the octaves
        n = value_noise(table, u * fu * scale + shift, v * fv * scale - shift)
        amp = 0.5**k
        total += amp * (weight * n + (1 - weight) * 0.5)
        norm += amp
    return total / norm


def lines(x: np.ndarray, period: float, width: float, fw: np.ndarray) -> np.ndarray:
    """Box-filtered coverage in [0, 1] of lines ``width`` wide centred on multiples of ``period``.

    The exact average of the pulse train over a pixel footprint ``fw``: sharp when the lines are
    wide on screen, their mean ``width / period`` when many fall into one pixel.
    """
    fw = np.maximum(fw, 1e-6)

    def integral(y: np.ndarray) -> np.ndarray:
        return np.floor(y / period) * width + np.minimum(np.mod(y, period), width)

    x = x + width / 2
    return (integral(x + fw / 2) - integral(x - fw / 2)) / fw


def _mix(a: np.ndarray, b: np.ndarray, t: np.ndarray) -> np.ndarray:
    return a * (1 - t[:, None]) + b * t[:, None]


# ---------------------------------------------------------------------------------------------------
# Materials: a dict {"kind": ..., colours and sizes}; ``albedo`` dispatches on kind


def wood(m: dict, table: np.ndarray, u, v, fw) -> np.ndarray:
    """Planks running along u: per-plank tint, streaky grain, dark seams between planks."""
    row = np.floor(v / m["plank"])
    u_shift = u + cell_hash(table, row, 7) * m["length"]
    col = np.floor(u_shift / m["length"]) * m["butt"]  # boards without butt joints: one per row
    tint = 0.82 + 0.36 * cell_hash(table, col, row)
    grain = fbm(table, u_shift, v + row * 3.1, fw, (1.5, 45.0), octaves=3)
    rings = 0.5 + 0.5 * np.sin(v * 140.0 + 9.0 * fbm(table, u_shift, v, fw, (0.8, 6.0), 2))
    ring_weight = np.clip(1.0 - fw * 40.0, 0.0, 1.0)  # rings are ~2 cm apart
    tone = tint * (0.72 + 0.4 * grain) * (1.0 - 0.12 * ring_weight * rings)
    seam = np.maximum(
        lines(v, m["plank"], 0.004, fw), lines(u_shift, m["length"], 0.004, fw) * m["butt"]
    )
    return m["color"][None] * (tone * (1.0 - 0.55 * seam))[:, None]


def tiles(m: dict, table: np.ndarray, u, v, fw) -> np.ndarray:
    """Square tiles with grout; optionally a two-colour checkerboard."""
    s = m["size"]
    iu, iv = np.floor(u / s), np.floor(v / s)
    checker = ((iu + iv) % 2).astype(float) * m["checker"]
    base = _mix(
        np.broadcast_to(m["color"], (len(u), 3)), np.broadcast_to(m["color2"], (len(u), 3)), checker
    )
    base = base * (0.93 + 0.1 * cell_hash(table, iu, iv))[:, None]
    base = base * (0.94 + 0.12 * fbm(table, u, v, fw, 6.0, 2))[:, None]
    grout = 1 - (1 - lines(u, s, m["grout"], fw)) * (1 - lines(v, s, m["grout"], fw))
    return _mix(base, np.broadcast_to(m["grout_color"], base.shape), grout)


def carpet(m: dict, table: np.ndarray, u, v, fw) -> np.ndarray:
    """Fine pile noise over a few soft blotches."""
    pile = fbm(table, u, v, fw, 60.0, 2)
    blotch = fbm(table, u + 40, v, fw, 1.5, 2)
    return m["color"][None] * (0.75 + 0.25 * pile + 0.15 * blotch)[:, None]


def paint(m: dict, table: np.ndarray, u, v, fw) -> np.ndarray:
    """A painted surface: its colour with a faint roller texture."""
    return m["color"][None] * (0.95 + 0.08 * fbm(table, u, v, fw, 3.0, 3))[:, None]


def stripes(m: dict, table: np.ndarray, u, v, fw) -> np.ndarray:
    """Wallpaper with vertical stripes of two colours and a thin pinstripe."""
    band = lines(u, m["period"], m["period"] * m["ratio"], fw)
    pin = lines(u + m["period"] / 2, m["period"], 0.006, fw)
    base = _mix(
        np.broadcast_to(m["color"], (len(u), 3)), np.broadcast_to(m["color2"], (len(u), 3)), band
    )
    return (
        base * (1.0 - 0.25 * pin)[:, None] * (0.96 + 0.06 * fbm(table, u, v, fw, 4.0, 2))[:, None]
    )


def dots(m: dict, table: np.ndarray, u, v, fw) -> np.ndarray:
    """Wallpaper with a staggered grid of round dots."""
    p, r = m["period"], m["radius"]
    row = np.floor(v / p)
    du = np.mod(u + (row % 2) * p / 2, p) - p / 2
    dv = np.mod(v, p) - p / 2
    dist = np.hypot(du, dv)
    sharp = np.clip((r - dist) / np.maximum(fw, 1e-6) + 0.5, 0.0, 1.0)
    mean = np.pi * r * r / (p * p)
    blur = np.clip(2.0 * fw / p - 0.5, 0.0, 1.0)  # dots smaller than a pixel: their average colour
    cover = sharp * (1 - blur) + mean * blur
    base = np.broadcast_to(m["color"], (len(u), 3))
    return _mix(base, np.broadcast_to(m["color2"], base.shape), cover)


def books(m: dict, table: np.ndarray, u, v, fw) -> np.ndarray:
    """Book spines along u: varying widths, colours from a small palette, dark gaps, a title band."""
    width = m["book"]
    idx = np.floor(u / width)
    palette = m["palette"]
    pick = (cell_hash(table, idx, 3) * len(palette)).astype(np.int64)
    base = palette[pick] * (0.8 + 0.3 * cell_hash(table, idx, 9))[:, None]
    gap = lines(u, width, 0.003, fw)
    band = lines(v - m["band"], 1.0, 0.012, fw)
    return base * (1.0 - 0.6 * gap)[:, None] * (1.0 - 0.3 * band)[:, None]


TEXTURES = {
    "wood": wood,
    "tiles": tiles,
    "carpet": carpet,
    "paint": paint,
    "stripes": stripes,
    "dots": dots,
    "books": books,
}


def albedo(m: dict, table: np.ndarray, u, v, fw) -> np.ndarray:
    """The colour (N, 3) of material ``m`` at surface coordinates ``u, v`` (N,) metres."""
    return TEXTURES[m["kind"]](m, table, u, v, fw)


# ---------------------------------------------------------------------------------------------------
# Random materials: kinds and colours per room


def room_materials(rng: np.random.Generator) -> list[dict]:
    """Floor, ceiling, side-wall and back-wall materials with random colours."""
    r = rng.random
    floor_kind = rng.choice(["wood", "wood", "tiles", "carpet"])
    if floor_kind == "wood":
        floor = {
            "kind": "wood",
            "color": hsv(0.05 + 0.05 * r(), 0.35 + 0.35 * r(), 0.35 + 0.5 * r()),
            "plank": 0.1 + 0.12 * r(),
            "length": 0.9 + 1.2 * r(),
            "butt": 1.0,
        }
    elif floor_kind == "tiles":
        floor = {
            "kind": "tiles",
            "color": hsv(r(), 0.25 * r(), 0.55 + 0.4 * r()),
            "color2": hsv(r(), 0.3 * r(), 0.15 + 0.5 * r()),
            "checker": float(r() < 0.4),
            "size": 0.2 + 0.4 * r(),
            "grout": 0.006 + 0.006 * r(),
            "grout_color": hsv(0, 0, 0.3 + 0.5 * r()),
        }
    else:
        floor = {"kind": "carpet", "color": hsv(r(), 0.1 + 0.4 * r(), 0.3 + 0.5 * r())}
    floor["swap_uv"] = bool(r() < 0.5)
    ceiling = {"kind": "paint", "color": hsv(0.1, 0.05 * r(), 0.85 + 0.1 * r())}
    walls = _wall_material(rng)
    back = _wall_material(rng) if r() < 0.35 else dict(walls)  # sometimes an accent wall
    return [floor, ceiling, walls, back]


def _wall_material(rng: np.random.Generator) -> dict:
    r = rng.random
    color = hsv(r(), 0.05 + 0.35 * r(), 0.6 + 0.35 * r())
    kind = rng.choice(["paint", "paint", "stripes", "dots"])
    m = {"kind": str(kind), "color": color}
    if kind != "paint":
        m["color2"] = np.clip(color * (0.75 + 0.2 * r()) + 0.1 * (rng.random(3) - 0.5), 0, 1)
        m["period"] = 0.08 + 0.25 * r()
        m["ratio"] = 0.3 + 0.4 * r()
        m["radius"] = m["period"] * (0.1 + 0.15 * r())
    return m


def furniture_material(rng: np.random.Generator) -> dict:
    """Wood boards or a painted finish."""
    r = rng.random
    if r() < 0.55:
        return {
            "kind": "wood",
            "color": hsv(0.04 + 0.06 * r(), 0.4 + 0.4 * r(), 0.25 + 0.55 * r()),
            "plank": 0.12 + 0.2 * r(),
            "length": 3.0,
            "butt": 0.0,
        }
    return {"kind": "paint", "color": hsv(r(), 0.1 + 0.6 * r(), 0.3 + 0.65 * r())}


def panel_lines(u, v, fw, width: float, height: float, doors: int, drawers: bool) -> np.ndarray:
    """Darkening (N,) in [0, 1] of a cabinet front ``width`` x ``height`` m: door or drawer gaps,
    handles. ``u`` runs along the width from 0, ``v`` up from 0."""
    if drawers:
        gaps = lines(v, height / doors, 0.006, fw)
        handle = (np.abs(np.mod(v, height / doors) - height / doors * 0.75) < 0.012) & (
            np.abs(u - width / 2) < min(0.08, width / 6)
        )
    else:
        gaps = lines(u, width / doors, 0.006, fw)
        local = np.mod(u, width / doors)
        near_gap = np.minimum(local, width / doors - local)
        handle = (np.abs(near_gap - 0.05) < 0.01) & (np.abs(v - height * 0.6) < 0.07)
    edge = np.minimum(np.minimum(u, width - u), np.minimum(v, height - v))
    border = lines(edge - 0.02, 1e3, 0.008, fw)  # a groove just inside the outline
    return np.clip(0.6 * gaps + 0.5 * handle + 0.3 * border, 0.0, 1.0)


def lambert(
    points: np.ndarray, normals: np.ndarray, light: np.ndarray, ambient: float, reach_m: float
) -> np.ndarray:
    """Light (N,) at surface ``points`` (N, 3) with unit ``normals`` from a point ``light`` (3,):
    ambient + cosine term with inverse-square-like falloff (no shadows)."""
    to_light = light[None] - points
    dist = np.linalg.norm(to_light, axis=1)
    cos = np.clip(np.einsum("ij,ij->i", normals, to_light) / np.maximum(dist, 1e-6), 0.0, 1.0)
    return ambient + (1.0 - ambient) * 1.6 * cos / (1.0 + (dist / reach_m) ** 2)
