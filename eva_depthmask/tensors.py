"""Torch basics every layer may use: the device to run on, a raw numpy sample as tensors, and the
check that a prediction and its target have one shape.

Also which samples of a batch have depth (``depth_flags``): photos labelled by no teacher have none.

It sits in the base layer, beside config, storage and composite, so that data (the depth teachers),
augment, losses and metrics, training and evaluation share one version of each.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
from torch import Tensor


def resolve_device(device: str | torch.device | None = None) -> torch.device:
    """``device`` as a ``torch.device``; None or ``"auto"``: the GPU when there is one, else the CPU.

    A CUDA device asked for where there is none is a ``RuntimeError`` here, not at the first copy.
    """
    if device is None or device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(device)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise RuntimeError(f"device {str(device)!r}: no CUDA device is available")
    return device


def sample_tensors(raw: dict, image: Callable[[Tensor], Tensor] | None = None) -> dict:
    """A raw numpy sample (``bg``/``fg_bg`` uint8 ``(H, W, 3)``, ``mask`` ``(H, W)``, ``depth``
    ``(H, W)`` in [0, 1], ``id``) as tensors: images ``(3, H, W)``, ``mask`` and ``depth``
    ``(1, H, W)``, depth float32, ``id`` as it was.

    ``image`` maps each uint8 ``(3, H, W)`` image to what a model reads (float in [0, 1], or
    normalised), and the mask then becomes float32 too; without it images and mask stay uint8.
    """
    out = {}
    for key in ("bg", "fg_bg"):
        # uint8 to CHW first: converting the strided HWC view to float is ~3x slower
        img = torch.from_numpy(np.ascontiguousarray(raw[key])).permute(2, 0, 1).contiguous()
        out[key] = img if image is None else image(img)
    mask = torch.from_numpy(np.ascontiguousarray(raw["mask"])).unsqueeze(0)
    out["mask"] = mask if image is None else mask.float()
    out["depth"] = torch.from_numpy(np.ascontiguousarray(raw["depth"])).float().unsqueeze(0)
    out["id"] = raw["id"]
    return out


def check_pair(pred: Tensor, true: Tensor, what: str) -> None:
    """A ``ValueError`` naming ``what`` (mask, depth) unless ``pred`` and ``true`` are both
    ``(B, 1, H, W)`` of one shape: a broadcast would silently score the wrong pixels."""
    if pred.shape != true.shape or pred.dim() != 4:
        raise ValueError(
            f"{what}: prediction {tuple(pred.shape)} and target {tuple(true.shape)}: expected "
            "the same shape (B, 1, H, W)"
        )


def depth_flags(has_depth: Tensor | None, batch: int) -> Tensor | None:
    """``has_depth`` as a bool ``(B,)`` tensor on the CPU; None when every sample has depth (None
    given, or all True), so callers keep the computation of a batch that is all depth."""
    if has_depth is None:
        return None
    flags = torch.as_tensor(has_depth).detach().reshape(-1).to("cpu", torch.bool)
    if flags.shape != (batch,):
        raise ValueError(f"has_depth: expected {batch} flags (one a sample), got {flags.numel()}")
    return None if bool(flags.all()) else flags
