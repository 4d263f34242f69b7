""" "MaskDepthGenerator" (seed write-up 004): ResNet-18 encoder, two residual decoders, ~16 M.

The encoder is ResNet-18 without its classifier, its first conv taking the 6 channels of
[bg, fg_bg] (optionally initialised from torchvision's ImageNet weights). Each of the two decoders
mirrors ResNet-18's [2, 2, 2, 2] layout: four up-stages, each a bilinear x2 upsample, a
concatenated encoder skip and two BasicBlocks; then a bilinear x2 to full resolution and a 3x3
conv to one channel. The write-up gives the layout and the total (~16 M), not the decoder widths;
(160, 80, 40, 20) brings the total to 16.1 M.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import Tensor, nn

from ..encoders import ResNet18Encoder, load_resnet18_weights
from ..identity import keeps_init_kwargs
from ..layers import PairNet, make_stage, upsample_to


class ResidualDecoder(nn.Module):
    """Four (upsample, concat skip, 2 BasicBlocks) stages from 1/32 to 1/2, then a 3x3 conv head."""

    def __init__(self, enc_channels: list[int], widths: tuple[int, ...]):
        super().__init__()
        c, stages = enc_channels[-1], []
        for c_skip, c_out in zip(reversed(enc_channels[:-1]), widths, strict=True):
            stages.append(make_stage(c + c_skip, c_out, 2, stride=1))
            c = c_out
        self.stages = nn.ModuleList(stages)
        self.head = nn.Conv2d(c, 1, 3, padding=1)

    def forward(self, feats: list[Tensor], size: tuple[int, int]) -> Tensor:
        x = feats[-1]
        for stage, skip in zip(self.stages, reversed(feats[:-1]), strict=True):
            x = stage(_cat_up(x, skip))
        return self.head(upsample_to(x, size))  # 1/2 -> 1/1


def _cat_up(x: Tensor, skip: Tensor) -> Tensor:
    """Upsample ``x`` to the skip's size and concatenate the two along channels."""
    return torch.cat([upsample_to(x, skip.shape[-2:]), skip], dim=1)


@keeps_init_kwargs
class MaskDepthGenerator(PairNet):
    """ResNet-18 (6-channel conv1) encoder shared by a mask decoder and a depth decoder."""

    stride = 32

    def __init__(
        self,
        widths: tuple[int, ...] = (160, 80, 40, 20),
        pretrained: str | Path | None = None,
    ):
        super().__init__()
        self.encoder = ResNet18Encoder(6)
        if pretrained is not None:
            load_resnet18_weights(self.encoder, pretrained, "concat")
        self.mask_decoder = ResidualDecoder(self.encoder.channels, widths)
        self.depth_decoder = ResidualDecoder(self.encoder.channels, widths)

    def predict(self, bg: Tensor, fg_bg: Tensor) -> tuple[Tensor, Tensor]:
        feats = self.encoder(torch.cat([bg, fg_bg], dim=1))  # strides 2 .. 32
        size = bg.shape[-2:]
        return self.mask_decoder(feats, size), self.depth_decoder(feats, size)
