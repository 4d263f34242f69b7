"""Figures for sprites.py: people-like figures and dog / cat / bird-like animals as lists of parts.

A part is a circle, ellipse or tapered capsule in "figure units" (height about 1, y up, feet at
y = 0) with a colour and a texture name; sprites.py turns the list into an RGBA image. Animals are
drawn from the side, facing right (placements mirror them at random).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .textures import hsv


@dataclass
class Part:
    """One shape in figure units: ``kind`` circle ((x, y), r) | ellipse ((x, y), rx, ry, angle) |
    capsule ((x, y), (x, y), r_start, r_end), a base colour (3,) in [0, 1], a texture and its options."""

    kind: str
    geom: tuple
    color: np.ndarray
    texture: str = "plain"
    opts: dict | None = None

    def bbox(self) -> tuple[float, float, float, float]:
        """(x_min, x_max, y_min, y_max) in figure units."""
        if self.kind == "circle":
            (x, y), r = self.geom
            return x - r, x + r, y - r, y + r
        if self.kind == "ellipse":
            (x, y), rx, ry, a = self.geom
            ex = math.hypot(rx * math.cos(a), ry * math.sin(a))
            ey = math.hypot(rx * math.sin(a), ry * math.cos(a))
            return x - ex, x + ex, y - ey, y + ey
        (ax, ay), (bx, by), ra, rb = self.geom  # the union of the two end discs bounds it
        return (
            min(ax - ra, bx - rb),
            max(ax + ra, bx + rb),
            min(ay - ra, by - rb),
            max(ay + ra, by + rb),
        )

    def sdf(self, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, float]:
        """Signed distance (negative inside) in figure units, and the part's thickness (how deep
        the shading treats it as)."""
        if self.kind == "circle":
            (cx, cy), r = self.geom
            return np.hypot(x - cx, y - cy) - r, r
        if self.kind == "ellipse":
            (cx, cy), rx, ry, angle = self.geom
            c, s = math.cos(angle), math.sin(angle)
            px, py = (x - cx) * c + (y - cy) * s, -(x - cx) * s + (y - cy) * c
            k0 = np.hypot(px / rx, py / ry)
            k1 = np.maximum(np.hypot(px / rx**2, py / ry**2), 1e-9)
            d = np.where(k0 < 1e-6, -min(rx, ry), k0 * (k0 - 1.0) / k1)
            return d, min(rx, ry)  # a close approximation near the outline
        (ax, ay), (bx, by), ra, rb = self.geom
        dx, dy = bx - ax, by - ay
        h = np.clip(((x - ax) * dx + (y - ay) * dy) / max(dx * dx + dy * dy, 1e-12), 0, 1)
        radius = ra + (rb - ra) * h
        return np.hypot(x - ax - h * dx, y - ay - h * dy) - radius, max(ra, rb)


def _limb(a, angle: float, length: float) -> tuple[float, float]:
    """End point of a segment from ``a`` at ``angle`` (radians from straight down, + = outwards)."""
    return a[0] + length * math.sin(angle), a[1] - length * math.cos(angle)


def person(rng: np.random.Generator) -> list[Part]:
    r = rng.random
    heads = rng.uniform(5.0, 7.5)  # body height in head heights: a child ... an adult
    rh = 0.5 / heads
    wf = rng.uniform(0.8, 1.25)
    body = 1 - 2 * rh
    y_sh, y_hip, y_knee = body * 0.95, body * 0.55, body * 0.29
    sw, hw = 0.105 * wf, 0.07 * wf
    skin = hsv(0.06 + 0.03 * r(), 0.25 + 0.4 * r(), 0.35 + 0.6 * r())
    shirt = hsv(r(), 0.2 + 0.7 * r(), 0.25 + 0.7 * r())
    pants = hsv(r(), 0.1 + 0.6 * r(), 0.15 + 0.6 * r())
    hair = hsv(0.05 + 0.07 * r(), 0.3 + 0.6 * r(), 0.08 + 0.75 * r() ** 2)
    shoes = hsv(r(), 0.3 * r(), 0.1 + 0.3 * r())
    shirt_tex = ("stripes", {"period": 0.03 + 0.04 * r()}) if r() < 0.35 else ("plain", None)
    pose = str(rng.choice(["stand", "stand", "walk", "wave", "hips", "out"]))
    spread = {"walk": 0.25, "out": 0.12}.get(pose, 0.05) * rng.uniform(0.6, 1.2)
    parts: list[Part] = []
    head_c = (0.0, 1 - rh)
    if r() < 0.4:  # long hair behind the head and shoulders
        parts.append(Part("ellipse", ((0, head_c[1] - 0.6 * rh), 1.15 * rh, 1.6 * rh, 0), hair))
    for side in (-1, 1):  # legs: thigh, shin, shoe
        hip = (side * hw * 0.55, y_hip)
        knee = _limb(hip, side * spread * 0.6, y_hip - y_knee)
        ankle = _limb(knee, side * spread * 0.4, y_knee - 0.04)
        ankle = (ankle[0], 0.04)
        shorts = r() < 0.25
        parts.append(
            Part("capsule", (knee, ankle, 0.036 * wf, 0.028 * wf), skin if shorts else pants)
        )
        parts.append(Part("capsule", (hip, knee, 0.05 * wf, 0.037 * wf), pants))
        parts.append(Part("ellipse", ((ankle[0] + side * 0.02, 0.022), 0.05, 0.022, 0), shoes))
    if r() < 0.3:  # a skirt or dress over the thighs
        parts.append(Part("capsule", ((0, y_hip + 0.06), (0, y_knee + 0.05), hw, hw * 2.0), pants))
    chest = sw - 0.02
    parts.append(Part("capsule", ((0, y_sh - chest), (0, head_c[1]), 0.026, 0.026), skin))
    torso = ((0, y_hip + 0.04), (0, y_sh + 0.01 - chest), hw + 0.012, chest)
    parts.append(Part("capsule", torso, shirt, *shirt_tex))
    parts.append(Part("ellipse", (head_c, rh * 0.86, rh, 0), skin))
    parts.append(Part("ellipse", ((0, head_c[1] + 0.62 * rh), rh * 0.93, rh * 0.5, 0), hair))
    for side in (-1, 1):
        parts.append(
            Part("circle", ((side * 0.34 * rh, head_c[1] - 0.02 * rh), 0.085 * rh), hsv(0, 0, 0.1))
        )
    long_sleeves = r() < 0.5
    for side in (-1, 1):  # arms last: they may cross the torso
        upper, lower = _arm_angles(pose, side, rng)
        sh = (side * (sw - 0.02), y_sh - 0.025)
        elbow = _limb(sh, side * upper, body * 0.19)
        hand = _limb(elbow, side * lower, body * 0.17)
        parts.append(
            Part("capsule", (elbow, hand, 0.03 * wf, 0.024 * wf), shirt if long_sleeves else skin)
        )
        parts.append(Part("capsule", (sh, elbow, 0.036 * wf, 0.031 * wf), shirt, *shirt_tex))
        parts.append(Part("circle", (hand, 0.03), skin))
    return parts


def _arm_angles(pose: str, side: int, rng: np.random.Generator) -> tuple[float, float]:
    """(upper arm, forearm) angles in radians from hanging straight down, + = away from the body."""
    jitter = rng.uniform(-0.1, 0.1)
    if pose == "wave" and side == 1:
        return 2.3 + jitter, 2.9 + jitter
    if pose == "hips":
        return 0.75 + jitter, -0.9 + jitter
    if pose == "out":
        return 1.35 + jitter, 1.5 + jitter
    return 0.12 + abs(jitter), 0.05 + jitter


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


FIGURES = {"person": person, "dog": dog, "cat": cat, "bird": bird}
