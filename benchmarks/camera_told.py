"""How good would the depth be if DepthMaskNet knew each room's camera? An upper bound, on a
synthetic dataset.

scale_factors.py fits the scale error on the room parameters after training; this script trains
instead. DepthMaskNet is trained with the demo's recipe, and each sample's room parameters,
standardised over the dataset, pass through a small MLP (last layer zero-initialised) whose output is
added to the encoder's deepest features, for every pixel. ``--told``:

- ``none``: the MLP sees zeros (the plain network plus a constant; the control);
- ``camera``: field of view, camera height and pitch, from the dataset's stored config;
- ``room``: those and the room's height, length and width;
- ``proportions``: field of view, pitch, and the camera height, the back wall's distance and the
  room width, each over the room height: everything perspective shows without a known length, so
  the room's size is all that is left to read (the furniture's sizes are its only rulers);
- ``guessed``: the camera as a head on the deepest features reads it from the picture, trained to
  it (smooth L1 in standard units, weight 1) beside the depth and mask losses: whether the picture
  shows it to this network.

Nothing but the camera differs between the rows, so the difference is what reading the camera from
a 64 px picture costs. ``camera_error`` is the guessed head's mean |error| on the test split, in
standard units (a constant guess would score 0.87 on a uniform draw).

    .venv/bin/python benchmarks/camera_told.py --data benchmarks/.compare/64px_20000img_4ep_3750rooms_seed0/data

(compare.py's data; ``--images`` training images in ``--epochs`` epochs, as compare trains.)
Writes benchmarks/results/camera_told.json and prints a markdown table.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch
from torch import Tensor, nn

from eva_depthmask.apps.demo import PLANS
from eva_depthmask.augment.normalize import check_stats, norm_constants, normalize
from eva_depthmask.config import AugConfig, LossConfig
from eva_depthmask.data.dataset import QuartetDataset
from eva_depthmask.losses import DepthMaskLoss
from eva_depthmask.metrics import MetricAccumulator
from eva_depthmask.nets.registry import build_model
from eva_depthmask.training.loaders import TrainData, eval_batches, train_loader
from eva_depthmask.training.optim import make_optimizer, make_scheduler
from eva_depthmask.training.precision import autocast, precision_name
from eva_depthmask.training.sampler import EpochSampler

sys.path.insert(0, str(Path(__file__).resolve().parent))  # a sibling script, not a package
from scale_factors import (  # noqa: E402
    FACTORS,
    PROPORTIONS,
    _fitted,
    floor_metrics,
    proportions,
    room_factors,
)

RESULTS = Path(__file__).parent / "results" / "camera_told.json"
TOLD = {
    "none": ("fov_deg", "camera_height_m", "pitch_deg"),  # shapes only: the MLP gets zeros
    "camera": ("fov_deg", "camera_height_m", "pitch_deg"),
    "room": tuple(FACTORS),
    "proportions": ("fov_deg", "pitch_deg", *PROPORTIONS),
    "guessed": ("fov_deg", "camera_height_m", "pitch_deg"),
}
KEYS = ("mask_iou", "depth_rmse", "depth_abs_rel", "depth_delta1", "depth_abs_rel_aligned")
KEYS += ("depth_delta1_aligned", "depth_scale_log", "depth_scale_bias")


class CameraTold(nn.Module):
    """``net`` with a per-image vector ``(B, n)`` added to its encoder's deepest features through
    an MLP (zero at the start), or, with ``guess``, with that vector read by a head from those
    features (kept as ``self.guessed``). ``forward(bg, fg_bg, camera)`` is ``net``'s output dict."""

    def __init__(self, net: nn.Module, n: int, guess: bool = False):
        super().__init__()
        c = net.encoder.channels[-1]
        self.net, self.camera, self.guessed = net, None, None
        self.embed = nn.Sequential(nn.Linear(n, 64), nn.ReLU(), nn.Linear(64, c))
        nn.init.zeros_(self.embed[2].weight)
        nn.init.zeros_(self.embed[2].bias)
        self.guess = None
        if guess:  # pooled to 4 x 4, not 1 x 1: where the floor and walls meet is the cue
            self.guess = nn.Sequential(
                nn.Conv2d(c, 32, 1), nn.ReLU(), nn.AdaptiveAvgPool2d(4), nn.Flatten(),
                nn.Linear(512, 128), nn.ReLU(), nn.Linear(128, n),
            )  # fmt: skip
        net.encoder.register_forward_hook(self._tell)

    def _tell(self, module, args, feats: list[Tensor]) -> list[Tensor]:
        deepest = feats[-1]
        if self.guess is not None:
            self.guessed = self.guess(deepest).float()
            camera = self.guessed
        else:
            camera = self.camera.to(deepest.device)
        return [*feats[:-1], deepest + self.embed(camera).to(deepest.dtype)[:, :, None, None]]

    def forward(self, bg: Tensor, fg_bg: Tensor, camera: Tensor) -> dict[str, Tensor]:
        self.camera = camera
        return self.net(bg, fg_bg)


def cameras(data: Path, told: str) -> dict[str, np.ndarray]:
    """Sample id -> float32 ``(n,)``: the ``TOLD[told]`` parameters of its room, each standardised
    over the dataset's rooms (lengths as logs); zeros for ``none``."""
    ids = QuartetDataset(data, "all").ids
    _, factors = room_factors(data, ids)
    named = {k: _fitted(v, k) for k, v in factors.items()}
    named |= {k: np.log(v) for k, v in proportions(factors).items()}
    cols = [named[k] for k in TOLD[told]]
    table = np.stack([(c - c.mean()) / max(c.std(), 1e-12) for c in cols], 1).astype(np.float32)
    if told == "none":
        table[:] = 0.0
    return dict(zip(ids, table, strict=True))


def run(args: argparse.Namespace, told: str, seed: int) -> dict:
    """Train DepthMaskNet told ``told`` with training seed ``seed``; its test metrics.

    fit()'s step without its checkpoints and validation: fit() hands a model only (bg, fg_bg), and
    the camera comes from each batch's sample ids. Same sampler, loader, optimizer and schedule: a
    camera run through fit() itself (a scratch hook) gave the same metrics to the last digit.
    """
    data = TrainData(args.data, AugConfig())
    stats, known = data.stats(), cameras(args.data, told)
    cfg = replace(PLANS["default"].train, stages=((args.size, args.epochs, args.batch),), seed=seed)
    device = torch.device(args.device)
    torch.manual_seed(seed)
    model = CameraTold(build_model("depthmasknet"), len(TOLD[told]), guess=told == "guessed")
    model.to(device, memory_format=torch.channels_last)
    loss_fn = DepthMaskLoss(LossConfig()).to(device)
    train_ds = data.dataset("train", args.size, seed, stats, cfg.cache_mb, normalize=False)
    per_epoch = min(len(train_ds), args.images // args.epochs) // args.batch
    opt = make_optimizer(model, cfg)
    sched = make_scheduler(opt, cfg, per_epoch * args.epochs)
    scale, shift = norm_constants(*check_stats(stats), device)
    t0 = time.perf_counter()  # training time, loading included, as fit() counts it
    for epoch in range(args.epochs):
        sampler = EpochSampler(len(train_ds), seed, 0, epoch, args.batch)
        loader = iter(train_loader(train_ds, sampler, args.batch, 0, False))
        for _ in range(per_epoch):
            batch = next(loader)
            bg, fg_bg = (
                normalize(batch[k].to(device), scale, shift).contiguous(
                    memory_format=torch.channels_last
                )
                for k in ("bg", "fg_bg")
            )
            camera = torch.from_numpy(np.stack([known[i] for i in batch["id"]])).to(device)
            with autocast(device, cfg.amp):
                pred = model(bg, fg_bg, camera)
            true = {k: batch[k].to(device).float() for k in ("mask", "depth")}
            loss = loss_fn(pred, true)["total"]
            if model.guessed is not None:
                loss = loss + nn.functional.smooth_l1_loss(model.guessed, camera)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
            opt.step()
            sched.step()  # the demo's schedule is OneCycle: one step per optimizer step
    seconds = time.perf_counter() - t0
    return {"told": told, "seed": seed, "train_seconds": seconds, **score(model, data, known, args)}


@torch.no_grad()
def score(model: CameraTold, data: TrainData, known: dict, args: argparse.Namespace) -> dict:
    """``KEYS`` on the test split, and the guessed camera's mean |error| (standard units)."""
    model.eval()
    device = torch.device(args.device)
    acc, errors = MetricAccumulator(), []
    test_ds = data.dataset("test", args.size, stats=data.stats())
    for batch in eval_batches(test_ds, 64):
        camera = torch.from_numpy(np.stack([known[i] for i in batch["id"]]))
        bg, fg_bg = (
            batch[k].to(device).contiguous(memory_format=torch.channels_last)
            for k in ("bg", "fg_bg")
        )
        with autocast(device):
            pred = model(bg, fg_bg, camera.to(device))
        true = [batch[k].to(device) for k in ("mask", "depth")]
        acc.update({k: v.float() for k, v in pred.items()}, *true)
        if model.guessed is not None:
            errors.append((model.guessed.cpu() - camera).abs())
    metrics = acc.compute()
    row = {k: metrics[k] for k in KEYS}
    if errors:
        mean = torch.cat(errors).mean(0).tolist()
        row["camera_error"] = dict(zip(TOLD["guessed"], mean, strict=True))
    return row


def markdown(rows: list[dict], floor: dict) -> str:
    head = (
        "| told | seed | mask IoU | RMSE | abs-rel | delta1 | abs-rel aligned | scale err | bias |"
    )
    lines = [head, "|" + "---|" * 9]
    for r in rows:
        lines.append(
            f"| {r['told']} | {r['seed']} | {r['mask_iou']:.4f} | {r['depth_rmse']:.4f} | "
            f"{r['depth_abs_rel']:.4f} | {r['depth_delta1']:.4f} | "
            f"{r['depth_abs_rel_aligned']:.4f} | {r['depth_scale_log']:.4f} | "
            f"{r['depth_scale_bias']:+.4f} |"
        )
    guessed = [r for r in rows if "camera_error" in r]
    for r in guessed:
        errs = ", ".join(f"{k} {v:.3f}" for k, v in r["camera_error"].items())
        lines.append(f"\nguessed camera, seed {r['seed']}: mean |error| (standard units) {errs}")
    lines.append(
        f"\nan ideal reader of each test room's proportions, no length known "
        f"(scale_factors.proportion_floor): scale error {floor['depth_scale_log']:.4f}; a perfect "
        f"shape at its scale: abs-rel {floor['depth_abs_rel']:.4f}"
    )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> list[dict]:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data", type=Path, required=True, help="a synthetic dataset folder or zip")
    p.add_argument("--told", nargs="+", default=["none", "camera", "guessed"], choices=list(TOLD))
    p.add_argument("--seeds", type=int, nargs="+", default=[0], help="training seeds")
    p.add_argument("--size", type=int, default=64, help="image side in pixels")
    p.add_argument("--images", type=int, default=20_000, help="training images per run")
    p.add_argument("--epochs", type=int, default=4)
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--device", default="cpu")
    p.add_argument("--threads", type=int, default=2, help="torch CPU threads")
    p.add_argument("--out", type=Path, default=RESULTS)
    args = p.parse_args(argv)
    for name in ("size", "images", "epochs", "batch", "threads"):
        if getattr(args, name) < 1:
            p.error(f"--{name}: expected a positive integer")
    # room_factors refuses a dataset that is not synthetic, before any training
    _, test_factors = room_factors(args.data, QuartetDataset(args.data, "test").ids)
    floor = floor_metrics(args.data, test_factors)
    torch.set_num_threads(args.threads)
    rows = []
    for seed in args.seeds:
        for told in args.told:
            rows.append(run(args, told, seed))
            print(json.dumps(rows[-1]), file=sys.stderr, flush=True)
    meta = {
        "command": " ".join(["python", *sys.argv]) if argv is None else f"main({argv})",
        "data": str(args.data),
        "precision": precision_name(torch.device(args.device), True),
        "finished": time.strftime("%Y-%m-%d %H:%M"),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    result = {"rows": rows, "proportion_floor": floor, "meta": meta}
    args.out.write_text(json.dumps(result, indent=1))
    print(markdown(rows, floor))
    return rows


if __name__ == "__main__":
    main()
