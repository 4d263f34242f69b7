"""Losses: zero for a perfect prediction, growing with error, known values, bf16 autocast."""

from __future__ import annotations

import math
from dataclasses import replace

import pytest
import pytorch_msssim
import torch

from eva_depthmask.config import LossConfig
from eva_depthmask.losses import (
    DepthMaskLoss,
    depth_gradient_loss,
    depth_l1,
    depth_log_l1,
    depth_loss,
    depth_silog,
    depth_ssim_loss,
    image_gradients,
    mask_bce,
    mask_edge_bce,
    mask_loss,
    outline_band,
    soft_dice_loss,
    ssim_window,
)

PARTS = (
    *("mask_bce", "mask_dice"),
    *("depth_l1", "depth_ssim", "depth_grad", "depth_log", "depth_silog"),
)


def targets(b=2, h=32, w=32, seed=0):
    g = torch.Generator().manual_seed(seed)
    mask = torch.zeros(b, 1, h, w)
    mask[:, :, 8:20, 10:22] = 1
    ys = torch.linspace(0.2, 0.9, h).view(1, 1, h, 1).expand(b, 1, h, w)
    depth = (ys + 0.05 * torch.rand(b, 1, h, w, generator=g)).clamp(0, 1)
    depth = torch.where(mask > 0, torch.full_like(depth, 0.3), depth)
    return {"mask": mask, "depth": depth}


def perfect(t):
    return {"mask": (2 * t["mask"] - 1) * 100.0, "depth": t["depth"].clone()}


def test_perfect_prediction_costs_nothing():
    t = targets()
    out = DepthMaskLoss()(perfect(t), t)
    assert set(out) == {*PARTS, "mask", "depth", "total"}
    for key, value in out.items():
        assert value.item() == pytest.approx(0.0, abs=1e-5), key


def test_loss_grows_with_error():
    t = targets()
    loss = DepthMaskLoss()
    depth_totals, mask_totals = [], []
    for amount in (0.0, 0.05, 0.1, 0.2):
        p = perfect(t)
        p["depth"] = (t["depth"] + amount * torch.sin(torch.arange(32.0))).clamp(0, 1)
        depth_totals.append(loss(p, t)["depth"].item())
    for rows in (0, 2, 4, 8):  # flip more and more mask rows
        p = perfect(t)
        p["mask"][:, :, 8 : 8 + rows] *= -1
        mask_totals.append(loss(p, t)["mask"].item())
    assert depth_totals == sorted(depth_totals) and depth_totals[0] < depth_totals[-1]
    assert mask_totals == sorted(mask_totals) and mask_totals[0] < mask_totals[-1]


def test_known_values():
    mask = torch.zeros(1, 1, 4, 4)
    mask[..., :2, :] = 1  # 8 of 16 pixels
    zeros = torch.zeros(1, 1, 4, 4)
    assert mask_bce(zeros, mask).item() == pytest.approx(math.log(2))
    # p = 0.5 everywhere: Dice = (2 * 0.5 * 8 + 1) / (0.5 * 16 + 8 + 1) = 9 / 17.
    assert soft_dice_loss(zeros, mask).item() == pytest.approx(1 - 9 / 17)
    depth = torch.rand(1, 1, 8, 8, generator=torch.Generator().manual_seed(0))
    assert depth_l1(depth + 0.1, depth).item() == pytest.approx(0.1)
    # log L1 is relative: twice too far costs log 2 near and far alike; below eps counts as eps
    near_far = torch.tensor([0.05, 0.8]).view(1, 1, 1, 2)
    assert depth_log_l1(2 * near_far, near_far).item() == pytest.approx(math.log(2))
    assert depth_log_l1(torch.zeros(1, 1, 1, 1), torch.full((1, 1, 1, 1), 1e-3)).item() == 0
    # scale-invariant log error: a uniform ratio r costs sqrt(1 - lam) * log r, a shape error of
    # +-a in log depth costs a whatever lam; per image, then the batch mean
    assert depth_silog(2 * near_far, near_far, lam=1.0).item() == pytest.approx(0.0, abs=1e-5)
    assert depth_silog(2 * near_far, near_far, lam=0.0).item() == pytest.approx(math.log(2))
    assert depth_silog(2 * near_far, near_far).item() == pytest.approx(0.15**0.5 * math.log(2))
    bent = near_far * torch.tensor([1.5, 1 / 1.5]).view(1, 1, 1, 2)
    assert depth_silog(bent, near_far).item() == pytest.approx(math.log(1.5))
    pair = torch.cat([bent, 2 * near_far])
    expected = (math.log(1.5) + 0.15**0.5 * math.log(2)) / 2
    assert depth_silog(pair, torch.cat([near_far, near_far])).item() == pytest.approx(expected)
    ramp = torch.arange(8.0).view(1, 1, 1, 8) * 0.01  # adds 0.01 per column, nothing per row
    assert depth_gradient_loss(depth + ramp, depth).item() == pytest.approx(0.01)
    # Two flat images: SSIM is the luminance term (2ab + C1) / (a^2 + b^2 + C1), C1 = 0.01^2.
    # (pytorch-msssim's float32 window sums to 1 +- 1e-7, which moves the result by ~2e-5.)
    a, b, c1 = 0.2, 0.6, 1e-4
    expected = (1 - (2 * a * b + c1) / (a * a + b * b + c1)) / 2
    flat = torch.ones(1, 1, 16, 16)
    assert depth_ssim_loss(a * flat, b * flat).item() == pytest.approx(expected, abs=1e-4)


def test_ssim_over_a_batch_is_pytorch_msssims_batch_mean():
    # the maps run as the channels of one image (faster); the loss and its gradient must be those
    # of pytorch-msssim on the (B, 1, H, W) batch as given
    g = torch.Generator().manual_seed(3)
    pred = torch.rand(5, 1, 24, 20, generator=g, requires_grad=True)
    true = torch.rand(5, 1, 24, 20, generator=g)
    ours = depth_ssim_loss(pred, true)
    (grad,) = torch.autograd.grad(ours, pred)
    ref = (1 - pytorch_msssim.ssim(pred, true, data_range=1.0, win_size=7, win_sigma=1.5)) / 2
    (ref_grad,) = torch.autograd.grad(ref, pred)
    assert ours.item() == pytest.approx(ref.item(), abs=1e-6)
    torch.testing.assert_close(grad, ref_grad, rtol=1e-4, atol=1e-7)


def test_weights_combine_the_parts():
    t = targets()
    p = {"mask": torch.zeros_like(t["mask"]), "depth": torch.full_like(t["depth"], 0.5)}
    cfg = replace(
        LossConfig(),
        mask_dice=0.0,
        depth_ssim=2.0,
        depth_log=0.5,
        mask_weight=3.0,
        depth_weight=0.5,
    )
    out = DepthMaskLoss(cfg)(p, t)
    assert out["mask"].item() == pytest.approx(out["mask_bce"].item())
    depth = out["depth_l1"] + 2 * out["depth_ssim"] + out["depth_grad"]
    depth = depth + 0.5 * out["depth_log"] + out["depth_silog"]
    assert out["depth"].item() == pytest.approx(depth.item())
    assert out["total"].item() == pytest.approx(3 * out["mask"].item() + 0.5 * depth.item())


def test_small_images_shrink_the_ssim_window():
    assert ssim_window((64, 64), 7) == 7
    assert ssim_window((6, 40), 7) == 5
    assert ssim_window((1, 40), 7) == 1
    t = targets(h=5, w=6)
    out = DepthMaskLoss()(perfect(t), t)
    assert out["depth_ssim"].item() == pytest.approx(0.0, abs=1e-6)


def test_float32_under_bf16_autocast():
    t = targets()
    p = {"mask": torch.randn(2, 1, 32, 32), "depth": torch.rand(2, 1, 32, 32)}
    p16 = {k: v.to(torch.bfloat16) for k, v in p.items()}
    reference = DepthMaskLoss()({k: v.float() for k, v in p16.items()}, t)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = DepthMaskLoss()(p16, t)
    for key, value in out.items():
        assert value.dtype == torch.float32, key
        assert value.item() == pytest.approx(reference[key].item(), rel=1e-5), key


def test_silog_lambda_out_of_range_is_refused_by_name():
    with pytest.raises(ValueError, match="silog_lambda"):
        LossConfig(silog_lambda=1.5)


def test_shape_mismatch_and_missing_keys_raise():
    t = targets()
    with pytest.raises(ValueError, match="depth"):
        depth_l1(t["depth"][..., :-1], t["depth"])
    with pytest.raises(KeyError, match="depth"):
        DepthMaskLoss()({"mask": t["mask"]}, t)


def test_outline_band_is_the_ring_either_side_of_the_outline():
    mask = torch.zeros(1, 1, 12, 12)
    mask[..., 4:8, 3:9] = 1  # rows 4-7, columns 3-8
    band = outline_band(mask, 1)[0, 0]
    ring = torch.zeros(12, 12)
    ring[3:9, 2:10] = 1  # one pixel outside ...
    ring[5:7, 4:8] = 0  # ... and one inside the outline
    assert torch.equal(band, ring)
    assert outline_band(torch.zeros(1, 1, 5, 5), 2).sum() == 0


def test_mask_edge_bce_weighs_only_the_outline_band():
    t = targets()
    band = outline_band(t["mask"], 2)
    p = perfect(t)["mask"]
    far = p.clone()
    far[..., 28:, 28:] *= -1  # wrong, but far from the object
    near = p.clone()
    near[..., 8, 10:22] *= -1  # the object's top row wrong
    assert mask_edge_bce(far, t["mask"]).item() == pytest.approx(0.0, abs=1e-6)
    assert mask_bce(far, t["mask"]) > 1.0  # the image-wide BCE does see it
    per_pixel = torch.nn.functional.binary_cross_entropy_with_logits(
        near, t["mask"], reduction="none"
    )
    expected = (per_pixel * band).sum() / band.sum()
    assert mask_edge_bce(near, t["mask"]).item() == pytest.approx(expected.item())
    assert mask_edge_bce(near, t["mask"]) > 5 * mask_bce(near, t["mask"])
    empty = torch.zeros_like(t["mask"])
    assert mask_edge_bce(torch.zeros_like(empty), empty).item() == 0.0


def test_mask_edge_joins_the_mask_loss_only_when_weighted():
    t = targets()
    p = {"mask": torch.zeros_like(t["mask"]), "depth": torch.full_like(t["depth"], 0.5)}
    plain = DepthMaskLoss()(p, t)
    assert "mask_edge" not in plain  # the default's parts (and log columns) are as before
    out = DepthMaskLoss(replace(LossConfig(), mask_edge=2.0, mask_edge_px=1))(p, t)
    assert out["mask_edge"].item() == pytest.approx(mask_edge_bce(p["mask"], t["mask"], 1).item())
    assert out["mask"].item() == pytest.approx(plain["mask"].item() + 2 * out["mask_edge"].item())
    assert out["total"].item() == pytest.approx(plain["total"].item() + 2 * out["mask_edge"].item())
    for bad in (0, 1.5, True):
        with pytest.raises(ValueError, match="LossConfig.mask_edge_px"):
            LossConfig(mask_edge_px=bad)


# ---------------------------------------------------------------------------------------------------
# Cases that `make mutants` showed no test above would notice changing.


def test_image_gradients_are_forward_differences():
    x = torch.tensor([[0.0, 1.0, 3.0], [6.0, 10.0, 15.0], [7.0, 7.0, 7.0]]).view(1, 1, 3, 3)
    dx, dy = image_gradients(x)
    assert dx[0, 0].tolist() == [[1, 2], [4, 5], [0, 0]]
    assert dy[0, 0].tolist() == [[6, 9, 12], [1, -3, -8]]


def test_gradient_loss_adds_the_x_and_y_parts():
    depth = torch.rand(2, 1, 8, 8, generator=torch.Generator().manual_seed(1))
    cols = torch.arange(8.0).view(1, 1, 1, 8)
    rows = torch.arange(8.0).view(1, 1, 8, 1)
    assert depth_gradient_loss(depth + 0.02 * rows, depth).item() == pytest.approx(0.02)
    tilted = depth + 0.01 * cols + 0.02 * rows
    assert depth_gradient_loss(tilted, depth).item() == pytest.approx(0.03)


def test_ssim_window_is_odd_and_fits():
    # the largest odd size <= the window and both sides
    assert [ssim_window((n, 40), 7) for n in (2, 3, 4, 5, 8)] == [1, 3, 3, 5, 7]
    assert ssim_window((9, 9), 9) == 9 and ssim_window((40, 8), 11) == 7


def test_ssim_sigma_reaches_pytorch_msssim_from_the_config():
    g = torch.Generator().manual_seed(4)
    pred, true = torch.rand(2, 1, 16, 16, generator=g), torch.rand(2, 1, 16, 16, generator=g)

    def reference(sigma):
        value = pytorch_msssim.ssim(pred, true, data_range=1.0, win_size=7, win_sigma=sigma)
        return ((1 - value) / 2).item()

    assert reference(3.0) != pytest.approx(reference(1.5), abs=1e-4)  # the sigma matters here
    assert depth_ssim_loss(pred, true, sigma=3.0).item() == pytest.approx(reference(3.0), abs=1e-6)
    t = {"mask": torch.zeros_like(true), "depth": true}
    p = {"mask": torch.zeros_like(pred), "depth": pred}
    out = DepthMaskLoss(replace(LossConfig(), ssim_sigma=3.0))(p, t)
    assert out["depth_ssim"].item() == pytest.approx(reference(3.0), abs=1e-6)


def test_silog_lambda_and_edge_width_reach_their_parts_from_the_config():
    t = targets()
    p = {"mask": perfect(t)["mask"], "depth": 2 * t["depth"]}  # twice too far everywhere
    for lam, want in ((1.0, 0.0), (0.0, math.log(2)), (0.5, 0.5**0.5 * math.log(2))):
        out = DepthMaskLoss(replace(LossConfig(), silog_lambda=lam))(p, t)
        assert out["depth_silog"].item() == pytest.approx(want, abs=1e-5), lam
    # one pixel wrong, two rows above the object (rows 8-19): outside a 1 px band, inside a 2 px one
    p["mask"][0, 0, 6, 15] *= -1
    near = DepthMaskLoss(replace(LossConfig(), mask_edge=1.0, mask_edge_px=1))(p, t)
    wide = DepthMaskLoss(replace(LossConfig(), mask_edge=1.0, mask_edge_px=2))(p, t)
    assert near["mask_edge"].item() == pytest.approx(0.0, abs=1e-6)
    assert wide["mask_edge"].item() > 1e-3


def test_mask_part_adds_bce_and_dice_with_default_weights():
    mask = torch.zeros(1, 1, 4, 4)
    mask[..., :2, :] = 1
    zeros = torch.zeros(1, 1, 4, 4)
    out = DepthMaskLoss()(
        {"mask": zeros, "depth": zeros + 0.5}, {"mask": mask, "depth": zeros + 0.5}
    )
    # BCE at p = 0.5 is log 2; soft Dice 9 / 17 (test_known_values)
    assert out["mask"].item() == pytest.approx(math.log(2) + 8 / 17)
    assert out["total"].item() == pytest.approx(math.log(2) + 8 / 17, abs=1e-6)  # depth is exact


def test_mask_loss_and_depth_loss_weigh_known_parts():
    mask = torch.zeros(1, 1, 4, 4)
    mask[..., :2, :] = 1
    zeros = torch.zeros(1, 1, 4, 4)
    assert mask_loss(zeros, mask).item() == pytest.approx(math.log(2) + 8 / 17)
    assert mask_loss(zeros, mask, bce=2, dice=3).item() == pytest.approx(2 * math.log(2) + 24 / 17)
    # flat maps 0.2 and 0.6: L1 0.4, no gradient, log error log 3 at every pixel, and SSIM's
    # luminance term (test_known_values)
    a, b, c1 = 0.2, 0.6, 1e-4
    ssim = (1 - (2 * a * b + c1) / (a * a + b * b + c1)) / 2
    flat = torch.ones(1, 1, 16, 16)
    assert depth_loss(a * flat, b * flat).item() == pytest.approx(0.4 + ssim, abs=1e-4)
    got = depth_loss(a * flat, b * flat, l1=2, ssim=3, grad=5, log=7, silog=11, silog_lambda=0.5)
    want = 0.8 + 3 * ssim + 7 * math.log(3) + 11 * 0.5**0.5 * math.log(3)
    assert got.item() == pytest.approx(want, abs=1e-3)
    ramp = torch.arange(16.0).view(1, 1, 16, 1) * 0.01
    only_grad = depth_loss(a * flat + ramp, a * flat, l1=0, ssim=0, grad=2)
    assert only_grad.item() == pytest.approx(0.02)
    only_silog = depth_loss(b * flat, a * flat, l1=0, ssim=0, grad=0, silog=1)
    assert only_silog.item() == pytest.approx(0.15**0.5 * math.log(3), rel=1e-4)  # lambda 0.85


def test_depth_loss_defaults_to_l1_ssim_and_gradient_at_weight_one():
    g = torch.Generator().manual_seed(6)
    pred, true = torch.rand(2, 1, 12, 12, generator=g), torch.rand(2, 1, 12, 12, generator=g)
    ssim = (1 - pytorch_msssim.ssim(pred, true, data_range=1.0, win_size=7, win_sigma=1.5)) / 2
    dx, dy = pred.diff(dim=3) - true.diff(dim=3), pred.diff(dim=2) - true.diff(dim=2)
    want = (pred - true).abs().mean() + ssim + dx.abs().mean() + dy.abs().mean()
    assert depth_loss(pred, true).item() == pytest.approx(want.item(), abs=1e-6)


def test_depth_loss_window_reaches_ssim():
    g = torch.Generator().manual_seed(5)
    pred, true = torch.rand(1, 1, 16, 16, generator=g), torch.rand(1, 1, 16, 16, generator=g)
    for win in (3, 7):
        ref = (1 - pytorch_msssim.ssim(pred, true, data_range=1.0, win_size=win, win_sigma=1.5)) / 2
        got = depth_loss(pred, true, l1=0, ssim=1, grad=0, window=win)
        assert got.item() == pytest.approx(ref.item(), abs=1e-6), win


def test_every_part_names_the_map_whose_shapes_differ():
    a, b = torch.zeros(1, 1, 8, 8), torch.zeros(1, 1, 8, 7)
    for part in (mask_bce, soft_dice_loss, mask_edge_bce):
        with pytest.raises(ValueError, match=r"^mask: prediction \(1, 1, 8, 8\) and target"):
            part(a, b)
    for part in (depth_l1, depth_log_l1, depth_silog, depth_ssim_loss, depth_gradient_loss):
        with pytest.raises(ValueError, match=r"^depth: prediction \(1, 1, 8, 8\) and target"):
            part(a, b)
    t = targets()
    for missing in ({"mask": t["mask"]}, {"depth": t["depth"]}):
        key = "depth" if "mask" in missing else "mask"
        with pytest.raises(KeyError, match=f"DepthMaskLoss: pred and targets both need '{key}'"):
            DepthMaskLoss()(t, missing)  # the targets lack it, the prediction has it


# ---------------------------------------------------------------------------------------------------
# Samples without depth (has_depth False: photos made with teacher=None)


def mixed_batch(b=5, seed=4):
    """Targets of ``b`` samples, predictions with some error, and flags: samples 1 and 3 have no
    depth (their target is the zeros a depth-less dataset reads)."""
    t = targets(b=b, h=24, w=20, seed=seed)
    g = torch.Generator().manual_seed(seed + 1)
    has_depth = torch.tensor([True, False, True, False, True][:b])
    noise = 0.1 * torch.randn(b, 1, 24, 20, generator=g)
    pred = {
        "mask": torch.randn(b, 1, 24, 20, generator=g).requires_grad_(),
        "depth": (t["depth"] + noise).clamp(0, 1).requires_grad_(),  # a fair guess, for all
    }
    t["depth"][~has_depth] = 0
    return pred, t, has_depth


def depth_terms_by_hand(pred: torch.Tensor, true: torch.Tensor, lam: float = 0.85) -> dict:
    """Each depth term as the mean over the given samples of that sample's own value, written out
    one sample at a time (SSIM from pytorch-msssim on each map alone)."""
    rows = []
    for p, t in zip(pred, true, strict=True):
        p, t = p[None].float(), t[None].float()
        d = p.clamp_min(1e-3).log() - t.clamp_min(1e-3).log()
        ssim = pytorch_msssim.ssim(p, t, data_range=1.0, win_size=7, win_sigma=1.5)
        rows.append(
            {
                "depth_l1": (p - t).abs().mean(),
                "depth_ssim": (1 - ssim) / 2,
                "depth_grad": (p.diff(dim=-1) - t.diff(dim=-1)).abs().mean()
                + (p.diff(dim=-2) - t.diff(dim=-2)).abs().mean(),
                "depth_log": d.abs().mean(),
                "depth_silog": ((d**2).mean() - lam * d.mean() ** 2).sqrt(),
            }
        )
    return {k: torch.stack([r[k] for r in rows]).mean() for k in rows[0]}


def test_a_mixed_batch_scores_depth_on_the_samples_with_depth_alone():
    pred, t, has_depth = mixed_batch()
    out = DepthMaskLoss()(pred, {**t, "has_depth": has_depth})
    everyone = DepthMaskLoss()(pred, t)
    for key in ("mask_bce", "mask_dice", "mask"):  # the mask counts every sample
        assert torch.equal(out[key], everyone[key]), key
    valid = has_depth.nonzero().flatten()
    by_hand = depth_terms_by_hand(pred["depth"][valid], t["depth"][valid])
    for key, value in by_hand.items():
        assert out[key].item() == pytest.approx(value.item(), rel=1e-4, abs=1e-6), key
        assert out[key].item() != pytest.approx(everyone[key].item(), rel=1e-3), key
    out["total"].backward()
    grad = pred["depth"].grad
    assert not grad[~has_depth].any() and grad[has_depth].abs().sum() > 0
    assert pred["mask"].grad[~has_depth].abs().sum() > 0  # their mask still trains


def test_flags_as_floats_count_alike_and_a_wrong_count_is_refused():
    pred, t, has_depth = mixed_batch()
    as_bool = DepthMaskLoss()(pred, {**t, "has_depth": has_depth})
    as_float = DepthMaskLoss()(pred, {**t, "has_depth": has_depth.float()})
    assert all(torch.equal(as_bool[k], as_float[k]) for k in as_bool)
    with pytest.raises(ValueError, match="has_depth: expected 5 flags"):
        DepthMaskLoss()(pred, {**t, "has_depth": has_depth[:4]})


def test_an_all_depth_batch_is_bit_identical_to_a_call_without_flags():
    pred, t, _ = mixed_batch()
    plain = DepthMaskLoss()(pred, t)
    for flags in (torch.ones(5, dtype=torch.bool), torch.ones(5), [True] * 5):
        flagged = DepthMaskLoss()(pred, {**t, "has_depth": flags})
        assert flagged.keys() == plain.keys()
        for key in plain:
            assert torch.equal(flagged[key], plain[key]), key


def test_a_batch_without_depth_has_zero_depth_terms_and_no_depth_gradient():
    pred, t, _ = mixed_batch()
    with torch.no_grad():
        pred["depth"][0, 0, 0, 0] = float("nan")  # whatever the head says, nothing comes of it
    out = DepthMaskLoss()(pred, {**t, "has_depth": torch.zeros(5, dtype=torch.bool)})
    for key in ("depth_l1", "depth_ssim", "depth_grad", "depth_log", "depth_silog", "depth"):
        assert out[key].item() == 0.0 and out[key].dtype == torch.float32, key
    assert torch.equal(out["total"], out["mask"])  # depth_weight * 0
    out["total"].backward()
    assert pred["depth"].grad is not None and not pred["depth"].grad.any()  # zero, and no nan
    assert pred["mask"].grad.abs().sum() > 0


@pytest.mark.parametrize("flags", [[True, False, True, True, False], [False] * 5])
def test_a_flagged_batch_still_refuses_a_depth_of_another_shape(flags):
    pred, t, _ = mixed_batch()
    wrong = {**t, "depth": t["depth"][..., :-1], "has_depth": torch.tensor(flags)}
    with pytest.raises(ValueError, match=r"^depth: prediction \(5, 1, "):
        DepthMaskLoss()(pred, wrong)
