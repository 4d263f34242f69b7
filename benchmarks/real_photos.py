"""Real photos, the course user's path end to end: masks on photos of backgrounds and people that
training never saw, at 224 px, beside differencing the two photos.

Photos go through ``make_dataset`` (``ImageFolders``, no depth teacher: photos have no depth offline)
at 64 px, split by background AND by foreground (``DataConfig.split_fg``), and ``fit`` trains
DepthMaskNet with the demo's augmentation and loss on them: alone ("photos"), and mixed half and
half with procedural rooms whose depth is exact ("mixed"). The test split is built again at 224 px
(its backgrounds and cut-outs are unseen) and every pair is scored with ``Predictor`` (flip
averaging, then refine.py at 224 px) under none / mild / strong re-capture of bg, with both photos
saved as PNG and as JPEG (quality 90, as users' are). Differencing uses its best threshold on the
clean val pairs of the same format. Runs live in ``--work`` and resume.

    python benchmarks/real_photos.py                      # ../shared/realdata/indoor_people
    python benchmarks/real_photos.py --photos DIR         # DIR/bg and DIR/fg (cut-outs)
    python benchmarks/real_photos.py --recipes photos --epochs 4

Writes benchmarks/results/real_photos.json (one row per recipe, format and level: ``recipe``,
``format``, ``level``, ``mask_iou``, ``difference_iou``, ``boundary_f``, and the coarse mask's IoU
without refinement), the figure docs/real_photos.png, and prints a markdown table.
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import replace
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402

from eva_depthmask.apps.demo import PLANS, ROBUST_AUG, ROBUST_LOSS  # noqa: E402
from eva_depthmask.config import DataConfig  # noqa: E402
from eva_depthmask.data.datagen import make_dataset  # noqa: E402
from eva_depthmask.data.dataset import QuartetDataset  # noqa: E402
from eva_depthmask.data.sources import ImageFolders  # noqa: E402
from eva_depthmask.evaluation.photos import (  # noqa: E402
    FORMATS,
    LEVELS,
    fit_photo_threshold,
    photo_pairs,
    score_photos,
)
from eva_depthmask.evaluation.predictor import Predictor  # noqa: E402
from eva_depthmask.losses import DepthMaskLoss  # noqa: E402
from eva_depthmask.nets.registry import build_model  # noqa: E402
from eva_depthmask.training.fit import fit  # noqa: E402
from eva_depthmask.training.loaders import TrainData  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
PHOTOS = ROOT.parent / "shared" / "realdata" / "indoor_people"
RECIPES = ("photos", "mixed")
FIGURE_LEVEL = "mild"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--photos", type=Path, default=PHOTOS, help="folder with bg/ and fg/")
    p.add_argument("--recipes", nargs="+", default=list(RECIPES), choices=RECIPES)
    p.add_argument("--size", type=int, default=64, help="training image side in pixels")
    p.add_argument("--eval-size", type=int, default=224, help="the photos' side when scored")
    p.add_argument("--epochs", type=int, default=6, help="epochs of the photos' train split")
    p.add_argument("--rooms", type=int, default=4000, help="procedural rooms of the mixed recipe")
    p.add_argument("--placements", type=int, default=1, help="per (bg, fg, flip) for training")
    p.add_argument("--test-samples", type=int, default=200, help="at most this many test pairs")
    p.add_argument("--threads", type=int, default=2, help="torch CPU threads")
    p.add_argument("--work", type=Path, default=ROOT / "benchmarks" / ".real_photos")
    p.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "real_photos.json")
    p.add_argument("--figure", type=Path, default=ROOT / "docs" / "real_photos.png")
    args = p.parse_args(argv)
    for name in ("size", "eval_size", "epochs", "rooms", "placements", "test_samples", "threads"):
        if getattr(args, name) < 1:
            p.error(f"--{name.replace('_', '-')}: expected a positive integer")
    for sub in ("bg", "fg"):
        if not (args.photos / sub).is_dir():
            p.error(f"--photos: {args.photos / sub} is not a folder (expected bg/ and fg/ inside)")
    return args


def photo_config(args: argparse.Namespace, size: int) -> DataConfig:
    """The photos' grid: every train background with every train cut-out (split by both)."""
    return DataConfig(size=size, split_fg=True, placements=args.placements, image_format="jpg")


def eval_config(args: argparse.Namespace) -> DataConfig:
    """The same split at ``--eval-size``: two cut-outs per background, five placements each."""
    return DataConfig(size=args.eval_size, split_fg=True, fg_per_bg=2, placements=5)


def photo_dataset(args: argparse.Namespace, cfg: DataConfig, name: str) -> Path:
    folders = ImageFolders(args.photos / "bg", args.photos / "fg", cfg)
    return make_dataset(args.work / name, cfg, folders, teacher=None, progress=False)


def train_data(args: argparse.Namespace, recipe: str, photos: Path) -> TrainData:
    """What a recipe trains on: the photos, or the photos and the demo's rooms half and half."""
    mine = TrainData(photos, ROBUST_AUG)
    if recipe == "photos":
        return mine
    rooms_cfg = replace(PLANS["default"].data, size=args.size, n_bg=args.rooms)
    rooms = make_dataset(args.work / f"rooms{args.size}_{args.rooms}", rooms_cfg, progress=False)
    return TrainData.mix([TrainData(rooms, ROBUST_AUG), mine], ratio=[0.5, 0.5])


def train(args: argparse.Namespace, recipe: str, data: TrainData, epochs: int) -> Path:
    """Train (or resume) one recipe; returns its best checkpoint."""
    run_dir = args.work / f"run_{recipe}"
    cfg = replace(
        PLANS["default"].train,
        stages=((args.size, epochs, 32),),
        ckpt_dir=str(run_dir),
        threads=args.threads,
        tensorboard=False,
    )
    torch.manual_seed(cfg.seed)
    fit(build_model("depthmasknet"), data, cfg, loss_fn=DepthMaskLoss(ROBUST_LOSS))
    return run_dir / "best.pt"


def score(args, recipe: str, ckpt: Path, test, thresholds: dict) -> list[dict]:
    """One row per format and level: the refined mask, the coarse one, and differencing."""
    refined = Predictor.from_checkpoint(ckpt, device="cpu", flip=True)
    coarse = replace(refined, refine=None)
    rows = []
    for image_format in FORMATS:
        for level in LEVELS:
            kw = {"level": level, "image_format": image_format, "max_samples": args.test_samples}
            s = score_photos(refined, test, thresholds[image_format], **kw)
            c = score_photos(coarse, test, thresholds[image_format], **kw)
            rows.append(
                {
                    "recipe": recipe,
                    "format": image_format,
                    "level": level,
                    "mask_iou": round(s["mask_iou"], 4),
                    "difference_iou": round(s["difference_iou"], 4),
                    "boundary_f": round(s["boundary_f"], 4),
                    "difference_boundary_f": round(s["difference_boundary_f"], 4),
                    "coarse_iou": round(c["mask_iou"], 4),
                    "coarse_boundary_f": round(c["boundary_f"], 4),
                    "threshold": thresholds[image_format],
                    "samples": s["samples"],
                }
            )
            print(_row_line(rows[-1]), flush=True)
    return rows


def _row_line(r: dict) -> str:
    return (
        f"| {r['recipe']} | {r['format']} | {r['level']} | {r['mask_iou']:.3f} | "
        f"{r['coarse_iou']:.3f} | {r['difference_iou']:.3f} | {r['boundary_f']:.3f} | "
        f"{r['difference_boundary_f']:.3f} |"
    )


def figure(predictors: dict, test, path: Path, n: int = 4) -> None:
    """bg (re-captured, mild), fg_bg, the true mask and each recipe's mask on ``n`` test pairs."""
    pairs = list(photo_pairs(test, FIGURE_LEVEL, "jpg", None))
    picks = np.linspace(0, len(pairs) - 1, n).round().astype(int)
    cols = 3 + len(predictors)
    fig, axes = plt.subplots(n, cols, figsize=(2.2 * cols, 2.2 * n), squeeze=False)
    for row, i in zip(axes, picks, strict=True):
        _, bg, fg_bg, true = pairs[i]
        panels = [("bg (mild)", bg), ("fg_bg", fg_bg), ("true_mask", true)]
        panels += [(f"{name}", p(bg, fg_bg)["mask"]) for name, p in predictors.items()]
        for ax, (title, img) in zip(row, panels, strict=True):
            ax.imshow(img, cmap="gray" if img.ndim == 2 else None)
            ax.set_title(title, fontsize=8)
            ax.axis("off")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=80)


def main(argv: list[str] | None = None) -> list[dict]:
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    t0 = time.perf_counter()
    photos = photo_dataset(args, photo_config(args, args.size), f"photos{args.size}")
    evalset = photo_dataset(args, eval_config(args), f"photos{args.eval_size}")
    test, val = QuartetDataset(evalset, "test"), QuartetDataset(evalset, "val")
    thresholds = {f: fit_photo_threshold(val, f) for f in FORMATS}
    seconds = {"data": time.perf_counter() - t0}
    train_images = len(TrainData(photos).raw("train", args.size)) * args.epochs
    rows, predictors = [], {}
    print(
        "| recipe | format | level | mask IoU | coarse IoU | difference IoU | boundary F "
        "| difference boundary F |\n|---|---|---|---|---|---|---|---|"
    )
    for recipe in args.recipes:
        t = time.perf_counter()
        data = train_data(args, recipe, photos)
        epoch = len(data.raw("train", args.size))
        best = train(args, recipe, data, max(1, round(train_images / epoch)))
        seconds[f"train_{recipe}"] = time.perf_counter() - t
        rows += score(args, recipe, best, test, thresholds)
        predictors[recipe] = Predictor.from_checkpoint(best, device="cpu", flip=True)
    figure(predictors, test, args.figure)
    seconds["total"] = time.perf_counter() - t0
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(rows, indent=1) + "\n")
    print("time: " + ", ".join(f"{k} {v:.0f} s" for k, v in seconds.items()))
    return rows


if __name__ == "__main__":
    main()
