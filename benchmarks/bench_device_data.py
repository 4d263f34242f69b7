"""Where training waits: the loader alone, fit() end to end and the step alone, for the host data
path (``AugConfig(backend="albumentations")``: every sample augmented by the loader) and the device
path (``backend="torch"``: the loader resizes and draws parameters, fit() augments whole batches on
its device), DepthMaskNet beside Session 15, at 64 and 224 px, on whatever device is present.

- ``loader_img_per_s``: ready batches on the device (loaded, moved, and for the device path
  augmented there), the second pass over the same samples (fit's sample cache then holds them);
- ``fit_img_per_s``: fit()'s own log over its second epoch (median of its rows, the first left out);
- ``step_img_per_s``: fit's optimizer step alone, on one ready batch over and over.

``--cores 2`` pins the process (and the loader workers it forks) to two cores with
``os.sched_setaffinity``, as in a Colab runtime; fit() then picks its threads and workers for two.

    .venv/bin/python benchmarks/bench_device_data.py --cores 2 --sizes 64       # this CPU
    python benchmarks/bench_device_data.py --cores 2                           # a GPU machine

Rows go to benchmarks/results/bench_device_data_<cpu|cuda>.json; a markdown table is printed.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import torch

from eva_depthmask.apps.demo import PLANS, ROBUST_AUG
from eva_depthmask.augment.normalize import check_stats, norm_constants, normalize
from eva_depthmask.data.datagen import make_dataset
from eva_depthmask.losses import DepthMaskLoss
from eva_depthmask.nets.registry import MODELS, build_model
from eva_depthmask.training.devices import pick_device
from eva_depthmask.training.fit import fit
from eva_depthmask.training.loaders import TrainData, default_workers, train_loader
from eva_depthmask.training.on_device import device_quartet
from eva_depthmask.training.optim import make_optimizer, make_scheduler
from eva_depthmask.training.precision import autocast
from eva_depthmask.training.runlog import read_log
from eva_depthmask.training.sampler import EpochSampler

RESULTS = Path(__file__).parent / "results"
PATHS = {"host": "albumentations", "device": "torch"}
CACHE_MB = 4096


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--models", nargs="+", default=["depthmasknet", "session15"], choices=MODELS)
    p.add_argument("--sizes", type=int, nargs="+", default=[64, 224])
    p.add_argument("--paths", nargs="+", default=list(PATHS), choices=list(PATHS))
    p.add_argument("--cores", type=int, default=None, help="pin to this many cores (Colab: 2)")
    p.add_argument("--device", default="auto", help="auto, cpu or cuda")
    p.add_argument("--rooms", type=int, default=None, help="rooms of data (2 quartets each)")
    p.add_argument("--batch", type=int, default=None, help="default: 32 on a CPU, 128 on a GPU")
    p.add_argument("--lazy", action="store_true", help="also a lazy dataset on the device path")
    p.add_argument(
        "--compile",
        nargs="*",
        default=[],
        choices=MODELS,
        help="also time their torch.compile'd step",
    )
    p.add_argument("--out", type=Path, default=None)
    args = p.parse_args(argv)
    if args.cores is not None and not 1 <= args.cores <= len(os.sched_getaffinity(0)):
        p.error(f"--cores: expected 1 to {len(os.sched_getaffinity(0))}")
    return args


def loader_rate(
    data: TrainData, size: int, batch: int, device: torch.device, workers: int
) -> float:
    """Ready batches per second on ``device``, over the second of two passes (the cache warm)."""
    stats = data.stats()
    ds = data.dataset("train", size, 0, stats, CACHE_MB, normalize=False)
    sampler = EpochSampler(len(ds), 0, 0, 0, batch)
    loader = train_loader(ds, sampler, batch, workers, device.type == "cuda")
    scale, shift = norm_constants(*check_stats(stats), device)
    parts = data.resident(device)
    for _ in range(2):
        start, seen = time.perf_counter(), 0
        for b in loader:
            quartet = device_quartet(b, size, device, parts)
            normalize(quartet["bg"], scale, shift)
            seen += batch
        if device.type == "cuda":
            torch.cuda.synchronize()
    return seen / (time.perf_counter() - start)


def ready_batch(data: TrainData, size: int, batch: int, device: torch.device) -> dict:
    """One augmented, normalised batch on ``device``, for the step alone."""
    stats = data.stats()
    ds = data.dataset("train", size, 0, stats, 0, normalize=False)
    b = next(iter(train_loader(ds, EpochSampler(len(ds), 0, 0, 0, batch), batch, 0, False)))
    quartet = device_quartet(b, size, device, data.resident(device))
    scale, shift = norm_constants(*check_stats(stats), device)
    fmt = torch.channels_last
    for k in ("bg", "fg_bg"):
        quartet[k] = normalize(quartet[k], scale, shift).contiguous(memory_format=fmt)
    return {k: v.float() if k in ("mask", "depth") else v for k, v in quartet.items()}


def step_rate(
    name: str, b: dict, device: torch.device, steps: int, compiled: bool = False
) -> float:
    """fit's optimizer step on the same batch over and over, median of ``steps``: forward under
    fit's autocast, loss, backward, gradient clipping, AdamW and the one-cycle schedule, as the
    demo's recipe sets them; ``compiled``: the network through ``torch.compile`` (its compilation
    left out of the time)."""
    cfg = PLANS["default"].train
    model = build_model(name).to(device, memory_format=torch.channels_last)
    net = torch.compile(model) if compiled else model
    loss_fn = DepthMaskLoss(PLANS["default"].loss).to(device)
    opt = make_optimizer(model, cfg)
    sched = make_scheduler(opt, cfg, steps + 3)
    times = []
    for i in range(steps + 3):
        t = time.perf_counter()
        with autocast(device, cfg.amp):
            pred = net(b["bg"], b["fg_bg"])
        loss = loss_fn(pred, {"mask": b["mask"], "depth": b["depth"]})["total"]
        opt.zero_grad(set_to_none=True)
        loss.backward()
        if cfg.grad_clip > 0:
            torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
        opt.step()
        sched.step()
        if device.type == "cuda":
            torch.cuda.synchronize()
        if i >= 3:
            times.append(time.perf_counter() - t)
    return b["bg"].shape[0] / statistics.median(times)


def fit_rate(name: str, data: TrainData, size: int, batch: int, device, folder: Path) -> float:
    """Median images/s of fit()'s second epoch (its first log row left out)."""
    cfg = replace(
        PLANS["default"].train,
        stages=((size, 2, batch),),
        device=device.type,
        ckpt_dir=str(folder),
        tensorboard=False,
        max_val_samples=batch,
        log_every=5,
        cache_mb=CACHE_MB,
    )
    torch.manual_seed(0)
    fit(build_model(name), data, cfg, loss_fn=DepthMaskLoss(PLANS["default"].loss))
    rows = [r for r in read_log(folder / "log.csv") if r["kind"] == "train"]
    rates = [float(r["img_per_s"]) for r in rows if int(r["epoch"]) == 1]
    return statistics.median(rates[1:] or rates)


def make_data(size: int, rooms: int, folder: Path, lazy: bool = False) -> Path:
    """The demo's recipe (one foreground a room, both flips) at ``size`` px with ``rooms`` rooms;
    ``lazy``: rooms, cut-outs and placements only, composited on the device when trained."""
    cfg = replace(PLANS["default"].data, size=size, n_bg=rooms, lazy=lazy)
    return make_dataset(folder, cfg, progress=False)


def pin(cores: int | None) -> None:
    """Run on the first ``cores`` cores this process may use (forked workers inherit it)."""
    if cores is not None:
        os.sched_setaffinity(0, sorted(os.sched_getaffinity(0))[:cores])
        torch.set_num_threads(cores)  # torch sized its pool for every core at import


def settings(size: int, args, device: torch.device) -> tuple[int, int]:
    """``(rooms, batch)``: the arguments', else enough for two timed epochs on this device."""
    cuda = device.type == "cuda"
    rooms = args.rooms or (2200 if cuda else {64: 700}.get(size, 200))
    return rooms, args.batch or (128 if cuda else 32)


def bench_size(size: int, roots: dict, args, device: torch.device, tmp: Path) -> list[dict]:
    """Rows of every network and path at ``size`` px; ``roots``: "full" and "lazy" datasets."""
    _, batch = settings(size, args, device)
    workers = default_workers(device)
    rows = []
    for name in args.models:
        step = None
        for path, layout in [(p, "full") for p in args.paths] + [("device", "lazy")] * args.lazy:
            data = TrainData(roots[layout], replace(ROBUST_AUG, backend=PATHS[path]))
            if step is None:  # the step does not depend on the path: measured once
                ready = ready_batch(data, size, batch, device)
                step = step_rate(name, ready, device, 20)
                compiled = (
                    step_rate(name, ready, device, 20, True) if name in args.compile else None
                )
            where = tmp / f"{name}{size}{path}{layout}"
            row = {
                "network": name,
                "size": size,
                "path": path,
                "data": layout,
                "cores": len(os.sched_getaffinity(0)),
                "batch": batch,
                "workers": workers,
                "loader_img_per_s": loader_rate(data, size, batch, device, workers),
                "fit_img_per_s": fit_rate(name, data, size, batch, device, where),
                "step_img_per_s": step,
                "step_compiled_img_per_s": compiled,
            }
            rows.append(row)
            print(json.dumps(row), flush=True)
    return rows


def main(argv: list[str] | None = None) -> list[dict]:
    args = parse_args(argv)
    device = pick_device(replace(PLANS["default"].train, device=args.device))
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        roots = {}
        for size in args.sizes:  # made on every core, before the pinning
            rooms = settings(size, args, device)[0]
            for layout in ("full", "lazy") if args.lazy else ("full",):
                folder = Path(tmp) / f"data{size}{layout}"
                roots[size, layout] = make_data(size, rooms, folder, layout == "lazy")
        pin(args.cores)
        for size in args.sizes:
            layouts = {k[1]: v for k, v in roots.items() if k[0] == size}
            rows += bench_size(size, layouts, args, device, Path(tmp))
    cuda = device.type == "cuda"
    meta = {
        "command": " ".join(["python", *sys.argv]) if argv is None else f"main({argv})",
        "device": torch.cuda.get_device_name() if cuda else "CPU",
        "cores": len(os.sched_getaffinity(0)),
        "torch": torch.__version__,
        "finished": time.strftime("%Y-%m-%d %H:%M"),
    }
    out = args.out or RESULTS / f"bench_device_data_{device.type}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"meta": meta, "rows": rows}, indent=1))
    print(f"\n{meta['device']}, {meta['cores']} cores")
    print("| network | px | path | data | loader img/s | fit img/s | step img/s | fit / step |")
    print("|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(
            f"| {r['network']} | {r['size']} | {r['path']} | {r['data']} | {r['loader_img_per_s']:.0f} "
            f"| {r['fit_img_per_s']:.0f} | {r['step_img_per_s']:.0f} "
            f"| {r['fit_img_per_s'] / r['step_img_per_s']:.2f} |"
        )
    return rows


if __name__ == "__main__":
    main()
