"""Data throughput and size: synthetic samples/s per core, make_dataset's samples/s on every core,
folder and zip read samples/s, bytes per sample for the full and the lazy layout, and (in the same
run) the default model's training images/s.

    .venv/bin/python benchmarks/bench_data.py [--sizes 64 128 224] [--samples 300]

Writes benchmarks/results/bench_data.json and prints a markdown table.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

from eva_depthmask.config import DataConfig
from eva_depthmask.data.datagen import disk_usage, make_dataset
from eva_depthmask.data.dataset import QuartetDataset
from eva_depthmask.data.sources import SyntheticSource, sample_keys

RESULTS = Path(__file__).parent / "results" / "bench_data.json"


def rate(fn, n: int) -> float:
    t = time.perf_counter()
    for i in range(n):
        fn(i)
    return n / (time.perf_counter() - t)


def synthetic_rates(cfg: DataConfig, n: int) -> dict:
    """Rooms rendered per second (cold), and samples per second once rooms and sprites are cached."""
    source = SyntheticSource(cfg)
    rooms = rate(source.background, min(cfg.n_bg, 40))
    for j in range(cfg.n_fg):
        source.foreground(j)
    for i in range(cfg.n_bg):
        source.background(i)
    keys = sample_keys(cfg.n_bg, cfg.n_fg, cfg)
    order = np.random.default_rng(0).permutation(len(keys))[:n]
    samples = rate(lambda i: source.sample(keys[order[i]]), n)
    return {"rooms_per_s": rooms, "samples_per_s": samples}


def read_rates(cfg: DataConfig, root: Path, n: int) -> dict:
    """make_dataset's samples/s (every core: render, encode, write, sync), then reading back."""
    t = time.perf_counter()
    folder = make_dataset(root / f"full{cfg.size}", cfg, workers=None, progress=False)
    out = {"write_per_s": len(QuartetDataset(folder, "all")) / (time.perf_counter() - t)}
    folder = make_dataset(folder, cfg, zip=True, progress=False)  # finished: only packs the zip
    lazy = make_dataset(
        root / f"lazy{cfg.size}", replace(cfg, lazy=True), workers=None, progress=False
    )
    for name, path in (("folder", folder.with_suffix("")), ("zip", folder), ("lazy", lazy)):
        ds = QuartetDataset(path, "all")
        order = np.random.default_rng(1).permutation(len(ds))[:n]
        out[f"{name}_read_per_s"] = rate(lambda i, ds=ds, order=order: ds.raw(int(order[i])), n)
    out["full_bytes_per_sample"] = disk_usage(folder.with_suffix(""))["per_sample"]
    out["lazy_bytes_per_sample"] = disk_usage(lazy)["per_sample"]
    out["lazy_over_full"] = out["lazy_bytes_per_sample"] / out["full_bytes_per_sample"]
    return out


def train_rate(size: int, batch: int = 32, steps: int = 8) -> float | None:
    """Default DepthMaskNet training images/s (fit()'s precision, channels_last, all threads)."""
    try:
        from eva_depthmask.losses import DepthMaskLoss
        from eva_depthmask.nets.depthmasknet import DepthMaskNet
        from eva_depthmask.training.precision import autocast
    except ImportError:
        return None
    model = DepthMaskNet().to(memory_format=torch.channels_last)
    loss_fn = DepthMaskLoss()
    opt = torch.optim.AdamW(model.parameters(), 1e-3)
    x = torch.rand(batch, 3, size, size).to(memory_format=torch.channels_last)
    target = {
        "mask": (torch.rand(batch, 1, size, size) > 0.5).float(),
        "depth": torch.rand(batch, 1, size, size),
    }

    def step(_):
        with autocast("cpu"):
            loss = loss_fn(model(x, x), target)["total"]
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    step(0)
    return batch * rate(step, steps)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--sizes", type=int, nargs="+", default=[64, 128, 224])
    p.add_argument("--samples", type=int, default=300, help="samples timed per measurement")
    args = p.parse_args()
    torch.set_num_threads(2)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for size in args.sizes:
            cfg = DataConfig(size=size, n_bg=12, n_fg=12, placements=2)
            torch.set_num_threads(1)  # "per core": one process, one thread
            row = {"size": size, **synthetic_rates(replace(cfg, n_bg=40, n_fg=40), args.samples)}
            row.update(read_rates(cfg, Path(tmp), args.samples))
            torch.set_num_threads(2)
            row["train_img_per_s_2_threads"] = train_rate(size)
            rows.append(row)
            print(json.dumps(row))
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps(rows, indent=2))
    cols = [
        ("size", "{}"),
        ("rooms_per_s", "{:.0f}"),
        ("samples_per_s", "{:.0f}"),
        ("write_per_s", "{:.0f}"),
        ("folder_read_per_s", "{:.0f}"),
        ("zip_read_per_s", "{:.0f}"),
        ("lazy_read_per_s", "{:.0f}"),
        ("full_bytes_per_sample", "{:,}"),
        ("lazy_bytes_per_sample", "{:,}"),
        ("lazy_over_full", "{:.3f}"),
        ("train_img_per_s_2_threads", "{:.0f}"),
    ]
    print("| " + " | ".join(c for c, _ in cols) + " |")
    print("|" + "---|" * len(cols))
    for r in rows:
        print("| " + " | ".join("-" if r[c] is None else f.format(r[c]) for c, f in cols) + " |")


if __name__ == "__main__":
    main()
