"""Decoding masks and depth maps as students saved them (course datasets, course.py).

Masks: re-binarised at mid-grey (JPEG masks come back with noise around 0 and 255); a mask stored as
0/1 instead of 0/255 is read as such; a mask with many grey pixels (a soft matte) is thresholded and
reported. Depth: 8-bit grey or 3-channel 8-bit (JPEG) is value/255 (0 near, 255 far); anything else is
normalised per file and reported by name: 16-bit holding 0-255 (/255), 16-bit reaching only 4095 or less
(divided by its maximum), full 16-bit (/65535), float TIFF in [0, 1] (as is) or in another range
(rescaled by its range), colour-mapped 8-bit (mean of the channels, which cannot undo a colour map).
"""

from __future__ import annotations

import io
import warnings

import numpy as np
from PIL import Image, UnidentifiedImageError

from ..storage import DatasetError, decode_image

NOT_BINARY = 0.02  # a mask with more grey pixels (32..223) than this fraction is reported
COLOUR_SPREAD = 8  # mean max-min over the channels, in levels, above which a depth map is coloured


def read_mask(data: bytes, name: str) -> tuple[np.ndarray, str | None, str | None]:
    """uint8 ``(H, W)`` in {0, 1}, and a (kind, message) note when the file was not a clean 0/255."""
    m = decode_image(data, name, "L")
    if m.max(initial=0) == 1:
        return m, "0/1 mask", "mask stored as 0/1 (not 0/255): read as such"
    grey = float(((m > 31) & (m < 224)).mean())
    mask = (m > 127).astype(np.uint8)
    if grey > NOT_BINARY:
        return (
            mask,
            "not binary",
            f"mask is not binary ({grey:.0%} grey pixels): thresholded at 128",
        )
    return mask, None, None


def read_depth(data: bytes, name: str) -> tuple[np.ndarray, str | None, str | None]:
    """float32 ``(H, W)`` in [0, 1], and a (kind, message) note unless it was plain 8-bit depth."""
    try:
        with Image.open(io.BytesIO(data)) as im:
            im.load()
            mode = im.mode
            arr = np.asarray(im.convert("RGB") if mode == "P" else im)
    except (UnidentifiedImageError, OSError, SyntaxError) as e:
        raise DatasetError(f"{name}: unreadable or truncated depth map ({e})") from e
    if arr.dtype == np.uint8:
        if arr.ndim == 2:
            return arr.astype(np.float32) / 255, None, None
        rgb = arr[..., :3].astype(np.float32)
        spread = float((rgb.max(2) - rgb.min(2)).mean())
        depth = rgb.mean(2) / 255
        if spread > COLOUR_SPREAD:
            return (
                depth,
                "colour",
                (
                    f"colour depth map (channels differ by {spread:.0f} levels on average): read as "
                    "the mean of its channels; a colour-mapped depth cannot be read back exactly"
                ),
            )
        return depth, None, None
    arr = arr.astype(np.float64)
    if arr.ndim == 3:
        arr = arr[..., :3].mean(2)
    if not np.isfinite(arr).all():
        arr = np.nan_to_num(arr, nan=0.0, posinf=0.0, neginf=0.0)
    lo, hi = float(arr.min(initial=0)), float(arr.max(initial=0))
    if mode in ("I;16", "I;16B", "I") and lo >= 0 and hi <= 65535:
        if hi <= 255:
            return (
                (arr / 255).astype(np.float32),
                "16-bit 0-255",
                "16-bit depth map holding only 0-255: read as value/255",
            )
        if hi <= 4095:
            return (
                (arr / hi).astype(np.float32),
                "16-bit low",
                f"16-bit depth map reaching only {hi:.0f}: divided by its maximum",
            )
        return (arr / 65535).astype(np.float32), "16-bit", "16-bit depth map: read as value/65535"
    if lo >= 0 and hi <= 1:
        return arr.astype(np.float32), "float 0-1", "float depth map in [0, 1]: used as is"
    scaled = arr / hi if lo >= 0 else (arr - lo) / max(hi - lo, 1e-12)
    return (
        scaled.astype(np.float32),
        "float",
        f"depth map in [{lo:.3g}, {hi:.3g}]: rescaled to [0, 1] by its range",
    )


class CourseDecoder:
    """Reads a course dataset's masks and depth maps; warns once per kind of unusual file (naming the
    first) and, with ``record``, keeps every note in ``notes`` as ``(role, file, message)``."""

    def __init__(self, invert_depth: bool = False, record: bool = False):
        self.invert_depth, self.record = invert_depth, record
        self.seen: set[str] = set()
        self.notes: list[tuple[str, str, str]] = []

    def mask(self, data: bytes, name: str) -> np.ndarray:
        mask, kind, message = read_mask(data, name)
        self._note("mask", kind, message, name)
        return mask

    def depth(self, data: bytes, name: str) -> np.ndarray:
        depth, kind, message = read_depth(data, name)
        self._note("depth", kind, message, name)
        return 1 - depth if self.invert_depth else depth

    def _note(self, role: str, kind: str | None, message: str | None, name: str) -> None:
        if kind is None:
            return
        if self.record:
            self.notes.append((role, name, message))
        elif kind not in self.seen:
            self.seen.add(kind)
            warnings.warn(
                f"{name}: {message}. Further files like it are read the same way without a "
                "warning; validate_dataset lists them all",
                stacklevel=3,
            )
