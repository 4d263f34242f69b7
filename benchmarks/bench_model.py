"""Speed of DepthMaskNet and the baselines: training and inference pairs/s, single-pair latency.

For every model x size x precision mode it measures
  - latency: one pair (batch 1), inference, median milliseconds;
  - infer/s: pairs per second at ``--batch`` in inference mode;
  - train/s: pairs per second of full training steps (forward, DepthMaskLoss, backward, fit()'s
    AdamW).
Modes: ``fp32`` (contiguous float32), ``fp32_cl`` (channels_last), ``bf16_cl`` (bf16 autocast +
channels_last). Each figure is the median over repeats run for at least ``--min-time`` seconds.
Shared or busy machines make these noisy: say where and how they were taken. When another process
keeps a core busy, torch's OpenMP threads wait on each other at every op and a 2-thread run can
be 10x slower than a 1-thread one: pass ``--threads 1`` there (the JSON records the load).

    python benchmarks/bench_model.py                      # all models, 64/128/224, CPU
    python benchmarks/bench_model.py --models depthmasknet session15 --sizes 64 --device cuda

Writes benchmarks/results/bench_model.json and prints a markdown table; ``--update`` re-measures only
``--models`` and keeps the other rows (each row's ``run`` indexes ``runs``, the meta it was taken with).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import torch

from eva_depthmask.config import TrainConfig
from eva_depthmask.losses import DepthMaskLoss
from eva_depthmask.nets.registry import MODELS, build_model
from eva_depthmask.nets.summary import model_summary
from eva_depthmask.training.optim import make_optimizer
from eva_depthmask.training.precision import cpu_has_native_bf16

MODES = ("fp32", "fp32_cl", "bf16_cl")
RESULTS = Path(__file__).parent / "results" / "bench_model.json"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--models", nargs="+", default=list(MODELS), choices=list(MODELS))
    p.add_argument("--sizes", nargs="+", type=int, default=[64, 128, 224])
    p.add_argument("--modes", nargs="+", default=list(MODES), choices=MODES)
    p.add_argument("--batch", type=int, default=16, help="batch for infer/s and train/s")
    p.add_argument("--repeats", type=int, default=20, help="at most this many timed repeats")
    p.add_argument("--min-time", type=float, default=1.0, help="seconds of repeats per figure")
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    p.add_argument("--no-train", action="store_true", help="skip the training measurement")
    p.add_argument("--out", type=Path, default=RESULTS)
    p.add_argument(
        "--update",
        action="store_true",
        help="replace only the measured models' rows of --out, keep the others",
    )
    return p.parse_args(argv)


def sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def timed(fn, device: str, repeats: int, min_time: float) -> float:
    """Median seconds of ``fn()`` after a warm-up call; stops at ``repeats`` or ``min_time``."""
    fn()
    sync(device)
    times: list[float] = []
    start = time.perf_counter()
    while len(times) < max(repeats, 1) and (not times or time.perf_counter() - start < min_time):
        t0 = time.perf_counter()
        fn()
        sync(device)
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def make_batch(batch: int, size: int, device: str, channels_last: bool) -> dict:
    g = torch.Generator().manual_seed(0)
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    bg = torch.randn(batch, 3, size, size, generator=g)
    return {
        "bg": bg.to(device).contiguous(memory_format=fmt),
        "fg_bg": (bg + 0.1 * torch.randn(bg.shape, generator=g))
        .to(device)
        .contiguous(memory_format=fmt),
        "mask": (torch.rand(batch, 1, size, size, generator=g) > 0.8).float().to(device),
        "depth": torch.rand(batch, 1, size, size, generator=g).to(device),
    }


def measure(name: str, size: int, mode: str, args: argparse.Namespace) -> dict:
    device, cl, bf16 = args.device, mode.endswith("_cl"), mode.startswith("bf16")
    torch.manual_seed(0)
    model = build_model(name).to(device)
    if cl:
        model = model.to(memory_format=torch.channels_last)
    one, batch = make_batch(1, size, device, cl), make_batch(args.batch, size, device, cl)

    def autocast() -> torch.autocast:
        return torch.autocast(device.split(":")[0], torch.bfloat16, enabled=bf16)

    def infer(b: dict) -> None:
        with torch.inference_mode(), autocast():
            model(b["bg"], b["fg_bg"])

    model.eval()
    row = {"model": name, "size": size, "mode": mode, "batch": args.batch}
    row["latency_ms"] = 1e3 * timed(lambda: infer(one), device, args.repeats, args.min_time)
    row["infer_per_s"] = args.batch / timed(
        lambda: infer(batch), device, args.repeats, args.min_time
    )
    if not args.no_train:
        model.train()
        loss_fn, opt = DepthMaskLoss(), make_optimizer(model, TrainConfig(lr=1e-4))  # fit()'s

        def step() -> None:
            with autocast():
                loss = loss_fn(model(batch["bg"], batch["fg_bg"]), batch)["total"]
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()

        row["train_per_s"] = args.batch / timed(step, device, args.repeats, args.min_time)
    return row


def markdown(rows: list[dict]) -> str:
    head = (
        "| model | size | GMACs/pair | mode | latency ms (1 pair) | infer pairs/s | train pairs/s |"
    )
    lines = [head, "|---|---|---|---|---|---|---|"]
    for r in rows:
        train = f"{r['train_per_s']:.1f}" if "train_per_s" in r else "-"
        gmacs = r["macs_per_pair"] / 1e9
        lines.append(
            f"| {r['model']} | {r['size']} | {gmacs:.3f} | {r['mode']} | {r['latency_ms']:.2f} | "
            f"{r['infer_per_s']:.1f} | {train} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> list[dict]:
    args = parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    macs = {
        (n, s): model_summary(build_model(n), s)["macs_per_pair"]
        for n in args.models
        for s in args.sizes
    }
    load_before = os.getloadavg() if hasattr(os, "getloadavg") else None
    rows = []
    for name in args.models:
        for size in args.sizes:
            for mode in args.modes:
                rows.append(measure(name, size, mode, args))
                print(json.dumps(rows[-1]), file=sys.stderr, flush=True)
    meta = {
        "command": " ".join(["python", *sys.argv]),
        "device": args.device,
        "cpu": platform.processor() or platform.machine(),
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),
        # bf16_cl is emulated, and several times slower than fp32, without native bf16 (precision.py)
        "native_bf16": cpu_has_native_bf16(),
        "threads": torch.get_num_threads(),
        # 1-minute load average before and after: other processes on the cores skew the figures.
        "load_before": load_before[0] if load_before else None,
        "load_after": os.getloadavg()[0] if load_before else None,
        "torch": torch.__version__,
        "gpu": torch.cuda.get_device_name() if args.device.startswith("cuda") else None,
    }
    for r in rows:
        r["macs_per_pair"] = macs[(r["model"], r["size"])]
        r["run"] = 0
    runs = [meta]
    if args.update and args.out.exists():  # earlier runs' rows of other models, with their meta
        old = json.loads(args.out.read_text())
        old_runs = old.get("runs") or [old["meta"]]
        kept = [r for r in old["results"] if r["model"] not in args.models]
        used = sorted({r.get("run", 0) for r in kept})
        runs += [old_runs[i] for i in used]
        rows += [{**r, "run": 1 + used.index(r.get("run", 0))} for r in kept]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    tmp = args.out.with_suffix(".json.tmp")
    tmp.write_text(json.dumps({"meta": meta, "runs": runs, "results": rows}, indent=1))
    tmp.replace(args.out)
    print(markdown(rows))
    return rows


if __name__ == "__main__":
    main()
