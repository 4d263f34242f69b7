"""fit()'s training images/s by network and DataLoader workers: where a GPU run is limited by the
loader rather than by the network.

Each (workers, network) pair trains two short epochs with fit() on the demo's data recipe at
``--size`` (the demo's training recipe otherwise) and reports the median images/s of each epoch's
log rows, the first row left out (cuDNN's autotuning and the workers' start). The network's own speed
without data is bench_model.py's; the loader's alone is bench_loader.py's.

    python benchmarks/bench_fit_workers.py --workers 15 8                      # a 16-core GPU machine
    .venv/bin/python benchmarks/bench_fit_workers.py --device cpu --size 64 --workers 0 1

Writes benchmarks/results/bench_fit_workers.json and prints a markdown table.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import torch

from eva_depthmask.apps.demo import PLANS
from eva_depthmask.config import AugConfig, LossConfig
from eva_depthmask.data.datagen import make_dataset
from eva_depthmask.losses import DepthMaskLoss
from eva_depthmask.nets.registry import MODELS, build_model
from eva_depthmask.training.fit import fit
from eva_depthmask.training.loaders import TrainData
from eva_depthmask.training.runlog import read_log

RESULTS = Path(__file__).parent / "results" / "bench_fit_workers.json"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--models", nargs="+", default=["depthmasknet", "session15"], choices=MODELS)
    p.add_argument("--workers", type=int, nargs="+", default=[8])
    p.add_argument("--size", type=int, default=224, help="image side in pixels")
    p.add_argument("--rooms", type=int, default=2200, help="rooms of data (2 quartets each)")
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--device", default="cuda")
    p.add_argument(
        "--threads",
        type=int,
        default=None,
        help="torch threads of the main process (fit's default)",
    )
    p.add_argument("--out", type=Path, default=RESULTS)
    args = p.parse_args(argv)
    if min(args.workers) < 0 or args.rooms < 10 or args.batch < 1:
        p.error("expected --workers >= 0, --rooms >= 10 and --batch >= 1")
    return args


def fit_rate(data: TrainData, name: str, workers: int, args, folder: Path) -> dict:
    """Median images/s of each of two epochs of fit() for network ``name`` with ``workers``."""
    cfg = replace(
        PLANS["default"].train,
        stages=((args.size, 2, args.batch),),
        num_workers=workers,
        threads=args.threads,
        device=args.device,
        ckpt_dir=str(folder / f"{name}_{workers}"),
        tensorboard=False,
        max_val_samples=64,
        log_every=5,
    )
    torch.manual_seed(0)
    wall = time.perf_counter()
    fit(build_model(name), data, cfg, loss_fn=DepthMaskLoss(LossConfig()))
    wall = time.perf_counter() - wall
    rows = [r for r in read_log(Path(cfg.ckpt_dir) / "log.csv") if r["kind"] == "train"]
    rates = [[float(r["img_per_s"]) for r in rows if int(r["epoch"]) == e] for e in (0, 1)]
    return {
        "name": name,
        "workers": workers,
        "epoch0_img_per_s": statistics.median(rates[0][1:] or rates[0]),
        "epoch1_img_per_s": statistics.median(rates[1][1:] or rates[1]),
        "train_seconds": float(rows[-1]["seconds"]),
        "train_images": int(rows[-1]["global_step"]) * args.batch,
        "wall_seconds": wall,
    }


def main(argv: list[str] | None = None) -> list[dict]:
    args = parse_args(argv)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        data_cfg = replace(PLANS["default"].data, size=args.size, n_bg=args.rooms)
        data = TrainData(make_dataset(Path(tmp) / "data", data_cfg), AugConfig())
        for workers in args.workers:
            for name in args.models:
                rows.append(fit_rate(data, name, workers, args, Path(tmp) / "runs"))
                print(json.dumps(rows[-1]), flush=True)
    cuda = args.device.startswith("cuda")
    meta = {
        "command": " ".join(["python", *sys.argv]) if argv is None else f"main({argv})",
        "size": args.size,
        "batch": args.batch,
        "rooms": args.rooms,
        "device": torch.cuda.get_device_name() if cuda else "CPU",
        "cores": os.cpu_count(),
        "torch": torch.__version__,
        "finished": time.strftime("%Y-%m-%d %H:%M"),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"meta": meta, "rows": rows}, indent=1))
    print(f"\n{args.size} px, batch {args.batch}, {meta['device']}, {meta['cores']} cores")
    print("| network | workers | epoch 1 img/s | epoch 2 img/s |\n|---|---|---|---|")
    for r in rows:
        print(
            f"| {r['name']} | {r['workers']} | {r['epoch0_img_per_s']:.0f} "
            f"| {r['epoch1_img_per_s']:.0f} |"
        )
    return rows


if __name__ == "__main__":
    main()
