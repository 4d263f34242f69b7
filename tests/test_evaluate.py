"""Evaluation, the difference baseline, predict, the figures and the prediction browser."""

from __future__ import annotations

import io
import warnings
from dataclasses import replace

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

from eva_depthmask.apps import viz
from eva_depthmask.apps.browser import PredictionBrowser
from eva_depthmask.config import DataConfig, ModelConfig, TrainConfig
from eva_depthmask.evaluation.difference import DifferenceBaseline, fit_difference_threshold
from eva_depthmask.evaluation.evaluate import evaluate, evaluate_models, predictions
from eva_depthmask.evaluation.predictor import Predictor, predict
from eva_depthmask.evaluation.reference import comparison_table
from eva_depthmask.evaluation.robustness import robustness_sweep
from eva_depthmask.images import ImageError
from eva_depthmask.nets.depthmasknet import DepthMaskNet
from eva_depthmask.nets.tta import FlipAverage
from eva_depthmask.training import checkpoint as ckpt
from eva_depthmask.training.checkpoint import CheckpointError
from eva_depthmask.training.fit import fit
from eva_depthmask.training.loaders import TrainData

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
    # a version-1 checkpoint written before ModelConfig.object_depth, split_stem and match_exposure
    # existed: two head channels, one stem conv, no exposure matching, none of the fields
    state = ckpt.load(tmp_path / "run" / "best.pt")
    old = DepthMaskNet(replace(model.cfg, object_depth=False, split_stem=0.0, match_exposure=False))
    added = ("object_depth", "split_stem", "match_exposure")
    config = {k: v for k, v in state["model_config"]["kwargs"].items() if k not in added}
    v1 = {"name": "DepthMaskNet", "config": config}
    torch.save(
        {**state, "version": 1, "model": old.state_dict(), "model_config": v1}, tmp_path / "old.pt"
    )
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


def test_checkpoints_this_package_cannot_use_are_refused_by_name(tmp_path):
    cfg = TrainConfig(
        stages=((32, 1, 8),), ckpt_dir=str(tmp_path / "run"), num_workers=0, tensorboard=False
    )
    fit(tiny_model(), DATA, cfg)
    state = ckpt.load(tmp_path / "run" / "best.pt")
    v = ckpt.VERSION
    torch.save({**state, "version": v + 1}, tmp_path / "newer.pt")  # as a later release writes
    newer = rf"newer\.pt: checkpoint format {v + 1} is newer than this package's \({v}\)"
    for read in (ckpt.load, Predictor.from_checkpoint):
        with pytest.raises(CheckpointError, match=newer):
            read(tmp_path / "newer.pt")
    wider = DepthMaskNet(
        ModelConfig(widths=(8, 8, 8, 16), decoder_widths=(8, 8, 8), refine_width=4)
    )
    ckpt.save(tmp_path / "wider.pt", {**state, "model": wider.state_dict()})
    with pytest.raises(
        CheckpointError, match=r"wider\.pt: its weights do not fit the DepthMaskNet"
    ):
        Predictor.from_checkpoint(tmp_path / "wider.pt")
    ckpt.save(tmp_path / "unknown.pt", {**state, "model_config": {"name": "NoSuchNet"}})
    with pytest.raises(CheckpointError, match=r"unknown\.pt: .*unknown model 'NoSuchNet'"):
        Predictor.from_checkpoint(tmp_path / "unknown.pt")


def _shown(ax) -> np.ndarray:
    """The array an axis's (first) image draws."""
    return np.asarray(ax.images[0].get_array())


def _titles(axes) -> list[str]:
    return [ax.get_title() for ax in axes]


def test_sample_figures_draw_the_samples_given(stats):
    raw = [DATA.raw("test", 32).raw(i) for i in range(3)]
    strip = viz.quartet_strip(raw, title="three samples")
    assert _titles(strip.axes[:4]) == ["bg", "fg_bg", "mask", "depth (0 near, 1 far)"]
    assert strip.get_suptitle() == "three samples"
    for i, s in enumerate(raw):
        row = strip.axes[4 * i : 4 * i + 4]
        for ax, key in zip(row, ("bg", "fg_bg", "mask", "depth"), strict=True):
            np.testing.assert_array_equal(_shown(ax), s[key], err_msg=key)
        assert row[0].get_ylabel() == s["id"]

    overview = viz.dataset_overview(raw).axes
    heights = [sum(p.get_height() for p in ax.patches) for ax in overview[:2]]
    assert heights == [3 * 32 * 32, 3]  # every depth pixel, every sample's coverage
    cover = [s["mask"].mean() * 100 for s in raw]
    depth = [np.median(s["depth"][s["mask"] > 0]) for s in raw]
    np.testing.assert_allclose(overview[2].collections[0].get_offsets(), np.c_[depth, cover])

    contour = viz.mask_contour(raw[0]["fg_bg"], raw[0]["mask"], 1 - raw[0]["mask"]).axes[0]
    np.testing.assert_array_equal(_shown(contour), raw[0]["fg_bg"])
    assert [t.get_text() for t in contour.get_legend().get_texts()] == ["true", "predicted"]
    alone = viz.mask_contour(raw[0]["fg_bg"], raw[0]["mask"], title="x").axes[0]
    assert [t.get_text() for t in alone.get_legend().get_texts()] == ["true"]
    assert alone.get_title() == "x"

    columns = viz.compare_samples({"before": raw, "after": raw[::-1]}, key="depth")
    assert _titles(columns.axes[:2]) == ["before", "after"]
    for r in range(3):
        np.testing.assert_array_equal(_shown(columns.axes[2 * r]), raw[r]["depth"])
        np.testing.assert_array_equal(_shown(columns.axes[2 * r + 1]), raw[2 - r]["depth"])


def test_prediction_grid_draws_each_prediction_and_its_error(stats):
    test = DATA.dataset("test", 32, stats=stats)
    rows = predictions(tiny_model(), test, [0, 1], stats)
    assert rows[0]["pred_depth"].shape == (32, 32) and 0 <= rows[0]["mask_iou"] <= 1
    axes = viz.prediction_grid(rows).axes
    keys = ("bg", "fg_bg", "true_mask", "pred_mask", "true_depth", "pred_depth")
    for i, r in enumerate(rows):
        row = axes[7 * i : 7 * i + 7]
        for ax, key in zip(row, keys, strict=False):
            np.testing.assert_array_equal(_shown(ax), r[key], err_msg=key)
        np.testing.assert_allclose(_shown(row[6]), np.abs(r["pred_depth"] - r["true_depth"]))
        label = row[0].get_ylabel()
        assert label.startswith(r["id"]) and f"IoU {r['mask_iou']:.3f}" in label


def test_curve_figures_plot_the_values_given():
    train = [
        {"kind": "train", "global_step": str(i), "size": "32" if i < 3 else "64"}
        | {"loss_total": str(1.0 / i), "loss_mask": str(0.6 / i), "loss_depth": str(0.4 / i)}
        for i in range(1, 5)
    ]
    val = [
        {"kind": "val", "global_step": str(s), "size": "32", "mask_iou": iou, "depth_delta1": d1}
        for s, iou, d1 in ((2, "0.5", "0.6"), (4, "0.7", "0.8"))
    ]
    loss, quality = viz.training_curves(train + val).axes
    assert [line.get_label() for line in loss.lines[:3]] == ["total", "mask", "depth"]
    for line, scale in zip(loss.lines[:3], (1.0, 0.6, 0.4), strict=True):
        assert list(line.get_xdata()) == [1, 2, 3, 4]
        np.testing.assert_allclose(line.get_ydata(), [scale / i for i in range(1, 5)])
    assert list(loss.lines[3].get_xdata()) == [3, 3]  # the 64 px stage starts at step 3
    iou, delta1 = quality.lines[:2]
    assert (iou.get_label(), list(iou.get_xdata())) == ("mask_iou", [2, 4])
    assert list(iou.get_ydata()) == [0.5, 0.7] and list(delta1.get_ydata()) == [0.6, 0.8]

    robust = [
        {"model": m, "level": lv, "mask_iou": 0.1 * (i + 1) + 0.4 * j}
        for j, m in enumerate(("model", "difference"))
        for i, lv in enumerate(("none", "mild", "strong"))
    ]
    ax = viz.robustness_plot(robust).axes[0]
    bars = [p.get_height() for p in ax.patches]
    assert bars == pytest.approx([0.1, 0.2, 0.3, 0.5, 0.6, 0.7])
    assert [t.get_text() for t in ax.get_xticklabels()] == ["none", "mild", "strong"]
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["model", "difference"]
    assert ax.get_ylabel() == "mask_iou"
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
    rng = np.random.default_rng(0)
    bg, fg_bg = rng.integers(0, 256, (2, 20, 30, 3), dtype=np.uint8)
    uploads = []
    for image in (bg, fg_bg):
        buf = io.BytesIO()
        Image.fromarray(image).save(buf, "PNG")
        uploads.append(buf.getvalue())
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        axes = browser.figure_for_pair(*uploads).axes
    want = predict(model, bg, fg_bg, 32, stats)
    np.testing.assert_array_equal(_shown(axes[0]), fg_bg)  # the uploaded fg_bg, not the bg
    np.testing.assert_allclose(_shown(axes[1]), want["mask_prob"], atol=1e-6)
    np.testing.assert_allclose(_shown(axes[2]), want["depth"], atol=1e-6)
    assert _titles(axes[:3]) == ["your fg_bg + predicted outline", "mask probability", "depth"]
