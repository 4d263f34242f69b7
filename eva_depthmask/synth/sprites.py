"""Procedurally drawn foreground sprites: people-like figures and dog / cat / bird-like animals.

A figure is a list of parts (circles, ellipses, tapered capsules) described by signed distances in
"figure units" (height about 1, y up, feet at y = 0). Each part is shaded as a rounded body lit from the
upper left, textured (clothing stripes, fur noise, tabby stripes, feathers) and alpha-composited over
the earlier ones; coverage comes from the signed distance with a one-pixel smooth edge, so the alpha is
soft and anti-aliased. The sprite is an RGBA array with a transparent margin left, right and on top;
the object's lowest point is the bottom edge of the array (the contact point of a placement).
"""

from __future__ import annotations

import numpy as np

from ..config import SceneConfig
from .animals import bird, cat, dog
from .body_parts import Part, person
from .textures import fbm, lines, noise_table

FIGURES = {"person": person, "dog": dog, "cat": cat, "bird": bird}

KINDS = ("person", "dog", "person", "cat", "person", "bird")  # chosen by index % len(KINDS)
SPRITE_STREAM = 2  # third entry of the sprite Generator's seed; rooms use their own
MARGIN = 0.05  # transparent margin, as a fraction of the sprite's long side
_LIGHT = np.array([-0.45, 0.55, 0.7]) / np.linalg.norm([-0.45, 0.55, 0.7])


def draw_foreground(
    seed: int, index: int, size: int, cfg: SceneConfig = SceneConfig()
) -> np.ndarray:
    """Foreground ``index`` of stream ``seed`` as uint8 RGBA (h, w, 4) with long side ``size`` px.

    ``KINDS[index % len(KINDS)]`` picks person / dog / cat / bird; same inputs, same bytes. ``cfg`` is
    accepted so that both generators share one signature; the sprites take no setting from it.
    """
    for name, value in (("seed", seed), ("index", index)):
        if not isinstance(value, (int, np.integer)) or value < 0:
            raise ValueError(f"{name}: expected a non-negative int, got {value!r}")
    if not isinstance(size, (int, np.integer)) or size < 8:
        raise ValueError(f"size: expected an int of at least 8 px, got {size!r}")
    rng = np.random.default_rng([seed, index, SPRITE_STREAM])
    table = noise_table(rng)
    kind = KINDS[index % len(KINDS)]
    parts = FIGURES[kind](rng)
    return _render(parts, int(size), table)


def _render(parts: list[Part], size: int, table: np.ndarray) -> np.ndarray:
    """uint8 RGBA of the parts, back to front: long side ``size`` px, margins, feet on the bottom."""
    boxes = np.array([p.bbox() for p in parts])
    x0, x1 = boxes[:, 0].min(), boxes[:, 1].max()
    y0, y1 = boxes[:, 2].min(), boxes[:, 3].max()
    m = MARGIN * max(x1 - x0, y1 - y0)
    w_units, h_units = x1 - x0 + 2 * m, y1 - y0 + m
    s = size / max(w_units, h_units)  # pixels per figure unit
    h_px, w_px = max(1, round(h_units * s)), max(1, round(w_units * s))
    cx = (x0 + x1) / 2
    x = (np.arange(w_px) + 0.5 - w_px / 2)[None, :] / s + cx
    y = (h_px - np.arange(h_px) - 0.5)[:, None] / s + y0
    x, y = np.broadcast_arrays(x, y)
    premul = np.zeros((h_px, w_px, 3))
    alpha = np.zeros((h_px, w_px))
    for part, (bx0, bx1, by0, by1) in zip(parts, boxes, strict=True):
        # only the window around the part: its coverage is zero elsewhere
        c0 = max(int((bx0 - cx) * s + w_px / 2) - 2, 0)
        c1 = min(int((bx1 - cx) * s + w_px / 2) + 3, w_px)
        r0 = max(int(h_px - (by1 - y0) * s) - 2, 0)
        r1 = min(int(h_px - (by0 - y0) * s) + 3, h_px)
        if c1 - c0 < 2 or r1 - r0 < 2:
            continue
        win = np.s_[r0:r1, c0:c1]
        d, thick = part.sdf(x[win], y[win])
        cover = np.clip(0.5 - d * s, 0.0, 1.0)[..., None]  # one-pixel smooth edge
        color = part.color * _texture(part, x[win], y[win], 1.0 / s, table)[..., None]
        color = np.clip(color * _shading(d, thick)[..., None], 0, 1)
        premul[win] = premul[win] * (1 - cover) + color * cover
        alpha[win] = alpha[win] * (1 - cover[..., 0]) + cover[..., 0]
    rgb = premul / np.maximum(alpha, 1e-6)[..., None]
    out = np.concatenate([rgb, alpha[..., None]], axis=-1)
    return np.rint(np.clip(out, 0, 1) * 255).astype(np.uint8)


def _shading(d: np.ndarray, thick: float) -> np.ndarray:
    """Lambert shading of a rounded body: the normal tilts from facing the viewer at the middle to
    lying in the image plane at the outline."""
    gy, gx = np.gradient(d)
    norm = np.maximum(np.hypot(gx, gy), 1e-12)
    depth = np.clip(-d / max(thick, 1e-6), 0.0, 1.0)
    nz = np.sqrt(1 - (1 - depth) ** 2)
    side = np.sqrt(np.clip(1 - nz**2, 0, 1))
    # rows run downward, so the row-gradient is the negative y-gradient
    n = np.stack([gx / norm * side, -gy / norm * side, nz], axis=-1)
    return 0.45 + 0.75 * np.clip(n @ _LIGHT, 0.0, 1.0)


def _texture(part: Part, x: np.ndarray, y: np.ndarray, fw: float, table: np.ndarray) -> np.ndarray:
    """Brightness factor (h, w) of a part's texture at figure coordinates ``x, y``."""
    o = part.opts or {}
    fwa = np.full(x.shape, fw)
    if part.texture == "stripes":
        return 1.0 - 0.35 * lines(y, o["period"], o["period"] * 0.45, fwa)
    if part.texture == "fur":
        streak = fbm(table, x, y, fwa, (25.0, 90.0), 2)
        patch = fbm(table, x + 9, y, fwa, 4.0, 2)
        spots = np.clip((patch - o.get("spots", 1.0)) * 8, 0, 1)
        return (0.8 + 0.35 * streak) * (1 - spots * 0.55)
    if part.texture == "tabby":
        wobble = fbm(table, x, y, fwa, 6.0, 2)
        return 1.0 - 0.4 * lines(x + 0.08 * wobble, o["period"], o["period"] * 0.35, fwa)
    if part.texture == "feathers":
        return 1.0 - 0.3 * lines(x * 0.8 + y * 0.6, o["period"], o["period"] * 0.3, fwa)
    return np.ones(x.shape)
