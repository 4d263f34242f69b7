"""DepthMaskNet and its variants.

DepthMaskNet maps bg onto fg_bg's exposure (``fusion.match_exposure``), fuses the two at the input
(one early-fusion stem, not one encoder per image, whose channels see either the photos or their
differences: ``ModelConfig.split_stem``), encodes with residual blocks at strides 2..16, decodes
with bilinear upsampling + concatenated skip + 3x3 conv (no transposed conv or pixel shuffle: no
checkerboards), and predicts mask and depth from one shared full-resolution refinement that sees
the fused input again, so mask edges are drawn at pixel precision from ``d = fg_bg - bg``, its log
magnitude and the difference left after the best small shift of bg (which a moved background shot
does not light up); the object's depth is pooled into one value over its own pixels
(``layers.pool_object_depth``). ModelConfig() is the "small" variant: ~52 M multiply-adds per 64 px pair, 1/40 of the Session-15 network.

``depthmasknet(variant)`` builds one of ``VARIANTS``; ``registry.build_model`` builds any model by name.
A DepthMaskNet's identity (nets/identity.py) is its config: ``init_kwargs`` are ModelConfig's fields,
and ``depthmasknet(**init_kwargs)`` builds the same network again.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from ..config import ModelConfig, from_dict, to_dict
from .encoders import ResidualEncoder, ResNet18Encoder, load_resnet18_weights
from .fusion import (
    FUSION_CHANNELS,
    IMAGE_CHANNELS,
    check_radius,
    fuse_pair,
    match_exposure,
)
from .layers import PairNet, conv_bn_act, pool_object_depth, upsample_to

# Variants as data: ModelConfig overrides. "small" is the default config.
VARIANTS: dict[str, dict] = {
    "tiny": {
        "widths": (12, 24, 48, 64),
        "depths": (0, 1, 1, 1),
        "decoder_widths": (12, 16, 32),
        "refine_width": 8,
        "refine_convs": 1,
    },
    "small": {},
    "base": {
        "widths": (24, 48, 96, 160),
        "depths": (1, 2, 2, 2),
        "decoder_widths": (24, 48, 96),
        "decoder_convs": 2,
    },
    "resnet18": {"encoder": "resnet18", "decoder_widths": (32, 48, 96, 160), "split_stem": 0.0},
}


class UpFuse(nn.Module):
    """Bilinear upsample to the skip's size, concat the skip, then ``convs`` 3x3 conv-BN-ReLU.

    ``(B, c_in, h, w), (B, c_skip, H, W) -> (B, c_out, H, W)``.
    """

    def __init__(self, c_in: int, c_skip: int, c_out: int, convs: int = 1):
        super().__init__()
        layers = [conv_bn_act(c_in + c_skip, c_out)]
        layers += [conv_bn_act(c_out, c_out) for _ in range(convs - 1)]
        self.conv = nn.Sequential(*layers)

    def forward(self, x: Tensor, skip: Tensor) -> Tensor:
        return self.conv(torch.cat([upsample_to(x, skip.shape[-2:]), skip], dim=1))


class Refine(nn.Module):
    """Full-resolution features from the decoder's stride-2 output and the fused input.

    ``relu(up(conv_bn(x)) + conv_bn(x_in))`` equals a conv on their concatenation up to where the
    upsampling sits, but convolves the decoder features at half resolution and never builds the
    wide full-resolution concat: about half the cost at the largest feature maps.
    ``convs - 1`` more 3x3 conv-BN-ReLU follow at full resolution.
    ``(B, c, H/2, W/2), (B, c_in, H, W) -> (B, c_out, H, W)``.
    """

    def __init__(self, c: int, c_in: int, c_out: int, convs: int = 1):
        super().__init__()
        self.from_features = conv_bn_act(c, c_out, act=False)
        self.from_input = conv_bn_act(c_in, c_out, act=False)
        self.relu = nn.ReLU(inplace=True)
        self.convs = nn.Sequential(*(conv_bn_act(c_out, c_out) for _ in range(convs - 1)))

    def forward(self, x: Tensor, x_in: Tensor) -> Tensor:
        up = upsample_to(self.from_features(x), x_in.shape[-2:])
        return self.convs(self.relu(up + self.from_input(x_in)))


def build_encoder(cfg: ModelConfig) -> tuple[nn.Module, int]:
    """The encoder named by ``cfg.encoder`` and its total stride."""
    c_in = FUSION_CHANNELS[cfg.fusion]
    if cfg.encoder == "residual":
        if cfg.pretrained is not None:
            raise ValueError("pretrained: only the 'resnet18' encoder has pretrained weights")
        split = None
        if cfg.split_stem > 0 and IMAGE_CHANNELS[cfg.fusion] < c_in:
            w = cfg.widths[0]
            split = (IMAGE_CHANNELS[cfg.fusion], min(max(round(cfg.split_stem * w), 1), w - 1))
        encoder = ResidualEncoder(c_in, tuple(cfg.widths), tuple(cfg.depths), split)
        return encoder, 2 ** len(cfg.widths)
    if cfg.encoder == "resnet18":
        encoder = ResNet18Encoder(c_in)
        if cfg.pretrained is not None:
            load_resnet18_weights(encoder, cfg.pretrained, cfg.fusion)
        return encoder, 32
    raise ValueError(f"encoder: expected 'residual' or 'resnet18', got {cfg.encoder!r}")


class DepthMaskNet(PairNet):
    """Early-fusion residual U-Net with a mask head (logits) and a depth head (sigmoid in PairNet).

    ``forward(bg, fg_bg)``: each ``(B, 3, H, W)``, any H, W; returns ``{"mask": (B, 1, H, W)
    logits, "depth": (B, 1, H, W) in [0, 1]}``.
    """

    def __init__(self, cfg: ModelConfig = ModelConfig()):
        super().__init__()
        if cfg.fusion not in FUSION_CHANNELS:
            raise ValueError(
                f"fusion: expected one of {sorted(FUSION_CHANNELS)}, got {cfg.fusion!r}"
            )
        check_radius(cfg.shift_radius, "shift_radius")
        if not 0 <= cfg.split_stem < 1:
            raise ValueError(f"split_stem: expected a fraction in [0, 1), got {cfg.split_stem!r}")
        self.cfg = cfg
        self.encoder, self.stride = build_encoder(cfg)
        enc = self.encoder.channels
        dec = tuple(cfg.decoder_widths) or tuple(enc[:-1])
        if len(dec) != len(enc) - 1:
            raise ValueError(
                f"decoder_widths: expected {len(enc) - 1} widths (one per skip level), got {dec}"
            )
        ups, c = [], enc[-1]
        for i in reversed(range(len(dec))):  # deepest skip first
            ups.append(UpFuse(c, enc[i], dec[i], cfg.decoder_convs))
            c = dec[i]
        self.ups = nn.ModuleList(ups)
        self.refine = None
        if cfg.refine_width > 0:
            c_in = FUSION_CHANNELS[cfg.fusion]
            self.refine = Refine(c, c_in, cfg.refine_width, cfg.refine_convs)
            c = cfg.refine_width
        k = cfg.head_kernel
        if not isinstance(k, int) or k < 1 or k % 2 == 0:
            raise ValueError(f"head_kernel: expected an odd positive int, got {k!r}")
        # channel 0: mask logits, 1: depth logits, 2: object-depth pooling score (object_depth)
        self.head = nn.Conv2d(c, 3 if cfg.object_depth else 2, k, padding=k // 2)

    @property
    def init_kwargs(self) -> dict:
        """Its identity (nets/identity.py): the config's fields, as ``depthmasknet`` takes them."""
        return to_dict(self.cfg)

    def predict(self, bg: Tensor, fg_bg: Tensor) -> tuple[Tensor, Tensor]:
        if self.cfg.match_exposure:
            bg = match_exposure(bg, fg_bg)
        x_in = fuse_pair(bg, fg_bg, self.cfg.fusion, self.cfg.shift_radius)  # (B, C_in, H, W)
        feats = self.encoder(x_in)  # strides 2, 4, ..., self.stride
        x = feats[-1]
        for up, skip in zip(self.ups, reversed(feats[:-1]), strict=True):
            x = up(x, skip)  # back up to stride 2
        if self.refine is not None:
            x = self.refine(x, x_in)  # full resolution
        out = self.head(x)
        if self.refine is None:  # the head ran at stride 2
            out = upsample_to(out, x_in.shape[-2:])
        mask, depth = out[:, :1], out[:, 1:2]
        if self.cfg.object_depth:
            depth = pool_object_depth(depth, out[:, 2:], mask)
        return mask, depth


def depthmasknet(
    variant: str = "small", cfg: ModelConfig | None = None, **overrides
) -> DepthMaskNet:
    """DepthMaskNet from a variant name or an explicit ``cfg``, plus ModelConfig field overrides
    (lists are taken for tuples, as a checkpoint stores them)."""
    if cfg is None:
        if variant not in VARIANTS:
            raise ValueError(f"variant: expected one of {sorted(VARIANTS)}, got {variant!r}")
        cfg = from_dict(ModelConfig, VARIANTS[variant])
    return DepthMaskNet(from_dict(ModelConfig, {**to_dict(cfg), **overrides}))
