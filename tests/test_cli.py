"""The command line, as a user runs it: real processes, real files."""

from __future__ import annotations

import csv
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from eva_depthmask.apps.cli import main
from eva_depthmask.config import DataConfig
from eva_depthmask.evaluation.evaluate import evaluate
from eva_depthmask.evaluation.predictor import Predictor
from eva_depthmask.nets.registry import build_model
from eva_depthmask.training import checkpoint as ckpt
from eva_depthmask.training.loaders import TrainData

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
    # the numbers are evaluate()'s, through the Python API, for its final weights and test split
    final = sorted((demo / "run").glob("ckpt_*.pt"))[-1]
    predictor = Predictor.from_checkpoint(final, device="cpu", flip=True)
    test = TrainData(demo / "data").dataset("test", predictor.size, stats=predictor.stats)
    want, _ = evaluate(predictor.model, test, progress=False)
    assert metrics["samples"]["test"] == len(test)
    assert metrics["test"] == pytest.approx(want, rel=1e-5, abs=1e-7)
    for key in ("mask_iou", "mask_dice", "depth_rmse", "depth_abs_rel", "depth_delta1"):
        assert metrics[key] == metrics["test"][key], key
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


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> Path:
    """The checkpoint folder of ``train`` run from the command line on SMALL_DATA."""
    ckpt_dir = tmp_path_factory.mktemp("cli") / "run"
    done = run("train", *SMALL_DATA, "--stages", "32:1:8", "--ckpt-dir", str(ckpt_dir))
    assert done.returncode == 0, done.stderr[-3000:]
    assert json.loads(done.stdout[done.stdout.index("{") :])["best_path"] == str(
        ckpt_dir / "best.pt"
    )
    return ckpt_dir


def test_train_evaluate_predict(trained, tmp_path):
    ckpt_dir = trained
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
    assert metrics["split"] == "test" and metrics["size"] == 32 and not metrics["flip"]
    # the same numbers as evaluate() through the Python API, on the same checkpoint and data
    predictor = Predictor.from_checkpoint(ckpt_dir / "best.pt", device="cpu")
    data = TrainData(DataConfig(size=32, n_bg=6, n_fg=3, placements=1))
    want, rows = evaluate(
        predictor.model, data.dataset("test", 32, stats=predictor.stats), progress=False
    )
    assert {k: metrics[k] for k in want} == pytest.approx(want, rel=1e-5, abs=1e-7)
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
    with open(tmp_path / "eval" / "per_sample.csv", newline="") as f:
        table = list(csv.DictReader(f))
    assert [r["id"] for r in table] == [r["id"] for r in rows]
    assert [float(r["depth_rmse"]) for r in table] == pytest.approx(
        [r["depth_rmse"] for r in rows], rel=1e-5, abs=1e-7
    )

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


def test_bad_input_is_one_clear_line(tmp_path, trained, inputs):
    (tmp_path / "x.pt").write_bytes(b"garbage")
    done = run("predict", "--ckpt", str(tmp_path / "x.pt"), "--bg", "a.jpg", "--fg-bg", "b.jpg")
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert done.stderr.startswith("error: ") and "x.pt: unreadable checkpoint" in done.stderr
    photo, out = str(inputs / "photo.png"), tmp_path / "pred"
    for ckpt_file, bg, message in (
        (trained / "best.pt", "nope.jpg", "nope.jpg: no such file"),
        (inputs / "newer.pt", photo, "newer.pt: checkpoint format"),
    ):
        done = run(
            "predict", "--ckpt", str(ckpt_file), "--bg", bg, "--fg-bg", photo, "--out", str(out)
        )
        assert done.returncode == 2 and done.stderr.startswith("error: "), done.stderr
        assert done.stderr.count("\n") == 1 and message in done.stderr
        assert not out.exists()
    done = run("evaluate", "--ckpt", str(tmp_path / "none.pt"))
    assert done.returncode == 2 and "none.pt: no such checkpoint file" in done.stderr
    done = run("train", "--stages", "64x4")
    assert done.returncode == 2 and "expected SIZE:EPOCHS:BATCH" in done.stderr
    done = run("make-data", str(tmp_path / "d"), "--fg-per-bg", "0")
    assert done.returncode == 2 and done.stderr.startswith("error: DataConfig.fg_per_bg")
    assert not (tmp_path / "d").exists()


# ---------------------------------------------------------------------------------------------------
# Every error a user can hit: one ``error:`` line naming the file or argument, exit status 2, and
# nothing written. Run through main() in this process (as ``python -m`` runs it, less the start-up);
# test_bad_input_is_one_clear_line above runs some of them as real processes.


@pytest.fixture(scope="module")
def inputs(trained, tmp_path_factory) -> Path:
    """Files a user may hand the command line by mistake, and one good photo."""
    folder = tmp_path_factory.mktemp("inputs")
    state = ckpt.load(trained / "best.pt")
    torch.save(state["model"], folder / "state_dict.pt")  # the weights alone
    torch.save({**state, "version": ckpt.VERSION + 1}, folder / "newer.pt")
    tiny = build_model("depthmasknet_tiny").state_dict()  # declares a DepthMaskNet of other widths
    ckpt.save(folder / "other_weights.pt", {**state, "model": tiny})
    ckpt.save(folder / "unknown_net.pt", {**state, "model_config": {"name": "NoSuchNet"}})
    rng = np.random.default_rng(1)
    Image.fromarray(rng.integers(0, 256, (40, 40, 3), dtype=np.uint8)).save(folder / "photo.png")
    (folder / "garbage.jpg").write_bytes(rng.integers(0, 256, 3000, dtype=np.uint8).tobytes())
    return folder


def refused(capsys, argv: list[str]) -> str:
    """Run the command line on ``argv`` in this process; its one ``error:`` line (exit status 2)."""
    try:
        code = main(argv)
    except SystemExit as e:  # argparse's refusals exit from inside
        code = e.code
    err = capsys.readouterr().err
    lines = [line for line in re.split(r"[\r\n]+", err) if line.strip()]
    errors = [line for line in lines if "error: " in line]
    assert code == 2 and "Traceback" not in err, err
    assert len(errors) == 1 and lines[-1] == errors[0], err  # progress bars may come before it
    return errors[0]


V = ckpt.VERSION
PREDICT = ["predict", "--ckpt", "{run}/best.pt", "--bg", "{in}/photo.png"]
PREDICT_TO_OUT = ["--fg-bg", "{in}/photo.png", "--out", "{out}"]
BAD_INPUT = {
    "missing --bg": (
        ["predict", "--ckpt", "{run}/best.pt", "--bg", "{in}/nope.jpg", *PREDICT_TO_OUT],
        r"^error: \S*nope\.jpg: no such file$",
    ),
    "unreadable image": (
        [*PREDICT, "--fg-bg", "{in}/garbage.jpg", "--out", "{out}"],
        r"^error: \S*garbage\.jpg: unreadable or truncated image",
    ),
    "missing --fg-dir": (
        ["make-data", "{out}", "--fg-dir", "{in}/cut_outs", *SMALL_DATA, "--workers", "0"],
        r"^error: \S*cut_outs: foreground folder does not exist$",
    ),
    "plain state_dict": (
        ["predict", "--ckpt", "{in}/state_dict.pt", "--bg", "{in}/photo.png", *PREDICT_TO_OUT],
        r"^error: \S*state_dict\.pt: not an eva_depthmask checkpoint",
    ),
    "weights of another network": (
        ["predict", "--ckpt", "{in}/other_weights.pt", "--bg", "{in}/photo.png", *PREDICT_TO_OUT],
        r"^error: \S*other_weights\.pt: its weights do not fit the DepthMaskNet it names",
    ),
    "unknown network": (
        ["predict", "--ckpt", "{in}/unknown_net.pt", "--bg", "{in}/photo.png", *PREDICT_TO_OUT],
        r"^error: \S*unknown_net\.pt: checkpoint names an unknown model 'NoSuchNet'$",
    ),
    "newer format, predict": (
        ["predict", "--ckpt", "{in}/newer.pt", "--bg", "{in}/photo.png", *PREDICT_TO_OUT],
        rf"^error: \S*newer\.pt: checkpoint format {V + 1} is newer than this package's \({V}\)",
    ),
    "newer format, evaluate": (
        ["evaluate", "--ckpt", "{in}/newer.pt", *SMALL_DATA, "--out", "{out}"],
        rf"^error: \S*newer\.pt: checkpoint format {V + 1} is newer than this package's \({V}\)",
    ),
    "unknown --model": (
        ["train", "--model", "nosuchnet", *SMALL_DATA, "--ckpt-dir", "{out}"],
        r"^error: --model: expected one of \[.*'depthmasknet_tiny'.*got 'nosuchnet'$",
    ),
    "empty split": (  # two backgrounds: no test split
        ["evaluate", "--ckpt", "{run}/best.pt", "--size", "32", "--n-bg", "2", "--out", "{out}"],
        r"^error: --split test: synthetic holds no test samples",
    ),
    "--lr not above 0": (
        ["train", "--lr", "-1", "--ckpt-dir", "{out}"],
        r"error: argument --lr: expected a number above 0, got '-1'$",
    ),
    "--workers below 0": (
        ["make-data", "{out}", "--workers", "-1"],
        r"error: argument --workers: expected 0 or a positive integer, got '-1'$",
    ),
}


@pytest.mark.parametrize("case", list(BAD_INPUT))
def test_each_bad_input_is_refused_before_anything_is_written(
    case, trained, inputs, tmp_path, capsys
):
    template, message = BAD_INPUT[case]
    out = tmp_path / "out"
    paths = {"run": str(trained), "in": str(inputs), "out": str(out)}
    assert re.search(message, refused(capsys, [a.format(**paths) for a in template]))
    assert not out.exists()


def _tree(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in root.rglob("*") if p.is_file()}


def test_a_checkpoint_folder_of_another_network_is_refused_and_kept(trained, tmp_path, capsys):
    run_dir = shutil.copytree(trained, tmp_path / "run")
    before = _tree(run_dir)
    argv = ["train", "--model", "depthmasknet_tiny", *SMALL_DATA, "--stages", "32:1:8"]
    line = refused(capsys, [*argv, "--ckpt-dir", str(run_dir)])
    assert re.search(r"^error: \S*ckpt_\d+\.pt: was written by a run with other settings", line)
    assert "model.widths" in line
    assert _tree(run_dir) == before


def test_outputs_are_written_whole_or_not_at_all(trained, inputs, tmp_path, capsys):
    evaluate_argv = ["evaluate", "--ckpt", str(trained / "best.pt"), *SMALL_DATA, "--out"]
    # a folder where per_sample.csv goes: metrics.json must not be replaced either
    out = tmp_path / "eval"
    (out / "per_sample.csv").mkdir(parents=True)
    (out / "metrics.json").write_text("from an earlier run")
    line = refused(capsys, [*evaluate_argv, str(out)])
    assert line.startswith(f"error: --out {out}: could not write {out / 'per_sample.csv'}")
    assert (out / "metrics.json").read_text() == "from an earlier run"
    assert sorted(p.name for p in out.iterdir()) == ["metrics.json", "per_sample.csv"]
    # an output folder that is a file
    taken = inputs / "photo.png"
    before = taken.read_bytes()
    predict_argv = [*PREDICT, "--fg-bg", str(taken), "--out", str(taken)]
    paths = {"run": str(trained), "in": str(inputs)}
    line = refused(capsys, [a.format(**paths) for a in predict_argv])
    assert line.startswith(f"error: --out {taken}: could not write {taken}")
    line = refused(capsys, ["demo", "--quick", "--out", str(taken)])
    assert line == f"error: {taken}: File exists"
    assert taken.read_bytes() == before


def test_a_full_disk_leaves_no_partial_prediction(trained, inputs, tmp_path):
    """A real process whose files may not grow past 4 kB: mask.png fits, depth.png does not."""
    big = np.random.default_rng(2).integers(0, 256, (200, 200, 3), dtype=np.uint8)
    Image.fromarray(big).save(tmp_path / "big.png")
    out = tmp_path / "new" / "pred"
    small_files = (  # then ``python -m eva_depthmask``; write() fails with EFBIG, no signal
        "import resource, runpy, signal; signal.signal(signal.SIGXFSZ, signal.SIG_IGN); "
        "resource.setrlimit(resource.RLIMIT_FSIZE, (4096, resource.RLIM_INFINITY)); "
        "runpy.run_module('eva_depthmask', run_name='__main__')"
    )
    args = ["--bg", str(tmp_path / "big.png"), "--fg-bg", str(tmp_path / "big.png")]
    done = subprocess.run(
        [sys.executable, "-c", small_files, "predict", "--ckpt", str(trained / "best.pt"), *args]
        + ["--out", str(out)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 2 and done.stderr.count("\n") == 1, done.stderr
    assert done.stderr.startswith(f"error: --out {out}: could not write")
    assert "File too large" in done.stderr
    assert list(tmp_path.iterdir()) == [tmp_path / "big.png"]  # no folder, no temporary file
