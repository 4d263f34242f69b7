"""What training reads: the in-memory cache of decoded train samples (loaders.SeededSamples), and
OpenCV's threads in the DataLoader workers that fit() and evaluation fork."""

from dataclasses import replace

import cv2
import numpy as np
import torch
from torch.utils.data import Dataset

from eva_depthmask.config import AugConfig, DataConfig
from eva_depthmask.loaders import (
    EpochSampler,
    TrainData,
    eval_batches,
    opencv_threads,
    train_loader,
)
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


class OpenCVThreads(Dataset):
    """Each sample: OpenCV's thread count in the process that loads it, after a resize that uses them."""

    def __len__(self) -> int:
        return 8

    def __getitem__(self, i: int) -> dict:
        cv2.resize(np.zeros((512, 512, 3), np.uint8), (700, 700))
        return {"threads": cv2.getNumThreads()}


def test_forked_workers_run_opencv_on_one_thread_and_the_parent_gets_its_setting_back():
    before = max(2, cv2.getNumThreads())
    cv2.setNumThreads(before)
    # the parent's pool is running, as after an in-process validation: setting the count inside a
    # forked worker could hang on it, so the parent sets it and the workers inherit it
    cv2.resize(np.zeros((512, 512, 3), np.uint8), (700, 700))
    sampler = EpochSampler(8, seed=0, stage=0, epoch=0, batch_size=4)
    with opencv_threads(1):
        trained = [b["threads"] for b in train_loader(OpenCVThreads(), sampler, 4, 2, False)]
        evaluated = [b["threads"] for b in eval_batches(OpenCVThreads(), 4, workers=2)]
    assert torch.cat(trained).tolist() == [1] * 8
    assert torch.cat(evaluated).tolist() == [1] * 8
    assert cv2.getNumThreads() == before
    with opencv_threads(None):  # None leaves OpenCV as it is
        assert cv2.getNumThreads() == before
