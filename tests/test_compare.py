"""benchmarks/compare.py end to end on a tiny setting: the table, the JSON, the figure, the resume."""

import json
import time
from pathlib import Path

import pytest
import torch

from eva_depthmask.evaluation.evaluate import evaluate
from eva_depthmask.evaluation.predictor import Predictor
from eva_depthmask.nets.registry import build_model
from eva_depthmask.training.loaders import TrainData
from eva_depthmask.training.runlog import read_log

pytestmark = pytest.mark.slow  # each trains every network end to end: seconds per test

KEYS = {
    "name",
    "params",
    "macs",
    "train_img_per_s",
    "mask_iou",
    "depth_rmse",
    "depth_delta1",
    "mask_iou_mild",
    "mask_iou_strong",
}


@pytest.fixture(scope="module")
def compare(load_benchmark):
    return load_benchmark("compare")


def _run(compare, tmp: Path, *extra: str) -> list[dict]:
    args = ["--size", "32", "--images", "96", "--epochs", "2", "--batch", "16"]
    args += ["--test-samples", "20", "--threads", "1", "--device", "cpu"]
    args += ["--work", str(tmp / "work"), "--out", str(tmp / "compare.json")]
    args += ["--figure", str(tmp / "compare.png"), *extra]
    threads = torch.get_num_threads()
    try:
        return compare.main(args)
    finally:
        torch.set_num_threads(threads)  # main() sets the benchmark's thread count


WALL = {}  # seconds the module's comparison took, start to end


@pytest.fixture(scope="module")
def result(compare, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("compare")
    t0 = time.perf_counter()
    rows = _run(compare, tmp, "--models", "depthmasknet", "s15_unet")
    WALL["result"] = time.perf_counter() - t0
    return tmp, rows


def test_writes_one_row_per_network_and_the_difference_baseline(compare, result):
    tmp, rows = result
    written = json.loads((tmp / "compare.json").read_text())
    assert written == json.loads(json.dumps(rows))
    assert [r["name"] for r in written] == ["depthmasknet", "s15_unet", "difference"]
    assert all(set(r) >= KEYS for r in written)
    nets, diff = written[:2], written[2]
    for r in nets:
        assert r["params"] == sum(p.numel() for p in build_model(r["name"]).parameters())
        assert r["macs"] > r["params"]  # every weight is used at least once per pixel of output
        assert r["train_images"] == 96  # --images: 2 epochs of 3 batches of 16
        # the speed is the images trained on over the training time, which the run contains
        assert r["train_img_per_s"] == pytest.approx(r["train_images"] / r["train_seconds"])
        assert 0 < r["train_seconds"] < WALL["result"]
    # the quality columns are evaluate()'s on the test split for the network's final weights
    work = next((tmp / "work").iterdir())
    final = sorted((work / "runs" / "depthmasknet_b16").glob("ckpt_*.pt"))[-1]
    predictor = Predictor.from_checkpoint(final, device="cpu")
    test = TrainData(work / "data").dataset("test", 32, stats=predictor.stats)
    want, _ = evaluate(predictor.model, test, progress=False)
    for k in ("mask_iou", "depth_rmse", "depth_delta1", "depth_delta1_aligned", "depth_scale_log"):
        assert nets[0][k] == pytest.approx(want[k], rel=1e-5, abs=1e-7), k
    assert nets[1]["params"] == 2_161_666  # the S15 U-Net as published
    assert diff["depth_rmse"] is None and diff["train_img_per_s"] is None
    assert all(diff[k] is None for k in compare.ALIGNED)
    assert 0 < diff["mask_iou"] <= 1 and diff["mask_iou_strong"] < diff["mask_iou"]


def test_records_the_run_and_draws_the_figure(result):
    tmp, _ = result
    run = json.loads((tmp / "compare_run.json").read_text())
    assert run["test_samples"] >= 20
    # the demo's recipe: one object per room (x 2 flips), so the test split holds many rooms
    assert run["test_rooms"] * 2 == run["test_samples"]
    assert set(run["curves"]) == {"depthmasknet", "s15_unet"}
    assert all(len(points) == 2 for points in run["curves"].values())  # one per epoch
    assert (tmp / "compare.png").read_bytes()[:4] == b"\x89PNG"


def test_the_warm_up_leaves_the_global_rng_as_it_was(compare):
    torch.manual_seed(5)
    before = torch.random.get_rng_state()
    compare.warm_up(torch.device("cpu"), 16, 2)  # builds, draws inputs and trains a network
    assert torch.equal(torch.random.get_rng_state(), before)


def test_a_rerun_reuses_finished_training(compare, result):
    tmp, rows = result
    again = _run(compare, tmp, "--models", "depthmasknet")
    assert again[0] == rows[0]  # the same training seconds: nothing was retrained


def test_a_fresh_run_repeats_the_quality_columns(compare, result, tmp_path):
    _, rows = result
    fresh = _run(compare, tmp_path, "--models", "depthmasknet")
    quality = [k for k in rows[0] if k.startswith(("mask_", "depth_"))]
    assert quality and all(fresh[0][k] == pytest.approx(rows[0][k], abs=1e-6) for k in quality)


def test_another_training_seed_trains_apart_on_the_same_data(compare, result):
    tmp, rows = result
    data = sorted(p.name for p in (tmp / "work").iterdir())
    other = _run(compare, tmp, "--models", "depthmasknet", "--train-seed", "1")
    assert sorted(p.name for p in (tmp / "work").iterdir()) == data  # no second dataset
    runs = next((tmp / "work").iterdir()) / "runs"
    assert (runs / "depthmasknet_b16_train1" / "log.csv").exists()
    assert other[0]["train_images"] == rows[0]["train_images"]
    quality = [k for k in rows[0] if k.startswith(("mask_", "depth_"))]
    assert any(other[0][k] != rows[0][k] for k in quality)  # other weights, other predictions
    # the seed-0 run is untouched: a re-run of it still reuses it as it was
    assert _run(compare, tmp, "--models", "depthmasknet")[0] == rows[0]


def test_another_batch_size_trains_apart(compare, result):
    tmp, rows = result
    other = _run(compare, tmp, "--models", "depthmasknet", "--batch", "8")
    runs = next((tmp / "work").iterdir()) / "runs"
    assert (runs / "depthmasknet_b8" / "log.csv").exists()  # not resumed from the batch-16 run
    assert other[0]["train_images"] == rows[0]["train_images"]  # the same images seen
    steps = [
        int(read_log(runs / run / "log.csv")[-1]["global_step"])
        for run in ("depthmasknet_b16", "depthmasknet_b8")
    ]
    assert steps[1] == 2 * steps[0]


def test_bad_arguments_are_refused_by_name(compare, capsys):
    with pytest.raises(SystemExit):
        compare.parse_args(["--images", "0"])
    assert "--images" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        compare.parse_args(["--train-seed", "-1"])
    assert "--train-seed" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        compare.parse_args(["--workers", "-1"])
    assert "--workers" in capsys.readouterr().err


def test_the_markdown_table_has_a_cell_under_every_header(compare, result):
    _, rows = result
    lines = compare.markdown(rows).splitlines()
    assert len(lines) == 2 + len(rows)
    widths = {line.count("|") for line in lines}
    assert widths == {lines[0].count("|")}, lines
    assert lines[-1].startswith("| difference |")
