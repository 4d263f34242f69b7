"""ModelConfig: DepthMaskNet's widths, depths and input fusion."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ModelConfig:
    """DepthMaskNet's architecture (nets/depthmasknet.py); the defaults are the measured fast default.

    Level ``i`` of the encoder runs at stride ``2 ** (i + 1)`` with ``widths[i]`` channels and
    ``depths[i]`` residual blocks. ``fusion`` says how bg and fg_bg enter the first conv:
    "concat" [bg, fg_bg], "diff" [fg_bg, d], "concat_diff" [bg, fg_bg, d], "concat_absdiff"
    [bg, fg_bg, d, |d|], "concat_logdiff" [bg, fg_bg, d, log(1 + |d| / s)] or
    "concat_logdiff_shift" (concat_logdiff + log(1 + e / s)), with d = fg_bg - bg, s about one
    uint8 level and e the difference left after the best shift of bg by up to ``shift_radius``
    px (fusion.fuse_pair).
    """

    encoder: str = "residual"  # "residual" (trained from scratch) or "resnet18"
    pretrained: str | None = None  # resnet18 only: "imagenet", a URL or a local .pth file
    fusion: str = "concat_logdiff_shift"  # +0.015 clean mask IoU over concat_logdiff (K10)
    shift_radius: int = 2  # px; only "concat_logdiff_shift" uses it
    # residual encoder: this fraction of the stem's widths[0] channels sees the photos (bg, fg_bg)
    # alone, the rest the fusion's difference channels alone; 0 = one conv over all (as for
    # "concat", which has no differences). Apart, depth RMSE 0.0536 -> 0.0522, five seeds (K22)
    split_stem: float = 0.625
    widths: tuple[int, ...] = (16, 32, 64, 96)  # residual encoder, strides 2, 4, 8, 16
    # a second block at stride 8: with depth_silog, RMSE 0.0520 -> 0.0507 over five seeds (K19)
    depths: tuple[int, ...] = (0, 1, 2, 2)
    decoder_widths: tuple[int, ...] = (16, 24, 48)  # per skip level, shallowest first; () = widths
    decoder_convs: int = 1  # 3x3 convs after each upsample + skip concat
    refine_width: int = 16  # full-resolution conv on [features, fused input]; 0 = heads at 1/2
    refine_convs: int = 2  # full-resolution 3x3 convs in the refinement (the first sees the input)
    head_kernel: int = 1  # mask + depth head conv (odd); 3 was no better and 6 % slower (K4)
    # one depth per image pooled over the object's pixels and blended in where the mask is
    # (layers.pool_object_depth): delta1 0.855 -> 0.866, mean of five training seeds (K18)
    object_depth: bool = True
    # bg mapped onto fg_bg's exposure per channel before fusing (fusion.match_exposure): mask
    # IoU 0.954 -> 0.963, strong 0.682 -> 0.714, depth RMSE 0.0519 -> 0.0494 over three training
    # seeds, for 3-8 % of a training step (M2, O1)
    match_exposure: bool = True
