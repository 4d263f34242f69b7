"""One consistent random transform for the quartet (bg, fg_bg, mask, depth), on albumentations.

A raw sample (what data/dataset.py reads) is numpy: ``bg``, ``fg_bg`` uint8 ``(H, W, 3)``, ``mask`` uint8
``(H, W)`` in {0, 1}, ``depth`` float32 ``(H, W)`` in [0, 1] (0 near), ``id`` str. A tensor sample
(what the model sees) is ``bg``, ``fg_bg`` float32 ``(3, H, W)`` normalised with the dataset's
mean/std, ``mask`` float32 ``(1, H, W)`` in {0, 1}, ``depth`` float32 ``(1, H, W)`` in [0, 1], ``id``.
A transform made with ``normalize=False`` stops short of that, for training: its images stay uint8
``(3, H, W)`` and its mask uint8, a quarter of the bytes for DataLoader workers to hand over, and
``normalize.normalize`` finishes them per batch on the training device (the same float32 values, bit for bit).

The train pipeline runs three stages, each from its own seed (so switching one group off leaves
the others' draws unchanged):

1. spatial, one geometry for all four: random resized crop (else a resize), horizontal flip,
   shift/scale/rotate with a reflected border. Images and depth are resampled bilinearly (area
   when shrinking; both stay inside the range of their inputs), the mask nearest, so it stays
   {0, 1}. No vertical flip: indoor depth has an up (far ceiling/wall) and a down (near floor).
2. background realism (augment/realism.py): bg alone is moved, relit, blurred, noised, re-compressed;
   a soft shadow darkens fg_bg's background near the object.
3. photometric, the SAME random change on bg and fg_bg (a colour cast or camera setting hits both
   photos), never on mask or depth: RGB shift or hue/saturation, brightness/contrast, noise,
   coarse dropout. The dropout holes sit at the same place in both images and the targets keep
   the object: like cutout, the network must complete the mask and depth from the context, and
   fg_bg still equals bg wherever mask is 0. It runs after realism so a moved bg cannot shift the
   holes off each other.

With ``AugConfig(backend="torch")`` the train transform stops after a resize: ``normalize=False``
(fit's loader) returns the sample with its parameters (``aug``, augment/params.py) for fit() to
augment on its device with the whole batch (augment/batch.py); ``augment`` and ``normalize=True``
run that batch code on the one sample at once, so both backends answer the same calls.

Val/test resize only. With ``eval_realism`` (``robustness_preset("mild")``) they add stage 2 with
a seed taken from the sample id, so every evaluation sees the same perturbations.

Seeding: ``transform(sample, seed)`` is a pure function of the seed. In a DataLoader the dataset
should pass ``sample_seed(base, epoch, index)``; without a seed, draws come from a stream seeded by
``cfg.seed`` and, inside a worker, by torch's per-worker seed, so workers never repeat each other.
"""

from __future__ import annotations

import os

# without this, importing albumentations asks PyPI for a newer version (a network call)
os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")

import zlib

import albumentations as A
import cv2
import numpy as np
import torch
from torch.utils.data import get_worker_info

from ..config import AugConfig, robustness_preset
from ..tensors import sample_tensors
from .batch import augment_batch
from .normalize import KEYS, check_sample, check_stats, normalized_tensors
from .params import draw_params, pack
from .realism import INTERPOLATION, apply_realism, build_realism, reseed

__all__ = ["QuartetTransform", "get_transforms", "robustness_preset", "sample_seed"]

SPLITS = ("train", "val", "test")
DEFAULT_AUG = AugConfig()  # frozen, so one shared default is safe


def sample_seed(base: int, epoch: int, index: int) -> int:
    """The seed of one sample in one epoch: distinct per (base, epoch, index), stable across runs."""
    return int(np.random.SeedSequence([base, epoch, index]).generate_state(1, np.uint64)[0])


# ---------------------------------------------------------------------------------------------------
# The three stages


def build_spatial(cfg: AugConfig, size: int, randomise: bool) -> A.Compose:
    """Resize (val/test), or crop/resize + flip + shift/scale/rotate (train), to ``size`` px."""
    interp = INTERPOLATION[cfg.interpolation]
    area = "image" if cfg.interpolation == "linear" else None  # area keeps shrinking alias-free
    resize = A.Resize(size, size, interpolation=interp, area_for_downscale=area, p=1.0)
    steps: list = [resize]
    if randomise:
        crop = A.RandomResizedCrop(
            size=(size, size),
            scale=cfg.crop_scale,
            ratio=cfg.crop_ratio,
            interpolation=interp,
            area_for_downscale=area,
            p=cfg.crop_p,
        )
        if cfg.crop_p > 0.0:  # OneOf picks by the children's p: crop with crop_p, else resize
            resize.p = 1.0 - cfg.crop_p
            steps = [A.OneOf([crop, resize], p=1.0)]
        steps += [
            A.HorizontalFlip(p=cfg.hflip_p),
            A.Affine(
                translate_percent=(-cfg.shift, cfg.shift),
                scale=cfg.scale,
                rotate=(-cfg.rotate_deg, cfg.rotate_deg),
                interpolation=interp,
                border_mode=cv2.BORDER_REFLECT_101,  # reflected alike, the four stay a quartet
                p=cfg.affine_p,
            ),
        ]
    # depth is an extra *image* target so it is resampled like an image, not nearest like the mask
    return A.Compose(
        steps,
        additional_targets={"fg_bg": "image", "depth": "image"},
        mask_interpolation=cv2.INTER_NEAREST,
    )


def build_photometric(cfg: AugConfig) -> A.Compose:
    """Colour, brightness/contrast, noise and coarse dropout, drawn once for bg and fg_bg."""
    color = A.OneOf(
        [
            A.RGBShift(cfg.rgb_shift, cfg.rgb_shift, cfg.rgb_shift, p=1.0),
            A.HueSaturationValue(cfg.hue_shift, cfg.sat_shift, cfg.val_shift, p=1.0),
        ],
        p=cfg.color_p,
    )
    light = A.RandomBrightnessContrast(cfg.brightness, cfg.contrast, p=cfg.brightness_contrast_p)
    noise = A.GaussNoise(std_range=cfg.noise_std, p=cfg.noise_p)
    dropout = A.CoarseDropout(
        num_holes_range=cfg.dropout_holes,
        hole_height_range=cfg.dropout_size,
        hole_width_range=cfg.dropout_size,
        fill=0,
        p=cfg.dropout_p,
    )
    return A.Compose([color, light, noise, dropout], additional_targets={"fg_bg": "image"})


def apply_spatial(compose: A.Compose, sample: dict, seed: int) -> dict:
    """Stage 1 on a checked raw sample; returns a new raw sample."""
    out = reseed(compose, seed)(image=sample["bg"], **{k: sample[k] for k in KEYS[1:4]})
    return {"bg": out["image"], **{k: out[k] for k in KEYS[1:4]}, "id": sample["id"]}


def apply_photometric(compose: A.Compose, sample: dict, seed: int) -> dict:
    """Stage 3 on a raw sample: bg and fg_bg change together; mask and depth are passed through."""
    out = reseed(compose, seed)(image=sample["bg"], fg_bg=sample["fg_bg"])
    return {**sample, "bg": out["image"], "fg_bg": out["fg_bg"]}


# ---------------------------------------------------------------------------------------------------
# The callable a dataset holds


class QuartetTransform:
    """``transform(raw_sample, seed=None) -> tensor sample``; ``augment`` stops before tensors.

    ``seed`` may be an int >= 0 or a ``numpy.random.Generator`` (one int is drawn from it). In val
    and test the seed is ignored: perturbations, if any, are keyed on ``cfg.seed`` and the sample id.
    Not thread-safe (the albumentations pipelines are reseeded per call); processes are fine.
    """

    def __init__(
        self,
        split: str,
        size: int,
        cfg: AugConfig = DEFAULT_AUG,
        stats: dict | None = None,
        normalize: bool = True,
    ):
        if split not in SPLITS:
            raise ValueError(f"split: expected one of {SPLITS}, got {split!r}")
        if not isinstance(size, (int, np.integer)) or size < 8:
            raise ValueError(f"size: expected an int >= 8 (square images), got {size!r}")
        self.split, self.size, self.cfg, self.stats = split, int(size), cfg, stats
        self.mean, self.std = check_stats(stats)
        self.normalize = normalize
        train = split == "train"
        # torch backend: here only the resize; the three stages run on tensors (augment/batch.py)
        self.deferred = train and cfg.backend == "torch"
        host = not self.deferred
        self.spatial = build_spatial(cfg, self.size, randomise=train and cfg.spatial and host)
        self.photometric = build_photometric(cfg) if train and cfg.photometric and host else None
        use_realism = cfg.realism and (train or cfg.eval_realism)
        self.realism = build_realism(cfg, self.size) if use_realism and host else None
        on = {"spatial": train and cfg.spatial, "realism": use_realism, "photometric": train}
        self.groups = tuple(
            g for g in ("spatial", "realism", "photometric") if on[g] and getattr(cfg, g)
        )
        self._rng: np.random.Generator | None = None
        self._rng_key: object = ()

    def __call__(self, sample: dict, seed: int | np.random.Generator | None = None) -> dict:
        if self.deferred and not self.normalize:  # fit() augments the whole batch on its device
            sample = check_sample(sample)
            params = pack(draw_params(self.cfg, self.size, self._seed(sample, seed)))
            return {**sample_tensors(resize_sample(sample, self.size, self.cfg)), "aug": params}
        raw = self.augment(sample, seed)
        if self.normalize:
            return normalized_tensors(raw, self.mean, self.std)
        return sample_tensors(raw)  # uint8, for fit() to normalise per batch on its device

    def augment(self, sample: dict, seed: int | np.random.Generator | None = None) -> dict:
        """The augmented raw sample (uint8 images, ``(H, W)`` mask and depth) at ``size``."""
        sample = check_sample(sample)
        if self.deferred:  # the torch backend on a batch of one, here
            resized = resize_sample(sample, self.size, self.cfg)
            return augment_sample(
                resized, pack(draw_params(self.cfg, self.size, self._seed(sample, seed)))
            )
        s_spatial, s_realism, s_photo = np.random.SeedSequence(
            self._seed(sample, seed)
        ).generate_state(3)
        out = apply_spatial(self.spatial, sample, int(s_spatial))
        if self.realism is not None:
            out = apply_realism(out, self.realism, self.cfg, int(s_realism))
        if self.photometric is not None:
            out = apply_photometric(self.photometric, out, int(s_photo))
        return out

    def _seed(self, sample: dict, seed: int | np.random.Generator | None) -> int:
        if self.split != "train":  # repeatable evaluation: the same perturbation for the same id
            return int(
                np.random.SeedSequence(
                    [self.cfg.seed, zlib.crc32(str(sample["id"]).encode())]
                ).generate_state(1)[0]
            )
        if isinstance(seed, np.random.Generator):
            return int(seed.integers(2**63))
        if seed is not None:
            if not isinstance(seed, (int, np.integer)) or seed < 0:
                raise ValueError(
                    f"seed: expected an int >= 0, a numpy Generator or None, got {seed!r}"
                )
            return int(seed)
        info = get_worker_info()
        key = None if info is None else info.seed  # differs per worker and per epoch
        if self._rng is None or key != self._rng_key:
            self._rng = np.random.default_rng([self.cfg.seed] + ([] if key is None else [key]))
            self._rng_key = key
        return int(self._rng.integers(2**63))

    def __repr__(self) -> str:
        return f"QuartetTransform({self.split!r}, {self.size}, groups={self.groups})"


def resize_sample(raw: dict, size: int, cfg: AugConfig) -> dict:
    """A checked raw sample at ``size`` x ``size`` px, for the torch backend to augment: images and
    depth by area when shrinking (else ``cfg.interpolation``), the mask by centre-aligned nearest,
    so that it stays on the depth's grid through the warps that follow (OpenCV's plain nearest
    samples half a pixel off)."""
    h, w = raw["mask"].shape
    if (h, w) == (size, size):
        return raw
    nearest, exact = cfg.interpolation == "nearest", cv2.INTER_NEAREST_EXACT
    interp = exact if nearest else cv2.INTER_AREA if size < min(h, w) else cv2.INTER_LINEAR
    out = {
        k: cv2.resize(raw[k], (size, size), interpolation=interp) for k in ("bg", "fg_bg", "depth")
    }
    out["mask"] = cv2.resize(raw["mask"], (size, size), interpolation=exact)
    return {**raw, **out}


def augment_sample(raw: dict, params: np.ndarray) -> dict:
    """``augment_batch`` on one raw sample with its ``pack``ed parameters, on the CPU."""
    batch = {k: v[None] for k, v in sample_tensors(raw).items() if k != "id"}
    batch["aug"] = torch.from_numpy(params)[None]
    out = augment_batch(batch)
    return {
        **{k: out[k][0].permute(1, 2, 0).numpy() for k in ("bg", "fg_bg")},
        "mask": out["mask"][0, 0].numpy(),
        "depth": out["depth"][0, 0].numpy(),
        "id": raw["id"],
    }


def get_transforms(
    split: str,
    size: int,
    cfg: AugConfig = DEFAULT_AUG,
    stats: dict | None = None,
    normalize: bool = True,
) -> QuartetTransform:
    """The transform of a split at ``size`` px; ``stats`` is the dataset's stats.json dict
    (``{"mean": [r, g, b], "std": [r, g, b]}`` in [0, 1] units), None for ImageNet's;
    ``normalize=False``: uint8 images and mask, for ``normalize`` to finish per batch."""
    return QuartetTransform(split, size, cfg, stats, normalize)
