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


# ---------------------------------------------------------------------------------------------------
# Boundaries and per-sample values that `make mutants` showed no test above would notice changing.


def masks(*rows: str) -> torch.Tensor:
    """``(B, 1, 1, W)`` {0, 1} from strings of 0/1, one string per sample."""
    return torch.tensor([[[[float(c) for c in r]]] for r in rows])


def test_mask_thresholds_are_strict_on_both_sides():
    # logit 0 is probability 0.5: not foreground; a small positive logit is
    true = masks("1111")
    m = batch_metrics({"mask": torch.tensor([[[[0.0, 0.5, 0.0, 0.5]]]]), "depth": true}, true, true)
    assert m["mask_iou"] == pytest.approx(2 / 4)
    # a target pixel at exactly 0.5 is background, as a probability of exactly 0.5 is
    half = torch.tensor([[[[0.5, 1.0, 0.5, 1.0]]]])
    m = batch_metrics({"mask": logits(masks("0101")), "depth": true}, half, true)
    assert m["mask_iou"] == m["mask_acc"] == 1.0


def test_per_sample_mask_metrics_by_hand():
    true = masks("1100", "0000", "1000", "0001", "0000")
    pred = masks("1010", "0000", "1000", "0010", "0001")
    # per sample (tp, fp, fn, tn): (1,1,1,1), (0,0,0,4), (1,0,0,3), (0,1,1,2), (0,1,0,3)
    pair = {"mask": logits(pred), "depth": torch.full_like(true, 0.5)}
    per = per_sample_metrics(pair, true, pair["depth"])
    assert per["mask_iou"].tolist() == pytest.approx([1 / 3, 1.0, 1.0, 0.0, 0.0])
    assert per["mask_dice"].tolist() == pytest.approx([2 / 4, 1.0, 1.0, 0.0, 0.0])
    assert per["mask_acc"].tolist() == pytest.approx([2 / 4, 1.0, 1.0, 2 / 4, 3 / 4])
    m = batch_metrics(pair, true, pair["depth"])
    assert m["mask_iou_sample"] == pytest.approx((1 / 3 + 2) / 5)
    assert m["mask_iou"] == pytest.approx(2 / (2 + 3 + 2))  # micro: tp 2, fp 3, fn 2
    assert m["mask_dice"] == pytest.approx(4 / (4 + 3 + 2))
    assert m["mask_acc"] == pytest.approx((2 + 13) / 20)  # tn 13


def test_micro_iou_and_dice_are_zero_whenever_nothing_overlaps():
    # tp + fp - fn = 0 and tp - fp + fn = 0: a sum with a sign wrong would call these empty
    for pred, true, want_iou, want_dice in (
        ("10", "01", 0.0, 0.0),  # tp 0, fp 1, fn 1
        ("11", "10", 0.5, 2 / 3),  # tp 1, fp 1, fn 0
        ("10", "11", 0.5, 2 / 3),  # tp 1, fp 0, fn 1
    ):
        p, t = logits(masks(pred)), masks(true)
        m = batch_metrics({"mask": p, "depth": t}, t, t)
        assert (m["mask_iou"], m["mask_dice"]) == pytest.approx((want_iou, want_dice)), pred
        assert iou(p, t) == pytest.approx(want_iou), pred
    empty = masks("00")
    assert iou(logits(empty), empty) == 1.0


def test_per_sample_metrics_of_a_single_sample():
    true = masks("0110")
    pair = {"mask": logits(masks("0100")), "depth": torch.full_like(true, 0.5)}
    per = per_sample_metrics(pair, true, pair["depth"])
    assert per["mask_iou"].tolist() == [0.5] and per["mask_acc"].tolist() == [0.75]
    acc = MetricAccumulator(per_sample=True)
    acc.update(pair, true, pair["depth"], ids=["only"])
    assert acc.per_sample()["id"] == ["only"]
    assert acc.per_sample()["mask_iou"].tolist() == [0.5]
    assert MetricAccumulator(per_sample=True).per_sample() == {"id": []}


def test_a_ratio_of_exactly_the_threshold_fails_it():
    # 0.625 / 0.5 = 1.25 and 0.78125 / 0.5 = 1.5625 = 1.25^2 exactly, in float32 and float64;
    # delta_k counts max(p / t, t / p) < 1.25^k, so a ratio on the threshold does not count
    t = torch.tensor([0.5, 0.625, 0.5, 0.5]).view(1, 1, 1, 4)
    p = torch.tensor([0.625, 0.5, 0.78125, 0.5]).view(1, 1, 1, 4)  # 1.25 both ways, 1.5625, 1
    m = batch_metrics({"mask": t * 0, "depth": p}, t * 0, t)
    assert (m["depth_delta1"], m["depth_delta2"], m["depth_delta3"]) == (1 / 4, 3 / 4, 1.0)
    assert (m["depth_delta1_seed"], m["depth_delta2_seed"]) == (1 / 4, 3 / 4)
    exact = torch.tensor([0.625, 0.5, 0.78125]).view(1, 1, 1, 3)
    half = torch.full_like(exact, 0.5)
    assert delta_accuracy(exact, half, 1) == pytest.approx(1 / 3)
    assert delta_accuracy(exact, half, 2) == pytest.approx(2 / 3)


def test_seed_delta_fails_too_far_and_too_near_alike():
    t = torch.tensor([0.2, 0.5, 0.8, 0.5]).view(1, 1, 1, 4)
    # 2x too far, 2x too near, right, right
    p = torch.tensor([0.4, 0.25, 0.8, 0.5]).view(1, 1, 1, 4)
    m = batch_metrics({"mask": t * 0, "depth": p}, t * 0, t)
    assert m["depth_delta1_seed"] == m["depth_delta1"] == pytest.approx(2 / 4)
    assert m["depth_delta3_seed"] == m["depth_delta3"] == pytest.approx(2 / 4)  # 2 > 1.953


def test_aligned_delta_counts_pixels_too_near_after_scaling():
    # t / p = (1, 1, 1.25): median 1, so the aligned map is p itself and its third pixel is
    # 1.25x too near: on the threshold, which fails delta1
    t = torch.tensor([0.5, 0.5, 0.625]).view(1, 1, 1, 3)
    p = torch.full_like(t, 0.5)
    per = per_sample_metrics({"mask": t * 0, "depth": p}, t * 0, t)
    assert per["depth_scale_log"].tolist() == [0.0]
    assert per["depth_delta1_aligned"].tolist() == pytest.approx([2 / 3])
    # the same shape error, 1.5x too near, with the scale 2x off besides
    t = torch.tensor([0.2, 0.4, 0.6]).view(1, 1, 1, 3)
    p = 0.5 * torch.tensor([0.2, 0.4, 0.4]).view(1, 1, 1, 3)  # t / p = (2, 2, 3): median 2
    per = per_sample_metrics({"mask": t * 0, "depth": p}, t * 0, t)
    assert per["depth_delta1_aligned"].tolist() == pytest.approx([2 / 3])
    assert per["depth_abs_rel_aligned"].tolist() == pytest.approx([(0.2 / 0.6) / 3])


def test_scale_bias_is_a_mean_over_samples():
    true = torch.tensor([0.2, 0.4, 0.6]).view(1, 1, 1, 3).repeat(3, 1, 1, 1)
    pred = true * torch.tensor([0.5, 0.5, 0.25]).view(3, 1, 1, 1)  # log s = log 2, log 2, log 4
    m = batch_metrics({"mask": true * 0, "depth": pred}, true * 0, true)
    assert m["depth_scale_bias"] == pytest.approx(math.log(2) * 4 / 3)
    assert m["depth_scale_log"] == pytest.approx(math.log(2) * 4 / 3)


def test_delta_accuracy_defaults_to_delta1_and_takes_its_floor():
    t = torch.tensor([0.5, 0.5, 0.05]).view(1, 1, 1, 3)
    p = torch.tensor([0.5, 0.7, 0.02]).view(1, 1, 1, 3)  # ratios 1, 1.4, 2.5
    assert delta_accuracy(p, t) == pytest.approx(1 / 3)  # delta1; delta2 would be 2 / 3
    # floored at 0.1, 0.02 and 0.05 are the same depth
    assert delta_accuracy(p, t, eps=0.1) == pytest.approx(2 / 3)


def test_errors_name_the_kind_of_map():
    a, b = torch.zeros(1, 1, 4, 4), torch.zeros(1, 1, 4, 3)
    with pytest.raises(
        ValueError, match=r"^mask: prediction \(1, 1, 4, 4\) and target \(1, 1, 4, 3\)"
    ):
        iou(a, b)
    for depth_metric in (rmse, delta_accuracy):
        with pytest.raises(ValueError, match=r"^depth: prediction"):
            depth_metric(a, b)
    with pytest.raises(RuntimeError, match=r"^per_sample\(\): create"):
        MetricAccumulator().per_sample()


def test_reduce_keeps_float64_sums_and_merge_keeps_every_sample():
    pred, tm, td = random_batch(6)
    acc = accumulate(pred, tm, td, 6)
    acc.reduce(lambda t: t.float())  # a returning reduction in another dtype
    assert acc.state().dtype == torch.float64
    first = accumulate({k: v[:2] for k, v in pred.items()}, tm[:2], td[:2], 2)
    first.merge(accumulate({k: v[2:] for k, v in pred.items()}, tm[2:], td[2:], 2))
    per = first.per_sample()
    whole = accumulate(pred, tm, td, 6).per_sample()
    assert per["id"] == ["0", "1", "0", "1", "2", "3"]  # ids number each accumulator's samples
    for k in whole:
        if k != "id":
            assert torch.equal(per[k], whole[k]), k


def test_a_reduction_that_loses_a_sum_is_an_error_not_a_metric():
    acc = accumulate(*random_batch(2), 2)
    acc.reduce(lambda t: t[:-1])
    with pytest.raises(ValueError):
        acc.compute()


# ---------------------------------------------------------------------------------------------------
# Samples without depth (has_depth False): the mask counts them, the depth metrics do not


def test_depth_metrics_of_a_mixed_set_are_those_of_its_samples_with_depth():
    pred, tm, td = random_batch(8, seed=5)
    has_depth = torch.tensor([1, 0, 0, 1, 1, 0, 1, 1], dtype=torch.bool)
    td[~has_depth] = 0  # what a depth-less dataset reads
    acc = MetricAccumulator(per_sample=True)
    for s in (slice(0, 3), slice(3, 8)):  # in two batches, flags as 0/1 floats in one
        flags = has_depth[s] if s.start else has_depth[s].float()
        acc.update({k: v[s] for k, v in pred.items()}, tm[s], td[s], has_depth=flags)
    mixed = acc.compute()
    keep = has_depth.nonzero().flatten()
    valid = batch_metrics({k: v[keep] for k, v in pred.items()}, tm[keep], td[keep])
    everyone = batch_metrics(pred, tm, td)
    for k, v in mixed.items():
        want = valid[k] if k.startswith("depth_") else everyone[k]
        assert v == pytest.approx(want, rel=1e-12, abs=1e-12), k
    assert mixed["depth_rmse"] != pytest.approx(everyone["depth_rmse"], rel=1e-3)
    per = acc.per_sample()
    assert all(math.isnan(x) for x in per["depth_rmse"][~has_depth].tolist())
    assert not per["depth_rmse"][has_depth].isnan().any()
    assert not per["mask_iou"].isnan().any()


def test_with_no_depth_at_all_depth_metrics_are_nan_and_mask_metrics_unchanged():
    pred, tm, td = random_batch(4, seed=6)
    none = batch_metrics(pred, tm, td * 0, has_depth=torch.zeros(4, dtype=torch.bool))
    everyone = batch_metrics(pred, tm, td)
    assert none.keys() == everyone.keys()
    for k, v in none.items():
        assert math.isnan(v) if k.startswith("depth_") else v == everyone[k], k
    flagged = per_sample_metrics(pred, tm, td, has_depth=torch.tensor([True, False, True, True]))
    plain = per_sample_metrics(pred, tm, td)
    assert flagged["depth_mae"][1].isnan() and torch.equal(
        flagged["depth_mae"][2:], plain["depth_mae"][2:]
    )


def test_all_true_flags_give_the_metrics_of_no_flags_bit_for_bit():
    pred, tm, td = random_batch(6, seed=7)
    assert batch_metrics(pred, tm, td, has_depth=torch.ones(6)) == batch_metrics(pred, tm, td)
