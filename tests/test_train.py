"""Training survives being killed: real processes, SIGKILL, and bit-for-bit comparison of final weights."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from eva_depthmask.training import checkpoint as ckpt
from eva_depthmask.training.runlog import read_log

JOB = Path(__file__).parent / "train_job.py"
pytestmark = pytest.mark.slow


def run_job(ckpt_dir: Path, *args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(JOB), str(ckpt_dir), *args],
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, **(env or {})},
    )


def assert_same_weights(a: Path, b: Path) -> None:
    wa, wb = torch.load(a, weights_only=True), torch.load(b, weights_only=True)
    assert wa.keys() == wb.keys()
    for k in wa:
        assert torch.equal(wa[k], wb[k]), f"{k} differs"


def deterministic_log(path: Path) -> list[tuple]:
    cols = (
        "kind",
        "stage",
        "epoch",
        "step",
        "global_step",
        "lr",
        "loss_total",
        "mask_iou",
        "depth_rmse",
    )
    return [tuple(r[c] for c in cols) for r in read_log(path)]


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> Path:
    """One uninterrupted run."""
    out = tmp_path_factory.mktemp("reference")
    done = run_job(out)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "fit: resumed_from=None steps=24" in done.stdout
    return out


@pytest.mark.parametrize(
    "kill, resumed_at",
    [
        (["--kill-at-step", "7"], 6),  # mid-epoch, one step after a periodic checkpoint
        # after the epoch's last step and validation, before its checkpoint: back to step 6
        (["--kill-at-val", "0"], 6),
        # first step of stage 2 (40 px), right after the stage switch (its checkpoint at step 16)
        (["--kill-at-step", "17"], 16),
        # inside the write of the end-of-epoch checkpoint (step 8): bytes written, not yet renamed
        (["--kill-in-save", "4"], 6),
    ],
    ids=["mid_epoch", "epoch_boundary", "stage_switch", "during_checkpoint_write"],
)
def test_killed_run_resumes_to_identical_weights(tmp_path, reference, kill, resumed_at):
    """The model has dropout, so the weights match only if the RNG state was restored too."""
    killed = run_job(tmp_path, *kill)
    assert killed.returncode == -signal.SIGKILL
    assert not (tmp_path / "final.pt").exists()
    assert not list(tmp_path.glob(".*.tmp")) or kill[0] == "--kill-in-save"
    resumed = run_job(tmp_path)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    # the right checkpoint, and only the steps after it (24 in all: see train_job.train_config)
    name = ckpt.checkpoint_path(".", resumed_at).name
    assert f"resuming from {name}" in resumed.stdout
    assert f"fit: resumed_from={name} steps={24 - resumed_at}" in resumed.stdout
    assert_same_weights(tmp_path / "final.pt", reference / "final.pt")
    assert deterministic_log(tmp_path / "log.csv") == deterministic_log(reference / "log.csv")


def test_resume_with_dataloader_workers_is_identical(tmp_path, reference):
    killed = run_job(tmp_path, "--kill-at-step", "11", env={"JOB_WORKERS": "2"})
    assert killed.returncode == -signal.SIGKILL
    resumed = run_job(tmp_path, env={"JOB_WORKERS": "2"})
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert "fit: resumed_from=ckpt_00000009.pt steps=15" in resumed.stdout
    assert_same_weights(tmp_path / "final.pt", reference / "final.pt")


@pytest.fixture(scope="module")
def reference_torch(tmp_path_factory) -> Path:
    """One uninterrupted run with the torch backend: each batch augmented in fit()."""
    out = tmp_path_factory.mktemp("reference_torch")
    done = run_job(out, env={"JOB_BACKEND": "torch"})
    assert done.returncode == 0, done.stderr[-3000:]
    return out


def test_torch_backend_resumes_bit_exact_with_workers(tmp_path, reference, reference_torch):
    env = {"JOB_BACKEND": "torch", "JOB_WORKERS": "2"}  # parameters drawn in the workers
    killed = run_job(tmp_path, "--kill-at-step", "11", env=env)
    assert killed.returncode == -signal.SIGKILL
    resumed = run_job(tmp_path, env=env)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert "fit: resumed_from=ckpt_00000009.pt steps=15" in resumed.stdout
    assert_same_weights(tmp_path / "final.pt", reference_torch / "final.pt")
    assert deterministic_log(tmp_path / "log.csv") == deterministic_log(reference_torch / "log.csv")
    with pytest.raises(AssertionError, match="differs"):  # the backend did change the training
        assert_same_weights(reference_torch / "final.pt", reference / "final.pt")


def test_truncated_and_garbage_checkpoints_never_stop_a_resume(tmp_path, reference):
    assert run_job(tmp_path, "--kill-at-step", "14").returncode == -signal.SIGKILL
    files = ckpt.list_checkpoints(tmp_path)
    assert len(files) == 2  # keep_last=2
    newest, older = files[-1], files[-2]
    newest.write_bytes(newest.read_bytes()[: newest.stat().st_size // 2])  # cut short
    with pytest.warns(UserWarning, match=rf"skipping {newest}.*unreadable"):
        path, _ = ckpt.latest(tmp_path)
    assert path == older
    older.write_bytes(os.urandom(4096))  # garbage: now neither loads
    shutil.copy(newest, tmp_path / "ckpt_99999999.pt")  # and a newer one that is cut short too
    resumed = run_job(tmp_path)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert "unreadable" in resumed.stderr
    assert "fit: resumed_from=None steps=24" in resumed.stdout  # nothing loads: it starts over
    assert_same_weights(tmp_path / "final.pt", reference / "final.pt")


def test_full_disk_during_save_keeps_previous_checkpoint(tmp_path):
    failed = run_job(tmp_path, "--fsize-limit-after-step", "4")
    assert failed.returncode != 0
    message = failed.stderr.strip().splitlines()[-1]
    assert "CheckpointError: could not save checkpoint" in message and "ckpt_00000006.pt" in message
    assert "the previous checkpoint ckpt_00000003.pt is intact" in message
    assert [p.name for p in ckpt.list_checkpoints(tmp_path)] == ["ckpt_00000003.pt"]
    assert ckpt.load(tmp_path / "ckpt_00000003.pt")["global_step"] == 3
    assert not list(tmp_path.glob(".*.tmp"))


def test_checkpoint_of_another_model_is_refused(tmp_path):
    assert run_job(tmp_path, "--kill-at-step", "5").returncode == -signal.SIGKILL
    refused = run_job(tmp_path, "--width", "12")
    assert refused.returncode != 0
    assert "other settings (model.widths: [8, 16, 16, 16] -> [12, 16, 16, 16])" in refused.stderr


def test_torchrun_two_processes_reduce_metrics_across_ranks(tmp_path):
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--nproc_per_node=2",
            str(JOB),
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    rows = read_log(tmp_path / "log.csv")
    steps = [int(r["global_step"]) for r in rows if r["kind"] == "train"]
    assert steps == list(
        range(1, 13)
    )  # 64 samples / (batch 8 x 2 ranks) = 4 steps x 3 epochs, logged once

    sys.path.insert(0, str(JOB.parent))
    from train_job import DATA, model

    from eva_depthmask.training.val_metrics import validate

    net = model(8)
    net.load_state_dict(torch.load(tmp_path / "final.pt", weights_only=True))
    state = ckpt.load(ckpt.list_checkpoints(tmp_path)[-1])
    alone = validate(net, DATA.dataset("val", 40, stats=state["stats"]), torch.device("cpu"))
    last_val = [r for r in rows if r["kind"] == "val"][-1]
    for key in ("mask_iou", "depth_rmse", "depth_delta1"):
        assert float(last_val[key]) == pytest.approx(alone[key], rel=1e-4), key


def test_foreign_files_are_not_checkpoints(tmp_path):
    torch.save({"state_dict": {}}, tmp_path / "ckpt_00000001.pt")
    with pytest.raises(ckpt.CheckpointError, match="not an eva_depthmask checkpoint"):
        ckpt.load(tmp_path / "ckpt_00000001.pt")
    with pytest.raises(ckpt.CheckpointError, match="no such checkpoint"):
        ckpt.load(tmp_path / "missing.pt")


def test_cpu_threads_leave_a_core_per_loader_worker_and_are_restored(tmp_path):
    from eva_depthmask.config import DataConfig, ModelConfig, TrainConfig
    from eva_depthmask.nets.depthmasknet import DepthMaskNet
    from eva_depthmask.training.devices import default_threads
    from eva_depthmask.training.fit import fit
    from eva_depthmask.training.loaders import TrainData, cores, default_workers

    before = torch.get_num_threads()
    try:
        torch.set_num_threads(2)
        cpu = torch.device("cpu")
        assert default_workers(cpu) == 0  # CPU: load in-process, cached, and train on every core
        assert default_threads(cpu, workers=0) == min(2, cores())
        assert default_threads(cpu, workers=1) == max(1, min(2, cores() - 1))
        assert default_threads(cpu, workers=0, world=cores()) == 1
        assert default_threads(torch.device("cuda"), workers=1) == 0  # a GPU run leaves torch be
        # no GPU needed: only the device's type is read. Every core feeds the GPU but the one that
        # drives it; with one process per core, each loads in-process
        gpu = torch.device("cuda")
        assert default_workers(gpu) == cores() - 1
        assert default_workers(gpu, world=cores()) == 0
        torch.set_num_threads(1)
        assert default_threads(cpu, workers=0) == 1  # never more than the caller allowed

        torch.set_num_threads(2)
        seen = []
        cfg = TrainConfig(
            stages=((32, 1, 8),),
            ckpt_dir=str(tmp_path),
            num_workers=0,
            threads=1,
            log_every=1,
            tensorboard=False,
        )
        model = DepthMaskNet(ModelConfig(widths=(8, 16, 16, 16), decoder_widths=(8, 8, 8)))
        data = TrainData(DataConfig(size=32, n_bg=6, n_fg=2, placements=1))
        fit(model, data, cfg, callbacks=[lambda row: seen.append(torch.get_num_threads())])
        assert seen and set(seen) == {1}
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)
