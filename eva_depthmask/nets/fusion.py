"""How DepthMaskNet hands the pair to its first convolution: the fused input and what goes into it.

``fuse_pair`` stacks ``bg``, ``fg_bg`` and their differences; ``shift_tolerant_difference`` is the
difference that forgives a background shot moved by a pixel or two, and ``match_exposure`` maps bg
onto fg_bg's exposure before anything is subtracted. Inputs are normalised images ``(B, 3, H, W)``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

# Channels that each way of fusing bg and fg_bg hands to the first convolution.
FUSION_CHANNELS = {
    "concat": 6,
    "diff": 6,
    "concat_diff": 9,
    "concat_absdiff": 12,
    "concat_logdiff": 12,
    "concat_logdiff_shift": 13,
}
# How many of those lead with the photos themselves (bg and/or fg_bg); the rest are differences.
IMAGE_CHANNELS = {
    "concat": 6,
    "diff": 3,
    "concat_diff": 6,
    "concat_absdiff": 6,
    "concat_logdiff": 6,
    "concat_logdiff_shift": 6,
}
# ``concat_logdiff``'s scale, in normalised units: about one uint8 level (1/255 over a std of ~0.25)
LOGDIFF_SCALE = 0.015
# pixels that match_exposure fits its line to (a grid over the image)
FIT_PIXELS = 1024


def fuse_pair(bg: Tensor, fg_bg: Tensor, mode: str, radius: int = 2) -> Tensor:
    """Stack the pair into one tensor ``(B, FUSION_CHANNELS[mode], H, W)``.

    ``concat``: [bg, fg_bg]; ``diff``: [fg_bg, d];
    ``concat_diff``: [bg, fg_bg, d]; ``concat_absdiff``: [bg, fg_bg, d, |d|];
    ``concat_logdiff``: [bg, fg_bg, d, log(1 + |d| / LOGDIFF_SCALE)]; d = fg_bg - bg;
    ``concat_logdiff_shift``: concat_logdiff + [log(1 + e / LOGDIFF_SCALE)], e the
    ``shift_tolerant_difference`` within ``radius`` px (only this mode uses ``radius``).
    The difference is where the foreground is, so giving it explicitly saves the first layers
    from having to learn the subtraction; its magnitude |d| is the nonlinearity a mask
    threshold needs, handed to the full-resolution layers for free. The log magnitude spreads the
    smallest differences (a faint alpha edge changes a pixel by a level or two) as far apart from
    zero as large ones are from each other, so "exactly equal" and "one level off" are easy to tell
    apart without a huge first-layer weight. ``e`` stays near zero where the background shot
    moved by a pixel or two, which lights up every edge of the room in ``d``.
    """
    if mode == "concat":
        return torch.cat([bg, fg_bg], dim=1)
    if mode == "diff":
        return torch.cat([fg_bg, fg_bg - bg], dim=1)
    if mode == "concat_diff":
        return torch.cat([bg, fg_bg, fg_bg - bg], dim=1)
    d = fg_bg - bg
    if mode == "concat_absdiff":
        return torch.cat([bg, fg_bg, d, d.abs()], dim=1)
    if mode == "concat_logdiff":
        return torch.cat([bg, fg_bg, d, torch.log1p(d.abs() / LOGDIFF_SCALE)], dim=1)
    if mode == "concat_logdiff_shift":
        e = shift_tolerant_difference(bg, fg_bg, radius)
        logs = [torch.log1p(x / LOGDIFF_SCALE) for x in (d.abs(), e)]
        fused = torch.cat([bg, fg_bg, d, *logs], dim=1)
        # e comes back contiguous; hand the convolutions the layout they were given (channels_last)
        return fused.contiguous(memory_format=_layout(bg))
    raise ValueError(f"fusion: expected one of {sorted(FUSION_CHANNELS)}, got {mode!r}")


def _layout(x: Tensor) -> torch.memory_format:
    last = x.dim() == 4 and x.is_contiguous(memory_format=torch.channels_last)
    return torch.channels_last if last else torch.contiguous_format


def check_radius(radius, name: str = "radius") -> None:
    """Raise ValueError naming ``name`` unless ``radius`` is a non-negative int (pixels)."""
    if not isinstance(radius, int) or isinstance(radius, bool) or radius < 0:
        raise ValueError(f"{name}: expected a non-negative int (pixels), got {radius!r}")


@torch.no_grad()
def shift_tolerant_difference(bg: Tensor, fg_bg: Tensor, radius: int) -> Tensor:
    """``(B, 1, H, W)``: the smallest ``max_c |fg_bg - bg shifted by (dy, dx)|`` over every shift
    with ``|dy|, |dx| <= radius`` px (bg edge-replicated), in the inputs' units.

    Where the background shot is the composite's own, it is 0 outside the object, like |d|; where
    the shot moved by up to ``radius`` px, it stays 0 on the background (some shift lines the two
    up) while the object, whose colours are nowhere near in bg, keeps a large value. All three
    channels must match at one shift, so a pixel cannot match red here and green there. It runs
    without autograd: the pair is data, and no gradient flows back through this channel.
    """
    check_radius(radius)
    # contiguous (B, C, H, W): the shifted slices of a channels_last tensor run ~3x slower
    bg, fg_bg = bg.contiguous(), fg_bg.contiguous()
    h, w = bg.shape[-2:]
    padded = F.pad(bg, (radius,) * 4, mode="replicate")
    diff = torch.empty_like(fg_bg)
    best = None
    for dy in range(2 * radius + 1):
        for dx in range(2 * radius + 1):
            torch.sub(fg_bg, padded[..., dy : dy + h, dx : dx + w], out=diff).abs_()
            worst_channel = diff.amax(1, keepdim=True)
            best = worst_channel if best is None else torch.minimum(best, worst_channel, out=best)
    return best


@torch.no_grad()
def exposure_fit(
    bg: Tensor, fg_bg: Tensor, iters: int = 6, slope: tuple[float, float] = (0.5, 2.0)
) -> tuple[Tensor, Tensor]:
    """Per image and channel, the line ``fg_bg ~ a + b * bg`` fitted robustly over the pixels
    outside the object; returns ``(a, b)``, each ``(B, C, 1, 1)`` float32.

    Iteratively reweighted least squares with Cauchy weights on the residual, scaled by its
    weighted mean: the object covers a minority of the image, so its pixels end up with ~0 weight,
    and where the pair already agrees the scale goes to zero and the fit is the identity (a median
    scale did the same 5x slower; the mapped images differ by 0.1 grey level on average). The
    slope is kept within ``slope``: a steeper fit is following the object, not the light. The fit
    reads a grid of about ``FIT_PIXELS`` pixels, plenty for two numbers. No autograd.
    """
    with torch.autocast(bg.device.type, enabled=False):
        step = max(1, round((bg.shape[-2] * bg.shape[-1] / FIT_PIXELS) ** 0.5))
        x = bg[..., ::step, ::step].float().reshape(*bg.shape[:2], 1, -1)  # (B, C, 1, N)
        y = fg_bg[..., ::step, ::step].float().reshape(*fg_bg.shape[:2], 1, -1)
        # one matmul per iteration gives every weighted sum the line needs
        terms = torch.cat([torch.ones_like(x), x, y, x * x, x * y], 2).transpose(2, 3)
        w = torch.ones_like(x)
        for _ in range(iters):
            sw, sx, sy, sxx, sxy = (w @ terms)[..., 0, :].unbind(-1)  # each (B, C)
            b = ((sw * sxy - sx * sy) / (sw * sxx - sx * sx).clamp_min(1e-6)).clamp(*slope)
            a = (sy - b * sx) / sw
            r = (y - a[..., None, None]).sub_(b[..., None, None] * x).abs_()
            # 2.5 x the mean |residual|: about 2 standard deviations of Gaussian noise
            scale = (w * r).sum(-1, keepdim=True).div_(sw[..., None, None]).mul_(2.5).add_(2e-4)
            w = r.div_(scale).square_().add_(1).reciprocal_()
    return a[..., None, None], b[..., None, None]


def match_exposure(bg: Tensor, fg_bg: Tensor) -> Tensor:
    """``bg`` mapped onto ``fg_bg``'s exposure, channel by channel: ``a + b * bg`` with
    ``exposure_fit``'s line; ``(B, 3, H, W)`` in, the same shape, dtype and layout out.

    Two shots of one scene differ by exposure, white balance and tone curve, which move every
    pixel of ``fg_bg - bg`` at once and drown the object in the difference; after the mapping the
    difference is the object again. A straight line, not a curve: higher orders followed the
    object's pixels and cost clean pairs more than they gained (a gamma change is close to linear
    over one image's range; benchmarks/README.md, M1). Gradients flow to bg through the mapping,
    not through the fit.
    """
    a, b = exposure_fit(bg, fg_bg)
    return bg * b.to(bg.dtype) + a.to(bg.dtype)
