"""What training reads: the shared in-memory cache of decoded train samples (samplecache), and
OpenCV's threads in the DataLoader workers that fit() and evaluation fork."""

import pickle
from dataclasses import replace

import cv2
import numpy as np
import pytest
import torch
from torch.utils.data import Dataset

from eva_depthmask.augment.normalize import check_stats, norm_constants, normalize
from eva_depthmask.augment.quartet import sample_seed
from eva_depthmask.augment.realism import PERTURBATIONS
from eva_depthmask.config import AugConfig, DataConfig
from eva_depthmask.data.datagen import make_dataset
from eva_depthmask.data.sources import ImageFolders
from eva_depthmask.storage import DatasetError
from eva_depthmask.training.loaders import TrainData, eval_batches, opencv_threads, train_loader
from eva_depthmask.training.samplecache import SampleCache
from eva_depthmask.training.sampler import EpochSampler, epoch_order

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
    assert len(cached.cache) == n and plain.cache is None
    # later epochs are augmented anew, not served from a cached augmentation
    assert not torch.equal(cached[0]["bg"], cached[n]["bg"])
    # a raw sample from memory is the one the dataset reads, its keys and flag included
    for i in range(n):
        held, read = cached.raw(i), cached.base.raw(i)
        assert held.keys() == read.keys() and held["has_depth"] is read["has_depth"] is True
        assert cached[i]["has_depth"].item() is True  # rooms have depth: the loss must use it


def test_samples_of_a_dataset_without_depth_are_flagged(tmp_path, photo_folders):
    """Photos made without a teacher: every training sample says so (the loss skips its depth)."""
    photos = ImageFolders(*photo_folders(tmp_path, 3), replace(DATA, placements=1))
    root = make_dataset(tmp_path / "d", photos.cfg, photos, teacher=None, progress=False)
    samples = TrainData(root).dataset("train", 32, cache_mb=8)
    assert len(samples) and all(
        samples[i]["has_depth"].item() is False for i in range(len(samples))
    )


def test_uint8_samples_normalised_per_batch_equal_the_normalised_samples_bit_for_bit():
    data = TrainData(DATA, EVERYTHING)
    loaded = data.dataset("train", 32, seed=3, normalize=False)  # as fit() loads them
    ready = data.dataset("train", 32, seed=3)
    scale, shift = norm_constants(*check_stats(data.stats()))
    for key in ("bg", "fg_bg", "mask", "depth"):
        got = torch.stack([loaded[i][key] for i in range(4)])
        want = torch.stack([ready[i][key] for i in range(4)])
        if key in ("bg", "fg_bg"):
            assert got.dtype == torch.uint8 and got.shape == (4, 3, 32, 32)
            got = normalize(got, scale, shift)
        assert torch.equal(got.float(), want), key


def test_cache_stops_filling_at_its_limit():
    data = TrainData(DATA)
    one = data.dataset("train", 32, cache_mb=64)
    per_sample = one.cache.sample_bytes
    # uint8 images and mask; depth on the 16-bit grid that storage also uses, so kept as uint16
    assert per_sample == 32 * 32 * (3 + 3 + 1 + 2) and one.cache.depth_u16
    small = data.dataset("train", 32, cache_mb=2.5 * per_sample / 2**20)
    for i in range(len(small)):
        small[i]
    assert len(small.cache) == 2 and small.cache.nbytes == 2 * per_sample
    assert small.cache.filled.tolist() == [
        1,
        1,
    ]  # the first two have slots; the rest are read each time


def test_workers_of_every_epoch_share_one_cache_and_later_epochs_read_no_files(tmp_path):
    root = make_dataset(tmp_path / "data", DATA, workers=0)
    data = TrainData(root, EVERYTHING)
    cached = data.dataset("train", 32, seed=5, cache_mb=64)
    n = len(cached)
    assert cached.cache.depth_u16  # a 16-bit PNG's depth, given back bit for bit (below)

    def epoch(ds, number):
        sampler = EpochSampler(n, seed=5, stage=0, epoch=number, batch_size=4)
        return list(train_loader(ds, sampler, 4, workers=2, pin_memory=False))

    first = epoch(cached, 0)  # decoded by two forked workers, into memory this process shares
    assert len(cached.cache) == n
    want = epoch(data.dataset("train", 32, seed=5), 1)  # from the files
    for sub in ("bg", "fg_bg", "mask", "depth"):  # no sample file is left to read
        for f in (root / sub).iterdir():
            f.unlink()
    got = epoch(cached, 1)
    for a, b in zip(got + first, want + first, strict=True):
        for key in ("bg", "fg_bg", "mask", "depth"):
            assert torch.equal(a[key], b[key]), key


def quartet(depth: np.ndarray) -> dict:
    h, w = depth.shape
    rng = np.random.default_rng(0)
    images = {k: rng.integers(0, 256, (h, w, 3), dtype=np.uint8) for k in ("bg", "fg_bg")}
    return {**images, "mask": (depth > 0.5).astype(np.uint8), "depth": depth}


def test_a_depth_off_the_16_bit_grid_is_kept_as_float32_and_misfits_are_not_kept():
    off_grid = np.linspace(0, 1, 48, dtype=np.float32).reshape(6, 8) * np.float32(0.999)
    cache = SampleCache(4, quartet(off_grid), limit_bytes=2**20)
    assert not cache.depth_u16 and cache.sample_bytes == 48 * (3 + 3 + 1 + 4)
    assert cache.put(0, quartet(off_grid)) and cache.get(1) is None
    assert np.array_equal(cache.get(0)["depth"], off_grid)
    assert not cache.put(1, quartet(off_grid[:, :4]))  # another shape
    assert not cache.put(1, quartet(off_grid.astype(np.float64)))  # would come back as float32
    assert not cache.put(7, quartet(off_grid))  # beyond the dataset
    on_grid = np.round(off_grid * 65535) / np.float32(65535)
    cache = SampleCache(4, quartet(on_grid), limit_bytes=2**20)
    assert cache.depth_u16 and not cache.put(2, quartet(off_grid))  # would not come back the same
    assert cache.put(2, quartet(on_grid)) and np.array_equal(cache.get(2)["depth"], on_grid)
    got = cache.get(2)
    got["bg"][:] = 0  # a copy: writing into what get() gave leaves the slot as it was
    assert np.array_equal(cache.get(2)["bg"], quartet(on_grid)["bg"])


def test_a_pickled_dataset_carries_no_cache_and_reads_the_same_samples():
    data = TrainData(DATA)
    cached = data.dataset("train", 32, cache_mb=64)
    copy = pickle.loads(pickle.dumps(cached))  # what a worker started with "spawn" gets
    assert copy.cache.slots == 0 and len(copy.cache) == 0
    assert torch.equal(copy[1]["depth"], cached[1]["depth"])
    assert len(copy.cache) == 0


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


# ---------------------------------------------------------------------------------------------------
# The epoch order and per-sample seeding that exact resume rests on, in this process (DataLoader
# workers are forked, and `make mutants` cannot see what runs in them).


def test_epoch_order_is_a_permutation_fixed_by_seed_stage_and_epoch():
    base = epoch_order(50, seed=3, stage=1, epoch=2)
    assert sorted(base.tolist()) == list(range(50))
    assert np.array_equal(base, epoch_order(50, seed=3, stage=1, epoch=2))
    for other in ((4, 1, 2), (3, 0, 2), (3, 1, 3)):
        assert not np.array_equal(base, epoch_order(50, *other)), other


def test_epoch_sampler_tags_every_index_with_its_stage_and_epoch():
    n, tags = 10, set()
    for stage, epoch in ((0, 0), (0, 1), (1, 0), (2, 5)):
        got = list(EpochSampler(n, seed=3, stage=stage, epoch=epoch, batch_size=3))
        assert all(type(i) is int for i in got)  # exact indices, not floats
        tag = {i // n for i in got}
        assert len(tag) == 1  # one epoch tag for the whole epoch ...
        tags |= tag
        # ... on the epoch's order, whole batches only: 10 // 3 = 3 batches
        assert [i % n for i in got] == epoch_order(n, 3, stage, epoch)[:9].tolist()
    assert len(tags) == 4  # ... and another for every other (stage, epoch)


def test_epoch_sampler_splits_whole_batches_among_processes_and_resumes_mid_epoch():
    n, batch, world = 23, 2, 3  # 23 // (2 * 3) = 3 batches each: 18 of the 23 samples
    order = epoch_order(n, 7, 0, 4).tolist()
    parts = [
        [i % n for i in EpochSampler(n, 7, 0, 4, batch, rank=r, world=world)] for r in range(world)
    ]
    assert [len(p) for p in parts] == [6, 6, 6]
    assert sorted(sum(parts, [])) == sorted(order[:18])
    assert parts[1] == order[1:18:3]  # every world-th index of the order, from the rank on
    later = EpochSampler(n, 7, 0, 4, batch, start_batch=2, rank=1, world=world)
    assert len(later) == 2 and [i % n for i in later] == parts[1][4:]


def test_a_sample_is_augmented_by_run_seed_epoch_tag_and_index_alone():
    data = TrainData(DATA, EVERYTHING)
    ds = data.dataset("train", 32, seed=3)
    n = len(ds)
    first = ds[n + 2]
    for other in (0, 2 * n + 5, 1):  # other reads in between change nothing
        ds[other]
    again, fresh = ds[n + 2], data.dataset("train", 32, seed=3)[n + 2]
    want = ds.transform(ds.raw(2), seed=sample_seed(3, 1, 2))  # the seed the module promises
    later_stage = EpochSampler(n, 3, stage=1, epoch=1, batch_size=1).tag * n + 2
    for key in ("bg", "fg_bg", "mask", "depth"):
        assert torch.equal(first[key], again[key]) and torch.equal(first[key], fresh[key]), key
        assert torch.equal(first[key], want[key]), key
    assert not torch.equal(first["bg"], data.dataset("train", 32, seed=4)[n + 2]["bg"])
    assert not torch.equal(first["bg"], ds[2 * n + 2]["bg"])  # epoch 2
    assert not torch.equal(first["bg"], ds[later_stage]["bg"])  # stage 1, epoch 1


def test_a_cached_sample_is_read_from_memory_after_its_files_are_gone(tmp_path):
    root = make_dataset(tmp_path / "data", DATA, workers=0, progress=False)
    data = TrainData(root, EVERYTHING)
    cached, plain = (data.dataset("train", 32, seed=5, cache_mb=mb) for mb in (64, 0))
    n = len(cached)
    want = [cached[n + i] for i in range(n)]  # read once, in this process
    for sub in ("bg", "fg_bg", "mask", "depth"):
        for f in (root / sub).iterdir():
            f.unlink()
    with pytest.raises(DatasetError, match="missing file"):
        plain[0]  # without the cache the files are needed
    for i, w in enumerate(want):
        got = cached[n + i]
        assert got["id"] == w["id"]
        for key in ("bg", "fg_bg", "mask", "depth"):
            assert torch.equal(got[key], w[key]), (i, key)
