"""Pinhole camera and vectorised ray casting of the room box and its furniture boxes (numpy).

World frame: metres, x right, y up from the floor, z forward; the camera is at (0, height_m, 0).
Camera frame: x right, y down (image rows), z along the optical axis. Ray directions are scaled to
camera z = 1, so the ray parameter of a hit IS its camera z-distance: depth needs no conversion.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .furniture import (
    CEILING,
    FLOOR,
    FURNITURE,
    WALL_BACK,
    WALL_FRONT,
    WALL_LEFT,
    WALL_RIGHT,
    Layout,
)

_ROOM_LABELS = np.array([[WALL_LEFT, WALL_RIGHT], [FLOOR, CEILING], [WALL_FRONT, WALL_BACK]])


@dataclass(frozen=True)
class Camera:
    """Pinhole camera with a square ``size`` px image, horizontal (= vertical) field of view, standing
    ``height_m`` above the floor at world x = z = 0, pitched down by ``pitch_deg`` and turned right by
    ``yaw_deg``; no roll. Pixel ``i`` spans [i, i + 1) in continuous image coordinates."""

    size: int
    fov_deg: float
    height_m: float
    pitch_deg: float
    yaw_deg: float = 0.0

    def __post_init__(self):
        if self.size < 8:
            raise ValueError(f"Camera.size: expected at least 8 px, got {self.size}")
        if not 1.0 <= self.fov_deg <= 170.0:
            raise ValueError(f"Camera.fov_deg: expected 1..170 degrees, got {self.fov_deg}")
        if self.height_m <= 0 or abs(self.pitch_deg) >= 89:
            raise ValueError(
                f"Camera: expected height_m > 0 and |pitch_deg| < 89, got {self.height_m}, "
                f"{self.pitch_deg}"
            )

    @property
    def focal_px(self) -> float:
        return 0.5 * self.size / math.tan(math.radians(self.fov_deg) / 2)

    @property
    def origin(self) -> np.ndarray:
        return np.array([0.0, self.height_m, 0.0])

    def rotation(self) -> np.ndarray:
        """(3, 3) camera-to-world matrix; its columns are the camera's right, down and forward."""
        p, y = math.radians(self.pitch_deg), math.radians(self.yaw_deg)
        right = [1.0, 0.0, 0.0]
        down = [0.0, -math.cos(p), -math.sin(p)]
        forward = [0.0, -math.sin(p), math.cos(p)]
        yaw = np.array([[math.cos(y), 0, math.sin(y)], [0, 1, 0], [-math.sin(y), 0, math.cos(y)]])
        return yaw @ np.array([right, down, forward]).T

    def rays(self) -> np.ndarray:
        """(size, size, 3) camera-frame directions through the pixel centres, scaled to z = 1, so
        that a hit at ray parameter t has camera z-distance exactly t."""
        c = (np.arange(self.size) + 0.5 - self.size / 2) / self.focal_px
        out = np.ones((self.size, self.size, 3))
        out[..., 0] = c[None, :]
        out[..., 1] = c[:, None]
        return out

    def floor_z(self, row) -> np.ndarray:
        """Camera z (metres) of the floor seen at the centre of image ``row`` (any column: no roll),
        ``inf`` at and above the horizon."""
        yc = (np.asarray(row, dtype=np.float64) + 0.5 - self.size / 2) / self.focal_px
        p = math.radians(self.pitch_deg)
        den = yc * math.cos(p) + math.sin(p)
        with np.errstate(divide="ignore"):
            return np.where(den > 0, self.height_m / np.where(den > 0, den, 1.0), np.inf)

    def project(self, points: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """World points (..., 3) -> continuous image ``(col, row, z)``; z is the camera z-distance."""
        cam = (np.asarray(points, dtype=np.float64) - self.origin) @ self.rotation()
        z = cam[..., 2]
        f, c = self.focal_px, self.size / 2
        return c + f * cam[..., 0] / z, c + f * cam[..., 1] / z, z


def floor_scale(camera: Camera, rows: np.ndarray, height_m: float) -> np.ndarray:
    """Projected height / image height (rows,) of a vertical ``height_m`` object standing on the floor
    seen at the centre of each image row; NaN where there is no floor or the top is behind the camera."""
    rows = np.asarray(rows, dtype=np.float64)
    z = camera.floor_z(rows)
    p = math.radians(camera.pitch_deg)
    f, c = camera.focal_px, camera.size / 2
    y_cam = (rows + 0.5 - c) / f * z
    # world "up" in the camera frame is (0, -cos p, -sin p): the top is higher and slightly nearer
    top_y, top_z = y_cam - height_m * math.cos(p), z - height_m * math.sin(p)
    with np.errstate(invalid="ignore", divide="ignore"):
        top_row = c + f * top_y / top_z
        scale = (rows + 0.5 - top_row) / camera.size
    return np.where(np.isfinite(z) & (top_z > 0), scale, np.nan)


def _slab(o: np.ndarray, inv: np.ndarray, lo: np.ndarray, hi: np.ndarray):
    """Ray/box slab test for rays ``o + t d`` (``inv`` = 1/d, (N, 3)): entry t, exit t, entry axis."""
    t1, t2 = (lo - o) * inv, (hi - o) * inv
    t_min = np.minimum(t1, t2)
    axis = np.argmax(t_min, axis=1)
    return t_min[np.arange(len(inv)), axis], np.maximum(t1, t2).min(axis=1), axis


def _screen_rect(camera: Camera, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """Flat indices of the pixels whose rays may hit the box ``lo``..``hi``: the screen rectangle
    around its projected corners (all pixels when the box reaches behind the camera plane)."""
    n = camera.size
    corners = np.stack(np.meshgrid(*zip(lo, hi, strict=True), indexing="ij"), axis=-1).reshape(
        -1, 3
    )
    col, row, z = camera.project(corners)
    if (z <= 1e-6).any():
        return np.arange(n * n)
    c0, c1 = max(int(np.floor(col.min())) - 1, 0), min(int(np.ceil(col.max())) + 1, n)
    r0, r1 = max(int(np.floor(row.min())) - 1, 0), min(int(np.ceil(row.max())) + 1, n)
    if c0 >= c1 or r0 >= r1:
        return np.zeros(0, dtype=np.int64)
    return (np.arange(r0, r1)[:, None] * n + np.arange(c0, c1)[None, :]).ravel()


def trace(camera: Camera, lay: Layout) -> dict:
    """Nearest hit per pixel: ``t`` (camera z), ``axis``/``sign`` of the surface normal, ``label``,
    ``material``, ``box`` (-1 for the room shell) and the world ``dirs``; all flat (N,)."""
    d = camera.rays().reshape(-1, 3) @ camera.rotation().T
    d = np.where(np.abs(d) < 1e-12, 1e-12, d)  # a ray parallel to a plane: never hits it
    inv, o, n = 1.0 / d, camera.origin, np.arange(len(d))
    x_min, x_max, z_min, z_max, height = lay.bounds
    lo, hi = np.array([x_min, 0.0, z_min]), np.array([x_max, height, z_max])
    t_exit = np.where(d > 0, (hi - o) * inv, (lo - o) * inv)  # from inside: each axis' far wall
    axis = np.argmin(t_exit, axis=1)
    t = t_exit[n, axis]
    positive = d[n, axis] > 0
    label = _ROOM_LABELS[axis, positive.astype(int)]
    material = np.where(label == FLOOR, 0, np.where(label == CEILING, 1, 2))
    material[label == WALL_BACK] = 3
    box = np.full(len(d), -1)
    boxes = [b for piece in lay.pieces for b in piece]
    first = 0
    for piece in lay.pieces:  # rays near the piece on screen, then its bounding box, then parts
        lo_p = np.min([b.lo for b in piece], axis=0)
        hi_p = np.max([b.hi for b in piece], axis=0)
        near = _screen_rect(camera, lo_p, hi_p)
        t_in, t_out, _ = _slab(o, inv[near], lo_p, hi_p)
        cand = near[(t_in <= t_out) & (t_in > 0) & (t_in < t[near])]
        for k, b in enumerate(piece, start=first):
            if not len(cand):
                break
            t_in, t_out, ax = _slab(o, inv[cand], b.lo, b.hi)
            ok = (t_in <= t_out) & (t_in > 0) & (t_in < t[cand])
            sel = cand[ok]
            t[sel], axis[sel], box[sel] = t_in[ok], ax[ok], k
            material[sel], label[sel] = b.material, FURNITURE
            positive[sel] = d[sel, ax[ok]] > 0
        first += len(piece)
    sign = np.where(positive, -1, 1)  # normals face the camera side of the surface
    return {
        "t": t,
        "axis": axis,
        "sign": sign,
        "label": label,
        "material": material,
        "box": box,
        "boxes": boxes,
        "dirs": d,
    }
