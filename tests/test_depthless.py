"""Photo datasets without depth (make_dataset(..., teacher=None)): nothing stored, a ``has_depth`` flag on
every sample, evaluation and training that leave their depth out, and TrainData.mix, which trains on
them beside procedural rooms and still resumes bit for bit. (Losses and metrics of mixed batches:
test_losses.py, test_metrics.py.)"""

from __future__ import annotations

import json
import math
import shutil
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torch.utils.data import DataLoader
from train_job import model

from eva_depthmask.config import AugConfig, DataConfig, TrainConfig
from eva_depthmask.data import photogen
from eva_depthmask.data.datagen import make_dataset
from eva_depthmask.data.dataset import QuartetDataset
from eva_depthmask.data.sources import ImageFolders, SampleKey
from eva_depthmask.evaluation.evaluate import evaluate
from eva_depthmask.storage import DatasetError
from eva_depthmask.training import checkpoint as ckpt
from eva_depthmask.training.fit import fit, stop_at_step
from eva_depthmask.training.loaders import TrainData
from eva_depthmask.training.mix import ConcatQuartets, mix_plan, mix_stats, quotas
from eva_depthmask.training.runlog import read_log
from eva_depthmask.training.sampler import EpochSampler

CFG = DataConfig(size=32, placements=2, image_format="png", seed=3)  # 5 photos x 2 cut-outs: 40
ROOMS = DataConfig(size=32, n_bg=6, n_fg=2, placements=2)  # 32 train samples, exact depth
AUG = AugConfig(photometric=True)

pytestmark = pytest.mark.usefixtures("one_thread")  # conftest.py


def brightness_teacher(images: np.ndarray) -> np.ndarray:
    return (1 - images.mean(-1) / 255).astype(np.float32)


def _tree(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in root.rglob("*") if p.is_file()}


@pytest.fixture(scope="module")
def photo_dirs(tmp_path_factory) -> tuple[Path, Path]:
    """Five noise backgrounds (40 x 56) and two cut-outs."""
    root = tmp_path_factory.mktemp("photos")
    rng = np.random.default_rng(0)
    (root / "bg").mkdir()
    (root / "fg").mkdir()
    for i in range(5):
        Image.fromarray(rng.integers(0, 256, (40, 56, 3), np.uint8)).save(root / f"bg/{i}.png")
    for j, colour in enumerate([(250, 250, 250), (30, 200, 90)]):
        fg = np.zeros((30, 14, 4), np.uint8)
        fg[4:, 3:11] = (*colour, 255)
        Image.fromarray(fg).save(root / f"fg/{j}.png")
    return root / "bg", root / "fg"


@pytest.fixture(scope="module")
def depthless(photo_dirs, tmp_path_factory) -> dict[str, Path]:
    """The photos made without a teacher, in the full and the lazy layout."""
    out = {}
    for layout, cfg in (("full", CFG), ("lazy", replace(CFG, lazy=True))):
        folder = tmp_path_factory.mktemp(layout) / "ds"
        out[layout] = make_dataset(
            folder, cfg, ImageFolders(*photo_dirs, cfg), workers=0, progress=False
        )
    return out


@pytest.mark.parametrize("layout", ["full", "lazy"])
def test_no_teacher_stores_no_depth_and_reads_zeros_flagged(depthless, photo_dirs, layout):
    out = depthless[layout]
    assert not (out / "depth").exists()  # no depth file, not even the empty folder
    assert not any("depth" in name for name in _tree(out) if name != "stats.json")
    stats = json.loads((out / "stats.json").read_text())
    assert stats["has_depth"] is False and "teacher" not in stats
    assert all(
        math.isfinite(v) and 0 < v < 1 for v in stats["stats"]["mean"] + stats["stats"]["std"]
    )
    ds = QuartetDataset(out, "all")
    source = ImageFolders(*photo_dirs, ds.config)
    assert len(ds) == 40 and not ds.has_depth and not ds.depth_flags().any()
    for i in range(0, 40, 3):
        raw = ds.raw(i)
        want = source.sample(SampleKey.from_id(raw["id"]))
        np.testing.assert_array_equal(raw["fg_bg"], want["fg_bg"])  # lazy: composited again
        np.testing.assert_array_equal(raw["mask"], want["mask"])
        assert raw["has_depth"] is False and raw["depth"].shape == (32, 32)
        assert raw["depth"].dtype == np.float32 and not raw["depth"].any()
        sample = ds[i]
        assert sample["has_depth"].dtype == torch.bool and not sample["has_depth"]


def test_the_flag_passes_transforms_and_default_collate(depthless):
    photos, rooms = TrainData(depthless["full"], AUG), TrainData(ROOMS, AUG)
    for data, want in ((photos, False), (rooms, True)):
        train = data.dataset("train", 24, seed=1)
        loaders = (
            DataLoader(train, 4, sampler=EpochSampler(len(train), 1, 0, 0, 4)),
            DataLoader(data.dataset("val", 24), 4),
        )
        for loader in loaders:
            batch = next(iter(loader))
            assert batch["has_depth"].dtype == torch.bool and batch["has_depth"].shape == (4,)
            assert batch["has_depth"].tolist() == [want] * 4
            assert batch["bg"].shape == (4, 3, 24, 24)  # resized by the pipeline, stored at 32
            assert want or not batch["depth"].any()  # zeros stay zeros through every augmentation


def dies_after(chunks: int):
    """``photogen.composite_chunk`` that raises KeyboardInterrupt (a disconnect) after ``chunks``."""
    composite, calls = photogen.composite_chunk, []

    def composite_or_die(job):
        calls.append(1)
        if len(calls) > chunks:
            raise KeyboardInterrupt
        return composite(job)

    return composite_or_die


def test_an_interrupted_depthless_build_resumes_and_refuses_a_teacher(
    photo_dirs, depthless, tmp_path, monkeypatch
):
    source = ImageFolders(*photo_dirs, CFG)
    out = tmp_path / "cut"
    with monkeypatch.context() as m:  # the runtime disconnects after two chunks
        m.setattr(photogen, "composite_chunk", dies_after(2))
        with pytest.raises(KeyboardInterrupt):
            make_dataset(out, CFG, source, workers=0, progress=False)
    assert len(list((out / ".progress").glob("*.csv"))) == 2
    with pytest.raises(DatasetError, match="made without depth.*teacher 'brightness_teacher'"):
        make_dataset(out, CFG, source, teacher=brightness_teacher, workers=0, progress=False)
    make_dataset(out, CFG, source, workers=0, progress=False)
    assert _tree(out) == _tree(depthless["full"])  # the same bytes as a run never interrupted
    with pytest.raises(DatasetError, match="made without depth"):  # finished: the same refusal
        make_dataset(out, CFG, source, teacher=brightness_teacher, workers=0, progress=False)


def test_a_build_with_depth_refuses_to_resume_without_a_teacher(photo_dirs, tmp_path, monkeypatch):
    source = ImageFolders(*photo_dirs, CFG)
    out = tmp_path / "cut"
    with monkeypatch.context() as m:
        m.setattr(photogen, "composite_chunk", dies_after(1))
        with pytest.raises(KeyboardInterrupt):
            make_dataset(out, CFG, source, teacher=brightness_teacher, workers=0, progress=False)
    before = _tree(out)
    with pytest.raises(DatasetError, match="holds a dataset with depth.*teacher=None"):
        make_dataset(out, CFG, source, workers=0, progress=False)
    assert _tree(out) == before  # nothing written


def test_a_depth_metric_to_monitor_on_a_depthless_val_set_is_refused_before_training(
    depthless, tmp_path
):
    cfg = TrainConfig(
        stages=((32, 1, 8),), ckpt_dir=str(tmp_path / "run"), best_metric="depth_rmse"
    )
    with pytest.raises(ValueError, match="best_metric 'depth_rmse': no val sample has depth"):
        fit(model(8), TrainData(depthless["full"]), cfg)
    assert not (tmp_path / "run").exists()


def test_training_on_photos_without_depth_trains_the_mask_alone(depthless, tmp_path):
    cfg = TrainConfig(
        stages=((32, 1, 8),),
        ckpt_dir=str(tmp_path),
        num_workers=0,
        threads=1,
        log_every=1,
        tensorboard=False,
    )
    done = fit(model(8), TrainData(depthless["full"]), cfg)
    rows = read_log(tmp_path / "log.csv")
    train = [r for r in rows if r["kind"] == "train"]
    assert len(train) == 3  # 24 samples, batch 8
    assert all(float(r["loss_depth"]) == 0 and float(r["loss_mask"]) > 0 for r in train)
    assert math.isnan(done["val"]["depth_rmse"]) and 0 <= done["val"]["mask_iou"] <= 1


def test_evaluating_a_depthless_set_gives_mask_metrics_and_nan_depth(depthless):
    data = TrainData(depthless["lazy"])
    ds = data.dataset("test", 32, stats=data.stats())
    metrics, rows = evaluate(model(8), ds, batch_size=3, progress=False, workers=0)
    assert 0 <= metrics["mask_iou"] <= 1 and 0 < metrics["mask_acc"] <= 1
    depth = {k: v for k, v in metrics.items() if k.startswith("depth_")}
    assert depth and all(math.isnan(v) for v in depth.values())
    assert len(rows) == len(ds) and all(math.isnan(r["depth_rmse"]) for r in rows)
    assert json.loads(json.dumps(metrics))["mask_iou"] == metrics["mask_iou"]  # metrics.json


# ---------------------------------------------------------------------------------------------------
# TrainData.mix


def test_quotas_follow_the_ratio_and_add_up():
    assert quotas([1, 3], 320).tolist() == [80, 240]
    assert quotas([0.5, 0.5, 1.0], 7).tolist() == [2, 2, 3]  # remainders: the first on ties
    assert quotas([0, 1], 9).tolist() == [0, 9]


def test_an_epochs_draws_follow_the_ratio_and_spread_over_each_part():
    lengths, ratio = [24, 296], [0.25, 0.75]  # a small part drawn 80 times: 3 or 4 times each
    for tag in range(3):
        part, index = mix_plan(lengths, ratio, seed=5, tag=tag)
        assert len(part) == 320 and (part == 0).sum() == 80
        small = index[part == 0]
        assert set(np.bincount(small, minlength=24).tolist()) <= {3, 4}
        assert len(set(index[part == 1].tolist())) == 240  # the large part: no repeats
        again = mix_plan(lengths, ratio, seed=5, tag=tag)
        assert all(
            np.array_equal(a, b) for a, b in zip((part, index), again, strict=True)
        )  # seeded
    assert not np.array_equal(mix_plan(lengths, ratio, 5, 0)[1], mix_plan(lengths, ratio, 5, 1)[1])
    with pytest.raises(ValueError, match="part 0 has weight 1.0 but no train samples"):
        mix_plan([0, 5], [1.0, 1.0], 0, 0)


def test_mix_stats_are_the_mixtures_mean_and_std():
    a = {"mean": [0.2, 0.2, 0.2], "std": [0.1, 0.1, 0.1]}
    b = {"mean": [0.6, 0.6, 0.6], "std": [0.1, 0.1, 0.1]}
    got = mix_stats([a, b], [1, 1])
    assert got["mean"] == pytest.approx([0.4] * 3)
    assert got["std"] == pytest.approx([math.sqrt(0.01 + 0.04)] * 3, abs=1e-6)  # var + spread
    assert mix_stats([a, b], [3, 1])["mean"] == pytest.approx([0.3] * 3)


def test_a_mixed_epoch_draws_by_ratio_and_validates_on_both_parts(depthless):
    data = TrainData.mix([TrainData(ROOMS, AUG), depthless["full"]], ratio=[1, 3])
    train = data.dataset("train", 32, seed=2)
    assert len(train) == 32 + 24  # an epoch: as many draws as the parts hold
    photo_draws = []
    for epoch in (0, 1):
        batches = list(DataLoader(train, 8, sampler=EpochSampler(56, 2, 0, epoch, 8)))
        flags = torch.cat([b["has_depth"] for b in batches])
        assert flags.sum().item() == 14  # rooms: 1/4 of the 56 draws
        ids = [i for b in batches for i, d in zip(b["id"], b["has_depth"], strict=True) if not d]
        assert len(set(ids)) == 24 and len(ids) == 42  # every photo, 18 of them twice
        photo_draws.append(sorted(ids))
    assert photo_draws[0] != photo_draws[1]  # each epoch draws anew which photos come twice
    val = data.dataset("val", 32)
    assert isinstance(val, ConcatQuartets) and len(val) == 8 + 8  # both val splits, whole
    assert val.depth_flags().tolist() == [True] * 8 + [False] * 8
    assert [bool(val[i]["has_depth"]) for i in (0, 15)] == [True, False]
    with pytest.raises(ValueError, match="ratio: 1 weights for 2 parts"):
        TrainData.mix([ROOMS, depthless["full"]], ratio=[1])


def _train(data, ckpt_dir: Path, stop: int | None = None) -> dict:
    cfg = TrainConfig(
        stages=((32, 2, 8),),  # 56 draws: 7 steps an epoch, 14 in all
        ckpt_dir=str(ckpt_dir),
        ckpt_every=3,
        log_every=1,
        num_workers=0,
        threads=1,
        tensorboard=False,
    )
    net = model(8)
    if stop is not None:
        with pytest.raises(KeyboardInterrupt):
            fit(net, data, cfg, callbacks=[stop_at_step(stop)])
        return {}
    return {**fit(net, data, cfg), "weights": net.state_dict()}


@pytest.mark.slow
def test_a_mixed_run_stopped_mid_epoch_resumes_bit_exact(depthless, tmp_path):
    data = TrainData.mix([TrainData(ROOMS, AUG), TrainData(depthless["lazy"], AUG)], [0.5, 0.5])
    ref = _train(data, tmp_path / "ref")
    _train(data, tmp_path / "cut", stop=11)  # newest checkpoint: step 9, in epoch 1
    shutil.copytree(tmp_path / "cut", tmp_path / "resumed")
    done = _train(data, tmp_path / "resumed")
    assert done["resumed_from"] == str(ckpt.checkpoint_path(tmp_path / "resumed", 9))
    assert done["steps"] == 14 - 9
    for k, v in ref["weights"].items():
        assert torch.equal(v, done["weights"][k]), k
    assert math.isfinite(ref["val"]["depth_rmse"])  # the rooms' val has depth, the photos' none
