"""Metrics on hand-made cases with known answers; the accumulator is batch- and split-invariant."""

from __future__ import annotations

import math

import pytest
import torch

from eva_depthmask.metrics import (
    SUM_KEYS,
    MetricAccumulator,
    batch_metrics,
    delta_accuracy,
    iou,
    per_sample_metrics,
    rmse,
)


def logits(pred_mask: torch.Tensor) -> torch.Tensor:
    return (pred_mask.float() * 2 - 1) * 5


def test_mask_metrics_on_a_hand_made_case():
    true = torch.zeros(1, 1, 4, 4)
    true[..., 0, :] = 1  # 4 true pixels in row 0
    pred = torch.zeros(1, 1, 4, 4)
    pred[..., 0, :2] = 1  # 2 of them found
    pred[..., 3, 3] = 1  # and 1 false positive
    m = batch_metrics({"mask": logits(pred), "depth": torch.zeros(1, 1, 4, 4)}, true, true * 0)
    # tp = 2, fp = 1, fn = 2, tn = 11
    assert m["mask_iou"] == pytest.approx(2 / 5)
    assert m["mask_dice"] == pytest.approx(4 / 7)
    assert m["mask_acc"] == pytest.approx(13 / 16)
    assert iou(logits(pred), true) == pytest.approx(2 / 5)


def test_micro_iou_differs_from_the_mean_of_per_sample_iou():
    true = torch.zeros(2, 1, 4, 4)
    pred = torch.zeros(2, 1, 4, 4)
    true[0, 0, 0, 0] = pred[0, 0, 0, 0] = pred[0, 0, 0, 1] = 1  # sample 0: tp 1, fp 1 -> 0.5
    true[1, 0, 1:3, :] = pred[1, 0, 1:3, :] = 1  # sample 1: tp 8 -> 1.0
    pair = {"mask": logits(pred), "depth": torch.zeros(2, 1, 4, 4)}
    m = batch_metrics(pair, true, true * 0)
    assert m["mask_iou"] == pytest.approx(9 / 10)
    assert m["mask_iou_sample"] == pytest.approx(0.75)
    per = per_sample_metrics(pair, true, true * 0)
    assert per["mask_iou"].tolist() == pytest.approx([0.5, 1.0])


def test_empty_masks_predicted_empty_are_perfect():
    z = torch.zeros(1, 1, 3, 3)
    m = batch_metrics({"mask": logits(z), "depth": z + 0.5}, z, z + 0.5)
    assert m["mask_iou"] == m["mask_dice"] == m["mask_iou_sample"] == m["mask_acc"] == 1.0


def test_depth_metrics_on_a_uniform_ratio():
    true = torch.linspace(0.2, 0.8, 16).view(1, 1, 4, 4)
    pred = 1.2 * true  # ratio 1.2 < 1.25 everywhere
    m = batch_metrics({"mask": torch.zeros_like(true), "depth": pred}, true * 0, true)
    assert m["depth_abs_rel"] == pytest.approx(0.2)
    assert m["depth_log10"] == pytest.approx(math.log10(1.2))
    assert m["depth_mae"] == pytest.approx(0.2 * true.mean().item())
    assert m["depth_rmse"] == pytest.approx(0.2 * true.pow(2).mean().sqrt().item())
    assert m["depth_delta1"] == m["depth_delta2"] == m["depth_delta3"] == 1.0
    # Ratio 1.6: above 1.25 and 1.25^2 = 1.5625, below 1.25^3 = 1.953.
    assert delta_accuracy(1.6 * true, true, 1) == 0.0
    assert delta_accuracy(1.6 * true, true, 2) == 0.0
    assert delta_accuracy(1.6 * true, true, 3) == 1.0
    assert rmse(pred, true) == pytest.approx(m["depth_rmse"])


def test_epsilon_floor_and_the_seed_convention():
    true = torch.tensor([0.0, 0.05, 0.05, 0.5]).view(1, 1, 2, 2)
    pred = torch.tensor([0.0, 0.08, 0.05, 0.5]).view(1, 1, 2, 2)
    m = batch_metrics({"mask": torch.zeros_like(true), "depth": pred}, true * 0, true)
    # Standard: 0 vs 0 is a ratio of 1 after the floor; 0.08 / 0.05 = 1.6 fails delta1 and delta2.
    assert m["depth_delta1"] == pytest.approx(3 / 4)
    assert m["depth_delta2"] == pytest.approx(3 / 4)
    assert m["depth_abs_rel"] == pytest.approx(0.6 / 4)
    # Seed convention: both clamped to [0.1, 1] first, so 0.08 vs 0.05 becomes 0.1 vs 0.1.
    assert m["depth_delta1_seed"] == 1.0
    assert all(math.isfinite(v) for v in m.values())


def test_median_scaling_separates_the_scale_error_from_the_shape_error():
    # Sample 0: the right shape at half the scale. Sample 1: half the scale, and its third pixel
    # 1.5x too far besides; t / p = (2, 2, 4/3) has median 2, so aligned it is (0.2, 0.4, 0.9).
    true = torch.tensor([[0.2, 0.4, 0.6], [0.2, 0.4, 0.6]]).view(2, 1, 1, 3)
    pred = 0.5 * torch.tensor([[0.2, 0.4, 0.6], [0.2, 0.4, 0.9]]).view(2, 1, 1, 3)
    pair = {"mask": torch.zeros_like(true), "depth": pred}
    per = per_sample_metrics(pair, true * 0, true)
    assert per["depth_scale_log"].tolist() == pytest.approx([math.log(2), math.log(2)])
    assert per["depth_abs_rel_aligned"].tolist() == pytest.approx([0.0, 0.5 / 3])
    assert per["depth_delta1_aligned"].tolist() == pytest.approx([1.0, 2 / 3])
    assert per["depth_rmse_aligned"].tolist() == pytest.approx([0.0, (0.3**2 / 3) ** 0.5])
    assert per["depth_delta1"].tolist() == [0.0, 0.0]  # unaligned, every pixel is off by >= 4/3
    m = batch_metrics(pair, true * 0, true)
    assert m["depth_scale_log"] == pytest.approx(math.log(2))  # a mean over samples
    assert m["depth_abs_rel_aligned"] == pytest.approx(0.5 / 6)  # a mean over pixels
    assert m["depth_abs_rel"] == pytest.approx((0.5 * 5 + 0.25) / 6)


def test_scale_bias_keeps_the_sign_that_scale_log_drops():
    # Sample 0 predicted at half the true depth (too near: t / p = 2), sample 1 at twice (too far).
    true = torch.tensor([0.2, 0.4, 0.6]).view(1, 1, 1, 3).repeat(2, 1, 1, 1)
    pred = true * torch.tensor([0.5, 2.0]).view(2, 1, 1, 1)
    pair = {"mask": torch.zeros_like(true), "depth": pred}
    per = per_sample_metrics(pair, true * 0, true)
    assert per["depth_scale_bias"].tolist() == pytest.approx([math.log(2), -math.log(2)])
    assert per["depth_scale_log"].tolist() == pytest.approx([math.log(2), math.log(2)])
    assert batch_metrics(pair, true * 0, true)["depth_scale_bias"] == pytest.approx(0.0, abs=1e-12)
    assert batch_metrics({"mask": pair["mask"][:1], "depth": pred[:1]}, true[:1] * 0, true[:1])[
        "depth_scale_bias"
    ] == pytest.approx(math.log(2))


def random_batch(n, seed=0, size=8):
    g = torch.Generator().manual_seed(seed)
    true_mask = (torch.rand(n, 1, size, size, generator=g) > 0.7).float()
    true_depth = torch.rand(n, 1, size, size, generator=g)
    pred = {
        "mask": torch.randn(n, 1, size, size, generator=g),
        "depth": (true_depth + 0.2 * torch.randn(n, 1, size, size, generator=g)).clamp(0, 1),
    }
    return pred, true_mask, true_depth


def accumulate(pred, true_mask, true_depth, batch):
    acc = MetricAccumulator(per_sample=True)
    for i in range(0, true_mask.shape[0], batch):
        s = slice(i, i + batch)
        acc.update({k: v[s] for k, v in pred.items()}, true_mask[s], true_depth[s])
    return acc


def test_accumulator_is_batch_invariant():
    data = random_batch(10)
    results = [accumulate(*data, batch).compute() for batch in (1, 3, 4, 10)]
    expected = {"mask_iou", "mask_dice", "mask_acc", "mask_iou_sample", "depth_rmse", "depth_mae"}
    expected |= {"depth_abs_rel", "depth_log10"} | {f"depth_delta{k}" for k in (1, 2, 3)}
    expected |= {f"depth_delta{k}_seed" for k in (1, 2, 3)} | {"depth_scale_log"}
    expected |= {"depth_scale_bias"}
    expected |= {f"depth_{k}_aligned" for k in ("rmse", "abs_rel", "delta1")}
    assert set(results[0]) == expected
    for r in results[1:]:
        assert r.keys() == results[0].keys()
        for k in r:
            assert r[k] == pytest.approx(results[0][k], rel=1e-12, abs=1e-12), k


def test_reduce_and_merge_equal_one_process():
    pred, tm, td = random_batch(10)
    whole = accumulate(pred, tm, td, 10).compute()
    first = accumulate({k: v[:4] for k, v in pred.items()}, tm[:4], td[:4], 2)
    second = accumulate({k: v[4:] for k, v in pred.items()}, tm[4:], td[4:], 3)
    # What an all-reduce across two processes computes, without starting processes:
    other = second.state().clone()
    first.reduce(lambda t: t.add_(other))
    assert first.state().shape == (len(SUM_KEYS),)
    for k, v in first.compute().items():
        assert v == pytest.approx(whole[k], rel=1e-12), k
    merged = accumulate({k: v[:4] for k, v in pred.items()}, tm[:4], td[:4], 4)
    merged.merge(second)
    assert merged.compute() == pytest.approx(whole, rel=1e-12)
    assert len(merged.per_sample()["id"]) == 10


def test_per_sample_mode_finds_the_worst_sample():
    pred, tm, td = random_batch(6)
    pred["depth"][4] = 1 - td[4]  # sample 4 is far off
    acc = MetricAccumulator(per_sample=True)
    ids = [f"s{i}" for i in range(6)]
    acc.update({k: v[:3] for k, v in pred.items()}, tm[:3], td[:3], ids=ids[:3])
    acc.update({k: v[3:] for k, v in pred.items()}, tm[3:], td[3:], ids=ids[3:])
    per = acc.per_sample()
    assert per["id"] == ids
    assert per["depth_rmse"].shape == (6,)
    assert per["id"][int(per["depth_rmse"].argmax())] == "s4"
    assert per["depth_rmse"][4].item() == pytest.approx(rmse(pred["depth"][4:5], td[4:5]))
    with pytest.raises(RuntimeError, match="per_sample=True"):
        MetricAccumulator().per_sample()


def test_shape_mismatch_raises():
    pred, tm, td = random_batch(2)
    with pytest.raises(ValueError, match="depth"):
        MetricAccumulator().update(pred, tm, td[..., :-1])


def test_an_empty_accumulator_gives_every_key_and_nan_depth():
    empty = MetricAccumulator().compute()
    assert empty.keys() == batch_metrics(*random_batch(2)).keys()
    assert all(math.isnan(v) for k, v in empty.items() if k.startswith("depth_"))
