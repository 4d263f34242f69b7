"""fit(): the training loop. Mixed precision, progressive resizing, chunked checkpoints, exact resume,
validation every epoch, CSV + TensorBoard logs, and DistributedDataParallel under torchrun.

Re-running ``fit`` with the same arguments after the process died continues from the newest readable
checkpoint, at the next batch, and (on CPU) ends with the same weights, bit for bit, as a run that was
never interrupted: see training/loaders.py for how the data side is made reproducible.

Samples without depth (``has_depth`` False) train the mask alone (losses.py), and validation's depth
metrics leave them out (metrics.py). A ``cfg.best_metric`` on depth over a val set with no depth at
all is refused when fit() starts, before any training, naming the metric: it would be nan every epoch.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Sequence
from typing import NamedTuple

import torch
from torch import nn
from torch.utils.data import Dataset, Subset
from tqdm.auto import tqdm

from ..augment.normalize import check_stats, norm_constants, normalize
from ..config import TrainConfig, to_dict
from ..losses import DepthMaskLoss
from ..metrics import MetricAccumulator
from . import checkpoint as ckpt
from .devices import default_threads, distributed, pick_device
from .loaders import TrainData, default_workers, opencv_threads, train_loader
from .on_device import device_quartet
from .optim import make_optimizer, make_scheduler
from .precision import autocast, precision_name
from .resume import resume_latest
from .runlog import RunLog
from .sampler import EpochSampler
from .state import Progress, Run, emit, save
from .val_metrics import check_best_metric, validate


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
    run = _start(model, data, cfg, callbacks, loss_fn)
    resumed = resume_latest(run) if resume else None
    if resumed is None:  # a fresh run: dropout and any other torch randomness start from the seed
        torch.manual_seed(cfg.seed)
    last_val = resumed[1] if resumed else {}
    first_step = run.progress.global_step
    os.makedirs(cfg.ckpt_dir, exist_ok=True)
    run.log = RunLog(
        cfg.ckpt_dir,
        _columns(run.loss_fn),
        first_step,
        enabled=run.rank == 0,
        tensorboard=cfg.tensorboard,
    )
    torch_threads = torch.get_num_threads()
    if run.threads:
        torch.set_num_threads(run.threads)
    try:
        with opencv_threads(1 if run.workers else None):  # the loaders' forked workers inherit it
            for stage in range(run.progress.stage, len(cfg.stages)):
                last_val = _train_stage(run, stage, last_val)
    finally:
        run.log.close()
        torch.set_num_threads(torch_threads)
    last = ckpt.list_checkpoints(cfg.ckpt_dir)
    return {
        "val": last_val,
        "best": run.progress.best,
        "best_path": os.path.join(cfg.ckpt_dir, "best.pt"),
        "last_path": str(last[-1]) if last else None,
        "resumed_from": str(resumed[0]) if resumed else None,
        "steps": run.progress.global_step - first_step,
    }


class Epoch(NamedTuple):
    """One epoch of the recipe: ``cfg.stages[stage]`` gives its image ``size`` (px) and ``batch``."""

    stage: int
    epoch: int
    size: int
    batch: int


def _start(model, data: TrainData, cfg: TrainConfig, callbacks, loss_fn) -> Run:
    """Put the model, loss, optimizer, scheduler and scaler on the device picked by ``cfg`` (joining
    the process group under torchrun); the run starts at step 0 until it resumes."""
    rank, world = distributed()
    device = pick_device(cfg)
    cuda = device.type == "cuda"
    if cuda:
        torch.backends.cudnn.benchmark = True
    fmt = torch.channels_last if cfg.channels_last else torch.contiguous_format
    model.to(device, memory_format=fmt)
    net = nn.parallel.DistributedDataParallel(model) if world > 1 else model
    loss_fn = (loss_fn or DepthMaskLoss()).to(device)
    check_best_metric(cfg, data)
    stats = data.stats()
    stage_steps = [len(data.raw("train", s)) // (b * world) for s, _, b in cfg.stages]
    total = sum(n * e for n, (_, e, _) in zip(stage_steps, cfg.stages, strict=True))
    opt = make_optimizer(model, cfg)
    workers = default_workers(device, world) if cfg.num_workers is None else cfg.num_workers
    return Run(
        cfg=cfg,
        data=data,
        stats=stats,
        model=model,
        net=net,
        loss_fn=loss_fn,
        loss_config=to_dict(loss_fn.cfg) if hasattr(loss_fn, "cfg") else type(loss_fn).__name__,
        opt=opt,
        sched=make_scheduler(opt, cfg, total),
        scaler=torch.amp.GradScaler("cuda", enabled=cuda and cfg.amp),
        device=device,
        fmt=fmt,
        workers=workers,
        threads=default_threads(device, workers, world) if cfg.threads is None else cfg.threads,
        rank=rank,
        world=world,
        callbacks=callbacks,
        progress=Progress(),
        resident=data.resident(device),
    )


def _train_stage(run: Run, stage: int, last_val: dict) -> dict:
    """The epochs of ``stage`` from ``run.progress`` on: train, validate, checkpoint; returns the
    last validation metrics (``last_val`` when no epoch is left)."""
    cfg, where = run.cfg, run.progress
    size, epochs, batch = cfg.stages[stage]
    # uint8 from the loader, a quarter of the bytes for workers to hand over; normalised per batch
    train_ds = run.data.dataset("train", size, cfg.seed, run.stats, cfg.cache_mb, normalize=False)
    val_ds = run.data.dataset("val", size, stats=run.stats)
    if cfg.max_val_samples:
        val_ds = Subset(val_ds, range(min(cfg.max_val_samples, len(val_ds))))
    for epoch in range(where.epoch, epochs):
        now = Epoch(stage, epoch, size, batch)
        _train_epoch(run, now, train_ds)
        last_val = validate(
            run.net, val_ds, run.device, cfg.amp, batch, run.rank, run.world, run.workers
        )
        # progress now points at the next epoch: the checkpoint written below resumes there
        done_stage = epoch + 1 == epochs
        where.stage, where.epoch, where.step = stage + done_stage, 0 if done_stage else epoch + 1, 0
        if cfg.schedule == "step":
            run.sched.step()
        _end_of_epoch(run, now, last_val)
    where.epoch = 0
    return last_val


def _train_epoch(run: Run, now: Epoch, train_ds: Dataset) -> None:
    """Train the batches of epoch ``now`` from ``run.progress.step`` on, logging every
    ``cfg.log_every`` steps and at its end, checkpointing every ``cfg.ckpt_every`` steps."""
    cfg, where = run.cfg, run.progress
    sampler = EpochSampler(
        len(train_ds), cfg.seed, now.stage, now.epoch, now.batch, where.step, run.rank, run.world
    )
    loader = train_loader(train_ds, sampler, now.batch, run.workers, run.device.type == "cuda")
    run.net.train()
    bar = tqdm(
        total=sampler.batches,
        initial=where.step,
        desc=f"stage {now.stage} ({now.size}px, {precision_name(run.device, cfg.amp)}) "
        f"epoch {now.epoch}",
        disable=run.rank != 0,
        leave=False,
    )
    t0, seen = time.perf_counter(), 0
    t_step = t0
    scale, shift = norm_constants(*check_stats(run.stats), run.device)
    for batch in loader:
        losses = _step(run, batch, now.size, scale, shift)
        where.step += 1
        where.global_step += 1
        t = time.perf_counter()
        where.seconds += t - t_step  # training time only: survives resumes, skips validation
        t_step = t
        seen += now.batch * run.world  # whole batches only (drop_last)
        bar.update()
        if where.global_step % cfg.log_every == 0 or where.step == sampler.batches:
            rate = seen / (time.perf_counter() - t0)
            row = _train_row(run, now, losses, rate)
            bar.set_postfix(loss=f"{row['loss_total']:.4f}", img_s=f"{rate:.0f}")
            emit(run, row)
            t0, seen = time.perf_counter(), 0
        if where.global_step % cfg.ckpt_every == 0 and where.step < sampler.batches:
            save(run, extra={"order": torch.from_numpy(sampler.order)})
    bar.close()


def _step(run: Run, batch: dict, size: int, scale: torch.Tensor, shift: torch.Tensor) -> dict:
    """One optimizer step on a loader batch of ``size`` px (uint8 images, normalised here with
    ``scale``/``shift``); returns the loss parts (scalar tensors, ``"total"`` among them)."""
    cfg, device, opt, scaler = run.cfg, run.device, run.opt, run.scaler
    quartet = device_quartet(batch, size, device, run.resident)  # augmented, maybe composited
    bg, fg_bg = (
        normalize(quartet[k], scale, shift).contiguous(memory_format=run.fmt)
        for k in ("bg", "fg_bg")
    )
    true = {k: quartet[k].float() for k in ("mask", "depth")}
    if "has_depth" in batch:  # stays on the CPU: the loss checks it there, with no device sync
        true["has_depth"] = batch["has_depth"]
    with autocast(device, cfg.amp):
        pred = run.net(bg, fg_bg)
    losses = run.loss_fn(pred, true)
    opt.zero_grad(set_to_none=True)
    scaler.scale(losses["total"]).backward()
    if cfg.grad_clip > 0:
        scaler.unscale_(opt)
        nn.utils.clip_grad_norm_(run.net.parameters(), cfg.grad_clip)
    scaler.step(opt)
    scaler.update()
    if cfg.schedule == "onecycle":
        run.sched.step()
    return losses


def _train_row(run: Run, now: Epoch, losses: dict, rate: float) -> dict:
    """The log row of a training step: where, learning rate, images/s and the loss parts."""
    where = run.progress
    return {
        "kind": "train",
        "stage": now.stage,
        "size": now.size,
        "epoch": now.epoch,
        "step": where.step,
        "global_step": where.global_step,
        "seconds": where.seconds,
        "lr": run.opt.param_groups[0]["lr"],
        "img_per_s": rate,
        **{f"loss_{k}": v.item() for k, v in losses.items()},
    }


def _end_of_epoch(run: Run, now: Epoch, metrics: dict) -> None:
    """Keep the best value of ``cfg.best_metric``, log the validation row, checkpoint (and best.pt
    when it improved)."""
    cfg, where = run.cfg, run.progress
    value = metrics.get(cfg.best_metric)
    if value is None:
        raise KeyError(
            f"TrainConfig.best_metric {cfg.best_metric!r} is not a metric; have {sorted(metrics)}"
        )
    better = where.best is None or (
        value > where.best if cfg.best_mode == "max" else value < where.best
    )
    if better:
        where.best = value
    row = {
        "kind": "val",
        "stage": now.stage,
        "size": now.size,
        "epoch": now.epoch,
        "step": 0,
        "global_step": where.global_step,
        "seconds": where.seconds,
        "lr": run.opt.param_groups[0]["lr"],
        **metrics,
    }
    emit(run, row)
    save(run, best=better, extra={"val": metrics})


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
