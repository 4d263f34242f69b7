"""Where fit() runs: the device, torch's CPU threads, and the process group under torchrun."""

from __future__ import annotations

import os

import torch
import torch.distributed as dist

from ..config import TrainConfig
from ..tensors import resolve_device
from .loaders import cores


def pick_device(cfg: TrainConfig) -> torch.device:
    """``cfg.device`` as a ``torch.device`` ("auto": the GPU when there is one, else the CPU)."""
    try:
        return resolve_device(cfg.device)
    except RuntimeError as e:
        raise RuntimeError(f"TrainConfig.device: {e}") from None


def default_threads(device: torch.device, workers: int, world: int = 1) -> int:
    """Torch threads for CPU training: this process's share of the cores less one per loader worker,
    and never more than torch is set to now (0 on a GPU: leave it)."""
    if device.type != "cpu":
        return 0
    return min(torch.get_num_threads(), max(1, cores() // world - workers))


def distributed() -> tuple[int, int]:
    """``(rank, world)``; under torchrun, joins the process group (NCCL on GPU, gloo on CPU)."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world > 1 and not dist.is_initialized():
        dist.init_process_group("nccl" if torch.cuda.is_available() else "gloo")
    return (dist.get_rank(), world) if world > 1 else (0, 1)
