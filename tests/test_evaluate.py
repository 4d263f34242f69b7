"""Evaluation, the difference baseline, predict, the figures and the prediction browser."""

from __future__ import annotations

import io
import warnings
from dataclasses import replace

import numpy as np
import pytest
import torch
from matplotlib.figure import Figure
from PIL import Image
from torch import nn

from eva_depthmask import checkpoint as ckpt
from eva_depthmask import viz
from eva_depthmask.browser import PredictionBrowser
from eva_depthmask.checkpoint import CheckpointError
from eva_depthmask.composite import ImageError
from eva_depthmask.config import DataConfig, ModelConfig, TrainConfig
from eva_depthmask.evaluate import (
    DifferenceBaseline,
    Predictor,
    evaluate,
    evaluate_models,
    fit_difference_threshold,
    predict,
    predictions,
    robustness_sweep,
)
from eva_depthmask.loaders import TrainData
from eva_depthmask.model import DepthMaskNet
from eva_depthmask.reference import comparison_table
from eva_depthmask.train import fit
from eva_depthmask.tta import FlipAverage

DATA = TrainData(DataConfig(size=32, n_bg=6, n_fg=3, placements=1, image_format="png"))


@pytest.fixture(scope="module")
def stats():
    return DATA.stats()


def tiny_model() -> DepthMaskNet:
    torch.manual_seed(0)
    return DepthMaskNet(ModelConfig(widths=(8, 8, 8, 8), decoder_widths=(8, 8, 8), refine_width=4))


class Oracle(nn.Module):
    """Answers with the truth of whichever dataset sample has this exact fg_bg."""

    def __init__(self, dataset):
        super().__init__()
        self.samples = [dataset[i] for i in range(len(dataset))]

    def forward(self, bg, fg_bg):
        found = [next(s for s in self.samples if torch.equal(s["fg_bg"], x)) for x in fg_bg]
        mask = torch.stack([s["mask"] for s in found])
        return {"mask": mask * 40 - 20, "depth": torch.stack([s["depth"] for s in found])}


def test_perfect_predictor_gives_perfect_metrics(stats):
    test = DATA.dataset("test", 32, stats=stats)
    metrics, rows = evaluate(Oracle(test), test, batch_size=5, progress=False)
    assert metrics["mask_iou"] == 1.0 and metrics["mask_dice"] == 1.0 and metrics["mask_acc"] == 1.0
    assert (
        metrics["depth_rmse"] == 0.0
        and metrics["depth_abs_rel"] == 0.0
        and metrics["depth_delta1"] == 1.0
    )
    assert len(rows) == len(test) and {r["id"] for r in rows} == set(test.ids)


def test_one_pass_over_several_models_equals_one_pass_each_with_or_without_workers(stats):
    test = DATA.dataset("test", 32, stats=stats)
    threshold = fit_difference_threshold(DATA.dataset("val", 32, stats=stats), stats)
    nets = {"model": tiny_model(), "difference": DifferenceBaseline(threshold, stats)}
    together = evaluate_models(nets, test, batch_size=3, device="cpu", progress=False)
    forked = evaluate_models(nets, test, batch_size=3, device="cpu", progress=False, workers=2)
    for name, net in nets.items():
        alone = evaluate(net, test, batch_size=3, device="cpu", progress=False, workers=0)
        assert together[name] == alone and forked[name] == alone, name
    assert together["model"][0]["mask_iou"] != together["difference"][0]["mask_iou"]


def channels_last(model: nn.Module) -> bool:
    convs = [p for p in model.parameters() if p.dim() == 4]
    return bool(convs) and all(p.is_contiguous(memory_format=torch.channels_last) for p in convs)


def test_inference_runs_channels_last_and_answers_the_same(stats):
    test = DATA.dataset("test", 32, stats=stats)
    bg, fg_bg = (torch.stack([test[i][k] for i in range(len(test))]) for k in ("bg", "fg_bg"))
    model = tiny_model().eval()
    with torch.no_grad():
        before = model(bg, fg_bg)
    assert not channels_last(model)
    evaluate(model, test, device="cpu", progress=False)
    assert channels_last(model)
    with torch.no_grad():
        after = model(bg, fg_bg)
    for key in ("mask", "depth"):
        assert torch.allclose(before[key], after[key], atol=1e-5), key


def test_difference_baseline_is_exact_on_clean_composites_and_breaks_under_perturbation(stats):
    threshold = fit_difference_threshold(DATA.dataset("val", 32, stats=stats), stats)
    assert 0 < threshold < 0.05
    rows = robustness_sweep(
        DifferenceBaseline(threshold, stats), DATA, 32, stats, threshold=threshold
    )
    iou = {(r["model"], r["level"]): r["mask_iou"] for r in rows}
    assert iou[("difference", "none")] == 1.0  # PNG composites: fg_bg == bg outside the object
    assert (
        iou[("difference", "mild")] < 0.5
        and iou[("difference", "strong")] < iou[("difference", "none")]
    )
    assert not any(k.startswith("depth") for r in rows if r["model"] == "difference" for k in r)


def test_predict_round_trips_sizes_and_modes(tmp_path):
    model = tiny_model()
    rng = np.random.default_rng(0)
    bg = rng.integers(0, 256, (50, 70, 3), dtype=np.uint8)
    Image.fromarray(bg).convert("L").save(tmp_path / "bg_gray.png")
    rgba = np.dstack([bg, np.full((50, 70), 255, np.uint8)])
    out = predict(model, tmp_path / "bg_gray.png", rgba, size=32)
    assert out["mask"].shape == out["depth"].shape == out["mask_prob"].shape == (50, 70)
    assert out["mask"].dtype == bool and out["depth"].min() >= 0 and out["depth"].max() <= 1
    with pytest.warns(UserWarning, match="bg is 35x25 but fg_bg is 70x50; resizing bg"):
        out2 = predict(model, Image.fromarray(bg).resize((35, 25)), Image.fromarray(bg), size=32)
    assert out2["depth"].shape == (50, 70)
    with pytest.raises(ImageError, match=r"missing\.jpg: no such file"):
        predict(model, tmp_path / "missing.jpg", bg)


class ColumnRamp(nn.Module):
    """Depth that grows left to right, 0 to 1; mask logits that are fg_bg's red channel."""

    def forward(self, bg, fg_bg):
        ramp = torch.linspace(0, 1, fg_bg.shape[-1]).expand_as(fg_bg[:, :1])
        return {"mask": fg_bg[:, :1], "depth": ramp}


def test_flip_average_mirrors_back_and_averages_the_two_views():
    bg, fg_bg = torch.randn(2, 2, 3, 16, 24).unbind(0)
    out = FlipAverage(ColumnRamp())(bg, fg_bg)
    assert torch.allclose(out["depth"], torch.full_like(out["depth"], 0.5))  # ramp + mirrored ramp
    assert torch.equal(out["mask"], fg_bg[:, :1])  # mirrored back before averaging: unchanged

    model = tiny_model().eval()
    with torch.no_grad():
        plain, plain_mirror = model(bg, fg_bg), model(bg.flip(-1), fg_bg.flip(-1))
        tta, tta_mirror = (
            FlipAverage(model)(b, f) for b, f in ((bg, fg_bg), (bg.flip(-1), fg_bg.flip(-1)))
        )
    for k in ("mask", "depth"):
        assert not torch.allclose(plain_mirror[k].flip(-1), plain[k], atol=1e-4)
        assert torch.allclose(tta_mirror[k].flip(-1), tta[k], atol=1e-6)  # mirror-equivariant
        assert tta[k].dtype == torch.float32


def test_predictor_from_checkpoint_and_foreign_files(tmp_path):
    cfg = TrainConfig(
        stages=((32, 1, 8),), ckpt_dir=str(tmp_path / "run"), num_workers=0, tensorboard=False
    )
    model = tiny_model()
    fit(model, DATA, cfg)
    predictor = Predictor.from_checkpoint(tmp_path / "run" / "best.pt")
    assert predictor.size == 32 and predictor.stats == DATA.stats()
    assert channels_last(predictor.model) and not predictor.model.training
    for a, b in zip(
        predictor.model.state_dict().values(), model.state_dict().values(), strict=True
    ):
        assert torch.equal(a, b.cpu())
    assert predictor(np.zeros((40, 40, 3), np.uint8), np.zeros((40, 40, 3), np.uint8))[
        "mask"
    ].shape == (40, 40)
    flipped = Predictor.from_checkpoint(tmp_path / "run" / "best.pt", flip=True)
    assert isinstance(flipped.model, FlipAverage) and not flipped.model.training
    pair = np.random.default_rng(0).integers(0, 256, (2, 40, 40, 3), dtype=np.uint8)
    mirrored = flipped(pair[0, :, ::-1], pair[1, :, ::-1])["depth"][:, ::-1]
    assert np.allclose(flipped(*pair)["depth"], mirrored, atol=1e-5)
    # a checkpoint written before ModelConfig.object_depth, split_stem and match_exposure existed:
    # two head channels, one stem conv, no exposure matching, none of the fields
    state = ckpt.load(tmp_path / "run" / "best.pt")
    old = DepthMaskNet(replace(model.cfg, object_depth=False, split_stem=0.0, match_exposure=False))
    state["model"] = old.state_dict()
    for field in ("object_depth", "split_stem", "match_exposure"):
        del state["model_config"]["config"][field]
    ckpt.save(tmp_path / "old.pt", state)
    loaded = Predictor.from_checkpoint(tmp_path / "old.pt").model
    assert loaded.head.out_channels == 2
    assert isinstance(loaded.encoder.stem[0], nn.Sequential)  # conv-BN-ReLU, not a SplitStem
    assert not loaded.cfg.match_exposure and model.cfg.match_exposure
    torch.save(model.state_dict(), tmp_path / "weights_only.pt")
    with pytest.raises(CheckpointError, match="weights_only.pt: not an eva_depthmask checkpoint"):
        Predictor.from_checkpoint(tmp_path / "weights_only.pt")
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(CheckpointError, match="notes.txt: unreadable checkpoint"):
        Predictor.from_checkpoint(tmp_path / "notes.txt")


def test_every_figure_function_returns_a_figure(stats):
    test = DATA.dataset("test", 32, stats=stats)
    raw = [DATA.raw("test", 32).raw(i) for i in range(3)]
    rows = predictions(tiny_model(), test, [0, 1], stats)
    log = [
        {
            "kind": "train",
            "global_step": str(i),
            "size": "32",
            "loss_total": "1.0",
            "loss_mask": "0.5",
            "loss_depth": "0.5",
        }
        for i in range(1, 5)
    ] + [
        {"kind": "val", "global_step": "4", "size": "32", "mask_iou": "0.5", "depth_delta1": "0.6"}
    ]
    robust = [
        {"model": m, "level": lv, "mask_iou": 0.5}
        for m in ("model", "difference")
        for lv in ("none", "mild")
    ]
    figures = [
        viz.quartet_strip(raw),
        viz.dataset_overview(raw),
        viz.prediction_grid(rows),
        viz.mask_contour(raw[0]["fg_bg"], raw[0]["mask"], rows[0]["pred_mask"]),
        viz.training_curves(log),
        viz.robustness_plot(robust),
        viz.compare_samples({"a": raw, "b": raw}),
    ]
    assert all(isinstance(f, Figure) for f in figures)
    assert rows[0]["pred_depth"].shape == (32, 32) and 0 <= rows[0]["mask_iou"] <= 1
    assert "**this model**" in comparison_table({"mask_iou": 0.9}, 64)


def test_prediction_browser_builds_sorts_and_takes_uploads(stats):
    model = tiny_model()
    browser = PredictionBrowser(model, DATA, 32, stats, max_samples=6)
    table = browser.table("val")
    assert len(table) == 6 and browser.index.max == 5
    worst = browser.order("val", "worst mask IoU")
    assert [table[i]["mask_iou"] for i in worst] == sorted(r["mask_iou"] for r in table)
    browser.sort.value = "worst depth RMSE"
    browser.index.value = 3
    third_worst = browser.order("val", "worst depth RMSE")[3]
    assert browser.shown.axes[0].get_ylabel().startswith(table[third_worst]["id"])
    buf = io.BytesIO()
    Image.fromarray(np.zeros((20, 30, 3), np.uint8)).save(buf, "PNG")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert isinstance(browser.figure_for_pair(buf.getvalue(), buf.getvalue()), Figure)
