"""What training reads, in an order that a resumed run can reproduce exactly.

Exact resume needs every source of randomness in the data to be a function of where the run is, not
of how it got there. So the order of an epoch is a permutation seeded by ``(seed, stage, epoch)``, a
resumed epoch starts at its next batch, and each sample's augmentation is seeded by
``(seed, stage, epoch, index)`` — independent of DataLoader workers and of where the run was stopped
(sampler.py).
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path

import cv2
import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from ..augment.quartet import get_transforms
from ..config import AugConfig, DataConfig, to_dict
from ..data.dataset import QuartetDataset
from ..data.resident import ResidentParts, is_lazy
from .mix import MixedTrainData
from .on_device import PlacementSamples
from .sampler import EpochSampler, SeededSamples

STATS_SAMPLES = 256  # samples used to estimate mean/std when a dataset has no stats.json


@contextmanager
def opencv_threads(n: int | None):
    """OpenCV on ``n`` threads in this process while the block runs (None: leave it), restored after.

    Set in the parent, because DataLoader workers are forked from it and inherit the setting: with
    OpenCV's default each of N workers runs a thread per core, and setting it inside a forked worker
    can hang on the parent's thread pool."""
    if n is None:
        yield
        return
    before = cv2.getNumThreads()
    cv2.setNumThreads(n)
    try:
        yield
    finally:
        cv2.setNumThreads(before)


def cores() -> int:
    """CPU cores this process may run on."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def default_workers(device: torch.device, world: int = 1) -> int:
    """DataLoader workers of each of ``world`` processes. On a GPU, every core of the process's
    share but the one that drives its GPU: at 224 px the loader, not the GPU, can set the pace
    (benchmarks/bench_fit_workers.py). On a CPU none: loading runs in-process between steps and every
    core trains (on 2 cores at 64 px, 319 images/s in the second epoch against 249 for 1 thread + 1
    worker; a worker beside 2 threads stalls the OpenMP threads it shares a core with; README,
    Training). Either way decoded samples stay cached across epochs (``TrainConfig.cache_mb``)."""
    return max(cores() // world - 1, 0) if device.type == "cuda" else 0


def train_loader(
    dataset: Dataset, sampler: EpochSampler, batch_size: int, workers: int, pin_memory: bool
) -> DataLoader:
    """The DataLoader of one training epoch, as fit() builds it (whole batches only)."""
    return DataLoader(
        dataset,
        batch_size,
        sampler=sampler,
        num_workers=workers,
        pin_memory=pin_memory,
        drop_last=True,
        generator=torch.Generator(),  # keeps the global RNG untouched
    )


def eval_batches(
    dataset: Dataset, batch_size: int, workers: int = 0, pin_memory: bool = False
) -> Iterator[dict]:
    """The batches of a val or test dataset, in order, read by ``workers`` processes (0: this one)."""
    with opencv_threads(1 if workers else None):
        yield from DataLoader(dataset, batch_size, num_workers=workers, pin_memory=pin_memory)


@dataclass(frozen=True)
class TrainData:
    """What fit() trains on: a dataset folder or zip, or synthetic settings; and the augmentation.

    ``dataset(split, size)`` gives tensor samples at ``size`` px: a stored dataset is resized by the
    transform, a synthetic one is rendered at that size. Normalisation uses the dataset's stats.json,
    or an estimate from its first train samples. ``TrainData.mix`` draws from several (mix.py).
    """

    source: str | Path | DataConfig = DataConfig()
    aug: AugConfig = AugConfig()
    fg_dir: str | None = None  # synthetic only: the user's cut-outs instead of sprites

    @staticmethod
    def mix(
        parts: Sequence[TrainData | str | Path | DataConfig], ratio: Sequence[float] | None = None
    ) -> MixedTrainData:
        """Train on several datasets: ``TrainData.mix([rooms, photos], ratio=[0.7, 0.3])`` draws
        70 % of each epoch from ``rooms``, 30 % from ``photos`` (weights of any scale; None: in
        proportion to their train sizes). A part may be a ``TrainData`` (with its own ``aug``), or
        a dataset path or ``DataConfig``. Epochs, validation and normalisation: training/mix.py."""
        if isinstance(parts, (str, Path, DataConfig, TrainData)):
            raise ValueError("parts: expected a list of datasets, e.g. [rooms, photos]")
        if any(isinstance(p, MixedTrainData) for p in parts):
            raise ValueError("parts: a mix inside a mix; list all the parts in one mix")
        parts = tuple(p if isinstance(p, TrainData) else TrainData(p) for p in parts)
        return MixedTrainData(parts, None if ratio is None else tuple(map(float, ratio)))

    def raw(self, split: str, size: int) -> QuartetDataset:
        if isinstance(self.source, DataConfig):
            return QuartetDataset.synthetic(
                replace(self.source, size=size), split, fg_dir=self.fg_dir
            )
        return QuartetDataset(self.source, split)

    def stats(self) -> dict:
        """Per-channel ``{"mean", "std"}`` of the train images, in [0, 1] units."""
        ds = self.raw("train", self.source.size if isinstance(self.source, DataConfig) else 64)
        return ds.stats or estimate_stats(ds)

    def dataset(
        self,
        split: str,
        size: int,
        seed: int = 0,
        stats: dict | None = None,
        cache_mb: float = 0,
        normalize: bool = True,
        resident: bool = True,
    ) -> Dataset:
        """Tensor samples of ``split`` at ``size`` px; for "train", seeded per epoch and index
        (``SeededSamples``, whose in-memory cache of decoded samples holds up to ``cache_mb`` MiB).
        ``normalize=False``: uint8 images and mask, as fit() loads them (transforms.normalize).
        A lazy dataset with the torch backend gives fit() its rows to composite on the device
        (``PlacementSamples``, training/on_device.py) unless ``resident`` is False."""
        ds = self.raw(split, size)
        if split == "train" and resident and self._resident(ds, normalize):
            return PlacementSamples(ds, size, self.aug, seed)
        transform = get_transforms(split, size, self.aug, stats or self.stats(), normalize)
        if split == "train":
            return SeededSamples(ds, transform, seed, cache_mb)
        ds.transform = transform
        return ds

    def _resident(self, ds: QuartetDataset, normalize: bool) -> bool:
        return self.aug.backend == "torch" and not normalize and is_lazy(ds)

    def resident(self, device: torch.device) -> ResidentParts | None:
        """The train split's parts held on ``device``, when fit() composites it there (a lazy
        dataset with the torch backend); else None."""
        ds = self.raw("train", 8) if not isinstance(self.source, DataConfig) else None
        if ds is None or not self._resident(ds, normalize=False):
            return None
        return ResidentParts.from_dataset(ds, device)

    def describe(self) -> dict:
        src = to_dict(self.source) if isinstance(self.source, DataConfig) else str(self.source)
        return {"source": src, "aug": to_dict(self.aug), "fg_dir": self.fg_dir}


def estimate_stats(ds: QuartetDataset, n: int = STATS_SAMPLES) -> dict:
    """Mean and std per channel over bg and fg_bg of ``n`` evenly spread samples (deterministic)."""
    picks = np.linspace(0, len(ds) - 1, min(n, len(ds))).round().astype(int)
    pixels = np.concatenate(
        [np.concatenate([r["bg"], r["fg_bg"]]).reshape(-1, 3) for r in map(ds.raw, picks.tolist())]
    )
    x = pixels.astype(np.float64) / 255
    return {
        "mean": x.mean(0).round(6).tolist(),
        "std": np.maximum(x.std(0), 1e-6).round(6).tolist(),
    }
