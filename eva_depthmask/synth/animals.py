"""Dog, cat and bird-like animals as lists of body parts (``body_parts.Part``), drawn from the side,
facing right (placements mirror them at random)."""

from __future__ import annotations

import math

import numpy as np

from .body_parts import Part
from .textures import hsv


def _quadruped(
    rng,
    body: tuple,
    head: tuple,
    coat: np.ndarray,
    texture: str,
    opts: dict,
    leg_r: float,
    tail: list,
) -> list[Part]:
    """Body ellipse ((x, y), rx, ry), head ((x, y), r); four legs down to y = 0; tail capsules."""
    (bx, by), rx, ry = body
    (hx, hy), hr = head
    dark = coat * 0.7
    parts = [Part("capsule", seg, coat, texture, opts) for seg in tail]
    swing = rng.uniform(-0.25, 0.25)
    for far, shade in ((True, dark), (False, coat)):  # far-side legs first, darker
        for x_leg, phase in ((bx + 0.62 * rx, 1), (bx - 0.62 * rx, -1)):
            a = (x_leg + (0.04 if far else 0.0), by - 0.3 * ry)
            ang = swing * phase * (-1 if far else 1)
            foot = (a[0] + math.tan(ang) * a[1], leg_r)
            parts.append(Part("capsule", (a, foot, leg_r * 1.25, leg_r), shade, texture, opts))
            parts.append(
                Part(
                    "ellipse",
                    ((foot[0] + 0.02, leg_r * 0.9), leg_r * 1.5, leg_r * 0.9, 0),
                    shade * 0.9,
                )
            )
    parts.append(Part("ellipse", ((bx, by), rx, ry, rng.uniform(-0.08, 0.08)), coat, texture, opts))
    parts.append(
        Part(
            "capsule",
            ((bx + 0.7 * rx, by + 0.3 * ry), (hx, hy), ry * 0.7, hr * 0.7),
            coat,
            texture,
            opts,
        )
    )
    return parts


def dog(rng: np.random.Generator) -> list[Part]:
    r = rng.random
    coat = hsv(0.06 + 0.05 * r(), 0.2 + 0.6 * r(), 0.15 + 0.75 * r())
    opts = {"spots": 0.6 if r() < 0.35 else 2.0}
    rx, ry = rng.uniform(0.5, 0.72), rng.uniform(0.16, 0.22)
    by = rng.uniform(0.5, 0.6)
    hr = rng.uniform(0.13, 0.17)
    hx, hy = rx + 0.08, by + ry + 0.12
    tail_base = (-rx * 0.92, by + 0.4 * ry)
    tail_end = (tail_base[0] - 0.2, tail_base[1] + rng.uniform(0.0, 0.3))
    parts = _quadruped(
        rng,
        ((0, by), rx, ry),
        ((hx, hy), hr),
        coat,
        "fur",
        opts,
        0.045,
        [(tail_base, tail_end, 0.04, 0.02)],
    )
    snout = (hx + hr * 0.95, hy - hr * 0.35)
    parts.append(Part("circle", ((hx, hy), hr), coat, "fur", opts))
    parts.append(Part("ellipse", (snout, hr * 0.8, hr * 0.5, -0.15), coat * 1.05, "fur", opts))
    parts.append(
        Part("circle", ((snout[0] + hr * 0.7, snout[1] + hr * 0.1), hr * 0.2), hsv(0, 0, 0.08))
    )
    parts.append(Part("circle", ((hx + hr * 0.35, hy + hr * 0.25), hr * 0.13), hsv(0, 0, 0.05)))
    if r() < 0.6:  # floppy ear hanging at the back of the head
        ear = Part(
            "ellipse", ((hx - hr * 0.35, hy - hr * 0.2), hr * 0.35, hr * 0.8, 0.3), coat * 0.6
        )
    else:  # pricked ear
        ear = Part(
            "capsule",
            ((hx - hr * 0.3, hy + hr * 0.6), (hx - hr * 0.45, hy + hr * 1.6), hr * 0.35, hr * 0.05),
            coat * 0.8,
        )
    parts.append(ear)
    return parts


def cat(rng: np.random.Generator) -> list[Part]:
    r = rng.random
    coat = hsv(0.05 + 0.07 * r(), 0.1 + 0.6 * r(), 0.15 + 0.8 * r())
    opts = {"period": rng.uniform(0.06, 0.1)}
    rx, ry = rng.uniform(0.42, 0.55), rng.uniform(0.12, 0.16)
    by = rng.uniform(0.45, 0.52)
    hr = rng.uniform(0.11, 0.13)
    hx, hy = rx + 0.05, by + ry + 0.12
    t0 = (-rx * 0.95, by + 0.3 * ry)
    t1 = (t0[0] - 0.18, t0[1] + 0.12)
    t2 = (t1[0] - 0.02, t1[1] + rng.uniform(0.15, 0.3))
    tail = [(t0, t1, 0.035, 0.03), (t1, t2, 0.03, 0.025)]
    parts = _quadruped(rng, ((0, by), rx, ry), ((hx, hy), hr), coat, "tabby", opts, 0.032, tail)
    for dx in (-0.45, 0.25):  # two pointed ears
        base = (hx + dx * hr, hy + hr * 0.6)
        parts.append(
            Part(
                "capsule",
                (base, (base[0] + 0.1 * hr, base[1] + hr * 0.9), hr * 0.38, hr * 0.04),
                coat * 0.9,
            )
        )
    parts.append(Part("circle", ((hx, hy), hr), coat, "tabby", opts))
    parts.append(
        Part("ellipse", ((hx + hr * 0.75, hy - hr * 0.3), hr * 0.4, hr * 0.3, 0), coat * 1.1)
    )
    parts.append(
        Part(
            "circle", ((hx + hr * 0.4, hy + hr * 0.15), hr * 0.16), hsv(0.25 + 0.1 * r(), 0.7, 0.5)
        )
    )
    parts.append(Part("circle", ((hx + hr * 1.1, hy - hr * 0.2), hr * 0.1), hsv(0.97, 0.5, 0.5)))
    return parts


def bird(rng: np.random.Generator) -> list[Part]:
    r = rng.random
    body_c = hsv(r(), 0.3 + 0.6 * r(), 0.3 + 0.6 * r())
    wing_c = body_c * rng.uniform(0.5, 0.8)
    opts = {"period": rng.uniform(0.04, 0.07)}
    rx, ry = rng.uniform(0.32, 0.42), rng.uniform(0.2, 0.25)
    leg = rng.uniform(0.14, 0.22)
    by = leg + ry * 0.8
    hr = rng.uniform(0.12, 0.15)
    hx, hy = rx * 0.8, by + ry + hr * 0.5
    parts = []
    for dx in (-0.05, 0.05):
        top = (dx, by - ry * 0.6)
        foot = (dx + 0.03, 0.012)
        parts.append(Part("capsule", (top, foot, 0.014, 0.011), hsv(0.08, 0.5, 0.45)))
        parts.append(
            Part(
                "capsule",
                ((foot[0] - 0.03, 0.012), (foot[0] + 0.07, 0.012), 0.012, 0.012),
                hsv(0.08, 0.5, 0.4),
            )
        )
    tail_end = (-rx * 1.35, by + rng.uniform(-0.1, 0.12))
    parts.append(
        Part("capsule", ((-rx * 0.6, by + 0.03), tail_end, 0.04, 0.06), wing_c, "feathers", opts)
    )
    parts.append(Part("ellipse", ((0, by), rx, ry, 0.25), body_c))
    parts.append(
        Part(
            "ellipse",
            ((rx * 0.25, by - ry * 0.3), rx * 0.6, ry * 0.5, 0.2),
            np.clip(body_c * 1.3 + 0.15, 0, 1),
        )
    )
    parts.append(
        Part(
            "ellipse",
            ((-rx * 0.15, by + ry * 0.15), rx * 0.75, ry * 0.55, 0.35),
            wing_c,
            "feathers",
            opts,
        )
    )
    parts.append(Part("circle", ((hx, hy), hr), body_c))
    parts.append(
        Part(
            "capsule",
            ((hx + hr * 0.8, hy), (hx + hr * 1.9, hy - hr * 0.25), hr * 0.3, hr * 0.03),
            hsv(0.11, 0.8, 0.9),
        )
    )
    parts.append(Part("circle", ((hx + hr * 0.4, hy + hr * 0.2), hr * 0.15), hsv(0, 0, 0.05)))
    return parts
