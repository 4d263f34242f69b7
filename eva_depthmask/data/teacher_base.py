"""What every depth teacher shares: ``teacher(images) -> depth``, batched, and the mapping of a
teacher's relative inverse depth to our depth (the models themselves are in teachers.py).

A teacher takes uint8 RGB images ``(B, H, W, 3)`` and returns float32 depth ``(B, H, W)`` in [0, 1] at
the input size, 0 = nearest, 1 = farthest (as in every dataset here), in input order, batched, fp16
on CUDA.

Both teachers here (Depth Anything V2 and MiDaS) predict relative *inverse* depth: a disparity-like
value, larger when nearer, known only up to an unknown scale and shift per image. It becomes our depth
per image in three steps (``disparity_to_depth``):

1. clip the disparity to its 1st..99th percentiles (a few wild pixels, sky or specular spots, would
   otherwise set the range) and rescale it to ``n`` in [0, 1], 1 = nearest;
2. spread ``n`` over ``[1/R, 1]`` with ``R = far_near_ratio`` (the assumed ratio of the farthest to
   the nearest depth in a photo; 10 by default, e.g. 0.5 m to 5 m indoors), which keeps the disparity
   away from zero, where ``1/disparity`` explodes;
3. invert it and rescale to [0, 1]: ``depth = (1/s - 1) / (R - 1)``, so the nearest pixels get 0 and
   the farthest 1. ``R -> 1`` tends to the linear ``depth = 1 - n``; ``far_near_ratio=1`` uses that.

An image with a flat disparity (no depth information) gets 0.5 everywhere.
"""

from __future__ import annotations

import abc
import time
import warnings
from typing import Protocol

import numpy as np
import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from ..tensors import resolve_device

CLIP_PERCENTILES = (1.0, 99.0)
COURSE_SAMPLES = 400_000  # the course's dataset: 100 bg x 100 fg x 2 flips x 20 placements
PROBE_SIZE = 224  # px of the random images the no-GPU warning times the teacher on


class TeacherError(RuntimeError):
    """A teacher that cannot be built or run; the message says what to install or fix."""


class Teacher(Protocol):
    """Anything that maps uint8 ``(B, H, W, 3)`` images to float32 depth ``(B, H, W)`` in [0, 1]."""

    def __call__(self, images: np.ndarray) -> np.ndarray: ...


def disparity_to_depth(
    disparity: torch.Tensor,
    size: tuple[int, int] | None = None,
    far_near_ratio: float = 10.0,
    clip: tuple[float, float] = CLIP_PERCENTILES,
) -> torch.Tensor:
    """Relative inverse depth ``(B, h, w)`` -> depth ``(B, H, W)`` in [0, 1], 0 near (module docstring).

    ``size``: ``(H, W)`` to resize to (bilinear, on the disparity) before mapping; None keeps ``(h, w)``.
    """
    if far_near_ratio < 1:
        raise ValueError(f"far_near_ratio: expected >= 1, got {far_near_ratio}")
    d = disparity.float()
    if size is not None and tuple(d.shape[-2:]) != tuple(size):
        d = F.interpolate(d[:, None], size=tuple(size), mode="bilinear", align_corners=False)[:, 0]
    q = torch.tensor([clip[0] / 100, clip[1] / 100], device=d.device)
    # per image: torch.quantile refuses inputs over 2**24 elements, a batch of photos can be larger
    lo, hi = torch.stack([torch.quantile(x.flatten(), q) for x in d], 1)[:, :, None, None]
    flat = (hi - lo) <= 1e-6 * hi.abs().clamp_min(1e-12)
    n = ((d - lo) / (hi - lo).clamp_min(1e-12)).clamp(0, 1)  # 1 = nearest
    if far_near_ratio == 1:
        depth = 1 - n
    else:
        s = 1 / far_near_ratio + (1 - 1 / far_near_ratio) * n
        depth = (1 / s - 1) / (far_near_ratio - 1)
    return torch.where(flat, torch.full_like(depth, 0.5), depth).clamp(0, 1)


def check_images(images: np.ndarray) -> np.ndarray:
    """``images`` if they are uint8 ``(B, H, W, 3)`` with ``B >= 1``; else a ValueError saying so."""
    if not isinstance(images, np.ndarray) or images.dtype != np.uint8:
        got = images.dtype if isinstance(images, np.ndarray) else type(images).__name__
        raise ValueError(f"images: expected a uint8 numpy array (B, H, W, 3), got {got}")
    if images.ndim != 4 or images.shape[-1] != 3 or not images.shape[0]:
        raise ValueError(f"images: expected shape (B, H, W, 3) with B >= 1, got {images.shape}")
    return images


class TorchTeacher(abc.ABC):
    """What both teachers share: device and dtype, batching, progress, disparity -> depth.

    Subclasses implement ``_predict(images) -> disparity (b, h, w)`` on ``self.device``.
    """

    name = "teacher"

    def __init__(self, device, batch_size: int, far_near_ratio: float, fp16: bool, progress: bool):
        self.device = resolve_device(device)
        self.dtype = torch.float16 if fp16 and self.device.type == "cuda" else torch.float32
        if batch_size < 1:
            raise ValueError(f"batch_size: expected >= 1, got {batch_size}")
        self.batch_size, self.far_near_ratio, self.progress = batch_size, far_near_ratio, progress

    def _cpu_warning(self) -> None:
        """On the CPU, time two images and warn with what a full dataset would take."""
        if self.device.type != "cpu":
            return
        probe = np.random.default_rng(0).integers(0, 256, (2, PROBE_SIZE, PROBE_SIZE, 3), np.uint8)
        progress, self.progress = self.progress, False
        rate = images_per_second(self, probe)
        self.progress = progress
        warnings.warn(
            f"{type(self).__name__}: no GPU, running on the CPU at {rate:.2g} images/s here: "
            f"{COURSE_SAMPLES:,} quartets would take about {COURSE_SAMPLES / rate / 3600:,.0f} h. "
            "In Colab: Runtime > Change runtime type > GPU.",
            stacklevel=3,
        )

    @abc.abstractmethod
    def _predict(self, images: np.ndarray) -> torch.Tensor:
        """Relative inverse depth ``(B, h, w)`` of one batch of uint8 ``(B, H, W, 3)`` images, at the
        network's own resolution; each teacher implements it."""

    def _batches(self, images: np.ndarray):
        starts = range(0, len(images), self.batch_size)
        bar = tqdm(
            starts, desc=self.name, unit="batch", disable=not self.progress or len(starts) < 4
        )
        for start in bar:
            with torch.inference_mode():
                yield start, self._predict(images[start : start + self.batch_size])

    def disparity(self, images: np.ndarray) -> np.ndarray:
        """The model's raw relative inverse depth, resized to the input: float32 ``(B, H, W)``."""
        images = check_images(images)
        out = np.empty(images.shape[:3], np.float32)
        for start, disp in self._batches(images):
            d = F.interpolate(
                disp.float()[:, None], size=images.shape[1:3], mode="bilinear", align_corners=False
            )
            out[start : start + len(disp)] = d[:, 0].cpu().numpy()
        return out

    def __call__(self, images: np.ndarray) -> np.ndarray:
        """uint8 ``(B, H, W, 3)`` -> float32 depth ``(B, H, W)`` in [0, 1], 0 = nearest."""
        images = check_images(images)
        out = np.empty(images.shape[:3], np.float32)
        for start, disp in self._batches(images):
            depth = disparity_to_depth(disp, images.shape[1:3], self.far_near_ratio)
            out[start : start + len(disp)] = depth.cpu().numpy()
        return out

    def describe(self) -> dict:
        return {
            "teacher": self.name,
            "device": self.device.type,
            "dtype": str(self.dtype).replace("torch.", ""),
            "far_near_ratio": self.far_near_ratio,
            "clip_percentiles": list(CLIP_PERCENTILES),
            "mapping": "per image: clip disparity to percentiles, spread over [1/R, 1], invert, rescale",
        }


def images_per_second(teacher: Teacher, images: np.ndarray, repeats: int = 1) -> float:
    """Throughput of ``teacher`` on ``images`` after one warm-up call (wall-clock)."""
    teacher(images[:1])
    t = time.perf_counter()
    for _ in range(repeats):
        teacher(images)
    return repeats * len(images) / (time.perf_counter() - t)
