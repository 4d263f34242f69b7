"""The order of an epoch and the seed of each sample: what makes a resumed run read exactly what an
uninterrupted one would.

An epoch's order is a permutation seeded by ``(seed, stage, epoch)``, a resumed epoch starts at its
next batch (``EpochSampler``), and each sample's augmentation is seeded by ``(seed, stage, epoch,
index)`` (``SeededSamples``), independent of DataLoader workers and of where the run was stopped.
"""

from __future__ import annotations

import numpy as np
from torch.utils.data import Dataset, Sampler

from ..augment.quartet import sample_seed
from ..data.dataset import QuartetDataset, with_depth_flag
from .samplecache import SampleCache


def epoch_order(n: int, seed: int, stage: int, epoch: int) -> np.ndarray:
    """The sample order of one epoch: a permutation of ``range(n)`` fixed by its seed and position."""
    return np.random.default_rng([seed, stage, epoch, 0xE90C]).permutation(n)


class EpochSampler(Sampler[int]):
    """Indices of one epoch for one process, from batch ``start_batch`` on.

    Every process takes every ``world``-th index of the epoch order, trimmed so that each gets the same
    whole number of batches. Indices carry the epoch as ``epoch_tag * n + index`` so a dataset in a
    persistent worker knows which epoch's augmentation to draw (see ``SeededSamples``).
    """

    def __init__(self, n, seed, stage, epoch, batch_size, start_batch=0, rank=0, world=1):
        self.order = epoch_order(n, seed, stage, epoch)
        self.n, self.tag = n, stage * 100_000 + epoch
        self.batches = n // (batch_size * world)
        mine = self.order[: self.batches * batch_size * world][rank::world]
        self.indices = mine[start_batch * batch_size :]

    def __iter__(self):
        return iter((self.tag * self.n + self.indices).tolist())

    def __len__(self) -> int:
        return len(self.indices)


class SeededSamples(Dataset):
    """A QuartetDataset whose augmentation is seeded per (run seed, epoch tag, index).

    With ``cache_mb`` > 0, decoded raw samples are kept as they are first read, until they fill
    ``cache_mb`` MiB, in memory that the DataLoader workers of every epoch share (``SampleCache``):
    later epochs skip the file reading and decoding, with workers or without.
    """

    def __init__(self, base: QuartetDataset, transform, seed: int, cache_mb: float = 0):
        self.base, self.transform, self.seed = base, transform, seed
        self.cache = None
        if cache_mb > 0 and len(base):
            first = base.raw(0)
            self.cache = SampleCache(len(base), first, int(cache_mb * 2**20))
            self.cache.put(0, first)
        self.ids = base.ids  # built once: a cached sample still needs its id (it seeds transforms)

    def __len__(self) -> int:
        return len(self.base)

    def __getitem__(self, tagged: int) -> dict:
        tag, index = divmod(int(tagged), len(self.base))
        return self.sample(index, sample_seed(self.seed, tag, index))

    def sample(self, index: int, seed: int) -> dict:
        """Sample ``index`` transformed with ``seed``, with its ``has_depth`` flag."""
        return with_depth_flag(self.transform(self.raw(index), seed=seed), self.base.has_depth)

    def raw(self, index: int) -> dict:
        """Raw sample ``index``, from the cache when it is there."""
        held = self.cache.get(index) if self.cache is not None else None
        if held is not None:
            return {**held, "id": self.ids[index], "has_depth": self.base.has_depth}
        raw = self.base.raw(index)
        if self.cache is not None:
            self.cache.put(index, raw)
        return raw
