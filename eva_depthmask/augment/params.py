"""The random parameters of one sample's torch-backend augmentation, drawn on the host from its seed.

``draw_params(cfg, size, seed)`` is a pure function of its arguments: a dict of floats and lists of
floats (flags ``on_*`` in {0, 1}, and the values each operation needs). ``pack`` lays them out in
one float32 vector, which a DataLoader collates into ``(B, P)`` for augment/batch.py to apply. The
draws follow the albumentations pipelines' ranges and probabilities (augment/quartet.py,
realism.py); each stage draws from its own seed, so switching one group off leaves the others'
draws unchanged.

Geometry is given as affine maps from output to input coordinates in ``affine_grid``'s normalised
units (the image spans [-1, 1]); lengths are in pixels of the ``size`` px output.
"""

from __future__ import annotations

import functools
import math
import os
import random

# without this, importing albumentations asks PyPI for a newer version (a network call)
os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")

import numpy as np
from albumentations.augmentations.pixel.functional import PLANCKIAN_COEFFS

from ..config import AugConfig
from ..config.augment import MAX_DROPOUT_HOLES as DROPOUT_SLOTS

IDENTITY = (1.0, 0.0, 0.0, 0.0, 1.0, 0.0)  # theta of no warp


def draw_params(cfg: AugConfig, size: int, seed: int) -> dict[str, float | list[float]]:
    """The parameters of one training sample at ``size`` px, from ``seed`` (an int >= 0): floats and
    lists of floats, the same keys in the same order for every AugConfig (``pack`` relies on it)."""
    s_spatial, s_realism, s_photo = np.random.SeedSequence(seed).generate_state(3)
    out = {"noise_seed": float(int(s_realism) % 2**24)}  # exact in float32
    out |= _spatial(cfg, random.Random(int(s_spatial)))
    out |= _realism(cfg, size, random.Random(int(s_realism)))
    out |= _photometric(cfg, size, random.Random(int(s_photo)))
    return out


def pack(params: dict) -> np.ndarray:
    """``draw_params``'s dict as one float32 vector: one array a sample for the DataLoader to collate
    (thirty small ones cost more to collate than the augmentation of a 64 px batch)."""
    flat: list[float] = []
    for v in params.values():
        if isinstance(v, list):
            flat.extend(v)
        else:
            flat.append(v)
    return np.asarray(flat, np.float32)


@functools.cache
def layout() -> dict[str, slice]:
    """Where each parameter lies in a ``pack``ed vector (the same for every AugConfig)."""
    out, start = {}, 0
    for k, v in draw_params(AugConfig(), 8, 0).items():
        n = len(v) if isinstance(v, list) else 1
        out[k], start = slice(start, start + n), start + n
    return out


def _fires(rng: random.Random, on: bool, p: float) -> float:
    return float(on and p > 0 and rng.random() < p)


def affine_inverse(shift: tuple, scale: float, degrees: float) -> list[float]:
    """The output-to-input map (2 x 3, row by row) of a move by ``shift`` (fractions of the side, x
    and y), a zoom by ``scale`` and a rotation by ``degrees`` about the centre."""
    a = math.radians(degrees)
    c, s = math.cos(a) / scale, math.sin(a) / scale  # R(-a) / scale
    tx, ty = 2.0 * shift[0], 2.0 * shift[1]  # fractions of the side -> normalised units
    return [c, s, -(c * tx + s * ty), -s, c, -(-s * tx + c * ty)]


def compose(outer: list[float], inner: list[float]) -> list[float]:
    """The map ``outer(inner(p))`` of two 2 x 3 affine maps."""
    a, b, c, d, e, f = outer
    g, h, i, j, k, m = inner
    return [
        a * g + b * j,
        a * h + b * k,
        a * i + b * m + c,
        d * g + e * j,
        d * h + e * k,
        d * i + e * m + f,
    ]


def _crop_map(cfg: AugConfig, rng: random.Random) -> list[float]:
    """A random resized crop (area ``cfg.crop_scale`` of the image, aspect ``cfg.crop_ratio``) as an
    output-to-input map; the whole image when ten draws find no crop that fits."""
    for _ in range(10):
        area = rng.uniform(*cfg.crop_scale)
        ratio = math.exp(rng.uniform(math.log(cfg.crop_ratio[0]), math.log(cfg.crop_ratio[1])))
        w, h = math.sqrt(area * ratio), math.sqrt(area / ratio)
        if w <= 1.0 and h <= 1.0:
            x0, y0 = rng.uniform(0.0, 1.0 - w), rng.uniform(0.0, 1.0 - h)
            return [w, 0.0, 2.0 * x0 + w - 1.0, 0.0, h, 2.0 * y0 + h - 1.0]
    return list(IDENTITY)


def _spatial(cfg: AugConfig, rng: random.Random) -> dict:
    on = cfg.spatial
    crop, affine = _fires(rng, on, cfg.crop_p), _fires(rng, on, cfg.affine_p)
    theta = _crop_map(cfg, rng) if crop else list(IDENTITY)
    if affine:
        shift = (rng.uniform(-cfg.shift, cfg.shift), rng.uniform(-cfg.shift, cfg.shift))
        scale, degrees = rng.uniform(*cfg.scale), rng.uniform(-cfg.rotate_deg, cfg.rotate_deg)
        theta = compose(theta, affine_inverse(shift, scale, degrees))
    nearest = cfg.interpolation == "nearest"
    return {
        "on_flip": _fires(rng, on, cfg.hflip_p),
        "on_warp": float((crop or affine) and not nearest),
        "on_warp_nearest": float((crop or affine) and nearest),
        "theta": theta,
    }


def temperature_gains(kelvin: float) -> list[float]:
    """Red, green, blue gains of a black-body light of ``kelvin`` relative to green, from
    albumentations' Planckian table (interpolated between its 500 K steps), as its PlanckianJitter."""
    table = PLANCKIAN_COEFFS["blackbody"]
    lo, hi = min(table), max(table)
    t = min(max(kelvin, lo), hi)
    left = max(int(t // 500) * 500, lo)
    right = min(left + 500, hi)
    w = 0.0 if right == left else (t - left) / (right - left)
    r, g, b = ((1.0 - w) * x + w * y for x, y in zip(table[left], table[right], strict=True))
    return [r / g, 1.0, b / g]


def _temperature(cfg: AugConfig, rng: random.Random) -> float:
    """A colour temperature drawn as PlanckianJitter's "gaussian" sampling: half-normal on either
    side of 6000 K (neutral daylight), with 3 sigma reaching the end of the range."""
    lo, hi = cfg.lighting_temperature_k
    if rng.random() < 0.5:
        t = 6000.0 - abs(rng.gauss(0.0, max(6000.0 - lo, 0.0) / 3.0))
    else:
        t = 6000.0 + abs(rng.gauss(0.0, max(hi - 6000.0, 0.0) / 3.0))
    return float(int(min(max(t, lo), hi)))


def _realism(cfg: AugConfig, size: int, rng: random.Random) -> dict:
    on = cfg.realism
    shadow = _fires(rng, on, cfg.shadow_p)
    angle = rng.uniform(0.0, 2.0 * math.pi)
    dist = rng.uniform(*cfg.shadow_offset) * size
    move = _fires(rng, on, cfg.misalign_p)
    nearest = cfg.interpolation == "nearest"
    light = _fires(rng, on, cfg.lighting_p)
    blur, noise, jpeg = (_fires(rng, on, p) for p in (cfg.blur_p, cfg.bg_noise_p, cfg.jpeg_p))
    shift = cfg.misalign_shift
    return {
        "on_shadow": shadow,
        "shadow_shift": [dist * math.cos(angle), dist * math.sin(angle)],
        "shadow_sigma": max(rng.uniform(*cfg.shadow_blur) * size, 0.3),
        "shadow_dark": rng.uniform(*cfg.shadow_strength),
        "on_move": float(move and not nearest),
        "on_move_nearest": float(move and nearest),
        "move_theta": affine_inverse(
            (rng.uniform(-shift, shift), rng.uniform(-shift, shift)),
            rng.uniform(1.0 - cfg.misalign_scale, 1.0 + cfg.misalign_scale),
            rng.uniform(-cfg.misalign_rotate_deg, cfg.misalign_rotate_deg),
        ),
        "on_light": light,
        "light_bc": [
            rng.uniform(-cfg.lighting_brightness, cfg.lighting_brightness),
            rng.uniform(-cfg.lighting_contrast, cfg.lighting_contrast),
        ],
        "light_gamma": rng.uniform(*cfg.lighting_gamma),
        "light_gains": temperature_gains(_temperature(cfg, rng)),
        "on_blur": blur,
        "blur_sigma": max(rng.uniform(*cfg.blur_sigma) * size, 0.1),
        "on_bg_noise": noise,
        "bg_noise_std": rng.uniform(*cfg.bg_noise_std) * 255.0,
        "on_jpeg": jpeg,
        "jpeg_quality": float(rng.randint(*cfg.jpeg_quality)),
    }


def _dropout_boxes(cfg: AugConfig, size: int, rng: random.Random) -> list[float]:
    """``cfg.dropout_holes`` boxes (top, left, bottom, right px) in ``DROPOUT_SLOTS`` slots; unused
    slots are empty."""
    boxes = [0.0] * (4 * DROPOUT_SLOTS)
    for i in range(rng.randint(*cfg.dropout_holes)):
        h, w = (max(1, round(rng.uniform(*cfg.dropout_size) * size)) for _ in range(2))
        top, left = rng.randint(0, size - h), rng.randint(0, size - w)
        boxes[4 * i : 4 * i + 4] = (top, left, top + h, left + w)
    return boxes


def _photometric(cfg: AugConfig, size: int, rng: random.Random) -> dict:
    on = cfg.photometric
    color = _fires(rng, on, cfg.color_p)
    rgb = float(color and rng.random() < 0.5)  # OneOf: RGB shift or hue/saturation/value
    return {
        "on_rgb": rgb,
        "rgb_shift": [rng.uniform(-cfg.rgb_shift, cfg.rgb_shift) for _ in range(3)],
        "on_hsv": float(color and not rgb),
        "hsv": [
            2.0 * rng.uniform(-cfg.hue_shift, cfg.hue_shift),  # OpenCV hue units are 2 degrees
            rng.uniform(-cfg.sat_shift, cfg.sat_shift),
            rng.uniform(-cfg.val_shift, cfg.val_shift),
        ],
        "on_bc": _fires(rng, on, cfg.brightness_contrast_p),
        "bc": [
            rng.uniform(-cfg.brightness, cfg.brightness),
            rng.uniform(-cfg.contrast, cfg.contrast),
        ],
        "on_noise": _fires(rng, on, cfg.noise_p),
        "noise_std": rng.uniform(*cfg.noise_std) * 255.0,
        "on_dropout": _fires(rng, on, cfg.dropout_p),
        "dropout_boxes": _dropout_boxes(cfg, size, rng),
    }
