"""The fused input: fusion modes, the shift-tolerant difference, exposure matching."""

from __future__ import annotations

import math
from dataclasses import replace

import pytest
import torch

from eva_depthmask.config import ModelConfig
from eva_depthmask.nets.depthmasknet import DepthMaskNet
from eva_depthmask.nets.fusion import (
    FUSION_CHANNELS,
    LOGDIFF_SCALE,
    exposure_fit,
    fuse_pair,
    match_exposure,
    shift_tolerant_difference,
)


def test_fusion_modes_stack_the_pair():
    bg = torch.full((1, 3, 2, 2), 3.0)
    fg_bg = torch.full((1, 3, 2, 2), 1.0)
    per_channel = {
        "concat": [3, 3, 3, 1, 1, 1],
        "diff": [1, 1, 1, -2, -2, -2],
        "concat_diff": [3, 3, 3, 1, 1, 1, -2, -2, -2],
        "concat_absdiff": [3, 3, 3, 1, 1, 1, -2, -2, -2, 2, 2, 2],
    }
    for mode, values in per_channel.items():
        fused = fuse_pair(bg, fg_bg, mode)
        assert fused.shape == (1, FUSION_CHANNELS[mode], 2, 2)
        assert fused[0, :, 0, 0].tolist() == values, mode
    logdiff = fuse_pair(bg, fg_bg, "concat_logdiff")[0, :, 0, 0]
    assert logdiff[:9].tolist() == per_channel["concat_diff"]
    assert logdiff[9:].tolist() == pytest.approx([math.log(1 + 2 / LOGDIFF_SCALE)] * 3)
    shift = fuse_pair(bg, fg_bg, "concat_logdiff_shift")  # flat images: no shift helps
    assert shift.shape == (1, 13, 2, 2)
    assert torch.equal(shift[:, :12], fuse_pair(bg, fg_bg, "concat_logdiff"))
    assert shift[0, 12, 0, 0].item() == pytest.approx(math.log(1 + 2 / LOGDIFF_SCALE))
    with pytest.raises(ValueError, match="fusion"):
        fuse_pair(bg, fg_bg, "sum")


def test_logdiff_tells_one_level_from_none():
    # a faint alpha edge changes a pixel by about one uint8 level; equal pixels give exactly 0
    bg = torch.zeros(1, 3, 1, 2)
    fg_bg = bg.clone()
    fg_bg[..., 1] = 1 / 255 / 0.25  # one level, normalised by a typical std
    mag = fuse_pair(bg, fg_bg, "concat_logdiff")[0, 9:, 0]
    assert mag[:, 0].tolist() == [0, 0, 0] and (mag[:, 1] > 0.5).all()


def moved_background_pair(dy: int, dx: int) -> tuple[torch.Tensor, torch.Tensor]:
    """A textured bg, and fg_bg = that bg moved by (dy, dx) px with a flat square pasted at
    rows and columns 12-19 (a background shot that does not line up with the composite)."""
    bg = torch.randn(1, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    fg_bg = torch.roll(bg, (dy, dx), dims=(2, 3))
    fg_bg[..., 12:20, 12:20] = torch.tensor([3.0, -3.0, 3.0]).view(1, 3, 1, 1)
    return bg, fg_bg


def test_shift_tolerant_difference_ignores_a_moved_background():
    bg, fg_bg = moved_background_pair(1, -2)
    plain = (fg_bg - bg).abs().amax(1, keepdim=True)
    e = shift_tolerant_difference(bg, fg_bg, radius=2)
    assert e.shape == (1, 1, 32, 32)
    inner = (slice(None), slice(None), slice(3, -3), slice(3, -3))  # away from rolled edges
    background = torch.ones_like(e, dtype=torch.bool)
    background[..., 12:20, 12:20] = False
    assert plain[inner][background[inner]].mean() > 0.5  # |d| lights up the whole room
    assert e[inner][background[inner]].max() == 0  # one shift lines the background up
    assert e[..., 12:20, 12:20].min() > 1.0  # the object matches no nearby bg colour
    # the radius bounds the shifts it forgives; radius 0 is the plain difference
    assert e.sum() < shift_tolerant_difference(bg, fg_bg, radius=1).sum()
    assert torch.equal(shift_tolerant_difference(bg, fg_bg, radius=0), plain)
    with pytest.raises(ValueError, match="radius"):
        shift_tolerant_difference(bg, fg_bg, radius=-1)


def test_shift_tolerant_difference_needs_every_channel_at_one_shift():
    # red matches one pixel to the left, green one pixel to the right: no single shift fits both
    bg = torch.zeros(1, 3, 1, 3)
    bg[0, 0, 0, 0], bg[0, 1, 0, 2] = 1.0, 1.0
    fg_bg = torch.zeros(1, 3, 1, 3)
    fg_bg[0, :2, 0, 1] = 1.0
    assert shift_tolerant_difference(bg, fg_bg, radius=1)[0, 0, 0, 1].item() == 1.0


def relit_pair(seed: int = 0) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """A textured bg; fg_bg = that bg under another exposure per channel (gain and offset), with a
    flat object pasted over rows and columns 8-19 of 32. Returns bg, fg_bg and the object's mask."""
    g = torch.Generator().manual_seed(seed)
    bg = torch.randn(2, 3, 32, 32, generator=g)
    gain = torch.tensor([1.3, 0.8, 1.1]).view(1, 3, 1, 1)
    offset = torch.tensor([0.4, -0.2, 0.1]).view(1, 3, 1, 1)
    fg_bg = gain * bg + offset
    fg_bg[..., 8:20, 8:20] = torch.tensor([2.5, -2.5, 2.5]).view(1, 3, 1, 1)
    on = torch.zeros(32, 32, dtype=torch.bool)
    on[8:20, 8:20] = True
    return bg, fg_bg, on


def test_match_exposure_takes_a_change_of_light_out_of_the_difference():
    bg, fg_bg, on = relit_pair()
    matched = match_exposure(bg, fg_bg)
    plain = (fg_bg - bg).abs()
    left = (fg_bg - matched).abs()
    assert plain[..., ~on].mean() > 0.2  # the new exposure lights up the whole room
    assert left[..., ~on].max() < 1e-4  # the fit ignored the object: the room matches again
    assert left[..., on].mean() > 1.0  # and the object still stands out
    # a pair that already agrees outside the object comes back as it was
    same = bg.clone()
    same[..., on] = fg_bg[..., on]
    assert torch.allclose(match_exposure(bg, same), bg, atol=1e-5)


def test_match_exposure_keeps_dtype_layout_and_gradients():
    bg, fg_bg, _ = relit_pair()
    last = bg.contiguous(memory_format=torch.channels_last).requires_grad_(True)
    out = match_exposure(last, fg_bg)
    assert out.is_contiguous(memory_format=torch.channels_last)
    out.sum().backward()
    assert torch.allclose(last.grad[:, 0], torch.full_like(last.grad[:, 0], 1.3), atol=1e-4)
    assert match_exposure(bg.bfloat16(), fg_bg.bfloat16()).dtype == torch.bfloat16
    # a slope steeper than any change of light is the object's doing: it is capped at 2
    _, slope = exposure_fit(bg, 4 * bg)
    assert slope.shape == (2, 3, 1, 1) and torch.all(slope == 2.0)


def test_depthmasknet_with_match_exposure_ignores_the_background_shot_exposure():
    bg, fg_bg, _ = relit_pair()
    darker = 0.7 * bg - 0.3  # the same background shot, exposed otherwise
    for match, expect_same in ((True, True), (False, False)):
        torch.manual_seed(0)
        model = DepthMaskNet(replace(ModelConfig(), match_exposure=match)).eval()
        with torch.no_grad():
            a, b = model(bg, fg_bg), model(darker, fg_bg)
        same = all(torch.allclose(a[k], b[k], atol=1e-4) for k in ("mask", "depth"))
        assert same == expect_same
