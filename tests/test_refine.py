"""Masks at the photo's resolution (evaluation/refine.py) and their scores (evaluation/photos.py),
on generated pairs whose true mask is known exactly."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from eva_depthmask.evaluation.photos import boundary_f, jpeg, mask_iou, outline
from eva_depthmask.evaluation.refine import (
    RefineConfig,
    by_difference,
    guided_filter,
    noise_level,
    refine_mask,
    sure_background,
)
from eva_depthmask.evaluation.register import register

SIZE, COARSE = 128, 32


def textured(seed: int, size: int = SIZE) -> np.ndarray:
    """A smooth random texture, uint8 (size, size, 3): a background photo stand-in."""
    rng = np.random.default_rng(seed)
    small = rng.integers(40, 215, (8, 8, 3), dtype=np.uint8)
    return np.asarray(Image.fromarray(small).resize((size, size), Image.Resampling.BICUBIC))


def ellipse(size: int = SIZE) -> np.ndarray:
    """A body with a thin arm (3 px): thin parts are what an upsampled coarse mask loses."""
    yy, xx = np.mgrid[:size, :size]
    body = ((yy - 70) / 40.0) ** 2 + ((xx - 60) / 22.0) ** 2 <= 1.0
    body[50:53, 80:120] = True
    return body


def composite(bg: np.ndarray, mask: np.ndarray, colour=(230, 30, 200)) -> np.ndarray:
    fg_bg = bg.copy()
    fg_bg[mask] = colour
    return fg_bg


def coarse_of(mask: np.ndarray) -> np.ndarray:
    """What a network at COARSE px would say: the area-averaged true mask (soft edges)."""
    im = Image.fromarray(mask.astype(np.uint8) * 255).resize((COARSE, COARSE), Image.Resampling.BOX)
    return np.asarray(im, np.float32) / 255


def upsampled(coarse: np.ndarray) -> np.ndarray:
    return refine_mask(
        coarse, *[np.zeros((SIZE, SIZE, 3), np.uint8)] * 2, RefineConfig(False, difference=False)
    )


def test_guided_filter_keeps_flat_inputs_and_snaps_a_blurred_step_to_the_guide():
    guide = torch.zeros(1, 3, 32, 32)
    guide[..., 16:] = 1.0  # a vertical edge at column 16
    flat = torch.full((1, 1, 32, 32), 0.3)
    assert torch.allclose(guided_filter(guide, flat, 3, 1e-3), flat, atol=1e-5)
    # the step blurred over 4 px and 1 px off, as an upsampled coarse mask is: within the window
    ramp = torch.clamp((torch.arange(32.0) - 15) / 4, 0, 1).expand(1, 1, 32, 32).contiguous()
    step = (torch.arange(32) >= 16).expand(1, 1, 32, 32)
    assert ((ramp > 0.5) != step).any()
    assert torch.equal(guided_filter(guide, ramp, 4, 1e-4) > 0.5, step)


def test_identical_background_outline_is_drawn_to_the_pixel():
    bg, mask = textured(0), ellipse()
    fg_bg = composite(bg, mask)
    coarse = coarse_of(mask)
    before = mask_iou(upsampled(coarse) > 0.5, mask)
    after = mask_iou(refine_mask(coarse, bg, fg_bg) > 0.5, mask)
    assert before < 0.97 and after > 0.995


def test_without_a_usable_difference_the_outline_follows_the_composites_edges():
    """A re-captured bg: only the guided filter sharpens the upsampled coarse mask."""
    bg, mask = textured(0), ellipse()
    fg_bg = composite(bg, mask)
    coarse = coarse_of(mask)
    guided = refine_mask(coarse, bg, fg_bg, RefineConfig(difference=False)) > 0.5
    assert mask_iou(guided, mask) > mask_iou(upsampled(coarse) > 0.5, mask) + 0.01


def test_holes_where_the_object_matches_the_background_are_filled():
    bg, mask = textured(1), ellipse()
    fg_bg = composite(bg, mask)
    hole = np.zeros_like(mask)
    hole[60:80, 52:68] = True
    fg_bg[hole] = bg[hole]  # the object shows the background's colour there: no difference
    assert mask[hole].all()
    refined = refine_mask(coarse_of(mask), bg, fg_bg) > 0.5
    assert refined[hole].all() and mask_iou(refined, mask) > 0.99


def test_speckle_of_jpeg_ringing_is_not_object():
    diff = np.zeros((SIZE, SIZE), np.float32)
    diff[ellipse()] = 80.0
    diff[10, 10] = diff[100, 120] = 40.0  # isolated pixels far over the threshold
    drawn = by_difference(diff, noise=2.0, cfg=RefineConfig()) > 0.5
    assert not drawn[10, 10] and not drawn[100, 120] and mask_iou(drawn, ellipse()) > 0.99


MARGIN = 8  # px of scene beyond the frame on each side, for shots moved sideways


def wide_scene(seed: int) -> np.ndarray:
    return textured(seed, SIZE + 2 * MARGIN)[MARGIN:-MARGIN]  # (SIZE, SIZE + 2 MARGIN, 3)


def shot(scene: np.ndarray, shift: int = 0, gain: float = 1.0, noise: float = 0.0, seed=2):
    """The frame of a wide scene moved by ``shift`` px, brighter by ``gain``, with sensor noise."""
    rng = np.random.default_rng(seed)
    frame = scene[:, MARGIN - shift : MARGIN - shift + SIZE].astype(np.float32) * gain
    return (frame + rng.normal(0, noise, frame.shape)).round().clip(0, 255).astype(np.uint8)


def test_a_recaptured_background_that_cannot_be_registered_is_not_trusted():
    """Sensor noise of 25 levels: no registration makes the difference usable, so the refined
    mask is the guided network mask alone."""
    scene, mask = wide_scene(3), ellipse()
    fg_bg = composite(shot(scene), mask)
    bg = shot(scene, 3, 1.0, 25.0)
    coarse = coarse_of(mask)
    guided_only = refine_mask(coarse, bg, fg_bg, RefineConfig(difference=False))
    np.testing.assert_array_equal(refine_mask(coarse, bg, fg_bg), guided_only)
    # while the identical background is trusted and changes the result
    assert not np.array_equal(refine_mask(coarse, shot(scene), fg_bg), guided_only)


def test_a_moved_and_relit_background_is_registered_before_it_is_trusted():
    scene, mask = wide_scene(5), ellipse()
    fg_bg = composite(shot(scene), mask)
    bg = shot(scene, 2, 1.1, 1.0)
    outside = sure_background(coarse_of(mask).repeat(4, 0).repeat(4, 1), 4)
    before = np.abs(bg.astype(int) - fg_bg)[outside].mean()
    after = np.abs(register(bg, fg_bg, outside).astype(int) - fg_bg)[outside].mean()
    assert after < 0.25 * before
    coarse = coarse_of(mask)
    unregistered = refine_mask(coarse, bg, fg_bg, RefineConfig(register=False)) > 0.5
    registered = refine_mask(coarse, bg, fg_bg) > 0.5
    assert mask_iou(registered, mask) > 0.98
    assert mask_iou(registered, mask) > mask_iou(unregistered, mask) + 0.01


def test_noise_is_measured_away_from_the_object():
    diff = np.zeros((SIZE, SIZE), np.float32)
    mask = ellipse()
    diff[mask] = 90.0
    diff[~mask] = np.random.default_rng(0).uniform(0, 4, (~mask).sum())
    sure = sure_background(mask.astype(np.float32), 3)
    assert not sure[mask].any() and sure.sum() > 0.5 * (~mask).sum()
    assert noise_level(diff, sure, 0.99) <= 4.0
    nothing = sure_background(np.ones_like(diff), 3)
    assert noise_level(diff, nothing, 0.99) == float("inf")  # no background seen


def test_boundary_f_counts_outlines_within_the_tolerance():
    mask = ellipse()
    assert boundary_f(mask, mask) == 1.0
    assert boundary_f(np.roll(mask, 1, axis=1), mask, tolerance=2) == 1.0
    far = boundary_f(np.roll(mask, 8, axis=1), mask, tolerance=2)
    assert far < 0.5
    empty = np.zeros_like(mask)
    assert boundary_f(empty, empty) == 1.0 and boundary_f(empty, mask) == 0.0
    assert outline(mask).sum() < mask.sum() and mask[outline(mask)].all()


def test_mask_iou_and_jpeg_round_trip():
    a = np.zeros((4, 4), bool)
    b = a.copy()
    a[:2], b[1:3] = True, True
    assert mask_iou(a, b) == pytest.approx(4 / 12)
    assert mask_iou(np.zeros_like(a), np.zeros_like(a)) == 1.0
    img = textured(4, 64)
    once = jpeg(img)
    assert once.shape == img.shape and once.dtype == np.uint8 and not np.array_equal(once, img)
    assert np.abs(once.astype(int) - img).mean() < 3  # quality 90: close, not equal
