"""The image-difference baseline: mask = ``max_c |fg_bg - bg| > threshold``, and its threshold.

Exact on clean composites (fg_bg equals bg outside the object), helpless once the background shot
differs from the composite's. It is the number any learned model must beat, and the robustness
sweep shows where it breaks.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.utils.data import DataLoader

from ..augment.normalize import denormalize


class DifferenceBaseline(nn.Module):
    """Mask = ``max over RGB of |fg_bg - bg| > threshold`` (in [0, 1] units, on denormalised inputs).

    It has no depth: it predicts a constant 0.5, and only its mask metrics mean anything.
    """

    def __init__(self, threshold: float, stats: dict | None = None):
        super().__init__()
        self.threshold, self.stats = float(threshold), stats

    def difference(self, bg: torch.Tensor, fg_bg: torch.Tensor) -> torch.Tensor:
        """``(B, 1, H, W)`` largest per-channel absolute difference, in [0, 1]."""
        return (
            (denormalize(fg_bg, self.stats) - denormalize(bg, self.stats))
            .abs()
            .amax(1, keepdim=True)
        )

    def forward(self, bg: torch.Tensor, fg_bg: torch.Tensor) -> dict:
        diff = self.difference(bg.float(), fg_bg.float())
        logits = torch.where(diff > self.threshold, 20.0, -20.0)
        return {"mask": logits, "depth": torch.full_like(diff, 0.5)}


def fit_difference_threshold(
    dataset, stats: dict | None = None, bins: int = 1024, max_samples: int = 2000
) -> float:
    """The threshold that maximises the baseline's IoU over (up to ``max_samples`` of) ``dataset``."""
    probe = DifferenceBaseline(0.0, stats)
    fg_hist, bg_hist = (
        torch.zeros(bins, dtype=torch.float64),
        torch.zeros(bins, dtype=torch.float64),
    )
    seen = 0
    for batch in DataLoader(dataset, 64):
        diff = probe.difference(batch["bg"], batch["fg_bg"]).clamp(0, 1)
        idx = (diff * (bins - 1)).round().long().flatten()
        inside = batch["mask"].flatten() > 0.5
        fg_hist += torch.bincount(idx[inside], minlength=bins).double()
        bg_hist += torch.bincount(idx[~inside], minlength=bins).double()
        seen += len(batch["id"])
        if seen >= max_samples:
            break
    # predicting "object" above bin t: TP = fg above t, FP = bg above t, FN = fg at or below t
    tp = fg_hist.flip(0).cumsum(0).flip(0)
    fp = bg_hist.flip(0).cumsum(0).flip(0)
    iou = tp / (fg_hist.sum() + fp).clamp_min(1)
    best = int(iou.argmax())
    return (best - 0.5) / (bins - 1)  # between bin best-1 and best: values in bin best are "object"
