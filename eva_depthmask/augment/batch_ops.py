"""Image operations on whole batches of tensors, each sample with its own parameters: what
augment/batch.py composes into the device-side augmentation.

Images are float32 ``(B, C, H, W)`` in uint8 units ([0, 255]); masks ``(B, 1, H, W)`` float in {0, 1};
depth ``(B, 1, H, W)`` in [0, 1]. Per-sample parameters are float32 tensors of shape ``(B,)`` (or
``(B, 3)`` per channel) on the images' device. Every operation returns a new tensor (inputs are
never written), and none synchronises with the host, so a batch runs as one stream of kernels.
"""

from __future__ import annotations

import functools
import math

import torch
import torch.nn.functional as F

# JPEG's luminance and chrominance quantisation tables (ITU-T T.81, Annex K), in zig-zag-free order
_JPEG_LUMA = [
    [16, 11, 10, 16, 24, 40, 51, 61],
    [12, 12, 14, 19, 26, 58, 60, 55],
    [14, 13, 16, 24, 40, 57, 69, 56],
    [14, 17, 22, 29, 51, 87, 80, 62],
    [18, 22, 37, 56, 68, 109, 103, 77],
    [24, 35, 55, 64, 81, 104, 113, 92],
    [49, 64, 78, 87, 103, 121, 120, 101],
    [72, 92, 95, 98, 112, 100, 103, 99],
]
_JPEG_CHROMA = [[17, 18, 24, 47] + [99] * 4, [18, 21, 26, 66] + [99] * 4]
_JPEG_CHROMA += [[24, 26, 56] + [99] * 5, [47, 66] + [99] * 6] + [[99] * 8] * 4


def warp(x: torch.Tensor, theta: torch.Tensor, mode: str, padding: str) -> torch.Tensor:
    """Resample ``x`` ``(B, C, H, W)`` through per-sample affine maps ``theta`` ``(B, 2, 3)`` from
    output to input coordinates (``affine_grid``'s convention, corners at +-1 outside the pixels).

    ``padding="reflect"`` mirrors the image about its edge pixels (OpenCV's REFLECT_101) by padding
    half a side first, so that nearest and bilinear sampling see the same border; else
    ``grid_sample``'s own ``padding`` ("zeros", "border")."""
    b, _, h, w = x.shape
    if padding == "reflect":
        ph, pw = h // 2, w // 2
        x = F.pad(x, (pw, pw, ph, ph), mode="reflect")
        theta = theta.clone()  # the same map in the padded image's normalised units
        theta[:, 0] *= w / (w + 2 * pw)
        theta[:, 1] *= h / (h + 2 * ph)
        padding = "border"
    grid = F.affine_grid(theta, [b, x.shape[1], h, w], align_corners=False)
    return F.grid_sample(x, grid, mode=mode, padding_mode=padding, align_corners=False)


def blur_radius(sigma_max: float, h: int, w: int) -> int:
    """Taps on each side of a Gaussian of ``sigma_max`` px (3 sigma), within an ``h`` x ``w`` image.
    Taken from the host's parameters: reading it off the device would stall the device's queue."""
    return max(1, min(math.ceil(3.0 * sigma_max), (min(h, w) - 1) // 2))


def gaussian_blur(x: torch.Tensor, sigma: torch.Tensor, radius: int) -> torch.Tensor:
    """Separable Gaussian blur of ``x`` ``(B, C, H, W)`` with ``sigma`` ``(B,)`` px per sample, over
    ``radius`` taps on each side (``blur_radius``), reflected at the border; one grouped convolution
    per axis for the whole batch."""
    b, c, h, w = x.shape
    taps = torch.arange(-radius, radius + 1, device=x.device, dtype=x.dtype)
    kernel = torch.exp(-0.5 * (taps[None] / sigma[:, None].clamp_min(1e-3)) ** 2)
    kernel = (kernel / kernel.sum(1, keepdim=True)).repeat_interleave(c, 0)  # (B*C, K)
    flat = F.pad(x.reshape(1, b * c, h, w), (radius,) * 4, mode="reflect")
    flat = F.conv2d(flat, kernel[:, None, None, :], groups=b * c)
    flat = F.conv2d(flat, kernel[:, None, :, None], groups=b * c)
    return flat.reshape(b, c, h, w)


def brightness_contrast(x: torch.Tensor, brightness: torch.Tensor, contrast: torch.Tensor):
    """``x * (1 + contrast) + 255 * brightness`` per sample (albumentations' rule, by the maximum)."""
    return (
        x * (1.0 + contrast)[:, None, None, None] + 255.0 * brightness[:, None, None, None]
    ).clamp(0.0, 255.0)


def gamma(x: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
    """``255 * (x / 255) ** g`` per sample."""
    return 255.0 * (x / 255.0).clamp_min(0.0) ** g[:, None, None, None]


def channel_gains(x: torch.Tensor, gains: torch.Tensor) -> torch.Tensor:
    """Multiply each channel by ``gains`` ``(B, 3)``, clipped to [0, 255]."""
    return (x * gains[:, :, None, None]).clamp(0.0, 255.0)


def channel_shift(x: torch.Tensor, shift: torch.Tensor) -> torch.Tensor:
    """Add ``shift`` ``(B, 3)`` levels to each channel, clipped to [0, 255]."""
    return (x + shift[:, :, None, None]).clamp(0.0, 255.0)


def hsv_shift(x: torch.Tensor, hue: torch.Tensor, sat: torch.Tensor, val: torch.Tensor):
    """Shift hue by ``hue`` degrees and saturation and value by ``sat``/``val`` levels of 255, per
    sample, in HSV space (the shape of OpenCV's uint8 HSV, where S and V span 0-255)."""
    r, g, b = x.unbind(1)
    v, _ = x.max(1)
    c = v - x.min(1).values
    safe = torch.where(c > 0, c, torch.ones_like(c))
    h = torch.where(
        v == r,
        ((g - b) / safe) % 6.0,
        torch.where(v == g, (b - r) / safe + 2.0, (r - g) / safe + 4.0),
    )
    h = torch.where(c > 0, h * 60.0, torch.zeros_like(h))
    s = torch.where(v > 0, c / v.clamp_min(1e-6), torch.zeros_like(v))
    h = (h + hue[:, None, None]) % 360.0
    s = (s + sat[:, None, None] / 255.0).clamp(0.0, 1.0)
    v = (v + val[:, None, None]).clamp(0.0, 255.0)
    k = (torch.stack([5.0 + h / 60.0, 3.0 + h / 60.0, 1.0 + h / 60.0], 1)) % 6.0
    ramp = torch.minimum(k, 4.0 - k).clamp(0.0, 1.0)
    return v[:, None] - (v * s)[:, None] * ramp


def add_noise(x: torch.Tensor, std: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
    """``x`` plus ``noise`` (standard normal, ``x``'s shape) scaled by ``std`` ``(B,)`` levels."""
    return (x + noise * std[:, None, None, None]).clamp(0.0, 255.0)


@functools.cache
def _jpeg_constants(device: torch.device) -> dict[str, torch.Tensor]:
    """JPEG's fixed matrices on ``device``, made once: a tensor built from Python numbers for each
    batch would be a blocking copy to the device each time."""
    n = torch.arange(8, dtype=torch.float64)
    d = torch.cos((2.0 * n[None, :] + 1.0) * n[:, None] * math.pi / 16.0) * math.sqrt(2.0 / 8.0)
    d[0] /= math.sqrt(2.0)  # orthonormal: d @ d.T = I
    ycc = torch.tensor(
        [[0.299, 0.587, 0.114], [-0.168736, -0.331264, 0.5], [0.5, -0.418688, -0.081312]],
        dtype=torch.float64,
    )
    tables = torch.tensor([_JPEG_LUMA, _JPEG_CHROMA], dtype=torch.float32)
    made = {"dct": torch.kron(d, d), "ycc": ycc, "rgb": torch.linalg.inv(ycc), "tables": tables}
    return {k: v.to(device, torch.float32) for k, v in made.items()}


def jpeg_tables(quality: torch.Tensor) -> torch.Tensor:
    """Quantisation tables ``(B, 2, 8, 8)`` (luma, chroma) for JPEG ``quality`` ``(B,)`` in 1-100, by
    the Independent JPEG Group's scaling of the standard tables."""
    q = quality.clamp(1.0, 100.0)
    scale = torch.where(q < 50.0, 5000.0 / q, 200.0 - 2.0 * q)[:, None, None, None]
    base = _jpeg_constants(q.device)["tables"]
    return torch.floor((base[None] * scale + 50.0) / 100.0).clamp(1.0, 255.0)


def jpeg_like(x: torch.Tensor, quality: torch.Tensor) -> torch.Tensor:
    """JPEG's lossy core on ``x`` ``(B, 3, H, W)``: YCbCr, 4:2:0 chroma, 8 x 8 block DCT quantised with
    the tables of ``quality`` ``(B,)``, and back; its blocking and ringing, without the entropy coding
    (which is lossless)."""
    b, _, h, w = x.shape
    x = F.pad(x, (0, -w % 16, 0, -h % 16), mode="replicate")
    k = _jpeg_constants(x.device)
    ycc = torch.einsum("ij,bjhw->bihw", k["ycc"], x)  # Y in [0, 255]; Cb, Cr centred on 0
    tables = jpeg_tables(quality)
    luma = _quantise_blocks(ycc[:, :1] - 128.0, tables[:, 0], k["dct"]) + 128.0
    chroma = _quantise_blocks(F.avg_pool2d(ycc[:, 1:], 2), tables[:, 1], k["dct"])
    chroma = F.interpolate(chroma, scale_factor=2.0, mode="nearest")  # libjpeg's plain upsampling
    rgb = torch.einsum("ij,bjhw->bihw", k["rgb"], torch.cat([luma, chroma], 1))
    return rgb[..., :h, :w].clamp(0.0, 255.0)


def _quantise_blocks(x: torch.Tensor, table: torch.Tensor, dct: torch.Tensor) -> torch.Tensor:
    """Round the 8 x 8 block DCT of ``x`` ``(B, C, H, W)`` (H, W multiples of 8) to steps ``table``
    ``(B, 8, 8)``; ``dct`` ``(64, 64)`` is the 2-D DCT of a flattened block: one matrix product for
    every block."""
    b, c, h, w = x.shape
    blocks = x.reshape(b, c, h // 8, 8, w // 8, 8).permute(0, 1, 2, 4, 3, 5).reshape(b, -1, 64)
    step = table.reshape(b, 1, 64)
    blocks = (torch.round(blocks @ dct.T / step) * step) @ dct
    return blocks.reshape(b, c, h // 8, w // 8, 8, 8).permute(0, 1, 2, 4, 3, 5).reshape(b, c, h, w)


def shadow_gain(
    mask: torch.Tensor, shift: torch.Tensor, sigma: torch.Tensor, dark: torch.Tensor, radius: int
) -> torch.Tensor:
    """The factor a cast shadow multiplies fg_bg by, ``(B, 1, H, W)``: 1 inside ``mask``, down to
    ``1 - dark`` under the mask moved by ``shift`` ``(B, 2)`` px (x, y) and blurred by ``sigma``
    ``(B,)`` px (``radius`` taps a side). Never above 1."""
    b, _, h, w = mask.shape
    theta = torch.zeros(b, 2, 3, device=mask.device)
    theta[:, 0, 0] = theta[:, 1, 1] = 1.0
    theta[:, 0, 2] = -2.0 * shift[:, 0] / w  # moving the content by +dx samples it from x - dx
    theta[:, 1, 2] = -2.0 * shift[:, 1] / h
    shade = gaussian_blur(warp(mask, theta, "bilinear", "zeros"), sigma, radius).clamp(0.0, 1.0)
    return 1.0 - dark[:, None, None, None] * shade * (mask == 0)


def fill_boxes(x: torch.Tensor, boxes: torch.Tensor) -> torch.Tensor:
    """``x`` ``(B, C, H, W)`` with 0 inside each sample's boxes ``(B, K, 4)`` (top, left, bottom,
    right in px, exclusive ends; an empty box, top == bottom, fills nothing)."""
    _, _, h, w = x.shape
    rows = torch.arange(h, device=x.device)[None, None, :, None]
    cols = torch.arange(w, device=x.device)[None, None, None, :]
    top, left, bottom, right = (boxes[..., i][..., None, None] for i in range(4))
    hole = (rows >= top) & (rows < bottom) & (cols >= left) & (cols < right)
    hole = hole.any(1, keepdim=True)
    return x.masked_fill(hole, 0.0)
