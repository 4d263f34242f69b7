"""What training reads: the in-memory cache of decoded train samples (loaders.SeededSamples)."""

from dataclasses import replace

import torch

from eva_depthmask.config import AugConfig, DataConfig
from eva_depthmask.loaders import TrainData
from eva_depthmask.realism import PERTURBATIONS

DATA = DataConfig(size=32, n_bg=6, n_fg=2, placements=1)
# every augmentation fires, so a transform that wrote into its input would show
EVERYTHING = replace(
    AugConfig(photometric=True),
    **{p: 1.0 for p in ("hflip_p", "crop_p", "affine_p", "color_p", "noise_p", "dropout_p")},
    **{p: 1.0 for p in PERTURBATIONS.values()},
)


def test_cached_samples_equal_uncached_ones_in_every_epoch():
    data = TrainData(DATA, EVERYTHING)
    cached = data.dataset("train", 32, seed=3, cache_mb=64)
    plain = data.dataset("train", 32, seed=3)
    n = len(plain)
    for epoch_tag in range(3):
        for i in range(n):
            a, b = cached[epoch_tag * n + i], plain[epoch_tag * n + i]
            for key in ("bg", "fg_bg", "mask", "depth"):
                assert torch.equal(a[key], b[key]), (epoch_tag, i, key)
    assert len(cached.cache) == n and not plain.cache
    # later epochs are augmented anew, not served from a cached augmentation
    assert not torch.equal(cached[0]["bg"], cached[n]["bg"])


def test_cache_stops_filling_at_its_limit():
    data = TrainData(DATA)
    one = data.dataset("train", 32, cache_mb=64)
    one[0]
    per_sample = one.cache_bytes
    assert per_sample == 32 * 32 * (3 + 3 + 1) + 32 * 32 * 4  # uint8 images and mask, float32 depth
    small = data.dataset("train", 32, cache_mb=2.5 * per_sample / 2**20)
    for i in range(len(small)):
        small[i]
    assert len(small.cache) == 2 and small.cache_bytes == 2 * per_sample
    assert sorted(small.cache) == [0, 1]  # the first ones read stay; the rest are read every time
