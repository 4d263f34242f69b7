"""Body parts for sprites.py, and people-like figures made of them (animals.py makes the animals).

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
