"""Command line: ``python -m eva_depthmask {demo, make-data, train, evaluate, predict}`` (``--help``)."""

from __future__ import annotations

import argparse
import csv
import io
import json
import sys
from dataclasses import replace
from pathlib import Path

from ..config import AugConfig, DataConfig, TrainConfig
from ..config.augment import BACKENDS


class InputError(ValueError):
    """Bad input the command line finds itself; ``main`` prints it as one ``error:`` line."""


def _data_args(p: argparse.ArgumentParser) -> None:
    d = DataConfig()
    p.add_argument("--size", type=int, default=d.size, help="image side in pixels")
    p.add_argument("--n-bg", type=int, default=d.n_bg, help="number of backgrounds (rooms)")
    p.add_argument("--n-fg", type=int, default=d.n_fg, help="number of foregrounds")
    p.add_argument("--placements", type=int, default=d.placements, help="per (bg, fg, flip)")
    p.add_argument(
        "--fg-per-bg",
        type=int,
        default=d.fg_per_bg,
        help="foregrounds drawn for each background (default: every one)",
    )
    p.add_argument("--seed", type=int, default=d.seed)
    p.add_argument("--format", dest="image_format", choices=("jpg", "png"), default=d.image_format)


def _flip_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--flip",
        action="store_true",
        help="average each prediction with the mirrored pair's (twice the inference time)",
    )


def _data_config(args: argparse.Namespace) -> DataConfig:
    keys = ("size", "n_bg", "n_fg", "placements", "fg_per_bg", "seed", "image_format")
    try:
        return replace(DataConfig(), **{k: getattr(args, k) for k in keys})
    except ValueError as e:  # a bad data flag: one line, the same exit status as other bad input
        print(f"error: {e}", file=sys.stderr)
        raise SystemExit(2) from None


def _source(spec: str, args: argparse.Namespace):
    """``synthetic`` (settings from the data flags) or a dataset folder/zip."""
    return _data_config(args) if spec == "synthetic" else Path(spec)


def _number(kind: type, low: float, what: str):
    """An argparse type: ``kind`` (int or float) of at least ``low`` (above it for floats)."""

    def parse(text: str):
        try:
            value = kind(text)
        except ValueError:
            value = None
        if value is None or (value < low if kind is int else not value > low):
            raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}")
        return value

    return parse


_POSITIVE = _number(int, 1, "a positive integer")
_COUNT = _number(int, 0, "0 or a positive integer")
_RATE = _number(float, 0.0, "a number above 0")


def _stage(text: str) -> tuple[int, int, int]:
    try:
        size, epochs, batch = (int(x) for x in text.split(":"))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"stage {text!r}: expected SIZE:EPOCHS:BATCH, e.g. 64:4:32"
        ) from None
    return size, epochs, batch


def cmd_make_data(args: argparse.Namespace) -> None:
    from ..data.datagen import make_dataset
    from ..data.sources import SyntheticSource

    cfg = replace(_data_config(args), lazy=args.lazy)
    source = SyntheticSource(cfg, fg_dir=args.fg_dir)
    path = make_dataset(args.out, cfg, source, workers=args.workers, zip=args.zip)
    print(f"dataset written to {path}")


def cmd_train(args: argparse.Namespace) -> None:
    from ..nets.registry import build_model
    from ..training.fit import fit
    from ..training.loaders import TrainData

    cfg = replace(TrainConfig(), ckpt_dir=args.ckpt_dir, lr=args.lr, seed=args.train_seed)
    if args.stages:
        cfg = replace(cfg, stages=tuple(args.stages))
    try:
        model = build_model(args.model)
    except ValueError as e:  # an unknown name: the message lists the known ones
        raise InputError(f"--{e}") from None
    data = TrainData(_source(args.data, args), AugConfig(backend=args.aug_backend))
    result = fit(model, data, cfg, resume=not args.no_resume)
    print(json.dumps({k: result[k] for k in ("val", "best", "best_path")}, indent=2))


def cmd_evaluate(args: argparse.Namespace) -> None:
    from ..evaluation.evaluate import evaluate
    from ..evaluation.predictor import Predictor
    from ..evaluation.robustness import robustness_sweep
    from ..training.loaders import TrainData

    predictor = Predictor.from_checkpoint(args.ckpt, flip=args.flip)
    size = args.eval_size or predictor.size
    data = TrainData(_source(args.data, args))
    dataset = data.dataset(args.split, size, stats=predictor.stats)
    if len(dataset) == 0:
        raise InputError(
            f"--split {args.split}: {args.data} holds no {args.split} samples (too few backgrounds?)"
        )
    metrics, rows = evaluate(predictor.model, dataset)
    result = {"split": args.split, "size": size, "flip": args.flip, **metrics}
    if args.robustness:
        result["robustness"] = robustness_sweep(
            predictor.model, data, size, predictor.stats, args.split
        )
    table = io.StringIO()
    writer = csv.DictWriter(table, list(rows[0]), lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    files = {"metrics.json": json.dumps(result, indent=2), "per_sample.csv": table.getvalue()}
    written = _write(args.out, {k: v.encode() for k, v in files.items()})
    print(json.dumps({k: round(v, 4) for k, v in metrics.items()}, indent=2))
    print(f"written: {', '.join(map(str, written))}")


def cmd_predict(args: argparse.Namespace) -> None:
    import numpy as np
    from matplotlib import colormaps
    from PIL import Image

    from ..evaluation.predictor import Predictor
    from ..storage import depth_to_uint16

    predictor = Predictor.from_checkpoint(args.ckpt, flip=args.flip)
    out = predictor(args.bg, args.fg_bg)
    images = {
        "mask.png": out["mask"].astype(np.uint8) * 255,
        "depth.png": depth_to_uint16(out["depth"]),
        "depth_color.png": (colormaps["magma"](out["depth"])[..., :3] * 255).astype(np.uint8),
    }
    files = {}
    for name, array in images.items():
        buf = io.BytesIO()
        Image.fromarray(array).save(buf, "PNG")
        files[name] = buf.getvalue()
    mask, depth, colour = _write(args.out, files)
    print(f"written: {mask}, {depth} (16-bit), {colour}")


def _write(folder: str, files: dict[str, bytes]) -> list[Path]:
    """All of ``files`` into ``folder``, or none of them (an error naming the folder)."""
    from ..storage import write_files

    try:
        return write_files(folder, files)
    except OSError as e:
        where = e.filename or folder
        raise InputError(f"--out {folder}: could not write {where} ({e.strerror or e})") from None


def cmd_demo(args: argparse.Namespace) -> None:
    from .demo import PLANS, run_demo

    run_demo(args.out, PLANS["quick" if args.quick else "default"], workers=args.workers)
    print(f"figures and metrics in {args.out}/: metrics.json, predictions.png, curves.png")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m eva_depthmask", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    for add in (_demo_parser, _make_data_parser, _train_parser, _evaluate_parser, _predict_parser):
        add(sub)
    return parser


def _demo_parser(sub) -> None:
    p = sub.add_parser(
        "demo", help="dataset, training, evaluation and figures on procedural scenes (CPU)"
    )
    p.add_argument("--quick", action="store_true", help="a run of seconds instead of 10-25 minutes")
    p.add_argument(
        "--out", default="demo_out", help="folder for the dataset, run, figures and metrics"
    )
    p.add_argument(
        "--workers",
        type=_COUNT,
        default=None,
        help="processes for the dataset (default: all cores)",
    )
    p.set_defaults(func=cmd_demo)


def _make_data_parser(sub) -> None:
    p = sub.add_parser("make-data", help="write a synthetic dataset (folder, optionally also .zip)")
    p.add_argument("out", help="dataset folder to create (or resume)")
    _data_args(p)
    p.add_argument("--fg-dir", default=None, help="use your RGBA cut-outs (PNG) instead of sprites")
    p.add_argument("--lazy", action="store_true", help="store only bg, fg, depth and the manifest")
    p.add_argument("--zip", action="store_true", help="also pack the dataset into OUT.zip")
    p.add_argument(
        "--workers", type=_COUNT, default=None, help="processes (default: all cores; 0: none)"
    )
    p.set_defaults(func=cmd_make_data)


def _train_parser(sub) -> None:
    p = sub.add_parser("train", help="train (or resume training) a model")
    p.add_argument(
        "--data", default="synthetic", help="dataset folder/zip, or 'synthetic' (on the fly)"
    )
    _data_args(p)
    p.add_argument("--model", default="depthmasknet", help="depthmasknet or a reference network")
    p.add_argument(
        "--stages", type=_stage, nargs="+", help="SIZE:EPOCHS:BATCH ..., e.g. 64:4:32 128:2:16"
    )
    p.add_argument("--lr", type=_RATE, default=TrainConfig().lr)
    p.add_argument("--train-seed", type=int, default=TrainConfig().seed)
    p.add_argument("--ckpt-dir", default="runs/default", help="checkpoints and logs (resumed from)")
    p.add_argument("--no-resume", action="store_true", help="start over even if checkpoints exist")
    p.add_argument(
        "--aug-backend",
        choices=BACKENDS,
        default=AugConfig().backend,
        help="augment each sample in the loader, or whole batches on the training device (torch)",
    )
    p.set_defaults(func=cmd_train)


def _evaluate_parser(sub) -> None:
    p = sub.add_parser("evaluate", help="metrics of a checkpoint on a split; per-sample CSV")
    p.add_argument(
        "--ckpt", required=True, help="a checkpoint written by train (e.g. runs/default/best.pt)"
    )
    p.add_argument("--data", default="synthetic", help="dataset folder/zip, or 'synthetic'")
    _data_args(p)
    p.add_argument("--split", default="test", choices=("train", "val", "test"))
    p.add_argument(
        "--eval-size",
        type=_POSITIVE,
        default=None,
        help="evaluate at this size (default: training size)",
    )
    p.add_argument(
        "--robustness", action="store_true", help="also the background-perturbation sweep"
    )
    _flip_arg(p)
    p.add_argument("--out", default="eval_out")
    p.set_defaults(func=cmd_evaluate)


def _predict_parser(sub) -> None:
    p = sub.add_parser("predict", help="mask and depth for your own bg + fg_bg photos")
    p.add_argument("--ckpt", required=True)
    p.add_argument("--bg", required=True, help="background photo")
    p.add_argument("--fg-bg", required=True, help="the same scene with the object")
    _flip_arg(p)
    p.add_argument("--out", default="predict_out")
    p.set_defaults(func=cmd_predict)


def main(argv: list[str] | None = None) -> int:
    from ..images import ImageError
    from ..storage import DatasetError
    from ..training.checkpoint import CheckpointError

    args = build_parser().parse_args(argv)
    try:
        args.func(args)
    except (DatasetError, ImageError, CheckpointError, InputError) as e:  # bad input: say what
        print(f"error: {e}", file=sys.stderr)
        return 2
    except OSError as e:  # a missing folder, a file where a folder must go, a full disk
        where = f"{e.filename}: " if e.filename else ""
        print(f"error: {where}{e.strerror if e.filename and e.strerror else e}", file=sys.stderr)
        return 2
    return 0
