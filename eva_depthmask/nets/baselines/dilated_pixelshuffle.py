"""The "DepthEstimation-MaskPrediction" network (seed write-up 000): 5,230,720 parameters.

Each image: 3x3 conv 3->32 + BN + ReLU; the two concatenated and reduced to 32 channels by a 1x1
conv. Four encoder blocks (32->64->128->256->512), each a 3x3 conv and a dilation-2 3x3 conv side
by side, concatenated and reduced by a 1x1 conv, then a 2x2 max-pool (1/16 at the end). Two
decoders of four stages, each a 1x1 conv doubling the channels and a pixel shuffle x2 (so the
channels halve and the resolution doubles), then a 3x3 conv head. No skip connections: the
decoders rebuild full resolution from 1/16 alone, and pixel shuffle gave the seed's depth maps
checkerboard artefacts.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from ..identity import keeps_init_kwargs
from ..layers import PairNet, conv_bn_act


class NormalDilatedBlock(nn.Module):
    """3x3 conv-BN-ReLU beside a dilation-2 3x3 conv-ReLU-BN; concat; 1x1 conv to ``c_out``."""

    def __init__(self, c_in: int, c_out: int):
        super().__init__()
        self.normal = conv_bn_act(c_in, c_out)
        self.dilated = nn.Sequential(  # ReLU before BN, in the seed's order
            nn.Conv2d(c_in, c_out, 3, padding=2, dilation=2, bias=False),
            nn.ReLU(inplace=True),
            nn.BatchNorm2d(c_out),
        )
        self.reduce = nn.Conv2d(2 * c_out, c_out, 1, bias=False)

    def forward(self, x: Tensor) -> Tensor:
        return self.reduce(torch.cat([self.normal(x), self.dilated(x)], dim=1))


def pixel_shuffle_decoder(c_in: int = 512, stages: int = 4) -> nn.Sequential:
    """``stages`` x (1x1 conv c -> 2c, PixelShuffle(2) -> c/2 at 2x), then 3x3 conv to 1 channel."""
    layers: list[nn.Module] = []
    c = c_in
    for _ in range(stages):
        layers += [nn.Conv2d(c, 2 * c, 1, bias=False), nn.PixelShuffle(2)]
        c //= 2
    layers.append(nn.Conv2d(c, 1, 3, padding=1, bias=False))
    return nn.Sequential(*layers)


@keeps_init_kwargs
class DilatedPixelShuffleNet(PairNet):
    """Dilated-conv encoder to 1/16, two skip-less pixel-shuffle decoders."""

    stride = 16

    def __init__(self, widths: tuple[int, ...] = (32, 64, 128, 256, 512)):
        super().__init__()
        self.bg_stem = conv_bn_act(3, widths[0])
        self.fg_bg_stem = conv_bn_act(3, widths[0])
        self.merge = nn.Conv2d(2 * widths[0], widths[0], 1, bias=False)
        blocks: list[nn.Module] = []
        for c_in, c_out in zip(widths[:-1], widths[1:], strict=True):
            blocks += [NormalDilatedBlock(c_in, c_out), nn.MaxPool2d(2)]
        self.encoder = nn.Sequential(*blocks)
        self.mask_decoder = pixel_shuffle_decoder(widths[-1], len(widths) - 1)
        self.depth_decoder = pixel_shuffle_decoder(widths[-1], len(widths) - 1)

    def predict(self, bg: Tensor, fg_bg: Tensor) -> tuple[Tensor, Tensor]:
        x = self.merge(torch.cat([self.bg_stem(bg), self.fg_bg_stem(fg_bg)], dim=1))  # 32, 1/1
        x = self.encoder(x)  # 512 ch, 1/16
        return self.mask_decoder(x), self.depth_decoder(x)  # back to 1/1
