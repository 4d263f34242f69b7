"""Reading the images users actually have: backgrounds and cut-outs in any mode, size and extension.

Palette PNGs with transparency, LA, RGBA, RGB and grey images, and arrays, all become uint8 arrays:
RGB ``(H, W, 3)`` or RGBA ``(h, w, 4)``. Every failure is an ``ImageError`` that names the file.
A cut-out must have transparency; alpha below ``ALPHA_FLOOR`` is matting noise and counts as none.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

ALPHA_FLOOR = 8  # uint8 alpha below this is treated as fully transparent
IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".webp", ".tif", ".tiff")


class ImageError(ValueError):
    """An input image that cannot be used; the message names the file and the problem."""


class UnplaceableError(ImageError):
    """A readable cut-out that cannot be pasted visibly (too small, fully transparent, or its visible
    pixels vanish at every size it may be pasted at): a dataset skips it with a warning."""


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
    """A cut-out must have some transparent pixels and some opaque ones; warn when it is nearly opaque.

    ``ImageError`` when it is not a cut-out at all (no transparency: a photo given by mistake);
    ``UnplaceableError`` when there is nothing to paste (1 px, or fully transparent)."""
    alpha = fg[..., 3]
    visible = alpha >= ALPHA_FLOOR
    if alpha.size < 2:
        raise UnplaceableError(
            f"{name}: a {alpha.shape[0]}x{alpha.shape[1]} px cut-out is too small to be one "
            "(it cannot hold both a transparent and a visible pixel)"
        )
    if visible.all():
        raise ImageError(
            f"{name}: foreground has no transparency (every pixel is opaque); "
            "expected a cut-out with a transparent background (PNG with alpha)"
        )
    if not visible.any():
        raise UnplaceableError(f"{name}: foreground is fully transparent; nothing to paste")
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


def _array_to_image(arr: np.ndarray, name: str) -> Image.Image:
    if arr.dtype != np.uint8:
        raise ImageError(f"{name}: expected a uint8 array, got {arr.dtype}")
    if arr.ndim == 2:
        return Image.fromarray(arr, "L")
    if arr.ndim == 3 and arr.shape[2] in (3, 4):
        return Image.fromarray(arr, "RGB" if arr.shape[2] == 3 else "RGBA")
    raise ImageError(f"{name}: expected an (H, W), (H, W, 3) or (H, W, 4) array, got {arr.shape}")
