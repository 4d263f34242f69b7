"""Building blocks shared by DepthMaskNet and the baselines.

Every network here takes the pair ``(bg, fg_bg)``, each ``(B, 3, H, W)`` float, and returns
``{"mask": logits (B, 1, H, W), "depth": (B, 1, H, W) in [0, 1]}``. ``PairNet`` does the parts that
are the same for all of them: input checks, padding to the network's stride and cropping back, and
the sigmoid on depth.
"""

from __future__ import annotations

import abc

import torch
import torch.nn.functional as F
from torch import Tensor, nn


def check_pair(bg: Tensor, fg_bg: Tensor) -> None:
    """Raise a clear error unless ``bg`` and ``fg_bg`` are float tensors, both ``(B, 3, H, W)``."""
    for name, x in (("bg", bg), ("fg_bg", fg_bg)):
        if not isinstance(x, Tensor):
            raise TypeError(f"{name}: expected a torch.Tensor, got {type(x).__name__}")
        if not x.is_floating_point():
            raise TypeError(
                f"{name}: expected a float tensor (normalised image), got dtype {x.dtype}; "
                "convert with .float() and normalise first"
            )
        if x.dim() != 4 or x.shape[1] != 3:
            raise ValueError(f"{name}: expected shape (B, 3, H, W), got {tuple(x.shape)}")
    if bg.shape != fg_bg.shape:
        raise ValueError(
            f"bg and fg_bg must have the same shape, got bg {tuple(bg.shape)} "
            f"and fg_bg {tuple(fg_bg.shape)}"
        )


def pool_object_depth(depth_logits: Tensor, score_logits: Tensor, mask_logits: Tensor) -> Tensor:
    """Depth logits with one pooled value per image blended in where the mask is.

    A foreground standing in a room is at one z-distance (its true depth varies by ~0.002 across
    it), but convolutions predict it pixel by pixel and spread it (std ~0.04; benchmarks/README.md,
    D6). Here a softmax over ``score_logits + log sigmoid(mask_logits)`` (the object's own pixels,
    weighted by a learned score) pools ``depth_logits`` into one value per image, and
    ``sigmoid(mask_logits)`` blends it in. The mask is detached: depth's loss must not move it.
    One value per image: the course's quartets hold one foreground each (several at different
    depths would share it; ``ModelConfig.object_depth=False`` for such data).
    All ``(B, 1, H, W)``; returns ``(B, 1, H, W)`` float32 logits.
    """
    pix, mask = depth_logits.float(), mask_logits.detach().float()
    weights = torch.softmax((score_logits.float() + F.logsigmoid(mask)).flatten(1), dim=1)
    pooled = (weights * pix.flatten(1)).sum(1).view(-1, 1, 1, 1)
    return torch.lerp(pix, pooled.expand_as(pix), torch.sigmoid(mask))


def pad_to_multiple(x: Tensor, multiple: int) -> Tensor:
    """Replicate-pad the bottom and right of ``(B, C, H, W)`` so H and W divide by ``multiple``."""
    h, w = x.shape[-2:]
    pad_h, pad_w = -h % multiple, -w % multiple
    if pad_h == 0 and pad_w == 0:
        return x
    return F.pad(x, (0, pad_w, 0, pad_h), mode="replicate")


def upsample_to(x: Tensor, size: tuple[int, int] | torch.Size) -> Tensor:
    """Bilinear resize of ``(B, C, h, w)`` to ``size`` (H, W); a no-op when it already fits."""
    if tuple(x.shape[-2:]) == tuple(size):
        return x
    return F.interpolate(x, size=tuple(size), mode="bilinear", align_corners=False)


def conv_bn_act(
    c_in: int,
    c_out: int,
    kernel_size: int = 3,
    stride: int = 1,
    dilation: int = 1,
    act: bool = True,
) -> nn.Sequential:
    """Conv (no bias: BN has one) + BatchNorm + ReLU, 'same' padding for odd kernels."""
    padding = dilation * (kernel_size - 1) // 2
    layers: list[nn.Module] = [
        nn.Conv2d(c_in, c_out, kernel_size, stride, padding, dilation=dilation, bias=False),
        nn.BatchNorm2d(c_out),
    ]
    if act:
        layers.append(nn.ReLU(inplace=True))
    return nn.Sequential(*layers)


class BasicBlock(nn.Module):
    """ResNet basic block, two 3x3 convs + shortcut: ``(B, c_in, H, W) -> (B, c_out, H/s, W/s)``.

    Attribute names follow torchvision's ResNet (conv1, bn1, conv2, bn2, downsample.0/.1), so
    torchvision's published ResNet-18 weights load into a stack of these blocks by name.
    ``avg_down``: a strided shortcut average-pools, then applies a 1x1 conv (ResNet-D), instead of
    a strided 1x1 conv that drops 3 of every 4 pixels. It also avoids a crash: in torch 2.13 on
    AVX-512 CPUs, the weight gradient of a channels-last strided 1x1 conv with fewer than 16
    input channels segfaults (oneDNN issue 6035).
    """

    def __init__(
        self, c_in: int, c_out: int, stride: int = 1, dropout: float = 0.0, avg_down: bool = False
    ):
        super().__init__()
        self.conv1 = nn.Conv2d(c_in, c_out, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(c_out)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(c_out)
        self.dropout = nn.Dropout(dropout) if dropout > 0 else nn.Identity()
        self.downsample: nn.Module | None = None
        if stride != 1 and avg_down:
            self.downsample = nn.Sequential(
                nn.AvgPool2d(stride, stride, ceil_mode=True, count_include_pad=False),
                nn.Conv2d(c_in, c_out, 1, bias=False),
                nn.BatchNorm2d(c_out),
            )
        elif stride != 1 or c_in != c_out:
            self.downsample = nn.Sequential(
                nn.Conv2d(c_in, c_out, 1, stride, bias=False), nn.BatchNorm2d(c_out)
            )

    def forward(self, x: Tensor) -> Tensor:
        out = self.dropout(self.relu(self.bn1(self.conv1(x))))
        out = self.dropout(self.bn2(self.conv2(out)))
        identity = x if self.downsample is None else self.downsample(x)
        return self.relu(out + identity)


def make_stage(
    c_in: int, c_out: int, blocks: int, stride: int, dropout: float = 0.0, avg_down: bool = False
) -> nn.Sequential:
    """``blocks`` BasicBlocks, the first one strided and changing the channels."""
    layers = [BasicBlock(c_in, c_out, stride, dropout, avg_down)]
    layers += [BasicBlock(c_out, c_out, 1, dropout) for _ in range(blocks - 1)]
    return nn.Sequential(*layers)


class PairNet(nn.Module, abc.ABC):
    """Base for every model: checks, pads to ``stride``, calls ``predict``, crops, sigmoids depth.

    Subclasses set ``self.stride`` (the product of their downsamplings) and implement
    ``predict(bg, fg_bg) -> (mask_logits, depth_logits)``, both ``(B, 1, H, W)`` on padded input.
    """

    stride: int = 1

    def forward(self, bg: Tensor, fg_bg: Tensor) -> dict[str, Tensor]:
        """``bg``, ``fg_bg``: ``(B, 3, H, W)``, normalised. Returns mask logits, depth in [0, 1]."""
        check_pair(bg, fg_bg)
        h, w = bg.shape[-2:]
        # Strided layers need H and W divisible by the total stride; pad, then crop back.
        bg_p, fg_bg_p = pad_to_multiple(bg, self.stride), pad_to_multiple(fg_bg, self.stride)
        mask_logits, depth_logits = self.predict(bg_p, fg_bg_p)
        return {
            "mask": mask_logits[..., :h, :w],
            "depth": torch.sigmoid(depth_logits[..., :h, :w]),
        }

    @abc.abstractmethod
    def predict(self, bg: Tensor, fg_bg: Tensor) -> tuple[Tensor, Tensor]:
        """``(mask_logits, depth_logits)``, each ``(B, 1, H, W)``, for inputs already padded to the
        network's stride; every model implements it."""
