"""Place and paste an RGBA foreground cut-out onto a background: ``fg_bg`` and ``mask`` (numpy +
Pillow). Reading the images is images.py's.

The rule that everything downstream relies on: ``fg_bg`` equals ``bg`` exactly wherever ``mask`` is 0,
and ``mask`` is 1 exactly where the pasted foreground's (visible) alpha is above zero. Alpha below
``ALPHA_FLOOR`` is matting noise (real cut-outs are full of it) and is cleared before both, so the two
statements hold together.

Images in this module are uint8 arrays: bg and fg_bg ``(H, W, 3)``, fg ``(h, w, 4)``, mask ``(H, W)``
in {0, 1}. Placements are in the pixels of the background they are pasted on.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image

from .images import ALPHA_FLOOR, UnplaceableError

Shape = tuple[int, ...]  # an array's shape: (h, w, ...) of a fg, (H, W, ...) of a bg
Range = tuple[float, float]  # (low, high) of fg height / bg height


@dataclass(frozen=True)
class Placement:
    """Where a foreground goes: its bottom-centre pixel ``(x, y)``, its height as a fraction of the
    background's height, and whether it is mirrored left-right. The bottom centre is where a standing
    object touches the floor, which is what perspective depends on."""

    x: int
    y: int
    scale: float
    flip: bool = False

    def fg_size(
        self, fg_shape: Shape, bg_height: int, bg_width: int | None = None
    ) -> tuple[int, int]:
        """``(height, width)`` in pixels of the fg once pasted, keeping its aspect ratio. Given
        ``bg_width``, a 1 px tall fg wider than that is squeezed to it: nothing smaller would fit."""
        h = max(1, round(self.scale * bg_height))
        w = max(1, round(fg_shape[1] * h / fg_shape[0]))
        return h, min(w, bg_width) if h == 1 and bg_width is not None else w

    def box(self, fg_shape: Shape, bg_shape: Shape) -> tuple[int, int, int, int]:
        """``(top, left, height, width)`` in bg pixels of the pasted fg; it may reach outside the bg."""
        h, w = self.fg_size(fg_shape, bg_shape[0], bg_shape[1])
        return self.y - h, self.x - w // 2, h, w

    def inside(self, fg_shape: Shape, bg_shape: Shape) -> bool:
        """Whether the whole pasted fg lies within the bg (nothing of it is cut off)."""
        top, left, h, w = self.box(fg_shape, bg_shape)
        return top >= 0 and left >= 0 and top + h <= bg_shape[0] and left + w <= bg_shape[1]


def sample_placement(
    rng: np.random.Generator,
    fg_shape: Shape,
    bg_shape: Shape,
    scale: Range = (0.3, 0.75),
    flip: bool | None = None,
) -> Placement:
    """A random placement that keeps the whole foreground inside the background, for any shapes.

    ``scale`` is the range of fg height / bg height (above 1 means the full height); ``flip=None``
    draws the flip at random. Sizes are clamped after rounding, so any cut-out fits any background,
    and a placement that already fitted is drawn exactly as before (same draws, same result).
    """
    check_scale(scale)
    bg_h, bg_w = bg_shape[:2]
    s = float(rng.uniform(*scale))
    h, w = Placement(0, 0, s).fg_size(fg_shape, bg_h)
    if w > bg_w:  # very wide cut-out: shrink until it fits
        s *= bg_w / w
        h, w = Placement(0, 0, s).fg_size(fg_shape, bg_h)
    if h > bg_h or w > bg_w:  # rounding (or a scale above 1) left it too big: the largest that fits
        h, w = fit_size(fg_shape, bg_shape, h)
        s = h / bg_h
    x = int(rng.integers(w // 2, bg_w - (w - w // 2) + 1))
    y = int(rng.integers(h, bg_h + 1))
    f = bool(rng.integers(2)) if flip is None else flip
    placement = Placement(x, y, round(s, 6), f)
    if not placement.inside(fg_shape, bg_shape):  # the stored 6-digit scale rounds to another size
        placement = Placement(x, y, round(h / bg_h, 6), f)  # gives (h, w), drawn to fit
    return placement


def fit_size(fg_shape: Shape, bg_shape: Shape, height: int) -> tuple[int, int]:
    """The largest ``(h, w)`` with ``h <= height`` that ``Placement.fg_size`` gives (for the scale
    ``h / bg_h``) and that fits the background: the aspect ratio is kept down to 1 px tall."""
    bg_h, bg_w = bg_shape[:2]
    fg_h, fg_w = fg_shape[:2]
    h = max(1, min(height, bg_h, int((bg_w + 0.5) * fg_h / fg_w) + 1))  # near the widest that fits
    while h > 1 and round(fg_w * h / fg_h) > bg_w:  # the same rounding as fg_size
        h -= 1
    return Placement(0, 0, h / bg_h).fg_size(fg_shape, bg_h, bg_w)


def check_scale(scale: Range, name: str = "scale") -> None:
    """A ``ValueError`` unless ``scale`` is a range ``0 < low <= high`` of fg height / bg height."""
    lo, hi = scale
    if not 0 < lo <= hi < float("inf"):
        raise ValueError(f"{name}: expected a range 0 < low <= high of fg / bg height, got {scale}")


def largest_placement(
    rng: np.random.Generator, fg_shape: Shape, bg_shape: Shape, scale: Range, flip: bool | None
) -> Placement:
    """A random position for the fg at the largest size ``scale`` allows: always the same size."""
    top = max(round(scale[1], 6), 1e-6)  # 6 digits, as a placement keeps them: no other rounding
    return sample_placement(rng, fg_shape, bg_shape, (top, top), flip)


def check_placeable(fg: np.ndarray, bg_shape: Shape, scale: Range, name: str) -> None:
    """An ``UnplaceableError`` naming ``name`` when the visible pixels of ``fg`` (h, w, 4) vanish
    even at the largest size ``scale`` allows (either way round): such a cut-out gives empty masks.
    One that passes always gets a non-empty mask from ``place_and_paste``."""
    for flip in (False, True):
        placement = largest_placement(np.random.default_rng(0), fg.shape, bg_shape, scale, flip)
        if not fg_layer(fg, placement, bg_shape)[1].any():
            h, w = placement.fg_size(fg.shape, *bg_shape[:2])
            raise UnplaceableError(
                f"{name}: its visible pixels vanish when it is shrunk to {h}x{w} px, the largest "
                f"that scale {tuple(scale)} allows on a {bg_shape[0]}x{bg_shape[1]} background; "
                "crop its transparent margin, or use larger images or scales"
            )


def place_and_paste(
    rng: np.random.Generator, bg: np.ndarray, fg: np.ndarray, scale: Range, flip: bool | None = None
) -> tuple[Placement, np.ndarray, np.ndarray]:
    """``sample_placement`` and ``paste``: ``(placement, fg_bg, mask)``, the mask never empty for a
    cut-out that passed ``check_placeable``. When a sparse cut-out shrinks until its visible pixels
    average away, it goes at the largest size instead (a sample with an empty mask teaches nothing)."""
    placement = sample_placement(rng, fg.shape, bg.shape, scale, flip)
    fg_bg, mask = paste(bg, fg, placement)
    if not mask.any():
        placement = largest_placement(rng, fg.shape, bg.shape, scale, flip)
        fg_bg, mask = paste(bg, fg, placement)
    return placement, fg_bg, mask


def fg_layer(
    fg: np.ndarray, placement: Placement, bg_shape: tuple[int, ...]
) -> tuple[np.ndarray, np.ndarray]:
    """The foreground resized, mirrored and positioned on a transparent canvas the size of the bg.

    Returns ``rgb`` float32 ``(H, W, 3)`` in [0, 255] and ``alpha`` float32 ``(H, W)`` in [0, 1], with
    alpha below ``ALPHA_FLOOR`` cleared. Parts that fall outside the bg are cut off.
    """
    bg_h, bg_w = bg_shape[:2]
    top, left, h, w = placement.box(fg.shape, bg_shape)
    im = Image.fromarray(fg, "RGBA")
    if placement.flip:
        im = im.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    if (w, h) != im.size:
        im = im.resize((w, h), Image.Resampling.LANCZOS)  # Pillow premultiplies alpha for RGBA
    small = np.asarray(im)
    rgb = np.zeros((bg_h, bg_w, 3), np.float32)
    alpha = np.zeros((bg_h, bg_w), np.float32)
    y0, y1 = max(top, 0), min(top + h, bg_h)
    x0, x1 = max(left, 0), min(left + w, bg_w)
    if y0 < y1 and x0 < x1:
        crop = small[y0 - top : y1 - top, x0 - left : x1 - left]
        rgb[y0:y1, x0:x1] = crop[..., :3]
        a = crop[..., 3]
        alpha[y0:y1, x0:x1] = np.where(a < ALPHA_FLOOR, 0, a) / 255.0
    return rgb, alpha


def blend(bg: np.ndarray, rgb: np.ndarray, alpha: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Alpha-blend a layer over ``bg``: ``(fg_bg, mask)``; pixels with alpha 0 keep bg's exact bytes."""
    mask = alpha > 0
    out = bg.copy()
    a = alpha[mask][:, None]
    out[mask] = np.clip(np.rint(bg[mask] * (1.0 - a) + rgb[mask] * a), 0, 255).astype(np.uint8)
    return out, mask.astype(np.uint8)


def paste(
    bg: np.ndarray, fg: np.ndarray, placement: Placement, visible: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Paste ``fg`` (h, w, 4) onto ``bg`` (H, W, 3) at ``placement``: returns ``(fg_bg, mask)``.

    ``visible`` (H, W) bool, optional: where the foreground is not hidden by something in front of it
    (synth/scenes.py derives it from depth); the mask then covers the visible part only.
    """
    if bg.ndim != 3 or bg.shape[2] != 3 or bg.dtype != np.uint8:
        raise ValueError(f"bg: expected uint8 (H, W, 3), got {bg.dtype} {bg.shape}")
    if fg.ndim != 3 or fg.shape[2] != 4 or fg.dtype != np.uint8:
        raise ValueError(f"fg: expected uint8 (h, w, 4), got {fg.dtype} {fg.shape}")
    rgb, alpha = fg_layer(fg, placement, bg.shape)
    if visible is not None:
        alpha = alpha * visible
    return blend(bg, rgb, alpha)
