"""Background realism: make the bg shot differ from fg_bg's background the way two real photos do.

In a composite, fg_bg equals bg pixel for pixel outside the mask, so a network can get away with
plain image differencing and then fail on any real pair of photos. Following the background
perturbations of BackgroundMattingV2, bg alone is moved a little (the camera was bumped), relit
(brightness, contrast, gamma, colour temperature), blurred, given its own sensor noise and
re-compressed; and the foreground casts a soft shadow onto fg_bg's background. The mask stays the
object only (a shadow is not the object) and depth is never changed: the scene did not move.

Images here are uint8 ``(H, W, 3)``, mask uint8 ``(H, W)`` in {0, 1}. Strengths come from
``AugConfig``; lengths there are fractions of the image side and are turned into pixels for ``size``.
"""

from __future__ import annotations

import os

# without this, importing albumentations asks PyPI for a newer version (a network call)
os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")

import random
from dataclasses import replace

import albumentations as A
import cv2
import numpy as np

from ..config import AugConfig

# name -> the AugConfig probability that switches it on; order is the order they are applied in
PERTURBATIONS: dict[str, str] = {
    "shadow": "shadow_p",
    "misalign": "misalign_p",
    "lighting": "lighting_p",
    "blur": "blur_p",
    "noise": "bg_noise_p",
    "jpeg": "jpeg_p",
}
INTERPOLATION = {"linear": cv2.INTER_LINEAR, "nearest": cv2.INTER_NEAREST}


def reseed(compose: A.BaseCompose, seed: int) -> A.BaseCompose:
    """Give every transform of ``compose`` one shared stream seeded by ``seed``.

    ``Compose.set_random_seed`` would hand each transform its own generator with the SAME seed, so
    their draws would be correlated (a flip decided by the same number as a rotation); one shared
    generator keeps them independent and the result still a pure function of ``seed``.
    """
    compose.set_random_state(np.random.default_rng(seed), random.Random(seed))
    return compose


def single_perturbation(cfg: AugConfig, name: str) -> AugConfig:
    """``cfg`` with the realism group on and only the perturbation ``name`` firing (probability 1)."""
    if name not in PERTURBATIONS:
        raise ValueError(f"perturbation: expected one of {list(PERTURBATIONS)}, got {name!r}")
    probabilities = {p: 0.0 for p in PERTURBATIONS.values()}
    probabilities[PERTURBATIONS[name]] = 1.0
    return replace(cfg, realism=True, **probabilities)


def build_realism(cfg: AugConfig, size: int) -> A.Compose:
    """The bg-only perturbations as one albumentations pipeline for ``size`` px images.

    Order follows the physics of a second shot: the camera moves, the light changes, the lens
    blurs, the sensor adds noise, the camera writes a JPEG.
    """
    move = A.Affine(
        translate_percent=(-cfg.misalign_shift, cfg.misalign_shift),
        rotate=(-cfg.misalign_rotate_deg, cfg.misalign_rotate_deg),
        scale=(1.0 - cfg.misalign_scale, 1.0 + cfg.misalign_scale),
        interpolation=INTERPOLATION[cfg.interpolation],
        border_mode=cv2.BORDER_REFLECT_101,  # a moved camera sees more scene, never a black edge
        p=cfg.misalign_p,
    )
    light = A.Sequential(
        [
            A.RandomBrightnessContrast(
                brightness_limit=cfg.lighting_brightness,
                contrast_limit=cfg.lighting_contrast,
                p=1.0,
            ),
            A.RandomGamma(gamma_limit=tuple(100.0 * g for g in cfg.lighting_gamma), p=1.0),
            A.PlanckianJitter(temperature_limit=cfg.lighting_temperature_k, p=1.0),
        ],
        p=cfg.lighting_p,
    )
    sigma = tuple(max(s * size, 0.1) for s in cfg.blur_sigma)  # fractions of the side -> px
    blur = A.GaussianBlur(blur_limit=0, sigma_limit=sigma, p=cfg.blur_p)
    noise = A.GaussNoise(std_range=cfg.bg_noise_std, p=cfg.bg_noise_p)
    jpeg = A.ImageCompression(quality_range=cfg.jpeg_quality, p=cfg.jpeg_p)
    return A.Compose([move, light, blur, noise, jpeg])


def cast_shadow(
    fg_bg: np.ndarray,
    mask: np.ndarray,
    rng: np.random.Generator,
    strength: tuple[float, float] = (0.2, 0.5),
    offset: tuple[float, float] = (0.02, 0.08),
    blur: tuple[float, float] = (0.01, 0.04),
) -> np.ndarray:
    """Darken fg_bg's background near the object with a soft, offset copy of the mask.

    The shadow is the mask moved by ``offset`` (fraction of the side, in a random direction) and
    blurred with a Gaussian of sigma ``blur`` (fraction of the side); where it is densest the
    background loses ``strength`` of its brightness. Pixels inside the mask are never touched, and
    no pixel gets brighter. Returns a new uint8 ``(H, W, 3)`` array.
    """
    h, w = mask.shape
    side = max(h, w)
    angle = rng.uniform(0.0, 2.0 * np.pi)
    dist = rng.uniform(*offset) * side
    sigma = max(rng.uniform(*blur) * side, 0.3)
    darkness = rng.uniform(*strength)
    move = np.float32([[1, 0, dist * np.cos(angle)], [0, 1, dist * np.sin(angle)]])
    shadow = cv2.warpAffine(mask.astype(np.float32), move, (w, h), flags=cv2.INTER_LINEAR)
    shadow = cv2.GaussianBlur(shadow, (0, 0), sigma)
    gain = 1.0 - darkness * np.clip(shadow, 0.0, 1.0) * (mask == 0)  # exactly 1 inside the mask
    return np.rint(fg_bg * gain[..., None].astype(np.float32)).astype(np.uint8)


def apply_realism(
    sample: dict, compose: A.Compose, cfg: AugConfig, seed: int
) -> dict[str, np.ndarray]:
    """Shadow on fg_bg (probability ``cfg.shadow_p``), then ``compose`` on bg; mask, depth kept."""
    rng = np.random.default_rng(seed)
    out = dict(sample)
    if cfg.shadow_p > 0 and rng.random() < cfg.shadow_p:
        out["fg_bg"] = cast_shadow(
            sample["fg_bg"],
            sample["mask"],
            rng,
            cfg.shadow_strength,
            cfg.shadow_offset,
            cfg.shadow_blur,
        )
    out["bg"] = reseed(compose, int(rng.integers(2**32)))(image=sample["bg"])["image"]
    return out
