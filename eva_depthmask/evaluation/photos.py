"""Masks scored at the photo's own resolution, as a user meets them: a ``Predictor`` (network, then
refine.py) on pairs of photos, beside differencing, under re-captured backgrounds and JPEG files.

Scores are per pair, then averaged over pairs: mask IoU, and the boundary F-score of DAVIS (Perazzi
et al., 2016): the outline's precision and recall, a pixel of one outline counting as found when
the other outline passes within ``tolerance`` px of it (by default 0.8 % of the image diagonal).
"""

from __future__ import annotations

import io
import math
from collections.abc import Callable

import numpy as np
from PIL import Image
from scipy import ndimage

from ..augment.quartet import get_transforms
from ..config import robustness_preset
from .refine import difference

LEVELS = ("none", "mild", "strong")
FORMATS = ("png", "jpg")
JPEG_QUALITY = 90  # what users' composites are saved with (course datasets, phone exports)
THRESHOLDS = np.arange(1, 61)  # uint8 levels tried for the differencing threshold


def mask_iou(pred: np.ndarray, true: np.ndarray) -> float:
    """IoU of two bool ``(H, W)`` masks; 1.0 when both are empty."""
    union = np.logical_or(pred, true).sum()
    return 1.0 if union == 0 else float(np.logical_and(pred, true).sum() / union)


def outline(mask: np.ndarray) -> np.ndarray:
    """The pixels of a bool ``(H, W)`` mask that touch its outside (4-neighbourhood)."""
    return mask & ~ndimage.binary_erosion(mask, border_value=0)


def boundary_f(pred: np.ndarray, true: np.ndarray, tolerance: float | None = None) -> float:
    """Boundary F-score of two bool ``(H, W)`` masks; ``tolerance`` in px (default 0.8 % of the
    diagonal, at least 1). 1.0 when both are empty, 0.0 when only one is."""
    if tolerance is None:
        tolerance = max(1.0, 0.008 * math.hypot(*true.shape))
    pred_edge, true_edge = outline(pred), outline(true)
    if not pred_edge.any() or not true_edge.any():
        return float(pred_edge.any() == true_edge.any())
    # distance of every pixel to the nearest outline pixel of the other mask
    to_true = ndimage.distance_transform_edt(~true_edge)
    to_pred = ndimage.distance_transform_edt(~pred_edge)
    precision = float((to_true[pred_edge] <= tolerance).mean())
    recall = float((to_pred[true_edge] <= tolerance).mean())
    return 0.0 if precision + recall == 0 else 2 * precision * recall / (precision + recall)


def jpeg(image: np.ndarray, quality: int = JPEG_QUALITY) -> np.ndarray:
    """uint8 ``(H, W, 3)`` image after a round trip through a JPEG file of ``quality``."""
    buf = io.BytesIO()
    Image.fromarray(image).save(buf, "JPEG", quality=quality)
    return np.asarray(Image.open(buf).convert("RGB"))


def photo_pairs(dataset, level: str, image_format: str, max_samples: int | None = None):
    """``(id, bg, fg_bg, true_mask)`` of each sample of ``dataset`` (a QuartetDataset) at its own
    size: both photos saved in ``image_format`` ("png" or "jpg"), then bg re-captured at ``level``
    (robustness_preset: moved, relit, blurred, noised, re-compressed; shadow on fg_bg), seeded by id."""
    if image_format not in FORMATS:
        raise ValueError(f"image_format: expected one of {FORMATS}, got {image_format!r}")
    n = len(dataset) if max_samples is None else min(max_samples, len(dataset))
    recaptures = {}  # one transform per image size
    for i in range(n):
        raw = dataset.raw(i)
        bg, fg_bg, mask = raw["bg"], raw["fg_bg"], raw["mask"]
        if image_format == "jpg":
            bg, fg_bg = jpeg(bg), jpeg(fg_bg)
        size = fg_bg.shape[0]
        if size not in recaptures:
            preset = robustness_preset(level)
            recaptures[size] = get_transforms("test", size, preset, normalize=False)
        recapture = recaptures[size]
        depth = np.zeros(mask.shape, np.float32)  # untouched by the background's re-capture
        out = recapture.augment(
            {"bg": bg, "fg_bg": fg_bg, "mask": mask, "depth": depth, "id": raw["id"]}
        )
        yield raw["id"], out["bg"], out["fg_bg"], out["mask"] > 0


def fit_photo_threshold(dataset, image_format: str, max_samples: int | None = 100) -> float:
    """The differencing threshold (uint8 levels) with the best mean IoU on ``dataset``'s clean
    pairs in ``image_format``: the baseline at its best, chosen on data that is not scored."""
    scores = np.zeros(len(THRESHOLDS))
    for _, bg, fg_bg, true in photo_pairs(dataset, "none", image_format, max_samples):
        diff = difference(bg, fg_bg)
        scores += [mask_iou(diff > t, true) for t in THRESHOLDS]
    return float(THRESHOLDS[int(scores.argmax())])


def score_photos(
    predict: Callable[[np.ndarray, np.ndarray], dict],
    dataset,
    threshold: float,
    level: str = "none",
    image_format: str = "jpg",
    max_samples: int | None = None,
) -> dict:
    """Mean per-pair scores of ``predict`` (a ``Predictor``: ``(bg, fg_bg) -> {"mask": ...}``) and
    of differencing at ``threshold`` on ``dataset``'s pairs at ``level`` in ``image_format``:
    ``{"mask_iou", "boundary_f", "difference_iou", "difference_boundary_f", "samples"}``."""
    scores: dict[str, list[float]] = {
        k: [] for k in ("mask_iou", "boundary_f", "difference_iou", "difference_boundary_f")
    }
    for _, bg, fg_bg, true in photo_pairs(dataset, level, image_format, max_samples):
        pred = np.asarray(predict(bg, fg_bg)["mask"], bool)
        by_difference = difference(bg, fg_bg) > threshold
        scores["mask_iou"].append(mask_iou(pred, true))
        scores["boundary_f"].append(boundary_f(pred, true))
        scores["difference_iou"].append(mask_iou(by_difference, true))
        scores["difference_boundary_f"].append(boundary_f(by_difference, true))
    n = len(scores["mask_iou"])
    if n == 0:
        raise ValueError("dataset: no samples to score")
    return {**{k: float(np.mean(v)) for k, v in scores.items()}, "samples": n}
