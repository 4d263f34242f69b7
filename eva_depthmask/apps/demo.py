"""The one-command demo: dataset -> training -> evaluation -> figures, sized for a CPU.

Everything lands in one folder and every step resumes: re-running after the process was killed picks up
the dataset writing or the training where it stopped and ends with the same metrics.json.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch

from ..config import AugConfig, DataConfig, LossConfig, TrainConfig, to_dict
from ..data.datagen import make_dataset
from ..evaluation.evaluate import evaluate, predictions
from ..evaluation.robustness import robustness_sweep
from ..losses import DepthMaskLoss
from ..nets.registry import build_model
from ..nets.tta import FlipAverage
from ..storage import atomic_write
from ..training.fit import fit
from ..training.loaders import TrainData
from ..training.runlog import read_log
from .viz import prediction_grid, training_curves

SUMMARY_KEYS = ("mask_iou", "mask_dice", "depth_rmse", "depth_abs_rel", "depth_delta1")


# A second background photo is never the composite's own: the demo fires the perturbations of bg
# more often than AugConfig's defaults, weighs the outline in the mask loss, where they do their harm,
# weighs the depth more to keep what that costs it, and scores with flip averaging. Under the strong
# perturbation mask IoU 0.863 -> 0.904, for clean 0.990 -> 0.984 and delta1 0.959 -> 0.957
# (benchmarks/README.md, T36, with mask_edge 1). The default plan's 32 px first stage hands training
# from the masks to the depth; twice the outline weight hands it back (T43-T47). compare.py keeps
# the defaults: its short training cannot afford what the outline costs the depth (K26).
ROBUST_AUG = AugConfig(
    backend="torch",  # batches augmented in fit(), on its device (augment/batch.py)
    misalign_p=0.7,
    lighting_p=0.7,
    blur_p=0.4,
    bg_noise_p=0.5,
    jpeg_p=0.5,
    shadow_p=0.5,
)
ROBUST_LOSS = LossConfig(mask_edge=2.0, depth_weight=1.5)


@dataclass(frozen=True)
class DemoPlan:
    """What the demo builds, how it trains, and whether it scores with flip averaging (``tta``)."""

    data: DataConfig
    train: TrainConfig
    aug: AugConfig = ROBUST_AUG
    loss: LossConfig = ROBUST_LOSS
    model: str = "depthmasknet"
    flip: bool = True


PLANS = {
    # data generation included, 21 minutes on 2 CPU cores that train in float32 (README: T48) and
    # 13.5 where bf16 is native (the torch backend; benchmarks/README.md, The demo)
    "default": DemoPlan(
        # 8,000 rooms with one of the 30 foregrounds each (x 2 flips): depth is learned from rooms,
        # and with fewer the network memorises them (benchmarks/README.md, T3-T8); PNG, as JPEG's
        # ringing around a pasted object blurs the very edge the mask must find
        DataConfig(size=64, n_bg=8000, n_fg=30, fg_per_bg=1, placements=1, image_format="png"),
        # 3 epochs at 32 px first: each costs about half a 64 px one, and they lift the depth, above
        # all its scale (abs-rel 0.087 -> 0.081, delta1 0.957 -> 0.967; T45-T48)
        TrainConfig(stages=((32, 3, 32), (64, 11, 32)), lr=4e-3, ckpt_every=100),
    ),
    # seconds: a smoke run of the whole pipeline, the default's two stages included
    "quick": DemoPlan(
        DataConfig(size=64, n_bg=12, n_fg=12, placements=1),
        TrainConfig(stages=((32, 1, 16), (64, 2, 16)), lr=4e-3, ckpt_every=20),
    ),
}


def run_demo(
    out: str | Path, plan: DemoPlan = PLANS["default"], workers: int | None = None
) -> dict:
    """Run (or resume) the demo into ``out``; returns the test metrics written to metrics.json."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    path = make_dataset(out / "data", plan.data, workers=workers)
    t_data = time.perf_counter() - t0
    data = TrainData(path, plan.aug)
    torch.manual_seed(plan.train.seed)
    model = build_model(plan.model)
    train_cfg = replace(plan.train, ckpt_dir=str(out / "run"))
    fit(model, data, train_cfg, loss_fn=DepthMaskLoss(plan.loss))
    t_train = time.perf_counter() - t0 - t_data
    stats = data.stats()
    size = train_cfg.stages[-1][0]
    test = data.dataset("test", size, stats=stats)
    scorer = FlipAverage(model) if plan.flip else model
    metrics, per_sample = evaluate(scorer, test)
    robust = robustness_sweep(scorer, data, size, stats)
    result = {
        "test": metrics,
        "robustness": robust,
        "samples": {"test": len(test)},
        "plan": {
            "data": to_dict(plan.data),
            "train": to_dict(train_cfg),
            "aug": to_dict(plan.aug),
            "loss": to_dict(plan.loss),
            "model": plan.model,
            "flip": plan.flip,
        },
    }
    summary = {**{k: metrics[k] for k in SUMMARY_KEYS}, **result}
    # whole or absent: a demo killed here reruns to the same file, never leaves half of one
    atomic_write(out / "metrics.json", json.dumps(summary, indent=2).encode())
    picks = np.sort(np.random.default_rng(0).choice(len(test), min(6, len(test)), replace=False))
    prediction_grid(predictions(scorer, test, picks, stats), "test predictions").savefig(
        out / "predictions.png", dpi=80
    )
    training_curves(read_log(out / "run" / "log.csv")).savefig(out / "curves.png", dpi=80)
    print_summary(
        metrics, robust, {"data": t_data, "train": t_train, "total": time.perf_counter() - t0}
    )
    return metrics


def print_summary(metrics: dict, robust: list[dict], seconds: dict) -> None:
    print("\n| metric | test |\n|---|---|")
    for k in SUMMARY_KEYS:
        print(f"| {k} | {metrics[k]:.4f} |")
    print("\n| background | model mask IoU | difference baseline mask IoU |\n|---|---|---|")
    for level in dict.fromkeys(r["level"] for r in robust):
        model, diff = (
            next(r for r in robust if r["level"] == level and r["model"] == m)
            for m in ("model", "difference")
        )
        print(f"| {level} | {model['mask_iou']:.4f} | {diff['mask_iou']:.4f} |")
    print("\ntime: " + ", ".join(f"{k} {v:.0f} s" for k, v in seconds.items()))
