"""validate(): a model's metrics over the val set, each process taking its share of the samples."""

from __future__ import annotations

import torch
import torch.distributed as dist
from torch.utils.data import Subset

from ..metrics import MetricAccumulator
from .loaders import eval_batches
from .precision import autocast


@torch.no_grad()
def validate(net, dataset, device, amp=True, batch_size=64, rank=0, world=1, workers=0) -> dict:
    """Metrics of ``net`` on ``dataset`` (each process takes every ``world``-th sample; sums reduced),
    read by ``workers`` loader processes."""
    net.eval()
    part = Subset(dataset, range(rank, len(dataset), world))
    acc = MetricAccumulator()
    for batch in eval_batches(part, batch_size, workers, pin_memory=device.type == "cuda"):
        bg, fg_bg = batch["bg"].to(device), batch["fg_bg"].to(device)
        with autocast(device, amp):
            pred = net(bg, fg_bg)
        acc.update(
            {k: v.float() for k, v in pred.items()},
            batch["mask"].to(device),
            batch["depth"].to(device),
        )
    if world > 1:
        acc.sums = acc.sums.to(device)
        acc.reduce(dist.all_reduce)
        acc.sums = acc.sums.cpu()
    net.train()
    return acc.compute()
