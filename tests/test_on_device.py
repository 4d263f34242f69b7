"""training/on_device.py + loaders.py: with the torch backend, a lazy dataset reaches fit() as rows
(nothing decoded but a teacher's depth), is composited on the device and augmented there; real lazy
datasets on disk, compared with what the CPU reader composites."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from eva_depthmask.config import AugConfig, DataConfig, TrainConfig
from eva_depthmask.data.datagen import make_dataset
from eva_depthmask.data.dataset import QuartetDataset
from eva_depthmask.data.sources import ImageFolders
from eva_depthmask.nets.registry import build_model
from eva_depthmask.training.fit import fit, stop_at_step
from eva_depthmask.training.loaders import TrainData, train_loader
from eva_depthmask.training.on_device import PlacementSamples, device_quartet
from eva_depthmask.training.sampler import EpochSampler, SeededSamples

LAZY = DataConfig(size=32, n_bg=6, n_fg=3, placements=2, image_format="png", lazy=True)
QUIET = AugConfig(backend="torch", spatial=False, photometric=False, realism=False)
CPU = torch.device("cpu")


def brightness_teacher(images: np.ndarray) -> np.ndarray:
    """A stand-in depth teacher: brighter is nearer."""
    return (1 - images.mean(-1) / 255).astype(np.float32)


@pytest.fixture(scope="module")
def rooms(tmp_path_factory) -> Path:
    return make_dataset(tmp_path_factory.mktemp("rooms") / "d", LAZY, workers=0, progress=False)


@pytest.fixture(scope="module")
def photos(tmp_path_factory, photo_folders) -> Path:
    """Lazy photos labelled by a teacher: each sample's depth is a file, read by the loader."""
    root = tmp_path_factory.mktemp("photos")
    folders = photo_folders(root, 4, fg_hw=(20, 12), seed=3)
    cfg = replace(LAZY, placements=1)
    source = ImageFolders(*folders, cfg)
    return make_dataset(
        root / "d", source.cfg, source, teacher=brightness_teacher, workers=0, progress=False
    )


def first_batch(data: TrainData, size: int, n: int = 8, epoch: int = 0):
    ds = data.dataset("train", size, 0, data.stats(), normalize=False)
    sampler = EpochSampler(len(ds), 0, 0, epoch, n)
    return ds, next(iter(train_loader(ds, sampler, n, 0, False)))


def iou(a: np.ndarray, b: np.ndarray) -> float:
    return (a & b).sum() / max((a | b).sum(), 1)


def test_lazy_rooms_reach_fit_as_rows_and_are_composited_on_the_device(rooms):
    data = TrainData(rooms, QUIET)
    ds, batch = first_batch(data, 32)
    assert isinstance(ds, PlacementSamples)
    assert set(batch) == {"row", "aug", "has_depth", "id"}  # no image crossed the loader
    q = device_quartet(batch, 32, CPU, data.resident(CPU))
    assert q["bg"].dtype == q["fg_bg"].dtype == q["mask"].dtype == torch.uint8
    cpu = QuartetDataset(rooms, "train")
    for i, row in enumerate(batch["row"].tolist()):
        raw = cpu.raw(row)
        assert raw["id"] == batch["id"][i]
        np.testing.assert_array_equal(q["bg"][i].permute(1, 2, 0).numpy(), raw["bg"])
        mask = q["mask"][i, 0].numpy().astype(bool)
        assert iou(mask, raw["mask"].astype(bool)) >= 0.8
        outside = ~mask & (raw["mask"] == 0)  # the room's own depth, exactly
        np.testing.assert_array_equal(q["depth"][i, 0].numpy()[outside], raw["depth"][outside])


def test_a_teachers_depth_is_read_from_disk_and_kept(photos):
    data = TrainData(photos, QUIET)
    ds, batch = first_batch(data, 32, n=4)
    assert ds.needs_depth and batch["depth"].shape == (4, 1, 32, 32)
    q = device_quartet(batch, 32, CPU, data.resident(CPU))
    cpu = QuartetDataset(photos, "train")
    for i, row in enumerate(batch["row"].tolist()):
        np.testing.assert_array_equal(q["depth"][i, 0].numpy(), cpu.raw(row)["depth"])


def test_a_smaller_stage_is_resized_on_the_device_and_augmented(rooms):
    data = TrainData(rooms, AugConfig(backend="torch", shadow_p=1.0, jpeg_p=1.0))
    _, batch = first_batch(data, 16)
    q = device_quartet(batch, 16, CPU, data.resident(CPU))
    assert q["bg"].shape == (8, 3, 16, 16) and q["mask"].shape == (8, 1, 16, 16)
    assert set(q["mask"].unique().tolist()) == {0, 1}
    assert q["depth"].min() >= 0 and q["depth"].max() <= 1
    quiet_batch = first_batch(TrainData(rooms, QUIET), 16)[1]
    quiet = device_quartet(quiet_batch, 16, CPU, data.resident(CPU))
    assert not torch.equal(q["bg"], quiet["bg"])  # the realism group fired on the device
    full = data.resident(CPU).composite(quiet_batch["row"])  # at the dataset's 32 px
    for i in range(8):  # the mask shrunk by centre-aligned nearest: OpenCV's answer
        big = full["mask"][i, 0].numpy()
        small = cv2.resize(big, (16, 16), interpolation=cv2.INTER_NEAREST_EXACT).astype(bool)
        assert iou(quiet["mask"][i, 0].numpy().astype(bool), small) >= 0.95
    ds = data.dataset("train", 16, 0, data.stats(), normalize=False)
    row = int(batch["row"][0])  # the same sample in the next epoch (tag 1): other parameters
    assert not np.array_equal(ds[row]["aug"], ds[len(ds) + row]["aug"])
    np.testing.assert_array_equal(ds[row]["aug"], batch["aug"][0].numpy())


def test_host_paths_stay_where_they_were(rooms):
    host = TrainData(rooms, replace(QUIET, backend="albumentations"))
    assert isinstance(first_batch(host, 32)[0], SeededSamples) and host.resident(CPU) is None
    mix = TrainData.mix([TrainData(rooms, QUIET), TrainData(rooms, QUIET)])
    assert mix.resident(CPU) is None  # a batch of a mix holds both parts: composited by the loader
    assert "bg" in first_batch(mix, 32)[1]
    with pytest.raises(ValueError, match="backend differ"):
        TrainData.mix([host, TrainData(rooms, QUIET)])


def test_fit_on_a_lazy_dataset_resumes_bit_exact(rooms, tmp_path):
    data = TrainData(rooms, AugConfig(backend="torch"))
    cfg = TrainConfig(
        stages=((16, 1, 8), (32, 1, 8)),
        ckpt_every=2,
        log_every=1,
        num_workers=0,
        threads=1,
        tensorboard=False,
    )

    def run(where: Path, stop: int | None = None) -> dict:
        torch.manual_seed(0)
        net = build_model("depthmasknet_tiny")
        run_cfg = replace(cfg, ckpt_dir=str(where))
        if stop is None:
            fit(net, data, run_cfg)
            return net.state_dict()
        with pytest.raises(KeyboardInterrupt):
            fit(net, data, run_cfg, callbacks=[stop_at_step(stop)])
        return {}

    reference = run(tmp_path / "a")
    run(tmp_path / "b", stop=5)  # inside the 32 px stage, after the checkpoint of step 4
    resumed = run(tmp_path / "b")
    for k, v in reference.items():
        assert torch.equal(v, resumed[k]), k
