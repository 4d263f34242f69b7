"""Settings as dataclasses with defaults in code.

Notebooks override fields with ``dataclasses.replace``; ``asdict(cfg)`` goes into every dataset's
stats.json and every checkpoint, so a run can be rebuilt from what it wrote.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields, is_dataclass
from typing import Any


@dataclass(frozen=True)
class SceneConfig:
    """Procedural indoor rooms and foreground sprites (scenes.py). Lengths in metres, angles in degrees.

    Depth on disk and in memory is the camera z-distance divided by ``max_depth_m``: 0 is the camera
    plane, 1 is ``max_depth_m`` or farther (clipped).
    """

    max_depth_m: float = 12.0
    room_width_m: tuple[float, float] = (3.5, 7.0)
    room_length_m: tuple[float, float] = (4.0, 10.0)
    room_height_m: tuple[float, float] = (2.4, 3.2)
    camera_height_m: tuple[float, float] = (1.1, 1.7)
    camera_pitch_deg: tuple[float, float] = (5.0, 20.0)  # looking down, positive
    camera_yaw_deg: tuple[float, float] = (-15.0, 15.0)  # turned right, positive; no roll
    fov_deg: tuple[float, float] = (50.0, 75.0)  # horizontal field of view
    furniture: tuple[int, int] = (1, 4)  # pieces per room, inclusive
    # real height of a foreground standing on the floor
    fg_height_m: tuple[float, float] = (0.5, 1.9)
    # smallest projected fg height / image height a floor placement accepts (tiny ones are noise)
    fg_min_scale: float = 0.1
    fg_bulge_m: float = 0.15  # how much nearer a foreground's centre is than its silhouette


@dataclass(frozen=True)
class DataConfig:
    """What a dataset holds and how it is split. ``size`` is the side of the square images in pixels.

    The course dataset is 100 backgrounds x 100 foregrounds x 2 flips x 20 placements = 400k quartets;
    the defaults here are that recipe at 64 px. Splits are by background, so no background is shared.
    """

    size: int = 64
    n_bg: int = 100
    n_fg: int = 100
    placements: int = 20  # per (bg, fg, flip)
    # None: every foreground on every background (the course's grid); k: k foregrounds per background,
    # drawn by seed -- many backgrounds for the same sample count, which is what depth learns from
    fg_per_bg: int | None = None
    flips: bool = True
    seed: int = 0
    val_fraction: float = 0.1
    test_fraction: float = 0.1
    image_format: str = "jpg"  # bg and fg_bg on disk: "jpg" (quality 95) or "png" (lossless)
    lazy: bool = (
        False  # store manifest, bg, fg, depth only; fg_bg and mask are re-composited on read
    )
    fg_scale: tuple[float, float] = (0.3, 0.75)  # fg height / image height, for photo backgrounds
    scene: SceneConfig = field(default_factory=SceneConfig)

    @property
    def n_samples(self) -> int:
        return self.n_bg * self.fg_count(self.n_fg) * (2 if self.flips else 1) * self.placements

    def __post_init__(self) -> None:
        if self.fg_per_bg is not None and self.fg_per_bg < 1:
            raise ValueError(
                f"DataConfig.fg_per_bg: expected None or a positive count, got {self.fg_per_bg}"
            )

    def fg_count(self, n_fg: int) -> int:
        """Foregrounds pasted on each background when ``n_fg`` are available."""
        return n_fg if self.fg_per_bg is None else min(self.fg_per_bg, n_fg)


@dataclass(frozen=True)
class ModelConfig:
    """DepthMaskNet's architecture (model.py); the defaults are the measured fast default.

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


@dataclass(frozen=True)
class LossConfig:
    """Weights of the loss parts (losses.py); ``mask`` and ``depth`` are weighted sums of theirs.

    Depth SSIM uses a Gaussian window of ``ssim_window`` pixels (odd; shrunk for smaller images).
    """

    mask_bce: float = 1.0
    mask_dice: float = 1.0
    # BCE over the pixels within mask_edge_px of the true outline (losses.mask_edge_bce). At 1 the
    # demo's strong-perturbation IoU 0.861 -> 0.894, for delta1 0.962 -> 0.951 (T28); off by default,
    # 2 in the demo's recipe with depth_weight 1.5 (demo.ROBUST_LOSS, T45)
    mask_edge: float = 0.0
    mask_edge_px: int = 2
    depth_l1: float = 1.0
    depth_ssim: float = 1.0
    depth_grad: float = 1.0
    depth_log: float = 0.0  # L1 of log depth: the default before depth_silog (L6)
    # scale-invariant log error: delta1 0.866 -> 0.885, RMSE 0.0550 -> 0.0520, five seeds (L6)
    depth_silog: float = 1.0
    silog_lambda: float = 0.85  # 1: each image's scale ignored, 0: RMS log error
    mask_weight: float = 1.0
    depth_weight: float = 1.0
    ssim_window: int = 7
    ssim_sigma: float = 1.5

    def __post_init__(self) -> None:
        px = self.mask_edge_px
        if not isinstance(px, int) or isinstance(px, bool) or px < 1:
            raise ValueError(f"LossConfig.mask_edge_px: expected an int >= 1 (pixels), got {px!r}")
        if not 0.0 <= self.silog_lambda <= 1.0:
            raise ValueError(
                f"LossConfig.silog_lambda: expected a value in [0, 1], got {self.silog_lambda}"
            )


@dataclass(frozen=True)
class AugConfig:
    """Augmentation (transforms.py, realism.py). ``*_p`` are probabilities; lengths are fractions of
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


@dataclass(frozen=True)
class TrainConfig:
    """How fit() trains (train.py) and checkpoints (checkpoint.py).

    ``stages`` is the progressive-resizing plan, ``(size, epochs, batch_size)`` each, as the course
    projects trained 64 -> 128 -> 224; the learning-rate schedule spans all stages. A checkpoint is
    written every ``ckpt_every`` optimizer steps and at the end of every epoch and stage.
    """

    stages: tuple[tuple[int, int, int], ...] = ((64, 6, 32),)
    optimizer: str = "adamw"  # "adamw" or "sgd"
    lr: float = 3e-3  # peak learning rate (OneCycle) or initial (StepLR)
    weight_decay: float = 1e-4
    momentum: float = 0.9  # SGD only
    schedule: str = "onecycle"  # "onecycle" or "step"
    pct_start: float = 0.25  # OneCycle: fraction of all steps spent warming up
    step_epochs: int = 3  # StepLR: epochs between decays
    step_gamma: float = 0.3  # StepLR: decay factor
    grad_clip: float = 1.0  # max gradient norm; 0 disables clipping
    # fp16 + GradScaler on CUDA; bf16 on a CPU with native bf16, float32 on others (precision.py)
    amp: bool = True
    channels_last: bool = True
    seed: int = 0  # sample order and augmentation of every epoch
    ckpt_dir: str = "runs/default"
    ckpt_every: int = 100  # optimizer steps between checkpoints
    keep_last: int = 2  # newest checkpoints kept (best.pt is kept apart)
    best_metric: str = "mask_iou"
    best_mode: str = "max"  # "max" or "min"
    log_every: int = 10  # optimizer steps between rows of the CSV log
    num_workers: int | None = None  # DataLoader workers; None: chosen for the machine
    # torch threads while training on a CPU; None: the cores the loader workers leave (at most
    # torch's current setting); 0: leave torch's setting
    threads: int | None = None
    # decoded train samples kept in memory (MiB), shared by the loader workers of every epoch
    cache_mb: float = 2048
    device: str = "auto"  # "auto" (CUDA if available), "cuda" or "cpu"
    tensorboard: bool = True
    max_val_samples: int | None = None  # validate on the first N val samples only (None: all)


def to_dict(cfg: Any) -> dict:
    """``asdict`` with tuples turned into lists, so the result round-trips through JSON unchanged."""
    return _jsonable(asdict(cfg))


def from_dict(cls: type, data: dict) -> Any:
    """Rebuild a (nested) config dataclass from ``to_dict`` output; unknown keys are an error."""
    known = {f.name: f for f in fields(cls)}
    unknown = set(data) - set(known)
    if unknown:
        raise ValueError(f"{cls.__name__}: unknown settings {sorted(unknown)}")
    defaults = cls() if _has_defaults(cls) else None
    kwargs = {}
    for name, value in data.items():
        default = getattr(defaults, name, None)
        kwargs[name] = from_dict(type(default), value) if is_dataclass(default) else _tuples(value)
    return cls(**kwargs)


def diff(a: Any, b: Any) -> dict[str, tuple[Any, Any]]:
    """Settings that differ between two configs of the same type: ``{"field.sub": (a, b)}``."""
    flat_a, flat_b = flatten(to_dict(a)), flatten(to_dict(b))
    keys = sorted(set(flat_a) | set(flat_b))
    return {k: (flat_a.get(k), flat_b.get(k)) for k in keys if flat_a.get(k) != flat_b.get(k)}


def _has_defaults(cls: type) -> bool:
    try:
        cls()
    except TypeError:
        return False
    return True


def _tuples(value: Any) -> Any:
    """Lists (as JSON gives them back) to tuples, all the way down: configs hold tuples."""
    return tuple(_tuples(v) for v in value) if isinstance(value, list) else value


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    return value


def flatten(d: dict, prefix: str = "") -> dict:
    """Nested dicts as one level: ``{"scene": {"fov": 1}}`` -> ``{"scene.fov": 1}``."""
    out = {}
    for k, v in d.items():
        if isinstance(v, dict):
            out.update(flatten(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out
