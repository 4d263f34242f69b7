"""Command line: ``python -m eva_depthmask {demo, make-data} ...`` (``--help`` on each)."""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import replace
from pathlib import Path

from .config import DataConfig


def _data_args(p: argparse.ArgumentParser, defaults: DataConfig) -> None:
    p.add_argument("--size", type=int, default=defaults.size, help="image side in pixels")
    p.add_argument("--n-bg", type=int, default=defaults.n_bg, help="number of backgrounds (rooms)")
    p.add_argument("--n-fg", type=int, default=defaults.n_fg, help="number of foregrounds")
    p.add_argument("--placements", type=int, default=defaults.placements, help="per (bg, fg, flip)")
    p.add_argument("--seed", type=int, default=defaults.seed)
    p.add_argument(
        "--format", dest="image_format", choices=("jpg", "png"), default=defaults.image_format
    )
    p.add_argument("--workers", type=int, default=None, help="processes (default: all cores)")


def _data_config(args: argparse.Namespace, base: DataConfig) -> DataConfig:
    return replace(
        base,
        size=args.size,
        n_bg=args.n_bg,
        n_fg=args.n_fg,
        placements=args.placements,
        seed=args.seed,
        image_format=args.image_format,
    )


def cmd_make_data(args: argparse.Namespace) -> None:
    from .datagen import make_dataset
    from .sources import SyntheticSource

    cfg = replace(_data_config(args, DataConfig()), lazy=args.lazy)
    source = SyntheticSource(cfg, fg_dir=args.fg_dir)
    path = make_dataset(args.out, cfg, source, workers=args.workers, zip=args.zip)
    stats = json.loads((path / "stats.json").read_text()) if path.is_dir() else None
    print(f"dataset written to {path}")
    if stats:
        print(json.dumps({k: stats[k] for k in ("counts", "size", "layout", "stats")}, indent=2))


DEMO_DATA = DataConfig(size=64, n_bg=24, n_fg=24, placements=2)


def cmd_demo(args: argparse.Namespace) -> None:
    import numpy as np

    from .datagen import make_dataset
    from .dataset import QuartetDataset
    from .viz import dataset_overview, quartet_strip

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    cfg = DEMO_DATA if not args.quick else replace(DEMO_DATA, n_bg=8, n_fg=8, placements=1)
    path = make_dataset(out / "data", cfg, workers=args.workers)
    test = QuartetDataset(path, "test")
    picks = np.sort(np.random.default_rng(0).choice(len(test), min(6, len(test)), replace=False))
    quartet_strip([test.raw(int(i)) for i in picks], "synthetic test samples").savefig(
        out / "samples.png", dpi=90
    )
    train = QuartetDataset(path, "train")
    overview = [train.raw(i) for i in range(0, len(train), max(1, len(train) // 200))]
    dataset_overview(overview).savefig(out / "overview.png", dpi=90)
    info = json.loads((path / "stats.json").read_text())
    print(f"dataset: {path}  ({info['size']} px, {info['layout']} layout)")
    print("samples per split: " + ", ".join(f"{k} {v}" for k, v in info["counts"].items()))
    print(f"figures: {out / 'samples.png'}, {out / 'overview.png'}")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m eva_depthmask", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    demo = sub.add_parser("demo", help="the whole pipeline on procedural scenes, sized for a CPU")
    demo.add_argument("--quick", action="store_true", help="a smaller run of about a minute")
    demo.add_argument(
        "--out", default="demo_out", help="folder for the dataset, figures and metrics"
    )
    demo.add_argument("--workers", type=int, default=None, help="processes (default: all cores)")
    demo.set_defaults(func=cmd_demo)

    make = sub.add_parser(
        "make-data", help="write a synthetic dataset (folder, optionally also .zip)"
    )
    make.add_argument("out", help="dataset folder to create (or resume)")
    _data_args(make, DataConfig())
    make.add_argument(
        "--fg-dir", default=None, help="use your RGBA cut-outs (PNG) instead of sprites"
    )
    make.add_argument(
        "--lazy", action="store_true", help="store only bg, fg, depth and the manifest"
    )
    make.add_argument("--zip", action="store_true", help="also pack the dataset into OUT.zip")
    make.set_defaults(func=cmd_make_data)
    return parser


def main(argv: list[str] | None = None) -> int:
    from .composite import ImageError
    from .storage import DatasetError

    args = build_parser().parse_args(argv)
    try:
        args.func(args)
    except (
        DatasetError,
        ImageError,
        FileNotFoundError,
    ) as e:  # bad input: say what, not where in torch
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
