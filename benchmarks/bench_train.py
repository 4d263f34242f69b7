"""Training speed of the default DepthMaskNet with fit(): images/s at each stage size (first epoch,
and second, when fit's cache of decoded samples serves it; on a CPU also with one loader worker),
the model step alone (no data) for comparison, the cost of checkpointing at the default cadence,
and the time from re-running after a disconnect to the first resumed step.

    .venv/bin/python benchmarks/bench_train.py [--sizes 64 128 224] [--steps 30]

Writes benchmarks/results/bench_train.json and prints a markdown table. The device is CUDA when
available, else the CPU (channels_last; bf16 autocast where the CPU has native bf16, precision.py).
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

from eva_depthmask.config import DataConfig, TrainConfig, to_dict
from eva_depthmask.losses import DepthMaskLoss
from eva_depthmask.nets.depthmasknet import DepthMaskNet
from eva_depthmask.training import checkpoint as ckpt
from eva_depthmask.training.devices import pick_device
from eva_depthmask.training.fit import fit
from eva_depthmask.training.loaders import TrainData
from eva_depthmask.training.precision import autocast
from eva_depthmask.training.runlog import read_log

RESULTS = Path(__file__).parent / "results" / "bench_train.json"
BATCH = {64: 32, 128: 16, 224: 8}


def data_for(size: int, batch: int, steps: int) -> TrainData:
    """Synthetic data with about ``steps`` training batches per epoch (80 % of backgrounds train)."""
    n_bg = 10
    placements = max(1, round(steps * batch / (0.8 * n_bg * 10 * 2)))
    return TrainData(DataConfig(size=size, n_bg=n_bg, n_fg=10, placements=placements))


def fit_rate(size: int, steps: int, folder: Path, workers: int | None = None) -> dict:
    """fit() for two epochs; images/s from the log (first rows skipped: warm-up), for the first epoch
    (samples read and decoded) and the second (served from fit's in-memory cache when loading runs
    in-process). ``workers``: TrainConfig.num_workers (None: fit's default; torch threads are fit's
    default for it, the cores the workers leave)."""
    batch = BATCH.get(size, 16)
    cfg = TrainConfig(
        stages=((size, 2, batch),),
        ckpt_dir=str(folder / f"fit{size}_{workers}"),
        log_every=5,
        num_workers=workers,
    )
    t = time.perf_counter()
    fit(DepthMaskNet(), data_for(size, batch, steps), cfg)
    wall = time.perf_counter() - t
    rates = [[], []]
    for r in read_log(Path(cfg.ckpt_dir) / "log.csv"):
        if r["kind"] == "train":
            rates[int(r["epoch"])].append(float(r["img_per_s"]))
    first, second = (statistics.median(r[1:] or r) for r in rates)
    return {
        "batch": batch,
        "fit_img_per_s": second,
        "fit_first_epoch_img_per_s": first,
        "fit_wall_s": wall,
    }


def step_rate(size: int, steps: int) -> float:
    """The optimizer step alone on random tensors: what training would do if data were free."""
    batch = BATCH.get(size, 16)
    device = pick_device(TrainConfig())
    model = DepthMaskNet().to(device, memory_format=torch.channels_last)
    loss_fn, opt = DepthMaskLoss(), torch.optim.AdamW(model.parameters(), 1e-3)
    x = torch.rand(batch, 3, size, size, device=device).to(memory_format=torch.channels_last)
    true = {
        "mask": (torch.rand(batch, 1, size, size, device=device) > 0.5).float(),
        "depth": torch.rand(batch, 1, size, size, device=device),
    }
    times = []
    for i in range(steps + 3):
        t = time.perf_counter()
        with autocast(device):
            loss = loss_fn(model(x, x), true)["total"]
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if device.type == "cuda":
            torch.cuda.synchronize()
        if i >= 3:
            times.append(time.perf_counter() - t)
    return batch / statistics.median(times)


def checkpoint_cost(size: int, img_per_s: float, folder: Path) -> dict:
    """Seconds per save of a full training checkpoint, as a fraction of the steps between two saves."""
    model = DepthMaskNet()
    opt = torch.optim.AdamW(model.parameters(), 1e-3)
    model(torch.rand(2, 3, 32, 32), torch.rand(2, 3, 32, 32))["depth"].mean().backward()
    opt.step()  # optimizer state exists, as in a real checkpoint
    state = {
        "model": model.state_dict(),
        "optimizer": opt.state_dict(),
        "rng": ckpt.rng_state(),
        "train_config": to_dict(TrainConfig()),
    }
    times = []
    for i in range(5):
        t = time.perf_counter()
        ckpt.save(folder / f"ckpt_{i:08d}.pt", state)
        times.append(time.perf_counter() - t)
    save_s = statistics.median(times)
    every = TrainConfig().ckpt_every
    step_s = BATCH.get(size, 16) / img_per_s
    return {
        "save_s": save_s,
        "ckpt_bytes": (folder / "ckpt_00000000.pt").stat().st_size,
        "ckpt_fraction": save_s / (every * step_s + save_s),
    }


def resume_latency(folder: Path) -> dict:
    """Kill a run (SIGKILL) at step 12, re-run it, and time launch -> first resumed step."""
    job = [sys.executable, __file__, "--job", str(folder / "resume")]
    subprocess.run([*job, "--kill-at", "12"], capture_output=True)
    t = time.time()  # wall clock: comparable with the child's
    out = subprocess.run([*job, "--report-first-step"], capture_output=True, text=True)
    first = float(
        next(line.split()[1] for line in out.stdout.splitlines() if line.startswith("FIRST_STEP"))
    )
    return {"resume_to_first_step_s": first - t}


def job(folder: str, kill_at: int | None, report: bool) -> None:
    """The run that resume_latency kills and restarts (default model, 64 px, checkpoint every 10 steps)."""
    import os
    import signal

    def on_row(row: dict) -> None:
        if row["kind"] == "train" and row["global_step"] == kill_at:
            os.kill(os.getpid(), signal.SIGKILL)
        if report and row["kind"] == "train":
            print("FIRST_STEP", time.time(), flush=True)
            raise SystemExit(0)

    cfg = TrainConfig(
        stages=((64, 1, 32),), ckpt_dir=folder, ckpt_every=10, log_every=1, tensorboard=False
    )
    fit(DepthMaskNet(), data_for(64, 32, 40), cfg, callbacks=[on_row])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--sizes", type=int, nargs="+", default=[64, 128, 224])
    p.add_argument("--steps", type=int, default=30)
    p.add_argument("--job")
    p.add_argument("--kill-at", type=int)
    p.add_argument("--report-first-step", action="store_true")
    args = p.parse_args()
    if args.job:
        return job(args.job, args.kill_at, args.report_first_step)
    device = str(pick_device(TrainConfig()))
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for size in args.sizes:
            row = {"device": device, "size": size, **fit_rate(size, args.steps, Path(tmp))}
            if device == "cpu":  # the default against one loader worker on a core of its own
                worker = fit_rate(size, args.steps, Path(tmp), workers=1)
                row["fit_one_worker_img_per_s"] = worker["fit_img_per_s"]
            row["step_only_img_per_s"] = step_rate(size, 10)
            row.update(checkpoint_cost(size, row["fit_img_per_s"], Path(tmp)))
            rows.append(row)
            print(json.dumps(row), flush=True)
        extra = resume_latency(Path(tmp))
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps({"stages": rows, **extra}, indent=2))
    print(
        "| device | size | batch | fit img/s, epoch 1 | fit img/s, epoch 2 | fit img/s, 1 worker "
        "| step only img/s | checkpoint s | checkpoint share at ckpt_every=100 |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        worker = r.get("fit_one_worker_img_per_s")
        print(
            f"| {r['device']} | {r['size']} | {r['batch']} | {r['fit_first_epoch_img_per_s']:.0f} | "
            f"{r['fit_img_per_s']:.0f} | {'-' if worker is None else f'{worker:.0f}'} | "
            f"{r['step_only_img_per_s']:.0f} | {r['save_s']:.3f} | {r['ckpt_fraction']:.2%} |"
        )
    print(f"\nre-run after SIGKILL -> first resumed step: {extra['resume_to_first_step_s']:.1f} s")


if __name__ == "__main__":
    main()
