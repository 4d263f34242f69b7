"""Test-time flip averaging: predict the pair and its mirror image, and average the two.

Training flips the whole quartet half the time (``AugConfig.hflip_p``), so a network has learned
both views of a scene, and its errors in the two views are partly independent. Averaging them
costs a second forward pass and, on the demo's model (benchmarks/README.md, D10), gave +0.008 mask
IoU under the strong background perturbation and +0.002 depth delta1 (all 1,600 test samples).
``Predictor`` and ``evaluate`` use it only when asked (``flip=True``, ``--flip``); the demo scores
with it (``demo.DemoPlan.flip``).
"""

from __future__ import annotations

import torch
from torch import nn


class FlipAverage(nn.Module):
    """``model`` with each output averaged over the pair and its left-right mirror.

    ``forward(bg, fg_bg)``: each ``(B, 3, H, W)``; returns ``model``'s dict, every ``(B, C, H, W)``
    output (mask logits, depth) the float32 mean of ``model(bg, fg_bg)`` and the mirrored
    prediction of ``model(mirror(bg), mirror(fg_bg))``. Mask logits are averaged as logits: on the
    demo's model, averaging probabilities gave the same IoU to four decimals.
    """

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, bg: torch.Tensor, fg_bg: torch.Tensor) -> dict[str, torch.Tensor]:
        direct = self.model(bg, fg_bg)
        mirrored = self.model(bg.flip(-1), fg_bg.flip(-1))
        return {k: (v.float() + mirrored[k].float().flip(-1)) / 2 for k, v in direct.items()}
