"""A mask at the photo's own resolution from the network's coarse one: coarse, then refine.

The network sees the pair at its training size (64-128 px on a CPU); the user's photos are 224 px or
more. Upsampling the coarse probability alone blurs the outline by a few photo pixels, and that is
most of the IoU lost on thin parts. Two full-resolution cues put the edge back:

- the composite's own edges: a guided filter (He et al., 2010) with fg_bg as the guide snaps the
  upsampled probability to the colour edges of the pasted object, whatever the background shot;
- the difference of the two photos, where it can be trusted. With the composite's very background
  (``fg_bg`` equals ``bg`` outside the object up to JPEG noise) ``max_c |fg_bg - bg|`` draws the
  outline to the pixel; with a re-captured background it is noise until the shot is registered onto
  fg_bg (register.py: aligned, exposure matched). How far to trust it is measured on each pair: the
  difference's spread over pixels the network is sure are background.

Images are uint8 ``(H, W, 3)``; probabilities float32 in [0, 1].
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
import torch
import torch.nn.functional as F
from scipy import ndimage

from .register import register


@dataclass(frozen=True)
class RefineConfig:
    """How the coarse mask is refined. Lengths are in coarse pixels (one coarse pixel is H / h photo
    pixels); differences in uint8 levels."""

    guided: bool = True
    radius: float = 1.0  # guided filter window half-width, in coarse pixels
    eps: float = 1e-3  # guided filter regulariser, in (intensity in [0, 1])^2
    difference: bool = True
    away: float = 1.5  # coarse pixels from the network's object where the noise is measured
    noise_quantile: float = 0.99  # of the difference over confident background: the noise level
    trusted_noise: float = 6.0  # noise at or below this: the difference draws the mask
    untrusted_noise: float = 20.0  # noise at or above this: the difference is ignored
    threshold: float = 12.0  # levels: the least difference that counts as object
    margin: float = 6.0  # levels above the noise level that count as object
    register: bool = True  # a noisy difference: align bg onto fg_bg and match exposure first
    # px: Gaussian on both photos before a registered pair is subtracted. 0: it quiets the noise but
    # widens thin parts (a 3 px arm at 1 px: IoU 0.999 -> 0.90, tests/test_refine.py's pair)
    blur: float = 0.0


def box(x: torch.Tensor, r: int) -> torch.Tensor:
    """Mean over a ``(2r+1)^2`` window, ``(B, C, H, W)``; windows are cut at the border."""
    return F.avg_pool2d(x, 2 * r + 1, stride=1, padding=r, count_include_pad=False)


def guided_filter(guide: torch.Tensor, src: torch.Tensor, r: int, eps: float) -> torch.Tensor:
    """Colour guided filter: ``src`` ``(1, 1, H, W)`` made locally linear in ``guide`` ``(1, 3, H, W)``.

    Per window, ``src ~ a . guide + b`` by ridge regression (``eps`` the ridge); the output averages
    the windows' fits, so it keeps ``src``'s values but takes the guide's edges."""
    _, c, h, w = guide.shape
    mean_i, mean_p = box(guide, r), box(src, r)
    cov_ip = box(guide * src, r) - mean_i * mean_p
    outer = guide[:, :, None] * guide[:, None]  # (1, C, C, H, W)
    var_i = box(outer.reshape(1, c * c, h, w), r).reshape(1, c, c, h, w)
    var_i = var_i - mean_i[:, :, None] * mean_i[:, None]
    sigma = var_i.permute(0, 3, 4, 1, 2) + eps * torch.eye(c)  # (1, H, W, C, C)
    a = torch.linalg.solve(sigma, cov_ip.permute(0, 2, 3, 1)[..., None])[..., 0]
    a = a.permute(0, 3, 1, 2)  # (1, C, H, W)
    b = mean_p - (a * mean_i).sum(1, keepdim=True)
    return (box(a, r) * guide).sum(1, keepdim=True) + box(b, r)


def difference(bg: np.ndarray, fg_bg: np.ndarray, blur: float = 0.0) -> np.ndarray:
    """``max_c |fg_bg - bg|`` in uint8 levels, float32 ``(H, W)``; both photos first blurred by a
    Gaussian of ``blur`` px when it is above 0 (what is left of noise and resampling after a
    re-captured background was registered)."""
    a, b = fg_bg.astype(np.float32), bg.astype(np.float32)
    if blur > 0:
        a, b = (cv2.GaussianBlur(x, (0, 0), blur) for x in (a, b))
    return np.abs(a - b).max(-1)


def sure_background(prob: np.ndarray, away: int) -> np.ndarray:
    """bool ``(H, W)``: pixels at least ``away`` px from anything the network gives 0.05 or more."""
    sure = torch.from_numpy(prob)[None, None] < 0.05
    sure = -F.max_pool2d(-sure.float(), 2 * away + 1, stride=1, padding=away)[0, 0] > 0.5
    return sure.numpy()


def noise_level(diff: np.ndarray, sure: np.ndarray, quantile: float) -> float:
    """The difference's ``quantile`` over the ``sure`` background: what it is where there is no
    object. Infinite (never trusted) when hardly any background is sure."""
    values = diff[sure]
    if values.size < 64:
        return float("inf")
    return float(np.quantile(values, quantile))


def trusted_difference(
    bg: np.ndarray, fg_bg: np.ndarray, sure: np.ndarray, cfg: RefineConfig
) -> tuple[np.ndarray, float]:
    """The difference of the pair and its noise level (``noise_level``). A noisy one (a re-captured
    background) is tried again after registering bg onto fg_bg (register.py), and the quieter of
    the two is kept."""
    diff = difference(bg, fg_bg)
    noise = noise_level(diff, sure, cfg.noise_quantile)
    if not cfg.register or noise <= cfg.trusted_noise:
        return diff, noise
    moved = register(bg, fg_bg, sure)
    diff2 = difference(moved, fg_bg, cfg.blur)
    noise2 = noise_level(diff2, sure, cfg.noise_quantile)
    return (diff2, noise2) if noise2 < noise else (diff, noise)


def trust(noise: float, cfg: RefineConfig) -> float:
    """How far the difference decides the outline, in [0, 1], from the measured noise level."""
    span = max(cfg.untrusted_noise - cfg.trusted_noise, 1e-6)
    return float(np.clip((cfg.untrusted_noise - noise) / span, 0.0, 1.0))


def refine_mask(
    coarse: np.ndarray, bg: np.ndarray, fg_bg: np.ndarray, cfg: RefineConfig = RefineConfig()
) -> np.ndarray:
    """The mask probability at fg_bg's resolution, float32 ``(H, W)``.

    ``coarse``: the network's probability ``(h, w)``; ``bg``, ``fg_bg``: uint8 ``(H, W, 3)``.
    """
    h, w = fg_bg.shape[:2]
    scale = max(h / coarse.shape[0], w / coarse.shape[1])
    prob = F.interpolate(
        torch.from_numpy(coarse.astype(np.float32))[None, None],
        (h, w),
        mode="bilinear",
        align_corners=False,
    )
    if cfg.guided and scale > 1:
        guide = torch.tensor(fg_bg).permute(2, 0, 1)[None].float() / 255
        r = max(1, round(cfg.radius * scale))
        prob = guided_filter(guide, prob, r, cfg.eps).clamp(0, 1)
    prob = prob[0, 0].numpy()
    if not cfg.difference:
        return prob
    sure = sure_background(prob, max(1, round(cfg.away * scale)))
    diff, noise = trusted_difference(bg, fg_bg, sure, cfg)
    weight = trust(noise, cfg)
    if weight == 0:
        return prob
    return (prob + weight * (by_difference(diff, noise, cfg) - prob)).astype(np.float32)


def by_difference(diff: np.ndarray, noise: float, cfg: RefineConfig) -> np.ndarray:
    """The mask the difference draws, float32 ``(H, W)`` in {0, 1}: object where it clears both the
    measured noise and ``cfg.threshold``, with the holes inside filled (the object's colour equals
    the background's there) and specks narrower than 3 px removed (JPEG ringing at the outline)."""
    drawn = diff > max(cfg.threshold, noise + cfg.margin)
    drawn = ndimage.binary_opening(ndimage.binary_fill_holes(drawn))
    return drawn.astype(np.float32)
