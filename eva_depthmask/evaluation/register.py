"""Bring a second background shot onto the composite before the two are subtracted.

A background photographed again is moved a little (the camera was bumped), relit and re-encoded.
Subtracting it from fg_bg then lights up every edge and the whole frame. Two classic steps undo most
of that, using only pixels the network is sure are background:

- an affine warp found by ECC maximisation (Evangelidis and Psarakis, 2008; OpenCV's
  ``findTransformECC``): shift, rotation and scale of the bg shot onto fg_bg;
- per-channel gain and offset (least squares): the exposure and white balance of the bg shot onto
  fg_bg's.

Images are uint8 ``(H, W, 3)``; ``outside`` is bool ``(H, W)``, True where there is surely no object.
"""

from __future__ import annotations

import cv2
import numpy as np

ECC_ITERATIONS = 60
ECC_EPS = 1e-5
MIN_PIXELS = 256  # fewer sure-background pixels than this: nothing to fit to


def align(bg: np.ndarray, fg_bg: np.ndarray, outside: np.ndarray) -> np.ndarray:
    """``bg`` warped onto ``fg_bg`` by the affine ECC finds on the ``outside`` pixels; ``bg`` itself
    when ECC does not converge (a featureless or too different shot)."""
    if outside.sum() < MIN_PIXELS:
        return bg
    template = cv2.cvtColor(fg_bg, cv2.COLOR_RGB2GRAY).astype(np.float32)
    moving = cv2.cvtColor(bg, cv2.COLOR_RGB2GRAY).astype(np.float32)
    warp = np.eye(2, 3, dtype=np.float32)
    criteria = (cv2.TERM_CRITERIA_EPS | cv2.TERM_CRITERIA_COUNT, ECC_ITERATIONS, ECC_EPS)
    try:
        _, warp = cv2.findTransformECC(
            template, moving, warp, cv2.MOTION_AFFINE, criteria, outside.astype(np.uint8), 5
        )
    except cv2.error:  # did not converge: keep the shot as it is
        return bg
    h, w = fg_bg.shape[:2]
    flags = cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP
    return cv2.warpAffine(bg, warp, (w, h), flags=flags, borderMode=cv2.BORDER_REFLECT_101)


def match_exposure(bg: np.ndarray, fg_bg: np.ndarray, outside: np.ndarray) -> np.ndarray:
    """``bg`` with each channel mapped by the gain and offset that best fit ``fg_bg`` on the
    ``outside`` pixels (least squares); ``bg`` itself with too few of them."""
    if outside.sum() < MIN_PIXELS:
        return bg
    out = np.empty_like(bg)
    for c in range(3):
        x = bg[..., c][outside].astype(np.float64)
        y = fg_bg[..., c][outside].astype(np.float64)
        gain, offset = np.polyfit(x, y, 1) if x.std() > 1e-6 else (1.0, float(y.mean() - x.mean()))
        out[..., c] = np.clip(np.rint(gain * bg[..., c] + offset), 0, 255)
    return out


def register(bg: np.ndarray, fg_bg: np.ndarray, outside: np.ndarray) -> np.ndarray:
    """``bg`` aligned (``align``), then its exposure matched (``match_exposure``) to ``fg_bg``."""
    moved = align(bg, fg_bg, outside)
    return match_exposure(moved, fg_bg, outside)
