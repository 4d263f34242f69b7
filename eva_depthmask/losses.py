"""Losses: functional parts first, ``DepthMaskLoss`` on top returning every part by name.

Mask: BCE-with-logits + soft Dice (BCE alone lets a small foreground drown in background pixels;
Dice scores the overlap whatever the foreground's size), and optionally BCE over the band along the
object's outline. Depth: L1 + (1 - SSIM) / 2 + L1 of the image gradients (edges) + the
scale-invariant log error of each image (Eigen et al. 2014, as BTS and AdaBins train with it). L1
alone is ruled by far pixels; the log error weighs a near pixel's relative error as abs-rel and
delta1 do, and its scale-invariant form lets the depth's shape be learned apart from each image's
overall scale, which one picture shows only weakly (benchmarks/README.md, D7 and L6). Everything is
computed in float32 with autocast off, so the losses are the same under bf16 autocast. Shapes:
predictions and targets ``(B, 1, H, W)``; depth in [0, 1].

Samples without depth (``has_depth`` False: photos made with ``teacher=None``) count for the mask
terms only. Every depth term is a mean over samples of a per-sample value (SSIM and the gradients
too: each map is scored on its own), so it is computed on the samples with depth alone; the others
get no gradient from it. A batch with none has depth terms of exactly 0, still attached to the
prediction (a zero gradient: DistributedDataParallel expects every parameter to get one). A batch
that is all depth, or given no flags, takes the very computation it took before flags existed.
"""

from __future__ import annotations

import pytorch_msssim
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .config import LossConfig
from .tensors import check_pair, depth_flags


def mask_bce(pred_logits: Tensor, true_mask: Tensor) -> Tensor:
    """Mean binary cross-entropy of mask logits ``(B, 1, H, W)`` against a {0, 1} mask."""
    check_pair(pred_logits, true_mask, "mask")
    return F.binary_cross_entropy_with_logits(pred_logits.float(), true_mask.float())


def soft_dice_loss(pred_logits: Tensor, true_mask: Tensor, smooth: float = 1.0) -> Tensor:
    """1 - soft Dice per sample, averaged over the batch; an empty mask predicted empty scores 0.

    ``smooth`` (in pixels) keeps empty masks finite.
    """
    check_pair(pred_logits, true_mask, "mask")
    prob = torch.sigmoid(pred_logits.float()).flatten(1)
    true = true_mask.float().flatten(1)
    inter = (prob * true).sum(1)
    dice = (2 * inter + smooth) / (prob.sum(1) + true.sum(1) + smooth)
    return (1 - dice).mean()


def outline_band(true_mask: Tensor, px: int) -> Tensor:
    """``(B, 1, H, W)`` float {0, 1}: the pixels within ``px`` px (a square's reach) of the mask's
    outline, on both sides: the mask dilated minus the mask eroded."""
    m, k = true_mask.float(), 2 * px + 1
    return F.max_pool2d(m, k, 1, px) + F.max_pool2d(-m, k, 1, px)


def mask_edge_bce(pred_logits: Tensor, true_mask: Tensor, px: int = 2) -> Tensor:
    """Mean BCE over ``outline_band(true_mask, px)`` only; 0 for a batch with no outline.

    Where the two photos disagree for other reasons than the object (a noisy or re-compressed
    background shot, a shadow), a mask goes wrong within a pixel or two of the outline: a band
    that holds about 9 % of the demo's test pixels at 2 px, and so 9 % of the image-wide BCE's
    weight (benchmarks/README.md, D5 and T28).
    """
    check_pair(pred_logits, true_mask, "mask")
    band = outline_band(true_mask, px)
    bce = F.binary_cross_entropy_with_logits(
        pred_logits.float(), true_mask.float(), reduction="none"
    )
    return (bce * band).sum() / band.sum().clamp_min(1.0)


def depth_l1(pred_depth: Tensor, true_depth: Tensor) -> Tensor:
    """Mean absolute depth error, in depth units (1 = the maximum range)."""
    check_pair(pred_depth, true_depth, "depth")
    return (pred_depth.float() - true_depth.float()).abs().mean()


def depth_log_l1(pred_depth: Tensor, true_depth: Tensor, eps: float = 1e-3) -> Tensor:
    """Mean ``|log(pred) - log(true)|`` with both clamped to ``eps``: a relative error, ~abs-rel."""
    check_pair(pred_depth, true_depth, "depth")
    pred, true = (x.float().clamp_min(eps).log() for x in (pred_depth, true_depth))
    return (pred - true).abs().mean()


def depth_silog(
    pred_depth: Tensor, true_depth: Tensor, lam: float = 0.85, eps: float = 1e-3
) -> Tensor:
    """Scale-invariant log error, the batch mean of ``sqrt(mean(d^2) - lam * mean(d)^2)`` per image,
    ``d = log(pred) - log(true)`` over the image's pixels (both clamped to ``eps``).

    ``lam = 1`` ignores each image's overall scale, ``lam = 0`` is the root mean square log error;
    0.85 (BTS's choice) keeps a little of the scale, which the L1 term also anchors.
    """
    check_pair(pred_depth, true_depth, "depth")
    pred, true = (x.float().clamp_min(eps).log().flatten(1) for x in (pred_depth, true_depth))
    d = pred - true
    var = (d**2).mean(1) - lam * d.mean(1) ** 2
    return var.clamp_min(1e-12).sqrt().mean()


def ssim_window(size: tuple[int, int], window: int) -> int:
    """The largest odd window <= ``window`` that fits an image of ``size`` (H, W)."""
    fit = min(window, *size)
    return max(1, fit if fit % 2 else fit - 1)


def depth_ssim_loss(
    pred_depth: Tensor, true_depth: Tensor, window: int = 7, sigma: float = 1.5
) -> Tensor:
    """(1 - SSIM) / 2 in [0, 1], Gaussian window of ``window`` px (small: images may be 64 px).

    SSIM is the mean over every pixel of every map, as ``pytorch_msssim.ssim`` gives for
    ``(B, C, H, W)``; the maps go in as the channels of one image because a grouped convolution
    over B * C channels runs ~6x faster forward and backward on a CPU than B single-channel ones.
    """
    check_pair(pred_depth, true_depth, "depth")
    h, w = pred_depth.shape[-2:]
    win = ssim_window((h, w), window)
    pred, true = (x.float().reshape(1, -1, h, w) for x in (pred_depth, true_depth))
    value = pytorch_msssim.ssim(
        pred, true, data_range=1.0, win_size=win, win_sigma=sigma, size_average=False
    ).mean()
    return (1 - value) / 2


def image_gradients(x: Tensor) -> tuple[Tensor, Tensor]:
    """Forward differences along x and y: ``(B, C, H, W-1)`` and ``(B, C, H-1, W)``."""
    return x[..., :, 1:] - x[..., :, :-1], x[..., 1:, :] - x[..., :-1, :]


def depth_gradient_loss(pred_depth: Tensor, true_depth: Tensor) -> Tensor:
    """L1 between the depth maps' gradients (edges): mean over x plus mean over y differences."""
    check_pair(pred_depth, true_depth, "depth")
    pdx, pdy = image_gradients(pred_depth.float())
    tdx, tdy = image_gradients(true_depth.float())
    return (pdx - tdx).abs().mean() + (pdy - tdy).abs().mean()


def mask_loss(
    pred_logits: Tensor, true_mask: Tensor, bce: float = 1.0, dice: float = 1.0
) -> Tensor:
    """``bce * BCE + dice * (1 - soft Dice)``."""
    return bce * mask_bce(pred_logits, true_mask) + dice * soft_dice_loss(pred_logits, true_mask)


def depth_loss(
    pred_depth: Tensor,
    true_depth: Tensor,
    l1: float = 1.0,
    ssim: float = 1.0,
    grad: float = 1.0,
    log: float = 0.0,
    silog: float = 0.0,
    window: int = 7,
    silog_lambda: float = 0.85,
) -> Tensor:
    """``l1 * L1 + ssim * (1 - SSIM) / 2 + grad * gradient L1 + log * L1 of log depth + silog *
    scale-invariant log error``."""
    return (
        l1 * depth_l1(pred_depth, true_depth)
        + ssim * depth_ssim_loss(pred_depth, true_depth, window)
        + grad * depth_gradient_loss(pred_depth, true_depth)
        + log * depth_log_l1(pred_depth, true_depth)
        + silog * depth_silog(pred_depth, true_depth, silog_lambda)
    )


DEPTH_PARTS = ("depth_l1", "depth_ssim", "depth_grad", "depth_log", "depth_silog")


def loss_parts(
    pred: dict,
    true_mask: Tensor,
    true_depth: Tensor,
    cfg: LossConfig,
    has_depth: Tensor | None = None,
) -> dict:
    """Each part, unweighted: mask_bce, mask_dice, depth_l1, depth_ssim, depth_grad, depth_log,
    depth_silog, and mask_edge where ``cfg.mask_edge`` weighs it (float32).

    ``has_depth``: bool or 0/1 ``(B,)``, which samples' depth counts (None: all; module docstring).
    """
    with torch.autocast(device_type=pred["mask"].device.type, enabled=False):
        edge = (
            {"mask_edge": mask_edge_bce(pred["mask"], true_mask, cfg.mask_edge_px)}
            if cfg.mask_edge
            else {}
        )
        mask = {
            "mask_bce": mask_bce(pred["mask"], true_mask),
            "mask_dice": soft_dice_loss(pred["mask"], true_mask),
        }
        flags = depth_flags(has_depth, true_mask.shape[0])
        if flags is None:
            depth = depth_parts(pred["depth"], true_depth, cfg)
        else:
            check_pair(pred["depth"], true_depth, "depth")
            keep = flags.nonzero().flatten().to(true_depth.device)
            depth = (
                depth_parts(pred["depth"][keep], true_depth[keep], cfg)
                if len(keep)
                else dict.fromkeys(DEPTH_PARTS, _zero_attached(pred["depth"]))
            )
        return {**mask, **depth, **edge}


def depth_parts(pred_depth: Tensor, true_depth: Tensor, cfg: LossConfig) -> dict:
    """The depth parts of ``loss_parts`` (``DEPTH_PARTS``), every sample counted."""
    return {
        "depth_l1": depth_l1(pred_depth, true_depth),
        "depth_ssim": depth_ssim_loss(pred_depth, true_depth, cfg.ssim_window, cfg.ssim_sigma),
        "depth_grad": depth_gradient_loss(pred_depth, true_depth),
        "depth_log": depth_log_l1(pred_depth, true_depth),
        "depth_silog": depth_silog(pred_depth, true_depth, cfg.silog_lambda),
    }


def _zero_attached(x: Tensor) -> Tensor:
    """A float32 0 in ``x``'s graph with a zero gradient, whatever ``x`` holds (even nan): the sum
    of none of its elements."""
    return x.float().flatten()[:0].sum()


class DepthMaskLoss(nn.Module):
    """``forward(pred, targets)``: ``pred`` the model's dict, ``targets`` any dict with "mask" and
    "depth" (a batch of samples), and optionally "has_depth" (``loss_parts``). Returns float32
    scalars: the parts (unweighted), "mask" and "depth" (weighted sums of their parts) and
    "total" = mask_weight * mask + depth_weight * depth.
    """

    def __init__(self, cfg: LossConfig | None = None):
        super().__init__()
        self.cfg = cfg if cfg is not None else LossConfig()

    def forward(self, pred: dict, targets: dict) -> dict[str, Tensor]:
        for key in ("mask", "depth"):
            if key not in pred or key not in targets:
                raise KeyError(f"DepthMaskLoss: pred and targets both need {key!r}")
        c = self.cfg
        has_depth = targets.get("has_depth")
        parts = loss_parts(pred, targets["mask"], targets["depth"], c, has_depth)
        mask = c.mask_bce * parts["mask_bce"] + c.mask_dice * parts["mask_dice"]
        if c.mask_edge:
            mask = mask + c.mask_edge * parts["mask_edge"]
        depth = (
            c.depth_l1 * parts["depth_l1"]
            + c.depth_ssim * parts["depth_ssim"]
            + c.depth_grad * parts["depth_grad"]
            + c.depth_log * parts["depth_log"]
            + c.depth_silog * parts["depth_silog"]
        )
        total = c.mask_weight * mask + c.depth_weight * depth
        return {**parts, "mask": mask, "depth": depth, "total": total}
