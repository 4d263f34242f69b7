"""The "Session 15" network (seed write-up 001): 3,165,170 parameters.

One stem per image at full resolution (3x3 conv 3->32 + BN + ReLU, two BasicBlocks of 32), the two
concatenated (64 ch, 1/1), ResNet stages to 128 ch (1/2) and 256 ch (1/4), two BasicBlocks each.
Two decoders of the same shape, the mask one narrower (1x1 conv to 256 * 0.25 channels) than the
depth one (256 * 0.5): 1x1 conv, two up-steps (2x2 transposed conv, concat skip, two 3x3 convs with
LeakyReLU 0.2), a 3x3 conv to one channel. Most of its ~1.9 G multiply-adds per 64 px pair are
spent at full resolution, in the two stems.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from ..identity import keeps_init_kwargs
from ..layers import PairNet, conv_bn_act, make_stage


class TransposedUp(nn.Module):
    """2x2 stride-2 transposed conv, concat skip, two 3x3 conv + LeakyReLU(0.2).

    ``(B, c_in, h, w), (B, c_skip, 2h, 2w) -> (B, c_out, 2h, 2w)``.
    """

    def __init__(self, c_in: int, c_skip: int, c_out: int):
        super().__init__()
        self.up = nn.ConvTranspose2d(c_in, c_in, 2, stride=2)
        self.conv = nn.Sequential(
            nn.Conv2d(c_in + c_skip, c_out, 3, padding=1),
            nn.LeakyReLU(0.2),
            nn.Conv2d(c_out, c_out, 3, padding=1),
            nn.LeakyReLU(0.2),
        )

    def forward(self, x: Tensor, skip: Tensor) -> Tensor:
        return self.conv(torch.cat([self.up(x), skip], dim=1))


class Session15Decoder(nn.Module):
    """1x1 conv 256 -> c, up to 1/2 (skip 128 ch), up to 1/1 (skip 64 ch), 3x3 conv to 1 channel."""

    def __init__(self, c: int, skips: tuple[int, int] = (128, 64), c_in: int = 256):
        super().__init__()
        self.reduce = nn.Conv2d(c_in, c, 1)
        self.up1 = TransposedUp(c, skips[0], c // 2)
        self.up2 = TransposedUp(c // 2, skips[1], c // 4)
        self.out = nn.Conv2d(c // 4, 1, 3, padding=1)

    def forward(self, x4: Tensor, x2: Tensor, x1: Tensor) -> Tensor:
        return self.out(self.up2(self.up1(self.reduce(x4), x2), x1))


@keeps_init_kwargs
class Session15Net(PairNet):
    """Two full-resolution stems, a shared ResNet encoder to 1/4, two transposed-conv decoders.

    ``dropout`` (the write-up trained with 0.2) sits after each conv of every BasicBlock.
    """

    stride = 4

    def __init__(self, dropout: float = 0.0):
        super().__init__()
        self.bg_stem = nn.Sequential(conv_bn_act(3, 32), make_stage(32, 32, 2, 1, dropout))
        self.fg_bg_stem = nn.Sequential(conv_bn_act(3, 32), make_stage(32, 32, 2, 1, dropout))
        self.layer2 = make_stage(64, 128, 2, 2, dropout)
        self.layer3 = make_stage(128, 256, 2, 2, dropout)
        self.mask_decoder = Session15Decoder(int(256 * 0.25))
        self.depth_decoder = Session15Decoder(int(256 * 0.5))

    def predict(self, bg: Tensor, fg_bg: Tensor) -> tuple[Tensor, Tensor]:
        x1 = torch.cat([self.bg_stem(bg), self.fg_bg_stem(fg_bg)], dim=1)  # 64 ch, 1/1
        x2 = self.layer2(x1)  # 128 ch, 1/2
        x4 = self.layer3(x2)  # 256 ch, 1/4
        return self.mask_decoder(x4, x2, x1), self.depth_decoder(x4, x2, x1)
