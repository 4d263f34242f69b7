"""The "S15 plain U-Net" (seed write-up 003): 2,161,666 parameters, as its layer table lists.

bg and fg_bg are concatenated (6 ch) into one double conv to 16 channels; from there two complete
U-Nets, one per output, each with its own encoder (max-pool + double conv: 32, 64, 128, 128 at
1/2 .. 1/16) and decoder (bilinear x2, concat skip, double conv with a middle width of half the
input: 64, 32, 16, 16), ending in a 1x1 conv to one channel. A double conv is twice
3x3 conv (with bias) + BN + Dropout + ReLU. The table does not give the dropout rate.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from ..identity import keeps_init_kwargs
from ..layers import PairNet, upsample_to


def double_conv(
    c_in: int, c_out: int, c_mid: int | None = None, dropout: float = 0.1
) -> nn.Sequential:
    """(3x3 conv + BN + Dropout + ReLU) twice: ``c_in -> c_mid -> c_out``."""
    c_mid = c_mid or c_out
    layers: list[nn.Module] = []
    for a, b in ((c_in, c_mid), (c_mid, c_out)):
        layers += [
            nn.Conv2d(a, b, 3, padding=1),
            nn.BatchNorm2d(b),
            nn.Dropout(dropout),
            nn.ReLU(inplace=True),
        ]
    return nn.Sequential(*layers)


class UNetBranch(nn.Module):
    """Encoder 16 -> 32 -> 64 -> 128 -> 128 (1/1 .. 1/16) and decoder back to 16 ch, 1x1 to 1 ch."""

    def __init__(self, dropout: float = 0.1):
        super().__init__()
        widths = (16, 32, 64, 128, 128)
        self.downs = nn.ModuleList(
            nn.Sequential(nn.MaxPool2d(2), double_conv(a, b, dropout=dropout))
            for a, b in zip(widths[:-1], widths[1:], strict=True)
        )
        # Up i: concat of the upsampled map and the skip, both widths[i] channels.
        outs = (64, 32, 16, 16)
        self.ups = nn.ModuleList(
            double_conv(2 * widths[i], c_out, widths[i], dropout)
            for i, c_out in zip((3, 2, 1, 0), outs, strict=True)
        )
        self.out = nn.Conv2d(outs[-1], 1, 1)

    def forward(self, x1: Tensor) -> Tensor:
        feats = [x1]  # 16 ch at 1/1
        for down in self.downs:
            feats.append(down(feats[-1]))  # 1/2 .. 1/16
        x = feats[-1]
        for up, skip in zip(self.ups, reversed(feats[:-1]), strict=True):
            x = up(torch.cat([upsample_to(x, skip.shape[-2:]), skip], dim=1))
        return self.out(x)


@keeps_init_kwargs
class S15UNet(PairNet):
    """Shared 6 -> 16 double conv on [bg, fg_bg], then one full U-Net for mask, one for depth."""

    stride = 16

    def __init__(self, dropout: float = 0.1):
        super().__init__()
        self.inc = double_conv(6, 16, dropout=dropout)
        self.mask_branch = UNetBranch(dropout)
        self.depth_branch = UNetBranch(dropout)

    def predict(self, bg: Tensor, fg_bg: Tensor) -> tuple[Tensor, Tensor]:
        x1 = self.inc(torch.cat([bg, fg_bg], dim=1))  # 16 ch, 1/1
        return self.mask_branch(x1), self.depth_branch(x1)
