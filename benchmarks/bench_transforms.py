"""Augmentation throughput: train-pipeline samples/s on ONE core at 64, 128 and 224 px.

    .venv/bin/python benchmarks/bench_transforms.py [--sizes 64 128 224] [--seconds 3] [--model]

One process with torch and OpenCV held to one thread, so the number is what one DataLoader worker
(one core) delivers; the val pipeline (resize + normalise) and the train pipeline's stages
(spatial, realism, photometric, to-tensor) are timed too. Raw samples come from the synthetic
dataset at the training size, rendered before the clock starts (reading is dataset.py's cost).
``--model`` also times a training step (forward, backward, SGD) of the default model on the best
device here (CUDA if present) at the same sizes, so one run gives both numbers and the number of
workers that keeps the model fed. Writes benchmarks/results/bench_transforms.json and prints
markdown.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

import albumentations as A
import cv2
import numpy as np
import torch

from eva_depthmask.augment.normalize import check_sample, to_tensor_sample
from eva_depthmask.augment.quartet import apply_photometric, apply_spatial, get_transforms
from eva_depthmask.augment.realism import apply_realism
from eva_depthmask.config import DataConfig
from eva_depthmask.data.dataset import QuartetDataset

RESULTS = Path(__file__).parent / "results" / "bench_transforms.json"


def raw_samples(size: int, n: int) -> list[dict]:
    """``n`` raw training samples at ``size`` px from the synthetic source (fixed seed)."""
    ds = QuartetDataset.synthetic(DataConfig(size=size, n_bg=8, n_fg=8, placements=1), "train")
    step = max(1, len(ds) // n)
    return [ds.raw(i * step % len(ds)) for i in range(n)]


def rate(fn, raws: list[dict], seconds: float) -> tuple[float, int]:
    """Calls per second of ``fn(raw, seed)`` over ``raws`` for about ``seconds`` (2 warm-up calls)."""
    for i in range(2):
        fn(raws[i % len(raws)], i)
    n, start = 0, time.perf_counter()
    while (elapsed := time.perf_counter() - start) < seconds or n < 20:
        fn(raws[n % len(raws)], n)
        n += 1
    return n / elapsed, n


def stage_ms(size: int, raws: list[dict], reps: int = 200) -> dict[str, float]:
    """Mean milliseconds per sample of each train stage, run the way ``QuartetTransform`` runs them."""
    t = get_transforms("train", size)
    stages = (
        ("check", lambda s, i: check_sample(s)),
        ("spatial", lambda s, i: apply_spatial(t.spatial, s, i)),
        ("realism", lambda s, i: apply_realism(s, t.realism, t.cfg, i)),
        ("photometric", lambda s, i: apply_photometric(t.photometric, s, i)),
        ("to_tensor", lambda s, i: to_tensor_sample(s, None)),
    )
    totals = dict.fromkeys((name for name, _ in stages), 0.0)
    for i in range(reps):
        s = raws[i % len(raws)]
        for name, fn in stages:
            clock = time.perf_counter()
            s = fn(s, i)
            totals[name] += time.perf_counter() - clock
    return {k: round(1e3 * v / reps, 3) for k, v in totals.items()}


def model_rate(size: int, batch: int, steps: int) -> dict:
    """Training samples/s of the default model: forward, a BCE + L1 loss, backward, SGD step."""
    from eva_depthmask.nets.registry import build_model

    device = "cuda" if torch.cuda.is_available() else "cpu"
    model = build_model().to(device).train()
    opt = torch.optim.SGD(model.parameters(), lr=1e-3, momentum=0.9)
    bg, fg_bg = torch.randn(2, batch, 3, size, size, device=device)
    mask = (torch.rand(batch, 1, size, size, device=device) > 0.8).float()
    depth = torch.rand(batch, 1, size, size, device=device)

    def step() -> None:
        out = model(bg, fg_bg)
        loss = torch.nn.functional.binary_cross_entropy_with_logits(out["mask"], mask)
        loss = loss + (out["depth"] - depth).abs().mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    for _ in range(3):
        step()
    if device == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    for _ in range(steps):
        step()
    if device == "cuda":
        torch.cuda.synchronize()
    elapsed = time.perf_counter() - start
    return {"device": device, "batch": batch, "samples_per_s": round(batch * steps / elapsed, 1)}


def markdown(rows: list[dict]) -> str:
    head = (
        "| px | train samples/s/core | ms/sample | spatial | realism | photometric | to tensor "
        "| val samples/s/core | model train samples/s | workers to feed it |\n"
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"
    )
    lines = [head]
    for r in rows:
        st, m = r["stages_ms"], r.get("model")
        model = f"{m['samples_per_s']} ({m['device']}, batch {m['batch']})" if m else "-"
        need = f"{m['samples_per_s'] / r['train_samples_per_s']:.2f}" if m else "-"
        lines.append(
            f"| {r['size']} | {r['train_samples_per_s']} | {1e3 / r['train_samples_per_s']:.2f} "
            f"| {st['spatial']} | {st['realism']} | {st['photometric']} | {st['to_tensor']} "
            f"| {r['val_samples_per_s']} | {model} | {need} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[64, 128, 224])
    parser.add_argument("--seconds", type=float, default=3.0, help="timing per size and pipeline")
    parser.add_argument("--samples", type=int, default=16, help="distinct raw samples cycled")
    parser.add_argument("--model", action="store_true", help="also time the default model")
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()

    rows = []
    for size in args.sizes:
        torch.set_num_threads(1)  # one worker = one core
        cv2.setNumThreads(1)
        raws = raw_samples(size, args.samples)
        train = get_transforms("train", size)
        val = get_transforms("val", size)
        train_rate, n_train = rate(lambda raw, i, t=train: t(raw, seed=i), raws, args.seconds)
        val_rate, _ = rate(lambda raw, i, t=val: t(raw), raws, args.seconds)
        row = {
            "size": size,
            "train_samples_per_s": round(train_rate, 1),
            "train_samples_timed": n_train,
            "val_samples_per_s": round(val_rate, 1),
            "stages_ms": stage_ms(size, raws),
        }
        if args.model:
            torch.set_num_threads(os.cpu_count() or 1)
            row["model"] = model_rate(size, args.batch, args.steps)
        rows.append(row)
        print(f"{size} px: {row['train_samples_per_s']} train samples/s/core", flush=True)

    result = {
        "what": "augmented samples/s on one core (torch and OpenCV threads = 1), raw at output size",
        "machine": {"cpu": platform.processor() or platform.machine(), "cores": os.cpu_count()},
        "versions": {
            "albumentations": A.__version__,
            "torch": torch.__version__,
            "opencv": cv2.__version__,
            "numpy": np.__version__,
        },
        "rows": rows,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    tmp = args.out.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(result, indent=1))
    os.replace(tmp, args.out)  # a reader never sees half a file
    print(markdown(rows))
    print(f"\nwritten to {args.out}")


if __name__ == "__main__":
    main()
