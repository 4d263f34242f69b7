"""Training loader throughput: augmented train samples per second as fit() loads them, by the number
of DataLoader workers.

On a GPU, fit() trains no faster than its loader feeds it, whatever the network: this measures the
loader alone (fit's own ``train_loader``: reading, decoding, augmentation, uint8 tensors and batching;
first-epoch reads, no cache) on the demo's data recipe at ``--size``. ``--opencv-threads 0`` shows
OpenCV's default (a thread per core in every worker) next to fit's one thread per worker. ``--cached``
adds, for each worker count, the rate of a later epoch, once fit()'s sample cache (shared by the
workers of every epoch) holds the decoded quartets: augmentation, tensors and batching only.

    .venv/bin/python benchmarks/bench_loader.py --size 224 --workers 0 1 2
    .venv/bin/python benchmarks/bench_loader.py --size 64 --workers 0 --cached --out /tmp/l.json
    python benchmarks/bench_loader.py --size 224 --workers 1 8 15 --cached  # GPU machine

Writes benchmarks/results/bench_loader.json and prints a markdown table.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import torch

from eva_depthmask.apps.demo import PLANS
from eva_depthmask.config import AugConfig
from eva_depthmask.data.datagen import make_dataset
from eva_depthmask.training.loaders import TrainData, opencv_threads, train_loader
from eva_depthmask.training.sampler import EpochSampler

RESULTS = Path(__file__).parent / "results" / "bench_loader.json"
WARM_BATCHES = 3  # not timed: worker start-up and the first prefetches
CACHE_MB = 4096  # --cached: room for every measured sample


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--size", type=int, default=224, help="image side in pixels")
    p.add_argument("--workers", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument(
        "--opencv-threads",
        type=int,
        nargs="+",
        default=[1],
        help="OpenCV threads per worker (fit: 1; 0: OpenCV's default)",
    )
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--batches", type=int, default=40, help="batches per measurement")
    p.add_argument("--cached", action="store_true", help="also time an epoch from the sample cache")
    p.add_argument("--data", type=Path, default=None, help="a dataset folder (default: generated)")
    p.add_argument("--out", type=Path, default=RESULTS)
    args = p.parse_args(argv)
    if min(args.workers) < 0 or args.batch < 1 or args.batches <= WARM_BATCHES:
        p.error(f"expected --workers >= 0, --batch >= 1 and --batches > {WARM_BATCHES}")
    return args


def loader_rate(
    data: TrainData,
    size: int,
    batch: int,
    batches: int,
    workers: int,
    threads: int,
    cached: bool = False,
) -> dict:
    """Samples/s of fit's training loader over ``batches`` batches, less the first few; ``threads``:
    OpenCV's in the workers (0: OpenCV's default). ``cached``: after one untimed pass over the
    same samples has filled the sample cache, as fit() reads from its second epoch."""
    stats = data.stats()
    cache_mb = CACHE_MB if cached else 0
    dataset = data.dataset("train", size, seed=0, stats=stats, cache_mb=cache_mb, normalize=False)
    if len(dataset) < batch * batches:
        raise ValueError(f"--batches: the data has {len(dataset)} train samples, fewer than needed")
    sampler = EpochSampler(len(dataset), seed=0, stage=0, epoch=0, batch_size=batch)
    sampler.indices = sampler.indices[: batch * batches]
    loader = train_loader(dataset, sampler, batch, workers, pin_memory=False)
    with opencv_threads(threads if threads > 0 and workers else None):  # as fit() sets it
        for _ in loader if cached else ():
            pass
        start = time.perf_counter()
        for i, _ in enumerate(loader):
            if i + 1 == WARM_BATCHES:
                warm = time.perf_counter()
        end = time.perf_counter()
    return {
        "workers": workers,
        "opencv_threads": threads if workers else None,
        "cached": cached,
        "first_batches_s": warm - start,
        "samples_per_s": (batches - WARM_BATCHES) * batch / (end - warm),
    }


def demo_data(size: int, samples: int, folder: Path) -> Path:
    """The demo's data recipe at ``size`` px with at least ``samples`` train quartets."""
    base = replace(PLANS["default"].data, size=size)
    per_room = base.n_samples // base.n_bg
    n_bg = math.ceil(samples / per_room / (1 - base.val_fraction - base.test_fraction)) + 2
    return make_dataset(folder, replace(base, n_bg=n_bg))


def main(argv: list[str] | None = None) -> list[dict]:
    args = parse_args(argv)
    torch.set_num_threads(1)  # as in a worker: the in-process row (0 workers) uses one core
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        root = args.data or demo_data(args.size, args.batch * args.batches, Path(tmp) / "data")
        data = TrainData(root, AugConfig())
        for threads in args.opencv_threads:
            for workers in args.workers:
                if workers == 0 and rows and any(r["workers"] == 0 for r in rows):
                    continue  # in-process loading has no workers to set OpenCV's threads for
                for cached in (False, True) if args.cached else (False,):
                    rows.append(
                        loader_rate(
                            data, args.size, args.batch, args.batches, workers, threads, cached
                        )
                    )
                    print(json.dumps(rows[-1]), flush=True)
    meta = {
        "command": " ".join(["python", *sys.argv]) if argv is None else f"main({argv})",
        "size": args.size,
        "batch": args.batch,
        "batches": args.batches,
        "cores": os.cpu_count(),
        "cpu": platform.processor() or platform.machine(),
        "load_after": os.getloadavg()[0] if hasattr(os, "getloadavg") else None,
        "finished": time.strftime("%Y-%m-%d %H:%M"),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"meta": meta, "rows": rows}, indent=1))
    print(f"\n{args.size} px, batch {args.batch}, {meta['cores']} cores")
    print("| workers | OpenCV threads | samples/s | first batches s |\n|---|---|---|---|")
    for r in rows:
        threads = {None: "-", 0: "default"}.get(r["opencv_threads"], r["opencv_threads"])
        workers = f"{r['workers']}{' (cached)' if r.get('cached') else ''}"
        print(f"| {workers} | {threads} | {r['samples_per_s']:.0f} | {r['first_batches_s']:.2f} |")
    return rows


if __name__ == "__main__":
    main()
