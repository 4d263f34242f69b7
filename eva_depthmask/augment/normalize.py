"""The sample contract, and conversion between raw numpy samples and normalised tensors.

A raw sample is numpy (``bg``, ``fg_bg`` uint8 ``(H, W, 3)``, ``mask`` uint8 ``(H, W)`` in {0, 1},
``depth`` float32 ``(H, W)`` in [0, 1]); a tensor sample is ``bg``, ``fg_bg`` float32 ``(3, H, W)``
normalised with the dataset's mean/std, ``mask`` and ``depth`` float32 ``(1, H, W)`` (see quartet.py).
"""

from __future__ import annotations

import numpy as np
import torch

from ..tensors import sample_tensors

KEYS = ("bg", "fg_bg", "mask", "depth", "id")
# Used when no dataset stats are given: the usual photo statistics, and what pretrained encoders expect.
IMAGENET_STATS = {"mean": [0.485, 0.456, 0.406], "std": [0.229, 0.224, 0.225]}


def check_sample(sample: dict) -> dict:
    """A raw sample checked against the contract; returns it with mask as uint8, depth as float32.

    Raises ``ValueError`` naming the key for: a missing key, an image that is not uint8
    ``(H, W, 3)``, arrays of different sizes, a mask not in {0, 1}, depth outside [0, 1] or NaN.
    """
    if not isinstance(sample, dict):
        raise ValueError(f"sample: expected a dict with keys {KEYS}, got {type(sample).__name__}")
    missing = [k for k in KEYS if k not in sample]
    if missing:
        raise ValueError(f"sample {sample.get('id', '?')!r}: missing key(s) {missing}")
    name = f"sample {sample['id']!r}"
    hw = getattr(sample["bg"], "shape", ())[:2]
    for key, channels in (("bg", (3,)), ("fg_bg", (3,)), ("mask", ()), ("depth", ())):
        arr = sample[key]
        if len(hw) != 2 or not isinstance(arr, np.ndarray) or arr.shape != (*hw, *channels):
            want = "(H, W, 3)" if channels else "(H, W)"
            raise ValueError(
                f"{name}: '{key}' must be {want} with bg's (H, W), got {_describe(arr)}"
            )
        if channels and arr.dtype != np.uint8:
            raise ValueError(f"{name}: '{key}' must be uint8, got {_describe(arr)}")
    mask = sample["mask"]
    if mask.dtype.kind not in "biu" or (mask.size and (mask.min() < 0 or mask.max() > 1)):
        raise ValueError(f"{name}: 'mask' must hold only 0 and 1, got {_describe(mask)}")
    depth = sample["depth"]
    lo, hi = (float(depth.min()), float(depth.max())) if depth.size else (0.0, 0.0)
    if depth.dtype.kind != "f" or not (lo >= 0.0 and hi <= 1.0):  # NaN fails both comparisons
        raise ValueError(
            f"{name}: 'depth' must be float in [0, 1], got {depth.dtype} in [{lo}, {hi}]"
        )
    out = dict(sample)
    out["mask"] = mask.astype(np.uint8, copy=False)
    out["depth"] = depth.astype(np.float32, copy=False)
    return out


def check_stats(stats: dict | None) -> tuple[np.ndarray, np.ndarray]:
    """``(mean, std)`` float32 ``(3,)`` in [0, 1] units from a stats.json dict; None -> ImageNet's."""
    stats = IMAGENET_STATS if stats is None else stats
    try:
        mean = np.asarray(stats["mean"], np.float32).reshape(3)
        std = np.asarray(stats["std"], np.float32).reshape(3)
    except (KeyError, TypeError, ValueError) as e:
        raise ValueError(
            f"stats: expected {{'mean': [r, g, b], 'std': [r, g, b]}}, got {stats!r}"
        ) from e
    if not (np.isfinite(mean).all() and (std > 0).all()):
        raise ValueError(f"stats: mean must be finite and std positive, got {stats!r}")
    return mean, std


def to_tensor_sample(raw: dict, stats: dict | None = None) -> dict:
    """A raw sample as a tensor sample at its own size, without augmentation (see module doc)."""
    return normalized_tensors(check_sample(raw), *check_stats(stats))


def norm_constants(
    mean: np.ndarray, std: np.ndarray, device: torch.device | str | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """``(scale, shift)`` float32 ``(3, 1, 1)`` on ``device`` for ``normalize``, from ``mean``,
    ``std``: float32 ``(3,)`` in [0, 1] units (``check_stats``). Made once per epoch by fit(): a
    host-to-GPU copy per batch would wait for the GPU each time."""
    scale = torch.from_numpy(1.0 / (255.0 * std)).view(3, 1, 1).to(device)
    shift = torch.from_numpy(mean / std).view(3, 1, 1).to(device)
    return scale, shift


def normalize(x: torch.Tensor, scale: torch.Tensor, shift: torch.Tensor) -> torch.Tensor:
    """uint8 images ``(3, H, W)`` or ``(B, 3, H, W)`` in 0..255 to float32 ``(x / 255 - mean) / std``
    on ``x``'s device, with ``norm_constants`` there."""
    return x.float().mul_(scale).sub_(shift)  # in place on the float copy


def denormalize(x: torch.Tensor | np.ndarray, stats: dict | None = None) -> torch.Tensor:
    """Normalised images ``(3, H, W)`` or ``(B, 3, H, W)`` back to float in [0, 1] for display."""
    x = torch.as_tensor(x)
    if x.ndim not in (3, 4) or x.shape[-3] != 3:
        raise ValueError(f"denormalize: expected (3, H, W) or (B, 3, H, W), got {tuple(x.shape)}")
    mean, std = (torch.from_numpy(v).to(x.device).view(3, 1, 1) for v in check_stats(stats))
    return (x.float() * std + mean).clamp_(0.0, 1.0)


def to_numpy_sample(sample: dict, stats: dict | None = None) -> dict:
    """A tensor sample back to the raw layout (uint8 images, ``(H, W)`` mask/depth) for display."""
    hw = tuple(sample["bg"].shape[-2:])
    out = {"id": sample.get("id", "")}
    for key in ("bg", "fg_bg"):
        img = denormalize(sample[key], stats).permute(1, 2, 0).numpy()
        out[key] = np.rint(img * 255.0).astype(np.uint8)
    out["mask"] = np.rint(torch.as_tensor(sample["mask"]).reshape(hw).numpy()).astype(np.uint8)
    out["depth"] = torch.as_tensor(sample["depth"]).reshape(hw).float().numpy()
    return out


def normalized_tensors(raw: dict, mean: np.ndarray, std: np.ndarray) -> dict:
    """A raw sample as a tensor sample, its images normalised with ``mean``, ``std`` (float32 ``(3,)``
    in [0, 1] units)."""
    scale, shift = norm_constants(mean, std)
    return sample_tensors(raw, lambda image: normalize(image, scale, shift))


def _describe(x: object) -> str:
    if isinstance(x, np.ndarray):
        return f"{x.dtype} {x.shape}"
    return type(x).__name__
