"""AugConfig: the quartet transform's settings, and the robustness levels as AugConfig overrides."""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any

BACKENDS = ("albumentations", "torch")
MAX_DROPOUT_HOLES = 8  # the torch backend's boxes per sample: one size, so any samples collate


@dataclass(frozen=True)
class AugConfig:
    """Augmentation (augment/quartet.py, augment/realism.py). ``*_p`` are probabilities; lengths are fractions of
    the image side unless a unit is given; noise std is a fraction of the full 0-255 range.

    Three groups, each can be switched off as a whole:
    ``spatial`` - one random geometry for bg, fg_bg, mask and depth together;
    ``photometric`` - one random colour/noise/dropout change shared by bg and fg_bg (a camera change
    hits both photos), never mask or depth;
    ``realism`` - the background shot is not the composite's exact background: bg alone is moved,
    relit, blurred, noised and re-compressed, and the foreground casts a soft shadow on fg_bg.
    Val/test pipelines never use spatial or photometric, and use realism only when ``eval_realism``
    is set (``robustness_preset``), with a fixed seed per sample.

    The defaults are the measured best for depth (benchmarks/README.md, A1-A2): a horizontal flip and
    the realism group. Crops, zooms and rotations change which depth an image row shows (the floor at
    a given row is at a given distance for an upright camera), and brightness and colour are depth
    cues in lit rooms (light falls off with distance), so ``crop_p``, ``affine_p`` and
    ``photometric`` are off; switch them on for small datasets whose depth is relative per image.
    """

    seed: int = 0  # base of the unseeded stream and of the per-sample eval seeds
    # "albumentations": each sample augmented on the host (DataLoader workers or fit's process);
    # "torch": the host only resizes and draws each sample's parameters, and fit() augments whole
    # batches on its device (augment/batch.py). Val/test pipelines are the same for both.
    backend: str = "albumentations"
    spatial: bool = True
    photometric: bool = False
    realism: bool = True
    eval_realism: bool = False
    interpolation: str = "linear"  # bg, fg_bg, depth: "linear" or "nearest"; mask is always nearest
    # spatial (identical on all four)
    hflip_p: float = 0.5
    crop_p: float = 0.0  # random resized crop, otherwise a plain resize to the output size
    crop_scale: tuple[float, float] = (0.5, 1.0)  # crop area / image area
    crop_ratio: tuple[float, float] = (0.8, 1.25)  # crop width / height
    affine_p: float = 0.0
    shift: float = 0.1
    scale: tuple[float, float] = (0.9, 1.1)
    rotate_deg: float = 15.0
    # photometric (same parameters on bg and fg_bg)
    color_p: float = 0.5  # one of RGB shift or hue/saturation/value
    rgb_shift: float = 15.0  # uint8 levels per channel
    hue_shift: float = 8.0  # OpenCV hue units (2 degrees each)
    sat_shift: float = 20.0
    val_shift: float = 15.0
    brightness_contrast_p: float = 0.5
    brightness: float = 0.2
    contrast: float = 0.2
    noise_p: float = 0.2
    noise_std: tuple[float, float] = (0.01, 0.04)
    dropout_p: float = 0.2
    dropout_holes: tuple[int, int] = (1, 3)
    dropout_size: tuple[float, float] = (0.05, 0.15)
    # background realism (bg only, except the shadow, which darkens fg_bg outside the mask)
    # the ranges reach the "strong" robustness level's (benchmarks/README.md, M3): trained on less,
    # the network met stronger noise and JPEG at test time than it had ever seen
    misalign_p: float = 0.5
    misalign_shift: float = 0.03
    misalign_rotate_deg: float = 2.0
    misalign_scale: float = 0.03
    lighting_p: float = 0.5  # brightness/contrast, gamma and colour temperature together
    lighting_brightness: float = 0.15
    lighting_contrast: float = 0.15
    lighting_gamma: tuple[float, float] = (0.8, 1.25)
    lighting_temperature_k: tuple[int, int] = (4000, 9000)  # must contain 6000 K (neutral)
    blur_p: float = 0.2
    blur_sigma: tuple[float, float] = (0.003, 0.015)
    bg_noise_p: float = 0.3
    bg_noise_std: tuple[float, float] = (0.005, 0.04)
    jpeg_p: float = 0.3
    jpeg_quality: tuple[int, int] = (40, 95)
    shadow_p: float = 0.3
    shadow_strength: tuple[float, float] = (0.2, 0.5)  # darkening where the shadow is densest
    shadow_offset: tuple[float, float] = (0.02, 0.08)
    shadow_blur: tuple[float, float] = (0.01, 0.04)  # Gaussian sigma

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name.endswith("_p") and not 0.0 <= value <= 1.0:
                raise ValueError(f"AugConfig.{f.name}: probability must be in [0, 1], got {value}")
        if self.backend not in BACKENDS:
            raise ValueError(f"AugConfig.backend: expected one of {BACKENDS}, got {self.backend!r}")
        if self.backend == "torch" and self.dropout_holes[1] > MAX_DROPOUT_HOLES:
            raise ValueError(
                f"AugConfig.dropout_holes: the torch backend draws at most {MAX_DROPOUT_HOLES} "
                f"holes, got {self.dropout_holes}"
            )
        if self.interpolation not in ("linear", "nearest"):
            raise ValueError(
                f"AugConfig.interpolation: expected 'linear' or 'nearest', got {self.interpolation!r}"
            )


_EVAL_REALISM = {"spatial": False, "photometric": False, "realism": True, "eval_realism": True}
_EVERY_PERTURBATION = {
    f"{name}_p": 1.0 for name in ("misalign", "lighting", "blur", "bg_noise", "jpeg", "shadow")
}

# Robustness evaluation levels as data: AugConfig overrides. Every background perturbation fires,
# at a small ("mild") strength or at the top of the training ranges ("strong"); "none" is the
# plain test pipeline.
ROBUSTNESS_PRESETS: dict[str, dict[str, Any]] = {
    "none": {"spatial": False, "photometric": False, "realism": False, "eval_realism": False},
    "mild": {
        **_EVAL_REALISM,
        **_EVERY_PERTURBATION,
        "misalign_shift": 0.01,
        "misalign_rotate_deg": 0.5,
        "misalign_scale": 0.01,
        "lighting_brightness": 0.05,
        "lighting_contrast": 0.05,
        "lighting_gamma": (0.93, 1.07),
        "lighting_temperature_k": (5500, 7000),
        "blur_sigma": (0.002, 0.005),
        "bg_noise_std": (0.004, 0.01),
        "jpeg_quality": (85, 95),
        "shadow_strength": (0.1, 0.2),
    },
    "strong": {
        **_EVAL_REALISM,
        **_EVERY_PERTURBATION,
        "misalign_shift": 0.03,
        "misalign_rotate_deg": 2.0,
        "misalign_scale": 0.03,
        "lighting_brightness": 0.15,
        "lighting_contrast": 0.15,
        "lighting_gamma": (0.8, 1.25),
        "lighting_temperature_k": (4000, 9000),
        "blur_sigma": (0.006, 0.015),
        "bg_noise_std": (0.02, 0.04),
        "jpeg_quality": (40, 70),
        "shadow_strength": (0.3, 0.5),
    },
}


def robustness_preset(level: str) -> AugConfig:
    """The AugConfig of a robustness level ("none", "mild", "strong") for val/test pipelines."""
    if level not in ROBUSTNESS_PRESETS:
        raise ValueError(
            f"robustness level: expected one of {list(ROBUSTNESS_PRESETS)}, got {level!r}"
        )
    return AugConfig(**ROBUSTNESS_PRESETS[level])
