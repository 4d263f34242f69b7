"""The command line, as a user runs it: real processes, real files."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

pytestmark = pytest.mark.slow
CLI = [sys.executable, "-m", "eva_depthmask"]
SMALL_DATA = ["--size", "32", "--n-bg", "6", "--n-fg", "3", "--placements", "1"]


def run(*args: str, timeout: int = 600) -> subprocess.CompletedProcess:
    return subprocess.run([*CLI, *args], capture_output=True, text=True, timeout=timeout)


def test_help_of_every_command():
    for command in ("demo", "make-data", "train", "evaluate", "predict"):
        done = run(command, "--help")
        assert done.returncode == 0 and "usage:" in done.stdout, command


@pytest.fixture(scope="module")
def demo(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("demo")
    done = run("demo", "--quick", "--out", str(out))
    assert done.returncode == 0, done.stderr[-3000:]
    assert "| mask_iou |" in done.stdout and "difference baseline" in done.stdout
    return out


def test_demo_quick_writes_metrics_and_figures(demo):
    metrics = json.loads((demo / "metrics.json").read_text())
    for key in ("mask_iou", "mask_dice", "depth_rmse", "depth_abs_rel", "depth_delta1"):
        assert 0 <= metrics[key] <= 10, key
    assert {r["level"] for r in metrics["robustness"]} == {"none", "mild", "strong"}
    for name in ("predictions.png", "curves.png"):
        assert Image.open(demo / name).size[0] > 300


def test_demo_scores_its_final_weights_with_flip_averaging(demo, tmp_path):
    metrics = json.loads((demo / "metrics.json").read_text())
    assert metrics["plan"]["flip"] and metrics["plan"]["loss"]["mask_edge"] > 0
    final = sorted((demo / "run").glob("ckpt_*.pt"))[-1]
    scored = {}
    for flip in ([], ["--flip"]):
        out = tmp_path / f"eval{''.join(flip)}"
        done = run(
            "evaluate", "--ckpt", str(final), "--data", str(demo / "data"), "--out", str(out), *flip
        )
        assert done.returncode == 0, done.stderr[-3000:]
        scored[bool(flip)] = json.loads((out / "metrics.json").read_text())
    for key in ("mask_iou", "depth_rmse", "depth_delta1"):
        assert metrics[key] == pytest.approx(scored[True][key], rel=1e-5), key
    assert metrics["depth_rmse"] != pytest.approx(scored[False]["depth_rmse"], rel=1e-5)


def test_demo_killed_then_rerun_ends_with_the_same_metrics(demo, tmp_path):
    proc = subprocess.Popen(
        [*CLI, "demo", "--quick", "--out", str(tmp_path)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.time() + 400
    while time.time() < deadline and not list((tmp_path / "run").glob("ckpt_*.pt")):
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)  # mid-training, after the first chunk was saved
    proc.wait()
    assert not (tmp_path / "metrics.json").exists()
    done = run("demo", "--quick", "--out", str(tmp_path))
    assert done.returncode == 0, done.stderr[-3000:]
    assert "resuming from ckpt_" in done.stdout
    ours, theirs = (json.loads((p / "metrics.json").read_text()) for p in (tmp_path, demo))
    ours["plan"]["train"].pop("ckpt_dir")
    theirs["plan"]["train"].pop("ckpt_dir")
    assert ours == theirs


def test_train_evaluate_predict(tmp_path):
    ckpt_dir = tmp_path / "run"
    done = run("train", *SMALL_DATA, "--stages", "32:1:8", "--ckpt-dir", str(ckpt_dir))
    assert done.returncode == 0, done.stderr[-3000:]
    assert json.loads(done.stdout[done.stdout.index("{") :])["best_path"].endswith("best.pt")

    done = run(
        "evaluate",
        "--ckpt",
        str(ckpt_dir / "best.pt"),
        *SMALL_DATA,
        "--out",
        str(tmp_path / "eval"),
    )
    assert done.returncode == 0, done.stderr[-3000:]
    metrics = json.loads((tmp_path / "eval" / "metrics.json").read_text())
    assert metrics["split"] == "test" and 0 <= metrics["mask_iou"] <= 1 and not metrics["flip"]
    flip = run(
        "evaluate",
        "--ckpt",
        str(ckpt_dir / "best.pt"),
        *SMALL_DATA,
        "--out",
        str(tmp_path / "eval_flip"),
        "--flip",
    )
    assert flip.returncode == 0, flip.stderr[-3000:]
    flipped = json.loads((tmp_path / "eval_flip" / "metrics.json").read_text())
    assert flipped["flip"] and flipped["depth_rmse"] != metrics["depth_rmse"]
    header = (tmp_path / "eval" / "per_sample.csv").read_text().splitlines()[0]
    assert header.startswith("id,") and "depth_rmse" in header

    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 256, (48, 60, 3), dtype=np.uint8)).save(tmp_path / "bg.jpg")
    Image.fromarray(rng.integers(0, 256, (48, 60), dtype=np.uint8)).save(
        tmp_path / "fg_bg.png"
    )  # grayscale
    done = run(
        "predict",
        "--ckpt",
        str(ckpt_dir / "best.pt"),
        "--bg",
        str(tmp_path / "bg.jpg"),
        "--fg-bg",
        str(tmp_path / "fg_bg.png"),
        "--out",
        str(tmp_path / "pred"),
        "--flip",
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert Image.open(tmp_path / "pred" / "mask.png").size == (60, 48)
    assert np.asarray(Image.open(tmp_path / "pred" / "depth.png")).dtype == np.uint16


def test_bad_input_is_one_clear_line(tmp_path):
    (tmp_path / "x.pt").write_bytes(b"garbage")
    done = run("predict", "--ckpt", str(tmp_path / "x.pt"), "--bg", "a.jpg", "--fg-bg", "b.jpg")
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert done.stderr.startswith("error: ") and "x.pt: unreadable checkpoint" in done.stderr
    done = run("evaluate", "--ckpt", str(tmp_path / "none.pt"))
    assert done.returncode == 2 and "none.pt: no such checkpoint file" in done.stderr
    done = run("train", "--stages", "64x4")
    assert done.returncode == 2 and "expected SIZE:EPOCHS:BATCH" in done.stderr
    done = run("make-data", str(tmp_path / "d"), "--fg-per-bg", "0")
    assert done.returncode == 2 and done.stderr.startswith("error: DataConfig.fg_per_bg")
    assert not (tmp_path / "d").exists()
