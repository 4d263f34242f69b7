"""The seed projects' networks, rebuilt from their write-ups for side-by-side comparison.

Each has DepthMaskNet's interface: ``forward(bg, fg_bg) -> {"mask": logits, "depth": [0, 1]}`` at
the input resolution (see layers.PairNet). Parameter counts match the write-ups' figures; the
tests check them.
"""

from .dilated_pixelshuffle import DilatedPixelShuffleNet
from .maskdepthgenerator import MaskDepthGenerator
from .s15_unet import S15UNet
from .session15 import Session15Net

BASELINES = {
    "session15": Session15Net,
    "dilated_pixelshuffle": DilatedPixelShuffleNet,
    "s15_unet": S15UNet,
    "maskdepthgenerator": MaskDepthGenerator,
}

__all__ = [
    "BASELINES",
    "DilatedPixelShuffleNet",
    "MaskDepthGenerator",
    "S15UNet",
    "Session15Net",
]
