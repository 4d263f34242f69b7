"""validate(): a model's metrics over the val set, each process taking its share of the samples; and
the check, before training, that the metric fit() keeps the best of can be measured there."""

from __future__ import annotations

import torch
import torch.distributed as dist
from torch.utils.data import Subset

from ..config import TrainConfig
from ..metrics import MetricAccumulator
from .loaders import eval_batches
from .precision import autocast


@torch.no_grad()
def validate(net, dataset, device, amp=True, batch_size=64, rank=0, world=1, workers=0) -> dict:
    """Metrics of ``net`` on ``dataset`` (each process takes every ``world``-th sample; sums reduced),
    read by ``workers`` loader processes. Depth metrics count the samples with depth (nan: none)."""
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
            has_depth=batch.get("has_depth"),
        )
    if world > 1:
        acc.sums = acc.sums.to(device)
        acc.reduce(dist.all_reduce)
        acc.sums = acc.sums.cpu()
    net.train()
    return acc.compute()


def check_best_metric(cfg: TrainConfig, data) -> None:
    """A ``ValueError`` when ``cfg.best_metric`` is a depth metric and none of the val samples of
    ``data`` (a ``TrainData`` or a mix) that validation reads (``cfg.max_val_samples``) has depth:
    fit() calls it before training, rather than keep a best value of nan."""
    if not cfg.best_metric.startswith("depth_"):
        return
    flags = data.raw("val", cfg.stages[0][0]).depth_flags()
    if cfg.max_val_samples:
        flags = flags[: cfg.max_val_samples]
    if len(flags) and not flags.any():
        raise ValueError(
            f"TrainConfig.best_metric {cfg.best_metric!r}: no val sample has depth (a dataset made "
            "with teacher=None), so it would be nan every epoch; pick a mask metric such as "
            "'mask_iou', or validate on data with depth"
        )
