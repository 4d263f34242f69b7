"""Paste an RGBA foreground cut-out onto a background: ``fg_bg`` and ``mask`` (numpy + Pillow).

The rule that everything downstream relies on: ``fg_bg`` equals ``bg`` exactly wherever ``mask`` is 0,
and ``mask`` is 1 exactly where the pasted foreground's (visible) alpha is above zero. Alpha below
``ALPHA_FLOOR`` is matting noise (real cut-outs are full of it) and is cleared before both, so the two
statements hold together.

Images in this module are uint8 arrays: bg and fg_bg ``(H, W, 3)``, fg ``(h, w, 4)``, mask ``(H, W)``
in {0, 1}. Placements are in the pixels of the background they are pasted on.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

ALPHA_FLOOR = 8  # uint8 alpha below this is treated as fully transparent
IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".webp", ".tif", ".tiff")


class ImageError(ValueError):
    """An input image that cannot be used; the message names the file and the problem."""


@dataclass(frozen=True)
class Placement:
    """Where a foreground goes: its bottom-centre pixel ``(x, y)``, its height as a fraction of the
    background's height, and whether it is mirrored left-right. The bottom centre is where a standing
    object touches the floor, which is what perspective depends on."""

    x: int
    y: int
    scale: float
    flip: bool = False

    def fg_size(self, fg_shape: tuple[int, ...], bg_height: int) -> tuple[int, int]:
        """``(height, width)`` in pixels of the fg once pasted, keeping its aspect ratio."""
        h = max(1, round(self.scale * bg_height))
        w = max(1, round(fg_shape[1] * h / fg_shape[0]))
        return h, w


# ---------------------------------------------------------------------------------------------------
# Reading what users actually have


def open_image(path: str | Path) -> Image.Image:
    """Open and fully decode an image, turning every failure into an ``ImageError`` naming the file."""
    path = Path(path)
    if not path.is_file():
        raise ImageError(f"{path}: no such file")
    try:
        with Image.open(path) as im:
            im.load()  # decode now: a truncated file fails here, not later inside a DataLoader
            return im.copy()
    except (UnidentifiedImageError, OSError, SyntaxError) as e:
        raise ImageError(f"{path}: unreadable or truncated image ({e})") from e


def to_rgba(im: Image.Image | np.ndarray, name: str = "foreground") -> np.ndarray:
    """Any PIL image (RGBA, LA, P with palette transparency, RGB, L) or array as uint8 ``(h, w, 4)``."""
    if isinstance(im, np.ndarray):
        im = _array_to_image(im, name)
    if im.mode == "P" or "transparency" in im.info:
        im = im.convert("RGBA")  # palette transparency lives in im.info; convert applies it
    if im.mode != "RGBA":
        im = im.convert("RGBA")
    return np.asarray(im, dtype=np.uint8).copy()


def to_rgb(im: Image.Image | np.ndarray, name: str = "image") -> np.ndarray:
    """Any PIL image or array as uint8 ``(H, W, 3)``; transparency is composited onto black."""
    if isinstance(im, np.ndarray):
        im = _array_to_image(im, name)
    if im.mode != "RGB":
        im = (
            im.convert("RGBA").convert("RGB")
            if im.mode in ("P", "LA", "RGBA")
            else im.convert("RGB")
        )
    return np.asarray(im, dtype=np.uint8).copy()


def load_fg(path: str | Path) -> np.ndarray:
    """A foreground cut-out as uint8 ``(h, w, 4)``; refuses one without any transparency."""
    fg = to_rgba(open_image(path), str(path))
    check_fg(fg, str(path))
    return fg


def load_bg(path: str | Path, size: int) -> np.ndarray:
    """A background photo as uint8 ``(size, size, 3)``: centre-cropped to a square, then resized."""
    return square_resize(to_rgb(open_image(path), str(path)), size)


def check_fg(fg: np.ndarray, name: str) -> None:
    """A cut-out must have some transparent pixels and some opaque ones; warn when it is nearly opaque."""
    alpha = fg[..., 3]
    visible = alpha >= ALPHA_FLOOR
    if visible.all():
        raise ImageError(
            f"{name}: foreground has no transparency (every pixel is opaque); "
            "expected a cut-out with a transparent background (PNG with alpha)"
        )
    if not visible.any():
        raise ImageError(f"{name}: foreground is fully transparent; nothing to paste")
    if visible.mean() > 0.95:
        warnings.warn(
            f"{name}: foreground is {visible.mean():.0%} opaque; is it really a cut-out?",
            stacklevel=2,
        )


def list_images(folder: str | Path, what: str) -> list[Path]:
    """Image files of a folder, sorted by name, any mix of extensions and cases."""
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"{folder}: {what} folder does not exist")
    files = sorted(
        p for p in folder.iterdir() if p.suffix.lower() in IMAGE_EXTENSIONS and p.is_file()
    )
    if not files:
        raise ImageError(f"{folder}: no {what} images (looked for {', '.join(IMAGE_EXTENSIONS)})")
    return files


def square_resize(img: np.ndarray, size: int) -> np.ndarray:
    """Centre-crop an ``(H, W, C)`` uint8 image to a square and resize it to ``(size, size, C)``."""
    h, w = img.shape[:2]
    side = min(h, w)
    top, left = (h - side) // 2, (w - side) // 2
    img = img[top : top + side, left : left + side]
    if side == size:
        return np.ascontiguousarray(img)
    return np.asarray(Image.fromarray(img).resize((size, size), Image.Resampling.LANCZOS))


# ---------------------------------------------------------------------------------------------------
# Placing and pasting


def sample_placement(
    rng: np.random.Generator,
    fg_shape: tuple[int, ...],
    bg_shape: tuple[int, ...],
    scale: tuple[float, float] = (0.3, 0.75),
    flip: bool | None = None,
) -> Placement:
    """A random placement that keeps the whole foreground inside the background.

    ``scale`` is the range of fg height / bg height; ``flip=None`` draws the flip at random.
    """
    bg_h, bg_w = bg_shape[:2]
    s = float(rng.uniform(*scale))
    h, w = Placement(0, 0, s).fg_size(fg_shape, bg_h)
    if w > bg_w:  # very wide cut-out: shrink until it fits
        s *= bg_w / w
        h, w = Placement(0, 0, s).fg_size(fg_shape, bg_h)
    x = int(rng.integers(w // 2, bg_w - (w - w // 2) + 1))
    y = int(rng.integers(h, bg_h + 1))
    f = bool(rng.integers(2)) if flip is None else flip
    return Placement(x, y, round(s, 6), f)


def fg_layer(
    fg: np.ndarray, placement: Placement, bg_shape: tuple[int, ...]
) -> tuple[np.ndarray, np.ndarray]:
    """The foreground resized, mirrored and positioned on a transparent canvas the size of the bg.

    Returns ``rgb`` float32 ``(H, W, 3)`` in [0, 255] and ``alpha`` float32 ``(H, W)`` in [0, 1], with
    alpha below ``ALPHA_FLOOR`` cleared. Parts that fall outside the bg are cut off.
    """
    bg_h, bg_w = bg_shape[:2]
    h, w = placement.fg_size(fg.shape, bg_h)
    im = Image.fromarray(fg, "RGBA")
    if placement.flip:
        im = im.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    if (w, h) != im.size:
        im = im.resize((w, h), Image.Resampling.LANCZOS)  # Pillow premultiplies alpha for RGBA
    small = np.asarray(im)
    top, left = placement.y - h, placement.x - w // 2
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


def _array_to_image(arr: np.ndarray, name: str) -> Image.Image:
    if arr.dtype != np.uint8:
        raise ImageError(f"{name}: expected a uint8 array, got {arr.dtype}")
    if arr.ndim == 2:
        return Image.fromarray(arr, "L")
    if arr.ndim == 3 and arr.shape[2] in (3, 4):
        return Image.fromarray(arr, "RGB" if arr.shape[2] == 3 else "RGBA")
    raise ImageError(f"{name}: expected an (H, W), (H, W, 3) or (H, W, 4) array, got {arr.shape}")
