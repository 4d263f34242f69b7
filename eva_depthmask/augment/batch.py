"""The torch backend of the augmentation (``AugConfig(backend="torch")``): the quartet transform of
augment/quartet.py as tensor operations on whole batches, on the training device.

It is split where the work is cheap to split. On the host (a DataLoader worker, or the training
process itself), the train ``QuartetTransform`` (``normalize=False``, as fit() builds it) only resizes
a raw sample to the training size and draws its random parameters from its seed: a few dozen
numbers (augment/params.py). On the device,
``augment_batch`` applies the whole batch's parameters at once (augment/batch_ops.py). So two CPU
cores read and decode, and the device, which has the arithmetic, augments.

The three stages are those of the albumentations path, in its order, with the same settings and each
from its own seed: spatial (flip, random resized crop, shift/scale/rotate; one geometry for all four,
the mask resampled nearest), background realism (shadow on fg_bg; bg moved, relit, blurred, noised,
JPEG-compressed) and photometric (one change shared by bg and fg_bg). Where they differ:

- one resampling per sample: crop and affine are composed into one map (but a dataset larger than
  the training size is first resized on the host: two resamplings, each reaching a pixel further);
- JPEG is its lossy core (YCbCr, 4:2:0, quantised 8 x 8 DCT), without a codec;
- noise fields come from one generator per batch, seeded by the batch's samples' seeds: a resumed
  run, whose batches hold the same samples, draws the same noise.

Outputs are uint8 like the host path's, so fit() normalises either the same way.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from . import batch_ops as ops
from .params import layout

__all__ = ["augment_batch", "resize_batch"]

IMAGES = ("bg", "fg_bg")


def _subset(x: torch.Tensor, idx: torch.Tensor, fn, *args) -> torch.Tensor:
    """``x`` with its rows ``idx`` (a host index tensor) replaced, in place, by ``fn(x[idx],
    *(a[idx] for a in args))``; every row: ``fn(x, *args)``, no gather; no row: ``x``."""
    if idx.numel() == 0:
        return x
    if idx.numel() == x.shape[0]:
        return fn(x, *args)
    rows = idx.to(x.device, non_blocking=True)
    x[rows] = fn(x[rows], *(a[rows] for a in args))
    return x


def augment_batch(batch: dict) -> dict:
    """The batch's ``aug`` parameters (``pack``ed ``draw_params``, collated by the DataLoader into a
    float32 ``(B, P)`` host tensor) applied to its ``bg``, ``fg_bg`` (uint8 ``(B, 3, H, W)``), ``mask``
    (uint8 ``(B, 1, H, W)``) and ``depth`` (float32 ``(B, 1, H, W)``), all on one device. Returns a
    new batch with the same keys and dtypes, ``aug`` removed. Each sample's parameters came from
    its own AugConfig, so a batch may mix datasets with different settings."""
    host = batch["aug"]
    device = batch["bg"].device
    on_device = host.to(device, torch.float32, non_blocking=True)
    where = layout()
    f = {k: on_device[:, sl].squeeze(1) for k, sl in where.items()}
    flags = {k[3:]: host[:, sl].squeeze(1) > 0.5 for k, sl in where.items() if k.startswith("on_")}
    idx = {k: torch.nonzero(v).flatten() for k, v in flags.items()}  # on the host: no device sync
    seed = int(host[:, where["noise_seed"]].to(torch.int64).sum())  # exact: each is below 2**24
    gen = torch.Generator(device).manual_seed(seed)
    # float copies that the stages may change in place (depth is float already: copied too)
    x = {k: batch[k].to(torch.float32, copy=True) for k in ("bg", "fg_bg", "mask", "depth")}
    x = _spatial(x, f, idx)
    # the widest blur of the batch, read on the host: the device never has to answer a question
    widest = {k: float(host[:, where[k]].max()) for k in ("shadow_sigma", "blur_sigma")}
    x = _realism(x, f, idx, gen, widest)
    x = _photometric(x, f, idx, gen)
    out = {k: v for k, v in batch.items() if k != "aug"}
    for k in IMAGES:
        out[k] = x[k].round().clamp(0.0, 255.0).to(torch.uint8)
    out["mask"] = x["mask"].round().to(torch.uint8)
    out["depth"] = x["depth"].clamp(0.0, 1.0)
    return out


def resize_batch(quartet: dict, size: int) -> dict:
    """``bg``, ``fg_bg``, ``mask`` (uint8) and ``depth`` (float32) ``(B, C, S, S)`` at ``size`` x
    ``size`` px: images and depth by antialiased bilinear (an area average when shrinking), the mask
    by centre-aligned nearest, so it stays on the images' grid. Other keys are kept."""
    if tuple(quartet["bg"].shape[-2:]) == (size, size):
        return quartet
    out = dict(quartet)

    def smooth(x: torch.Tensor) -> torch.Tensor:
        return F.interpolate(x.float(), (size, size), mode="bilinear", antialias=True)

    for k in IMAGES:
        out[k] = smooth(quartet[k]).round_().clamp_(0.0, 255.0).to(torch.uint8)
    out["depth"] = smooth(quartet["depth"]).clamp_(0.0, 1.0)
    exact = F.interpolate(quartet["mask"].float(), (size, size), mode="nearest-exact")
    out["mask"] = exact.to(torch.uint8)
    return out


def _noise(x: torch.Tensor, idx: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """Standard normal noise for the rows ``idx`` of ``x``: ``(len(idx), C, H, W)``."""
    return torch.randn((len(idx), *x.shape[1:]), generator=gen, device=x.device)


def _spatial(x: dict, f: dict, idx: dict) -> dict:
    x = {k: _subset(v, idx["flip"], lambda a: a.flip(-1)) for k, v in x.items()}  # exact
    theta = f["theta"].reshape(-1, 2, 3)
    return {k: _warp(v, idx, "warp", theta, k == "mask") for k, v in x.items()}


def _warp(x: torch.Tensor, idx: dict, key: str, theta: torch.Tensor, mask: bool = False):
    """``x`` resampled through ``theta`` in the rows flagged ``on_<key>`` (bilinear, the mask
    nearest) and ``on_<key>_nearest`` (nearest: ``AugConfig.interpolation``), border reflected."""
    linear = "nearest" if mask else "bilinear"
    for which, mode in ((key, linear), (f"{key}_nearest", "nearest")):
        x = _subset(x, idx[which], lambda a, t, m=mode: ops.warp(a, t, m, "reflect"), theta)
    return x


def _realism(x: dict, f: dict, idx: dict, gen: torch.Generator, host: dict) -> dict:
    h, w = x["bg"].shape[-2:]
    shadow_taps = ops.blur_radius(host["shadow_sigma"], h, w)
    blur_taps = ops.blur_radius(host["blur_sigma"], h, w)

    def shadow(fg_bg, mask, shift, sigma, dark):
        return (fg_bg * ops.shadow_gain(mask, shift, sigma, dark, shadow_taps)).round()

    sh = (x["mask"], f["shadow_shift"], f["shadow_sigma"], f["shadow_dark"])
    x["fg_bg"] = _subset(x["fg_bg"], idx["shadow"], shadow, *sh)
    bg = x["bg"]
    bg = _warp(bg, idx, "move", f["move_theta"].reshape(-1, 2, 3))
    bg = _subset(bg, idx["light"], _light, f["light_bc"], f["light_gamma"], f["light_gains"])
    bg = _subset(bg, idx["blur"], lambda a, s: ops.gaussian_blur(a, s, blur_taps), f["blur_sigma"])
    noise = _noise(bg, idx["bg_noise"], gen)
    bg = _subset(
        bg, idx["bg_noise"], lambda a, std: ops.add_noise(a, std, noise), f["bg_noise_std"]
    )
    x["bg"] = _subset(bg, idx["jpeg"], ops.jpeg_like, f["jpeg_quality"])
    return x


def _photometric(x: dict, f: dict, idx: dict, gen: torch.Generator) -> dict:
    noise = _noise(x["bg"], idx["noise"], gen)
    boxes = f["dropout_boxes"].reshape(len(f["on_flip"]), -1, 4)
    hsv = f["hsv"].unbind(1)
    for k in IMAGES:  # the same parameters, and the same noise field, on both photos
        v = _subset(x[k], idx["rgb"], ops.channel_shift, f["rgb_shift"])
        v = _subset(v, idx["hsv"], ops.hsv_shift, *hsv)
        v = _subset(v, idx["bc"], _bc, f["bc"])
        v = _subset(v, idx["noise"], lambda a, std: ops.add_noise(a, std, noise), f["noise_std"])
        x[k] = _subset(v, idx["dropout"], ops.fill_boxes, boxes)
    return x


def _bc(x: torch.Tensor, bc: torch.Tensor) -> torch.Tensor:
    return ops.brightness_contrast(x, bc[:, 0], bc[:, 1])


def _light(x: torch.Tensor, bc: torch.Tensor, g: torch.Tensor, gains: torch.Tensor):
    """Relighting of a second shot: brightness/contrast, gamma, colour temperature."""
    return ops.channel_gains(ops.gamma(_bc(x, bc), g), gains)
