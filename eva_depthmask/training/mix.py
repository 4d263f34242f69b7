"""Training on several datasets at once, in a given ratio: ``TrainData.mix``.

For example procedural rooms, whose depth is exact, beside your photos made without a teacher::

    rooms = TrainData(DataConfig(size=64))
    photos = TrainData("my_photos")  # make_dataset(..., ImageFolders(...), teacher=None)
    data = TrainData.mix([rooms, photos], ratio=[0.5, 0.5])
    fit(model, data, cfg)

An epoch of a mix draws ``N`` samples, ``N`` the sum of its parts' train sizes; part ``i`` gives
``round(ratio[i] * N)`` of them (largest remainders: the counts add up to ``N``), its samples in
seeded permutations, one after another, so a small part is repeated and a large one sampled without
repeats. Which samples an epoch draws, and in what order (the EpochSampler's permutation of the
draws), are functions of ``(seed, stage, epoch)`` alone, and each draw's augmentation is seeded by
``(seed, stage, epoch, draw)``: a stopped run resumes bit for bit, as with one dataset (sampler.py).

Each part is augmented with its own ``aug`` and resized by its transform to the stage's size, so
parts stored at other sizes mix. Every part is normalised with the mix's statistics (``mix_stats``:
the per-channel mean and std of the mixture, each part weighted by its ratio). Validation and test
are the parts' val and test splits one after another, whole (``ConcatQuartets``): the ratio is a
training choice. Samples keep their ``has_depth`` flag, so a part without depth counts for the
mask only.
"""

from __future__ import annotations

import bisect
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
from torch.utils.data import ConcatDataset, Dataset

from ..augment.quartet import sample_seed
from ..config import DataConfig

if TYPE_CHECKING:  # loaders.py imports this module
    from .loaders import TrainData

MIX_SALT = 0x313  # keeps the mix's draws apart from the epoch order's stream


def quotas(ratio: Sequence[float], n: int) -> np.ndarray:
    """int ``(len(ratio),)`` adding up to ``n``: ``n * ratio / sum(ratio)`` rounded down, the rest
    one each to the largest remainders (the first part on ties)."""
    share = np.asarray(ratio, np.float64) / float(np.sum(ratio)) * n
    counts = np.floor(share).astype(np.int64)
    rest = n - int(counts.sum())
    order = np.argsort(-(share - counts), kind="stable")
    counts[order[:rest]] += 1
    return counts


def mix_plan(
    lengths: Sequence[int], ratio: Sequence[float], seed: int, tag: int
) -> tuple[np.ndarray, np.ndarray]:
    """The draws of one epoch (``tag``: stage and epoch, as ``EpochSampler.tag``): int arrays
    ``(part, index)``, each of ``sum(lengths)``; part ``i`` drawn ``quotas(ratio)[i]`` times, its
    indices from seeded permutations of ``range(lengths[i])`` one after another."""
    counts = quotas(ratio, int(sum(lengths)))
    rng = np.random.default_rng([seed, tag, MIX_SALT])
    parts, indices = [], []
    for i, (count, length) in enumerate(zip(counts.tolist(), lengths, strict=True)):
        if count and not length:
            raise ValueError(f"ratio: part {i} has weight {ratio[i]} but no train samples")
        laps = -(-count // length) if count else 0
        drawn = [rng.permutation(length) for _ in range(laps)]
        indices.append(np.concatenate(drawn)[:count] if drawn else np.zeros(0, np.int64))
        parts.append(np.full(count, i, np.int64))
    return np.concatenate(parts), np.concatenate(indices)


def mix_stats(stats: Sequence[dict], weights: Sequence[float]) -> dict:
    """The per-channel ``{"mean", "std"}`` of a mixture of datasets with ``stats`` (each ``{"mean":
    [r, g, b], "std": [r, g, b]}`` in [0, 1] units) drawn with ``weights``: the weighted mean, and
    the std from the weighted second moments (so a part with another mean widens it)."""
    w = np.asarray(weights, np.float64) / float(np.sum(weights))
    mean = np.array([s["mean"] for s in stats], np.float64)
    std = np.array([s["std"] for s in stats], np.float64)
    mix_mean = w @ mean
    second = w @ (std**2 + mean**2)
    mix_std = np.sqrt(np.maximum(second - mix_mean**2, 1e-12))
    return {"mean": mix_mean.round(6).tolist(), "std": mix_std.round(6).tolist()}


class ConcatQuartets(ConcatDataset):
    """Datasets (QuartetDatasets) one after another, read as one: ``raw``, ``ids``, ``depth_flags``
    and a ``transform`` that setting sets on every part (as evaluation does with one dataset)."""

    def raw(self, i: int) -> dict:
        part, local = self.locate(i)
        return self.datasets[part].raw(local)

    def locate(self, i: int) -> tuple[int, int]:
        """``(part, index in that part)`` of sample ``i``."""
        if not -len(self) <= i < len(self):
            raise IndexError(f"sample {i} out of range for a dataset of {len(self)}")
        i = i % len(self)
        part = bisect.bisect_right(self.cumulative_sizes, i)
        return part, i - (self.cumulative_sizes[part - 1] if part else 0)

    @property
    def ids(self) -> list[str]:
        return [sid for d in self.datasets for sid in d.ids]

    @property
    def has_depth(self) -> bool:
        """Whether any part has depth."""
        return any(d.has_depth for d in self.datasets)

    def depth_flags(self) -> np.ndarray:
        """bool ``(len,)``: which samples have depth."""
        flags = [d.depth_flags() for d in self.datasets]
        return np.concatenate(flags) if flags else np.zeros(0, bool)

    @property
    def transform(self):
        return self.datasets[0].transform if self.datasets else None

    @transform.setter
    def transform(self, value) -> None:
        for d in self.datasets:
            d.transform = value


class MixedSamples(Dataset):
    """The train samples of a mix: ``parts`` (``SeededSamples``) drawn by ``mix_plan``. Indices are
    tagged as ``EpochSampler`` gives them (``tag * len + draw``); each draw's augmentation is
    seeded by ``(seed, tag, draw)``."""

    def __init__(self, parts: Sequence, ratio: Sequence[float], seed: int):
        self.parts, self.ratio, self.seed = list(parts), tuple(ratio), seed
        self.lengths = [len(p) for p in self.parts]
        self.n = sum(self.lengths)
        self._plan_tag, self._plan = None, None
        self.plan(0)  # a part with weight but no samples fails here, not in a loader worker

    def __len__(self) -> int:
        return self.n

    def plan(self, tag: int) -> tuple[np.ndarray, np.ndarray]:
        """``mix_plan`` of epoch ``tag``, kept for the epoch's draws (each process its own)."""
        if tag != self._plan_tag:
            self._plan = mix_plan(self.lengths, self.ratio, self.seed, tag)
            self._plan_tag = tag
        return self._plan

    def __getitem__(self, tagged: int) -> dict:
        tag, draw = divmod(int(tagged), self.n)
        part, index = (int(a[draw]) for a in self.plan(tag))
        return self.parts[part].sample(index, sample_seed(self.seed, tag, draw))


@dataclass(frozen=True)
class MixedTrainData:
    """What fit() trains on when it draws from several ``TrainData`` (module docstring); the same
    methods as ``TrainData``. ``ratio``: one weight per part (any scale), None: in proportion to
    the parts' train sizes, as if they were one dataset. Made by ``TrainData.mix``."""

    parts: tuple
    ratio: tuple[float, ...] | None = None

    def __post_init__(self) -> None:
        if not self.parts or not all(hasattr(p, "raw") and hasattr(p, "aug") for p in self.parts):
            raise ValueError(f"parts: expected a list of TrainData, got {self.parts!r}")
        backends = sorted({p.aug.backend for p in self.parts})
        if len(backends) > 1:  # one batch holds samples of every part: augmented in one place
            raise ValueError(
                f"parts: their AugConfig.backend differ ({backends}); give every part the same one"
            )
        if self.ratio is None:
            return
        if len(self.ratio) != len(self.parts):
            raise ValueError(f"ratio: {len(self.ratio)} weights for {len(self.parts)} parts")
        if not all(np.isfinite(r) and r >= 0 for r in self.ratio) or sum(self.ratio) <= 0:
            raise ValueError(f"ratio: expected weights >= 0, not all 0, got {list(self.ratio)}")

    def weights(self) -> tuple[float, ...]:
        """The ratio, or the parts' train sizes when none was given."""
        if self.ratio is not None:
            return self.ratio
        return tuple(float(len(p.raw("train", _any_size(p)))) for p in self.parts)

    def raw(self, split: str, size: int) -> ConcatQuartets:
        """The parts' samples of ``split`` one after another (train: ``len`` is an epoch's draws)."""
        return ConcatQuartets([p.raw(split, size) for p in self.parts])

    def stats(self) -> dict:
        """``mix_stats`` of the parts' stats, weighted by the ratio."""
        return mix_stats([p.stats() for p in self.parts], self.weights())

    def dataset(
        self,
        split: str,
        size: int,
        seed: int = 0,
        stats: dict | None = None,
        cache_mb: float = 0,
        normalize: bool = True,
    ) -> Dataset:
        """As ``TrainData.dataset``: "train" gives ``MixedSamples`` (``cache_mb`` shared out by the
        parts' sizes), val and test ``ConcatQuartets``; all normalised with ``stats`` (the mix's)."""
        stats = stats or self.stats()
        if split != "train":
            return ConcatQuartets(
                [p.dataset(split, size, stats=stats, normalize=normalize) for p in self.parts]
            )
        sizes = [len(p.raw("train", size)) for p in self.parts]
        shares = [cache_mb * n / max(sum(sizes), 1) for n in sizes]
        parts = [  # one batch holds every part's samples: none is composited on the device
            p.dataset("train", size, seed, stats, mb, normalize, resident=False)
            for p, mb in zip(self.parts, shares, strict=True)
        ]
        return MixedSamples(parts, self.weights(), seed)

    def resident(self, device) -> None:
        """None: a mix's lazy parts are composited by the loader (``TrainData.resident``)."""
        return None

    def describe(self) -> dict:
        return {"mix": [p.describe() for p in self.parts], "ratio": self.ratio}


def _any_size(data: TrainData) -> int:
    """A size to list ``data``'s samples at (their number does not depend on it)."""
    return data.source.size if isinstance(data.source, DataConfig) else 64
