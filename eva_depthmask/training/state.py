"""What a ``fit()`` call holds while it trains: its progress (what a checkpoint stores to resume from)
and the run itself (model, optimizer, data, log, ...), so the loop passes one object, not ten; and
how a run writes itself out: a checkpoint (``save``), a log row (``emit``)."""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, fields
from typing import Any

import torch
import torch.distributed as dist
from torch import nn

from ..config import TrainConfig, to_dict
from . import checkpoint as ckpt
from .loaders import TrainData
from .resume import model_config
from .runlog import RunLog


@dataclass
class Progress:
    """Where a run stands. Checkpoints store these fields flat, at the top level of their dict.

    ``stage``/``epoch``: the next epoch to train (indexes into ``cfg.stages`` and its epochs);
    ``step``: batches of that epoch already trained; ``global_step``: optimizer steps since the
    start; ``best``: best value of ``cfg.best_metric`` so far (None before the first validation);
    ``seconds``: training time in seconds (validation excluded), summed over resumes."""

    stage: int = 0
    epoch: int = 0
    step: int = 0
    global_step: int = 0
    best: float | None = None
    seconds: float = 0.0

    def as_dict(self) -> dict:
        """The fields, in order, as a checkpoint stores them."""
        return {f.name: getattr(self, f.name) for f in fields(self)}

    def load(self, state: dict) -> None:
        """Take the fields a checkpoint has; those it lacks keep their value."""
        for name, value in self.as_dict().items():
            setattr(self, name, state.get(name, value))


@dataclass
class Run:
    """Everything one ``fit()`` call trains with. ``model`` is the bare module (its state dict is what
    checkpoints store); ``net`` is what runs forward (``model`` wrapped in DDP when ``world > 1``)."""

    cfg: TrainConfig
    data: TrainData
    stats: dict  # data.stats(): per-channel mean/std of the train images, stored in checkpoints
    model: nn.Module
    net: nn.Module
    loss_fn: nn.Module
    loss_config: dict | str  # what checkpoints store as "loss_config"
    opt: torch.optim.Optimizer
    sched: Any  # a torch.optim.lr_scheduler scheduler
    scaler: torch.amp.GradScaler
    device: torch.device
    fmt: torch.memory_format  # channels_last or contiguous, for the model and its inputs
    workers: int  # data loader processes
    threads: int | None  # torch intra-op threads while training (None/0: leave as is)
    rank: int
    world: int
    callbacks: Sequence[Callable[[dict], None]]
    progress: Progress
    log: RunLog | None = None  # opened once the run has resumed (its first row's step)
    resident: Any = None  # a lazy train split held on the device (training/on_device.py), or None


def save(run: Run, best: bool = False, extra: dict | None = None) -> None:
    """Checkpoint (rank 0 writes; every process waits for it), then prune old ones. The progress
    fields sit flat at the top level of the checkpoint, as ``resume_latest`` reads them."""
    if run.rank == 0:
        cfg = run.cfg
        state = {
            "model": run.model.state_dict(),
            "optimizer": run.opt.state_dict(),
            "scheduler": run.sched.state_dict(),
            "scaler": run.scaler.state_dict(),
            **run.progress.as_dict(),
            "rng": ckpt.rng_state(),
            "model_config": model_config(run.model),
            "train_config": to_dict(cfg),
            "loss_config": run.loss_config,
            "data": run.data.describe(),
            "stats": run.stats,
            **(extra or {}),
        }
        ckpt.save(ckpt.checkpoint_path(cfg.ckpt_dir, run.progress.global_step), state)
        if best:
            ckpt.save(os.path.join(cfg.ckpt_dir, "best.pt"), state)
        ckpt.prune(cfg.ckpt_dir, cfg.keep_last)
    if run.world > 1:
        dist.barrier()


def emit(run: Run, row: dict) -> None:
    """Log ``row`` (CSV, TensorBoard) and hand it to the callbacks (rank 0 only)."""
    run.log.log(row)
    if run.rank == 0:
        for cb in run.callbacks:
            cb(row)
