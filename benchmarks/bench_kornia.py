"""Why the torch backend is plain torch ops and not kornia: the demo's augmentation (flip on all four;
bg moved, relit, gamma, blurred, noised, JPEG-compressed, at ROBUST_AUG's probabilities) on a batch,
three ways, on this machine's CPU:

- ``albumentations``: the host path, sample by sample (augment/quartet.py);
- ``kornia``: kornia.augmentation's batch transforms with the same ranges (no shadow: kornia has none);
- ``torch``: augment/batch.py's ``augment_batch`` (the shadow included), plus ``draw_params`` on the
  host, which the loader pays.

kornia is not a dependency; install it beside the venv first:

    .venv/bin/pip install --no-deps --target /tmp/kpkgs kornia kornia_rs
    PYTHONPATH=/tmp/kpkgs .venv/bin/python benchmarks/bench_kornia.py

Writes benchmarks/results/bench_kornia.json (samples per second).
"""

from __future__ import annotations

import json
import math
import os
import statistics
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

from eva_depthmask.apps.demo import ROBUST_AUG
from eva_depthmask.augment.batch import augment_batch
from eva_depthmask.augment.quartet import get_transforms

RESULTS = Path(__file__).parent / "results" / "bench_kornia.json"
BATCH = 32


def samples(size: int) -> list[dict]:
    rng = np.random.default_rng(0)
    mask = np.zeros((size, size), np.uint8)
    mask[size // 4 : 3 * size // 4, size // 3 : 2 * size // 3] = 1
    return [
        {
            "bg": rng.integers(0, 256, (size, size, 3), np.uint8),
            "fg_bg": rng.integers(0, 256, (size, size, 3), np.uint8),
            "mask": mask,
            "depth": rng.random((size, size), dtype=np.float32),
            "id": str(i),
        }
        for i in range(BATCH)
    ]


def rate(fn, repeats: int = 7) -> float:
    """Samples per second of ``fn`` (one batch), the median of ``repeats`` after one warm-up."""
    fn()
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return BATCH / statistics.median(times)


def kornia_pipeline():
    import kornia.augmentation as K

    cfg = ROBUST_AUG
    geometry = K.AugmentationSequential(
        K.RandomHorizontalFlip(p=cfg.hflip_p), data_keys=["input", "input", "mask", "input"]
    )
    shift = cfg.misalign_shift
    realism = K.AugmentationSequential(
        K.RandomAffine(
            degrees=cfg.misalign_rotate_deg,
            translate=(shift, shift),
            scale=(1 - cfg.misalign_scale, 1 + cfg.misalign_scale),
            padding_mode="reflection",
            p=cfg.misalign_p,
        ),
        K.ColorJiggle(cfg.lighting_brightness, cfg.lighting_contrast, 0.0, 0.0, p=cfg.lighting_p),
        K.RandomGamma(cfg.lighting_gamma, p=cfg.lighting_p),
        K.RandomPlanckianJitter(p=cfg.lighting_p),
        K.RandomGaussianBlur((5, 5), (0.2, 1.0), p=cfg.blur_p),
        K.RandomGaussianNoise(std=cfg.bg_noise_std[1], p=cfg.bg_noise_p),
        K.RandomJPEG(jpeg_quality=tuple(map(float, cfg.jpeg_quality)), p=cfg.jpeg_p),
    )

    def run(bg, fg_bg, mask, depth):
        bg, fg_bg, mask, depth = geometry(bg, fg_bg, mask, depth)
        return realism(bg), fg_bg, mask, depth

    return run


def measure(size: int) -> dict:
    raws = samples(size)
    host = get_transforms("train", size, ROBUST_AUG, normalize=False)
    row = {"size": size, "batch": BATCH}
    row["albumentations"] = rate(lambda: [host.augment(r, seed=i) for i, r in enumerate(raws)])
    deferred = get_transforms("train", size, replace(ROBUST_AUG, backend="torch"), normalize=False)
    row["torch_host_params"] = rate(lambda: [deferred(r, seed=i) for i, r in enumerate(raws)])
    parts = [deferred(r, seed=i) for i, r in enumerate(raws)]
    batch = {k: torch.stack([p[k] for p in parts]) for k in ("bg", "fg_bg", "mask", "depth")}
    batch["aug"] = torch.stack([torch.from_numpy(p["aug"]) for p in parts])
    row["torch"] = rate(lambda: augment_batch(batch))
    try:
        run = kornia_pipeline()
    except ImportError:
        print("kornia is not installed: see this script's docstring", file=sys.stderr)
        return row
    as_float = [batch[k].float() / (255 if batch[k].dtype == torch.uint8 else 1) for k in batch]
    row["kornia"] = rate(lambda: run(*as_float[:4]))
    return row


def main() -> list[dict]:
    torch.set_num_threads(min(2, len(os.sched_getaffinity(0))))
    rows = [measure(size) for size in (64, 224)]
    meta = {"command": " ".join(["python", *sys.argv]), "threads": torch.get_num_threads()}
    meta["finished"] = time.strftime("%Y-%m-%d %H:%M")
    RESULTS.write_text(json.dumps({"meta": meta, "rows": rows}, indent=1))
    for r in rows:
        shown = {k: round(v) for k, v in r.items() if isinstance(v, float) and math.isfinite(v)}
        print(f"{r['size']} px, batch {r['batch']}: samples/s {shown}")
    return rows


if __name__ == "__main__":
    main()
