"""The robustness sweep: one evaluation per background-perturbation level, for a model and the
difference baseline."""

from __future__ import annotations

import torch
from torch import nn

from ..augment.quartet import get_transforms
from ..config import robustness_preset
from ..training.loaders import TrainData
from .difference import DifferenceBaseline, fit_difference_threshold
from .evaluate import evaluate_models

LEVELS = ("none", "mild", "strong")


def robustness_sweep(
    model: nn.Module,
    data: TrainData,
    size: int,
    stats: dict,
    split: str = "test",
    threshold: float | None = None,
    levels=LEVELS,
    device: str | None = None,
    max_samples: int | None = None,
) -> list[dict]:
    """The same evaluation under each background-perturbation level, for the model and the difference
    baseline (threshold chosen on clean val data unless given): one row per (model, level)."""
    if threshold is None:
        threshold = fit_difference_threshold(data.dataset("val", size, stats=stats), stats)
    baseline = DifferenceBaseline(threshold, stats)
    rows = []
    for level in levels:
        ds = data.raw(split, size)
        ds.transform = get_transforms(split, size, robustness_preset(level), stats)
        if max_samples:
            ds = torch.utils.data.Subset(ds, range(min(max_samples, len(ds))))
        nets = {"model": model, "difference": baseline}
        results = evaluate_models(nets, ds, device=device, progress=False)
        for name, (metrics, _) in results.items():
            if name == "difference":
                metrics = {k: v for k, v in metrics.items() if k.startswith("mask_")}
            rows.append({"model": name, "level": level, **metrics})
    return rows


# ---------------------------------------------------------------------------------------------------
