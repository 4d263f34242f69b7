"""fit(): the training loop. Mixed precision, progressive resizing, chunked checkpoints, exact resume,
validation every epoch, CSV + TensorBoard logs, and DistributedDataParallel under torchrun.

Re-running ``fit`` with the same arguments after the process died continues from the newest readable
checkpoint, at the next batch, and (on CPU) ends with the same weights, bit for bit, as a run that was
never interrupted: see training/loaders.py for how the data side is made reproducible.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Sequence

import torch
import torch.distributed as dist
from torch import nn
from torch.utils.data import Subset
from tqdm.auto import tqdm

from ..augment.normalize import check_stats, norm_constants, normalize
from ..config import TrainConfig, to_dict
from ..losses import DepthMaskLoss
from ..metrics import MetricAccumulator
from . import checkpoint as ckpt
from .devices import default_threads, distributed, pick_device
from .loaders import TrainData, default_workers, opencv_threads, train_loader
from .optim import make_optimizer, make_scheduler
from .precision import autocast, precision_name
from .resume import model_config, resume_latest
from .runlog import RunLog
from .sampler import EpochSampler
from .val_metrics import validate


def stop_at_step(step: int | None) -> Callable[[dict], None]:
    """A callback that interrupts fit() after optimizer step ``step``, as the stop button would
    (KeyboardInterrupt); the checkpoints written so far stay, and the next fit() resumes from them.

    Callbacks see the logged rows only (every ``cfg.log_every`` steps and at each epoch's end), so it
    stops at the first logged step from ``step`` on; ``log_every=1`` stops exactly there."""

    def callback(row: dict) -> None:
        if step is not None and row["kind"] == "train" and row["global_step"] >= step:
            raise KeyboardInterrupt(f"stopped at step {row['global_step']}")

    return callback


def fit(
    model: nn.Module,
    data: TrainData,
    cfg: TrainConfig = TrainConfig(),
    callbacks: Sequence[Callable[[dict], None]] = (),
    resume: bool = True,
    loss_fn: nn.Module | None = None,
) -> dict:
    """Train ``model`` on ``data`` following ``cfg``, resuming from the newest readable checkpoint of
    ``cfg.ckpt_dir`` when ``resume``. Returns ``{"val": last validation metrics, "best": best value
    of cfg.best_metric, "best_path", "last_path": checkpoint paths, "resumed_from": path of the
    checkpoint this call resumed from (None: a fresh start), "steps": optimizer steps this call took}``."""
    rank, world = distributed()
    device = pick_device(cfg)
    cuda = device.type == "cuda"
    if cuda:
        torch.backends.cudnn.benchmark = True
    fmt = torch.channels_last if cfg.channels_last else torch.contiguous_format
    model.to(device, memory_format=fmt)
    net = nn.parallel.DistributedDataParallel(model) if world > 1 else model
    loss_fn = (loss_fn or DepthMaskLoss()).to(device)
    stats = data.stats()
    stage_steps = [len(data.raw("train", s)) // (b * world) for s, _, b in cfg.stages]
    total = sum(n * e for n, (_, e, _) in zip(stage_steps, cfg.stages, strict=True))
    opt = make_optimizer(model, cfg)
    sched = make_scheduler(opt, cfg, total)
    scaler = torch.amp.GradScaler("cuda", enabled=cuda and cfg.amp)
    where = {"stage": 0, "epoch": 0, "step": 0, "global_step": 0, "best": None, "seconds": 0.0}
    loss_config = to_dict(loss_fn.cfg) if hasattr(loss_fn, "cfg") else type(loss_fn).__name__
    resumed = None
    if resume:
        resumed = resume_latest(cfg, model, opt, sched, scaler, where, rank, loss_config)
    if resumed is None:  # a fresh run: dropout and any other torch randomness start from the seed
        torch.manual_seed(cfg.seed)
    last_val = resumed[1] if resumed else {}
    first_step = where["global_step"]
    os.makedirs(cfg.ckpt_dir, exist_ok=True)
    columns = _columns(loss_fn)
    log = RunLog(
        cfg.ckpt_dir, columns, where["global_step"], enabled=rank == 0, tensorboard=cfg.tensorboard
    )
    workers = default_workers(device, world) if cfg.num_workers is None else cfg.num_workers
    threads = default_threads(device, workers, world) if cfg.threads is None else cfg.threads
    torch_threads = torch.get_num_threads()
    if threads:
        torch.set_num_threads(threads)
    ctx = {"data": data, "stats": stats, "cfg": cfg, "model": model, "opt": opt, "sched": sched}
    ctx["loss_config"] = loss_config
    ctx.update(scaler=scaler, rank=rank, world=world, log=log, callbacks=callbacks, where=where)
    try:
        with opencv_threads(1 if workers else None):  # the loaders' forked workers inherit it
            last_val = _train_stages(ctx, net, loss_fn, device, fmt, workers, last_val)
    finally:
        log.close()
        torch.set_num_threads(torch_threads)
    best = os.path.join(cfg.ckpt_dir, "best.pt")
    last = ckpt.list_checkpoints(cfg.ckpt_dir)
    return {
        "val": last_val,
        "best": where["best"],
        "best_path": best,
        "last_path": str(last[-1]) if last else None,
        "resumed_from": str(resumed[0]) if resumed else None,
        "steps": where["global_step"] - first_step,
    }


def _train_stages(ctx, net, loss_fn, device, fmt, workers: int, last_val: dict) -> dict:
    """Every stage and epoch from ``ctx["where"]`` on: train, validate, checkpoint; returns the
    last validation metrics."""
    data, cfg, stats, where = ctx["data"], ctx["cfg"], ctx["stats"], ctx["where"]
    rank, world, sched = ctx["rank"], ctx["world"], ctx["sched"]
    for stage in range(where["stage"], len(cfg.stages)):
        size, epochs, batch = cfg.stages[stage]
        # uint8 from the loader, a quarter of the bytes for workers to hand over; normalised per batch
        train_ds = data.dataset("train", size, cfg.seed, stats, cfg.cache_mb, normalize=False)
        val_ds = data.dataset("val", size, stats=stats)
        if cfg.max_val_samples:
            val_ds = Subset(val_ds, range(min(cfg.max_val_samples, len(val_ds))))
        for epoch in range(where["epoch"], epochs):
            sampler = EpochSampler(
                len(train_ds), cfg.seed, stage, epoch, batch, where["step"], rank, world
            )
            loader = train_loader(train_ds, sampler, batch, workers, device.type == "cuda")
            _train_epoch(ctx, net, loss_fn, loader, sampler, device, fmt, size, stage, epoch)
            last_val = validate(net, val_ds, device, cfg.amp, batch, rank, world, workers)
            done_stage = epoch + 1 == epochs
            where.update(stage=stage + done_stage, epoch=0 if done_stage else epoch + 1, step=0)
            if cfg.schedule == "step":
                sched.step()
            _end_of_epoch(ctx, last_val, size, stage, epoch)
        where["epoch"] = 0
    return last_val


def _train_epoch(ctx, net, loss_fn, loader, sampler, device, fmt, size, stage, epoch) -> None:
    cfg, where, opt, sched, scaler = (
        ctx["cfg"],
        ctx["where"],
        ctx["opt"],
        ctx["sched"],
        ctx["scaler"],
    )
    net.train()
    bar = tqdm(
        total=sampler.batches,
        initial=where["step"],
        desc=f"stage {stage} ({size}px, {precision_name(device, cfg.amp)}) epoch {epoch}",
        disable=ctx["rank"] != 0,
        leave=False,
    )
    t0, seen = time.perf_counter(), 0
    t_step = t0
    scale, shift = norm_constants(*check_stats(ctx["stats"]), device)
    for batch in loader:
        bg, fg_bg = (
            normalize(batch[k].to(device, non_blocking=True), scale, shift).contiguous(
                memory_format=fmt
            )
            for k in ("bg", "fg_bg")
        )
        true = {k: batch[k].to(device, non_blocking=True).float() for k in ("mask", "depth")}
        with autocast(device, cfg.amp):
            pred = net(bg, fg_bg)
        losses = loss_fn(pred, true)
        opt.zero_grad(set_to_none=True)
        scaler.scale(losses["total"]).backward()
        if cfg.grad_clip > 0:
            scaler.unscale_(opt)
            nn.utils.clip_grad_norm_(net.parameters(), cfg.grad_clip)
        scaler.step(opt)
        scaler.update()
        if cfg.schedule == "onecycle":
            sched.step()
        where["step"] += 1
        where["global_step"] += 1
        now = time.perf_counter()
        where["seconds"] += now - t_step  # training time only: survives resumes, skips validation
        t_step = now
        seen += bg.shape[0] * ctx["world"]
        bar.update()
        if where["global_step"] % cfg.log_every == 0 or where["step"] == sampler.batches:
            rate = seen / (time.perf_counter() - t0)
            row = {
                "kind": "train",
                "stage": stage,
                "size": size,
                "epoch": epoch,
                "step": where["step"],
                "global_step": where["global_step"],
                "seconds": where["seconds"],
                "lr": opt.param_groups[0]["lr"],
                "img_per_s": rate,
                **{f"loss_{k}": v.item() for k, v in losses.items()},
            }
            bar.set_postfix(loss=f"{row['loss_total']:.4f}", img_s=f"{rate:.0f}")
            _emit(ctx, row)
            t0, seen = time.perf_counter(), 0
        if where["global_step"] % cfg.ckpt_every == 0 and where["step"] < sampler.batches:
            _save(ctx, extra={"order": torch.from_numpy(sampler.order)})
    bar.close()


def _end_of_epoch(ctx, metrics: dict, size: int, stage: int, epoch: int) -> None:
    cfg, where = ctx["cfg"], ctx["where"]
    value = metrics.get(cfg.best_metric)
    if value is None:
        raise KeyError(
            f"TrainConfig.best_metric {cfg.best_metric!r} is not a metric; have {sorted(metrics)}"
        )
    better = where["best"] is None or (
        value > where["best"] if cfg.best_mode == "max" else value < where["best"]
    )
    if better:
        where["best"] = value
    row = {
        "kind": "val",
        "stage": stage,
        "size": size,
        "epoch": epoch,
        "step": 0,
        "global_step": where["global_step"],
        "seconds": where["seconds"],
        "lr": ctx["opt"].param_groups[0]["lr"],
        **metrics,
    }
    _emit(ctx, row)
    _save(ctx, best=better, extra={"val": metrics})


def _save(ctx, best: bool = False, extra: dict | None = None) -> None:
    """Checkpoint (rank 0 writes; every process waits for it), then prune old ones."""
    if ctx["rank"] == 0:
        cfg, where, model = ctx["cfg"], ctx["where"], ctx["model"]
        state = {
            "model": model.state_dict(),
            "optimizer": ctx["opt"].state_dict(),
            "scheduler": ctx["sched"].state_dict(),
            "scaler": ctx["scaler"].state_dict(),
            **where,
            "rng": ckpt.rng_state(),
            "model_config": model_config(model),
            "train_config": to_dict(cfg),
            "loss_config": ctx["loss_config"],
            "data": ctx["data"].describe(),
            "stats": ctx["stats"],
            **(extra or {}),
        }
        ckpt.save(ckpt.checkpoint_path(cfg.ckpt_dir, where["global_step"]), state)
        if best:
            ckpt.save(os.path.join(cfg.ckpt_dir, "best.pt"), state)
        ckpt.prune(cfg.ckpt_dir, cfg.keep_last)
    if ctx["world"] > 1:
        dist.barrier()


def _emit(ctx, row: dict) -> None:
    ctx["log"].log(row)
    if ctx["rank"] == 0:
        for cb in ctx["callbacks"]:
            cb(row)


def _columns(loss_fn: nn.Module) -> list[str]:
    """Names of the loss parts and metrics, for the CSV header (a forward on a tiny dummy batch)."""
    pred = {"mask": torch.zeros(1, 1, 16, 16), "depth": torch.full((1, 1, 16, 16), 0.5)}
    true = {"mask": torch.zeros(1, 1, 16, 16), "depth": torch.full((1, 1, 16, 16), 0.5)}
    acc = MetricAccumulator()
    acc.update(pred, true["mask"], true["depth"])
    dev = next(iter(loss_fn.parameters()), torch.zeros(())).device
    losses = loss_fn(
        {k: v.to(dev) for k, v in pred.items()}, {k: v.to(dev) for k, v in true.items()}
    )
    return [f"loss_{k}" for k in losses] + list(acc.compute())
