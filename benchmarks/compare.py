"""DepthMaskNet against the seed projects' networks, trained the same way on the same data.

Every network is trained by ``fit()`` with one TrainConfig: the same quartets in the same order, the same
augmentation, loss, optimizer, schedule and number of training images. All are then evaluated on the
same fixed test split, clean and under the mild and strong background perturbations, next to the
difference baseline (its threshold fitted on clean val data).

The data is the demo's synthetic recipe (one foreground per room, x 2 flips) with as many rooms as
``--epochs`` epochs of ``--images`` training images in all, ``VAL_SAMPLES`` val and ``--test-samples``
test quartets need. Runs live in ``--work`` and resume: a killed comparison re-run picks up where it
stopped, and a finished network is not trained again.

    python benchmarks/compare.py                              # 64 px on this CPU, 2 threads
    python benchmarks/compare.py --size 224 --device cuda     # on a GPU
    python benchmarks/compare.py --models depthmasknet session15 --images 4000
    python benchmarks/compare.py --models depthmasknet --train-seed 1 --out /tmp/seed1.json \
        --figure /tmp/seed1.png                               # another training seed, same data

Writes benchmarks/results/compare.json (one object per network, plus ``"difference"``), the figure
docs/compare.png (validation quality against training time) and prints a markdown table.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import sys
import time
from dataclasses import replace
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import torch  # noqa: E402

from eva_depthmask.apps.demo import PLANS  # noqa: E402
from eva_depthmask.config import AugConfig, DataConfig, LossConfig, TrainConfig, to_dict  # noqa: E402
from eva_depthmask.data.datagen import make_dataset  # noqa: E402
from eva_depthmask.evaluation.difference import fit_difference_threshold  # noqa: E402
from eva_depthmask.evaluation.robustness import robustness_sweep  # noqa: E402
from eva_depthmask.losses import DepthMaskLoss  # noqa: E402
from eva_depthmask.nets.registry import MODELS, build_model  # noqa: E402
from eva_depthmask.nets.summary import model_summary  # noqa: E402
from eva_depthmask.training.devices import pick_device  # noqa: E402
from eva_depthmask.training.fit import fit  # noqa: E402
from eva_depthmask.training.loaders import TrainData  # noqa: E402
from eva_depthmask.training.precision import autocast, precision_name  # noqa: E402
from eva_depthmask.training.runlog import read_log  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
NETWORKS = ("depthmasknet", "session15", "dilated_pixelshuffle", "s15_unet", "maskdepthgenerator")
VAL_SAMPLES = 500
QUALITY = ("mask_iou", "mask_dice", "depth_rmse", "depth_abs_rel", "depth_delta1")
# test columns only (older runs' validation logs lack them): depth with each image's scale error
# taken out, and that error itself (metrics.py, "median scaling")
ALIGNED = ("depth_rmse_aligned", "depth_delta1_aligned", "depth_scale_log")
# every network trains with the package's default augmentation and loss, not the demo's outline
# recipe: in this short training what the outline weight gives the masks it takes from the depth (K26)
AUG, LOSS = AugConfig(), LossConfig()


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--models", nargs="+", default=list(NETWORKS), choices=list(MODELS))
    p.add_argument("--size", type=int, default=64, help="image side in pixels")
    p.add_argument("--images", type=int, default=20_000, help="training images seen per network")
    p.add_argument("--epochs", type=int, default=4, help="validation points on the curves")
    p.add_argument("--batch", type=int, default=32)
    p.add_argument(
        "--test-samples",
        type=int,
        default=2000,
        help="at least this many test quartets (two per room: depth errors are mostly per room)",
    )
    p.add_argument("--device", default="auto", help='"auto", "cpu" or "cuda"')
    p.add_argument("--threads", type=int, default=2, help="torch CPU threads")
    p.add_argument(
        "--workers",
        type=int,
        default=None,
        help="DataLoader workers (default: fit's for the device)",
    )
    p.add_argument("--seed", type=int, default=0, help="the data, and by default the training")
    p.add_argument(
        "--train-seed",
        type=int,
        default=None,
        help="initial weights, sample order and augmentation only (default: --seed); the data stays\n"
        "that of --seed, so runs with several training seeds show the seed-to-seed spread",
    )
    p.add_argument("--work", type=Path, default=ROOT / "benchmarks" / ".compare")
    p.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "compare.json")
    p.add_argument("--figure", type=Path, default=ROOT / "docs" / "compare.png")
    args = p.parse_args(argv)
    for name in ("size", "images", "epochs", "batch", "test_samples", "threads"):
        if getattr(args, name) < 1:
            p.error(f"--{name.replace('_', '-')}: expected a positive integer")
    if args.workers is not None and args.workers < 0:
        p.error("--workers: expected a non-negative integer")
    if args.train_seed is not None and args.train_seed < 0:
        p.error("--train-seed: expected a non-negative integer")
    return args


def run_name(args: argparse.Namespace, network: str) -> str:
    """The run folder of ``network``: a batch size or a training seed of its own gets a folder of
    its own (fit() resumes from a folder's checkpoints, so two recipes must never share one)."""
    name = f"{network}_b{args.batch}"
    if args.train_seed is None or args.train_seed == args.seed:
        return name
    return f"{name}_train{args.train_seed}"


def data_config(args: argparse.Namespace) -> DataConfig:
    """The demo's data recipe at ``--size``, with rooms enough for ``--epochs`` epochs of ``--images``
    training quartets in all, ``VAL_SAMPLES`` val and ``--test-samples`` test quartets (splits are by
    room, so the split fractions follow from the room counts)."""
    base = replace(PLANS["default"].data, size=args.size, seed=args.seed)
    per_room = base.n_samples // base.n_bg
    rooms = {
        "train": math.ceil(args.images / args.epochs / per_room),
        "val": math.ceil(VAL_SAMPLES / per_room),
        "test": math.ceil(args.test_samples / per_room),
    }
    n_bg = sum(rooms.values())
    return replace(
        base,
        n_bg=n_bg,
        val_fraction=rooms["val"] / n_bg,
        test_fraction=rooms["test"] / n_bg,
    )


def train_config(args: argparse.Namespace, run_dir: Path) -> TrainConfig:
    """The demo's training recipe for ``--epochs`` epochs at ``--size``."""
    return replace(
        PLANS["default"].train,
        stages=((args.size, args.epochs, args.batch),),
        seed=args.seed if args.train_seed is None else args.train_seed,
        device=args.device,
        num_workers=args.workers,
        threads=args.threads,  # one setting for all: fit's default would suit small and big nets unequally
        ckpt_dir=str(run_dir),
        tensorboard=False,
        max_val_samples=VAL_SAMPLES,  # the curves' points; the table uses the whole test split
    )


def warm_up(device: torch.device, size: int, batch: int, steps: int = 3) -> None:
    """A few training steps of a throwaway tiny DepthMaskNet on ``device`` at the run's size, batch
    and mixed precision, before any network's clock starts; the global RNG is left as it was.

    fit() times a network from its first step, so the one trained first would also pay the
    process's one-off start-up: on a GPU the CUDA context, cuDNN, cuBLAS and the caching allocator
    (U4: DepthMaskNet, trained first, took 20.5 s for its first epoch, the others 10.5-18.4 s).
    """
    cuda = device.type == "cuda"
    with torch.random.fork_rng(devices=[device] if cuda else []):
        net = build_model("depthmasknet_tiny").to(device, memory_format=torch.channels_last)
        opt = torch.optim.AdamW(net.parameters())
        pair = torch.randn(2, batch, 3, size, size, device=device)
        bg, fg_bg = (x.contiguous(memory_format=torch.channels_last) for x in pair)
        for _ in range(steps):
            with autocast(device):
                out = net(bg, fg_bg)
            (out["mask"].float().mean() + out["depth"].float().mean()).backward()
            opt.step()
            opt.zero_grad(set_to_none=True)
        if cuda:
            torch.cuda.synchronize(device)


def network_row(
    name: str, model, log: list[dict], sweep: list[dict], batch: int, size: int
) -> dict:
    """One table row: cost, training speed and test quality (clean, mild, strong) of a network."""
    summary = model_summary(model, size)
    last = [r for r in log if r["kind"] == "train"][-1]
    images, seconds = int(last["global_step"]) * batch, float(last["seconds"])
    level = {r["level"]: r for r in sweep if r["model"] == "model"}
    return {
        "name": name,
        "params": summary["params"],
        "macs": summary["macs_per_pair"],
        "train_images": images,
        "train_seconds": seconds,
        "train_img_per_s": images / seconds,
        **{k: level["none"][k] for k in QUALITY + ALIGNED},
        "mask_iou_mild": level["mild"]["mask_iou"],
        "mask_iou_strong": level["strong"]["mask_iou"],
    }


def difference_row(sweep: list[dict], threshold: float) -> dict:
    """The difference baseline's row: mask columns only (it predicts no depth and trains nothing)."""
    level = {r["level"]: r for r in sweep if r["model"] == "difference"}
    return {
        "name": "difference",
        "params": 0,
        "macs": None,
        "train_images": 0,
        "train_seconds": None,
        "train_img_per_s": None,
        "mask_iou": level["none"]["mask_iou"],
        "mask_dice": level["none"]["mask_dice"],
        "depth_rmse": None,
        "depth_abs_rel": None,
        "depth_delta1": None,
        **dict.fromkeys(ALIGNED),
        "mask_iou_mild": level["mild"]["mask_iou"],
        "mask_iou_strong": level["strong"]["mask_iou"],
        "threshold": threshold,
    }


def val_curve(log: list[dict]) -> list[dict]:
    """Validation points of a run: training seconds so far and the metrics of that epoch."""
    return [
        {"seconds": float(r["seconds"]), **{k: float(r[k]) for k in QUALITY}}
        for r in log
        if r["kind"] == "val"
    ]


def quality_figure(curves: dict[str, list[dict]], title: str):
    """Validation mask IoU and depth delta1 against training seconds, one line per network."""
    fig, axes = plt.subplots(1, 2, figsize=(11, 3.8), layout="constrained")
    for ax, key in zip(axes, ("mask_iou", "depth_delta1"), strict=True):
        for name, points in curves.items():
            ax.plot([p["seconds"] for p in points], [p[key] for p in points], "o-", label=name)
        ax.set(xlabel="training time (s)", ylabel=key, title=f"validation {key}")
        ax.grid(alpha=0.3, which="both")
    axes[0].legend(fontsize=8)
    fig.suptitle(title)
    return fig


def fmt(value, spec: str) -> str:
    return "-" if value is None else format(value, spec)


def markdown(rows: list[dict]) -> str:
    lines = [
        "| network | params | GMACs/pair | train img/s | train s | mask IoU | Dice | depth RMSE "
        "| abs-rel | delta1 | RMSE aligned | delta1 aligned | scale err | IoU mild | IoU strong |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        cells = [
            r["name"],
            f"{r['params'] / 1e6:.2f} M" if r["params"] else "-",
            fmt(r["macs"] and r["macs"] / 1e9, ".3f"),
            fmt(r["train_img_per_s"], ".1f"),
            fmt(r["train_seconds"], ".0f"),
            *(fmt(r[k], ".4f") for k in QUALITY + ALIGNED),
            fmt(r["mask_iou_mild"], ".4f"),
            fmt(r["mask_iou_strong"], ".4f"),
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> list[dict]:
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    device = None if args.device == "auto" else args.device
    data_cfg = data_config(args)
    work = (
        args.work
        / f"{args.size}px_{args.images}img_{args.epochs}ep_{data_cfg.n_bg}rooms_seed{args.seed}"
    )
    data = TrainData(make_dataset(work / "data", data_cfg), AUG)
    stats = data.stats()
    threshold = fit_difference_threshold(data.dataset("val", args.size, stats=stats), stats)
    rows, curves, sweep = [], {}, []
    warm_up(pick_device(train_config(args, work)), args.size, args.batch)
    for name in args.models:
        cfg = train_config(args, work / "runs" / run_name(args, name))
        torch.manual_seed(cfg.seed)
        model = build_model(name)
        fit(model, data, cfg, loss_fn=DepthMaskLoss(LOSS))
        log = read_log(Path(cfg.ckpt_dir) / "log.csv")
        sweep = robustness_sweep(model, data, args.size, stats, threshold=threshold, device=device)
        rows.append(network_row(name, model.cpu(), log, sweep, args.batch, args.size))
        curves[name] = val_curve(log)
        print(json.dumps(rows[-1]), file=sys.stderr, flush=True)
    rows.append(difference_row(sweep, threshold))
    machine = describe_machine(args)
    test = data.raw("test", args.size)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(rows, indent=1))
    run = {
        "command": " ".join(["python", *sys.argv]) if argv is None else f"main({argv})",
        "machine": machine,
        "data": to_dict(data_cfg),
        "train": to_dict(train_config(args, work / "runs")),
        "loss": to_dict(LOSS),
        "aug": to_dict(AUG),
        "test_samples": len(test),
        "test_rooms": len({row["bg"] for row in test.rows}),
        "curves": curves,
    }
    args.out.with_name(args.out.stem + "_run.json").write_text(json.dumps(run, indent=1))
    title = (
        f"{args.size} px, {rows[0]['train_images']:,} training images each "
        f"({machine['device']}, {machine['precision']})"
    )
    args.figure.parent.mkdir(parents=True, exist_ok=True)
    quality_figure(curves, title).savefig(args.figure, dpi=90)
    print(markdown(rows))
    return rows


def describe_machine(args: argparse.Namespace) -> dict:
    cuda = torch.cuda.is_available() and args.device != "cpu"
    return {
        "device": torch.cuda.get_device_name() if cuda else f"CPU, {args.threads} thread(s)",
        "precision": precision_name("cuda" if cuda else "cpu"),
        "cpu": platform.processor() or platform.machine(),
        "cores": os.cpu_count(),
        "torch": torch.__version__,
        "load_after": os.getloadavg()[0] if hasattr(os, "getloadavg") else None,
        "finished": time.strftime("%Y-%m-%d %H:%M"),
    }


if __name__ == "__main__":
    main()
