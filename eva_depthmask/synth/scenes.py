"""Procedural indoor rooms with EXACT depth, foreground placement on their floor, and compositing.

A room is a box (floor, walls, ceiling) with furniture boxes, rugs, pictures and windows (furniture.py),
seen by a pinhole camera and ray-cast in numpy: every pixel centre gets the nearest hit of one ray, so
``depth`` is the true camera z-distance of what the pixel shows, divided by ``SceneConfig.max_depth_m``
and clipped to [0, 1] (0 = camera plane). Textures (textures.py) are evaluated at the hit point in world
metres, so they have correct perspective. Foreground sprites come from sprites.py; the camera and the
ray casting from raycast.py; shading from shading.py.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from ..composite import Placement, blend, fg_layer, fit_size
from ..config import SceneConfig
from .furniture import FLOOR, LABELS, make_layout
from .raycast import Camera, floor_scale, trace
from .shading import shade
from .sprites import draw_foreground
from .textures import noise_table

__all__ = [
    "LABELS",
    "Camera",
    "floor_scale",
    "Room",
    "compose",
    "draw_foreground",
    "render_room",
    "room_camera",
    "sample_floor_placement",
]

ROOM_STREAM = 1  # third entry of the room Generator's seed; sprites use their own
CEILING_GAP_M = 0.3  # the camera stays at least this far below the ceiling


@dataclass
class Room:
    """A rendered room: ``rgb`` uint8 (H, W, 3); ``depth`` float32 (H, W) = camera z / max_depth_m
    clipped to [0, 1]; ``label`` uint8 (H, W) index into LABELS of the surface each pixel sees
    (rugs count as floor, pictures as wall); ``bounds`` = (x_min, x_max, z_min, z_max, height) of the
    room box in world metres (camera at x = z = 0)."""

    rgb: np.ndarray
    depth: np.ndarray
    camera: Camera
    label: np.ndarray
    bounds: tuple[float, float, float, float, float]


def _check_seed(seed: int, index: int, size: int) -> None:
    for name, value in (("seed", seed), ("index", index)):
        if not isinstance(value, (int, np.integer)) or value < 0:
            raise ValueError(f"{name}: expected a non-negative int, got {value!r}")
    if not isinstance(size, (int, np.integer)) or size < 8:
        raise ValueError(f"size: expected an int of at least 8 px, got {size!r}")


def _check_range(cfg: SceneConfig, name: str, low: float) -> None:
    lo, hi = getattr(cfg, name)
    if not low <= lo <= hi:
        raise ValueError(f"SceneConfig.{name}: expected {low} <= low <= high, got {(lo, hi)}")


def _draw_room(seed: int, index: int, size: int, cfg: SceneConfig):
    """The random draws of room ``index``: its noise table, layout and camera, in render order."""
    _check_seed(seed, index, size)
    for name, low in (("room_width_m", 2.5), ("room_length_m", 3.0), ("room_height_m", 2.0)):
        _check_range(cfg, name, low)
    _check_range(cfg, "furniture", 0)
    rng = np.random.default_rng([seed, index, ROOM_STREAM])
    table = noise_table(rng)
    lay = make_layout(rng, cfg, int(rng.integers(cfg.furniture[0], cfg.furniture[1] + 1)))
    camera = Camera(
        size=int(size),
        fov_deg=float(rng.uniform(*cfg.fov_deg)),
        height_m=float(min(rng.uniform(*cfg.camera_height_m), lay.bounds[4] - CEILING_GAP_M)),
        pitch_deg=float(rng.uniform(*cfg.camera_pitch_deg)),
        yaw_deg=float(rng.uniform(*cfg.camera_yaw_deg)),
    )
    return table, lay, camera


def room_camera(
    seed: int, index: int, size: int, cfg: SceneConfig = SceneConfig()
) -> tuple[Camera, tuple[float, float, float, float, float]]:
    """The camera and box bounds (``Room.bounds``) of room ``index`` without rendering it."""
    _, lay, camera = _draw_room(seed, index, size, cfg)
    return camera, lay.bounds


def render_room(seed: int, index: int, size: int, cfg: SceneConfig = SceneConfig()) -> Room:
    """Render room ``index`` of stream ``seed`` at ``size`` x ``size`` px; same inputs, same bytes."""
    table, lay, camera = _draw_room(seed, index, size, cfg)
    hit = trace(camera, lay)
    rgb = shade(camera, lay, hit, table)
    n = camera.size
    depth = np.clip(hit["t"] / cfg.max_depth_m, 0.0, 1.0).astype(np.float32).reshape(n, n)
    return Room(rgb, depth, camera, hit["label"].astype(np.uint8).reshape(n, n), lay.bounds)


# ---------------------------------------------------------------------------------------------------
# Standing a foreground on the floor, and compositing it with depth


def sample_floor_placement(
    room: Room,
    fg_shape: tuple,
    rng: np.random.Generator,
    cfg: SceneConfig = SceneConfig(),
    flip: bool | None = None,
) -> tuple[Placement, float]:
    """Stand a foreground of shape ``fg_shape`` (h, w, ...) on a visible floor pixel of ``room``.

    Returns ``(placement, fg_z)``: the bottom-centre ``(x, y)`` is the floor pixel it touches,
    ``placement.scale`` the projection there of a real height drawn from ``cfg.fg_height_m`` (so lower
    in the image = nearer = larger), and ``fg_z`` the normalised z-depth of that floor point (units of
    ``room.depth``). The object stays inside the image left-right and loses at most 10% at the top;
    one too wide to fit anywhere at its drawn height stands on any floor pixel, shrunk to fit.
    """
    if len(fg_shape) < 2 or min(fg_shape[:2]) < 1:
        raise ValueError(f"fg_shape: expected (h, w, ...) with h, w >= 1, got {fg_shape}")
    n = room.camera.size
    floor = (room.label == FLOOR) & (room.depth < 1.0)
    if not floor.any():
        raise ValueError("room: no floor pixel is visible within max_depth_m; cannot stand a fg")
    rows, cols = np.arange(n), np.arange(n)
    for attempt in range(10):
        last = attempt == 9  # give up on the minimum size rather than fail
        height = float(rng.uniform(*cfg.fg_height_m))
        scale = floor_scale(room.camera, rows, height)
        h_px = np.maximum(1, np.rint(np.nan_to_num(scale) * n))
        w_px = np.maximum(1, np.rint(fg_shape[1] * h_px / fg_shape[0]))
        row_ok = np.isfinite(scale) & (rows - h_px >= -0.1 * h_px)
        if not last:
            row_ok &= scale >= cfg.fg_min_scale
        left = cols[None, :] - (w_px // 2)[:, None]
        fits = row_ok[:, None] & (left >= 0) & (left + w_px[:, None] <= n)
        cand = floor & fits
        if cand.any():
            break
    else:
        cand = floor  # nothing fits the image: any floor pixel, shrunk to fit below
    y = int(rng.choice(np.nonzero(cand.any(axis=1))[0]))  # rows first: spread over distances
    x = int(rng.choice(np.nonzero(cand[y])[0]))
    s = float(np.nan_to_num(scale[y], nan=cfg.fg_min_scale))
    f = bool(rng.integers(2)) if flip is None else bool(flip)
    placement = Placement(x, y, round(max(s, 1.0 / n), 6), f)
    h, w = placement.fg_size(fg_shape, n)
    if not (0 <= x - w // 2 <= n - w and y - h >= -0.1 * h):  # nothing fitted, or 6-digit rounding
        placement = _into_frame(placement, fg_shape, n)
    return placement, float(room.depth[y, x])


def _into_frame(placement: Placement, fg_shape: tuple, n: int) -> Placement:
    """The nearest placement wholly inside the n x n image: the same bottom row (1 at the least),
    the fg shrunk until it fits there, shifted left or right as little as needed; the same flip."""
    y = min(max(placement.y, 1), n)
    h, w = fit_size(fg_shape, (n, n), min(placement.fg_size(fg_shape, n)[0], y))
    x = min(max(placement.x, w // 2), n - (w - w // 2))
    return Placement(x, y, round(h / n, 6), placement.flip)


def _fg_depth(alpha: np.ndarray, fg_z: float, cfg: SceneConfig) -> np.ndarray:
    """(H, W) depth of the pasted foreground: ``fg_z`` at its silhouette, up to ``fg_bulge_m`` nearer
    at its thickest inside (a round profile over the distance to the silhouette)."""
    layer = np.full(alpha.shape, fg_z, dtype=np.float64)
    inside = alpha > 0
    if cfg.fg_bulge_m <= 0 or not inside.any():
        return layer
    r, c = np.nonzero(inside)
    r0, r1, c0, c1 = r.min(), r.max() + 1, c.min(), c.max() + 1
    dist = ndimage.distance_transform_edt(np.pad(inside[r0:r1, c0:c1], 1))[1:-1, 1:-1]
    t = dist / dist.max()
    bulge = np.sqrt(np.clip(1 - (1 - t) ** 2, 0, 1)) * (cfg.fg_bulge_m / cfg.max_depth_m)
    layer[r0:r1, c0:c1] -= np.where(inside[r0:r1, c0:c1], bulge, 0.0)
    return np.clip(layer, 0.0, 1.0)


def compose(
    bg: np.ndarray,
    bg_depth: np.ndarray,
    fg: np.ndarray,
    placement: Placement,
    fg_z: float,
    cfg: SceneConfig = SceneConfig(),
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Paste ``fg`` (h, w, 4) uint8 at ``placement`` with depth ``fg_z`` into ``bg`` (H, W, 3) uint8
    whose depth is ``bg_depth`` (H, W) in [0, 1]; whatever is nearer in ``bg_depth`` hides it.

    Returns ``fg_bg`` uint8 (H, W, 3), ``mask`` uint8 (H, W) in {0, 1} (the visible foreground) and
    ``depth`` float32 (H, W): the foreground's depth under the mask, ``bg_depth`` elsewhere.
    """
    if bg.ndim != 3 or bg.shape[2] != 3 or bg.dtype != np.uint8:
        raise ValueError(f"bg: expected uint8 (H, W, 3), got {bg.dtype} {bg.shape}")
    if bg_depth.shape != bg.shape[:2]:
        raise ValueError(f"bg_depth: expected shape {bg.shape[:2]} like bg, got {bg_depth.shape}")
    if fg.ndim != 3 or fg.shape[2] != 4 or fg.dtype != np.uint8:
        raise ValueError(f"fg: expected uint8 (h, w, 4), got {fg.dtype} {fg.shape}")
    if not (np.isfinite(fg_z) and 0.0 <= fg_z <= 1.0):
        raise ValueError(f"fg_z: expected a normalised depth in [0, 1], got {fg_z}")
    rgb, alpha = fg_layer(fg, placement, bg.shape)
    layer = _fg_depth(alpha, float(fg_z), cfg)
    visible = layer < bg_depth
    fg_bg, mask = blend(bg, rgb, alpha * visible)
    depth = np.where(mask > 0, layer, bg_depth).astype(np.float32)
    return fg_bg, mask, depth
