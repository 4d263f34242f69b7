"""Evaluation: metrics over a dataset, the image-difference baseline, the robustness sweep, and
``predict`` for a user's own (bg, fg_bg) pair.

The difference baseline thresholds ``max_c |fg_bg - bg|``: exact on clean composites (fg_bg equals bg
outside the object), helpless once the background shot differs from the composite's. It is the number
any learned model must beat, and the robustness sweep shows where it breaks.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch import nn
from torch.utils.data import DataLoader
from tqdm.auto import tqdm

from ..augment.transforms import denormalize, get_transforms
from ..composite import ImageError, open_image, to_rgb
from ..config import ModelConfig, from_dict, robustness_preset
from ..data.dataset import QuartetDataset
from ..metrics import MetricAccumulator
from ..nets import baselines
from ..nets.depthmasknet import DepthMaskNet
from ..nets.tta import FlipAverage
from ..training import checkpoint as ckpt
from ..training.loaders import TrainData, default_workers, eval_batches
from ..training.precision import autocast

LEVELS = ("none", "mild", "strong")


def evaluate(
    model: nn.Module,
    dataset,
    batch_size: int = 64,
    device: str | None = None,
    amp: bool = True,
    progress: bool = True,
    workers: int | None = None,
) -> tuple[dict, list[dict]]:
    """``(metrics, per_sample_rows)`` of ``model`` on a dataset of tensor samples (any split).

    ``per_sample_rows`` is a list of dicts (id, mask_iou, depth_rmse, ...), ready for ``csv.DictWriter``.
    ``workers``: loader processes (None: fit()'s default for the device, none on a CPU).
    """
    return evaluate_models({"model": model}, dataset, batch_size, device, amp, progress, workers)[
        "model"
    ]


@torch.no_grad()
def evaluate_models(
    models: dict[str, nn.Module],
    dataset,
    batch_size: int = 64,
    device: str | None = None,
    amp: bool = True,
    progress: bool = True,
    workers: int | None = None,
) -> dict[str, tuple[dict, list[dict]]]:
    """``evaluate`` for several models in one pass: each batch is read and augmented once."""
    device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    workers = default_workers(device) if workers is None else workers
    # channels_last: the convolutions' fast layout on CPU (oneDNN) and GPU alike, ~2x here (B7)
    models = {name: _for_inference(model, device) for name, model in models.items()}
    accs = {name: MetricAccumulator(per_sample=True) for name in models}
    batches = eval_batches(dataset, batch_size, workers, pin_memory=device.type == "cuda")
    total = -(-len(dataset) // batch_size)
    for batch in tqdm(batches, "evaluate", total, leave=False, disable=not progress):
        bg, fg_bg = batch["bg"].to(device), batch["fg_bg"].to(device)
        true_mask, true_depth = batch["mask"].to(device), batch["depth"].to(device)
        ids = list(batch["id"])
        for name, model in models.items():
            with autocast(device, amp):
                pred = model(bg, fg_bg)
            pred = {k: v.float() for k, v in pred.items()}
            accs[name].update(pred, true_mask, true_depth, ids)
    return {name: (acc.compute(), _sample_rows(acc)) for name, acc in accs.items()}


def _for_inference(model: nn.Module, device: torch.device | str) -> nn.Module:
    """``model`` (in place) on ``device``, its weights channels_last, in eval mode."""
    return model.to(device, memory_format=torch.channels_last).eval()


def _sample_rows(acc: MetricAccumulator) -> list[dict]:
    table = acc.per_sample()
    return [
        {"id": sid, **{k: float(v[i]) for k, v in table.items() if k != "id"}}
        for i, sid in enumerate(table["id"])
    ]


class DifferenceBaseline(nn.Module):
    """Mask = ``max over RGB of |fg_bg - bg| > threshold`` (in [0, 1] units, on denormalised inputs).

    It has no depth: it predicts a constant 0.5, and only its mask metrics mean anything.
    """

    def __init__(self, threshold: float, stats: dict | None = None):
        super().__init__()
        self.threshold, self.stats = float(threshold), stats

    def difference(self, bg: torch.Tensor, fg_bg: torch.Tensor) -> torch.Tensor:
        """``(B, 1, H, W)`` largest per-channel absolute difference, in [0, 1]."""
        return (
            (denormalize(fg_bg, self.stats) - denormalize(bg, self.stats))
            .abs()
            .amax(1, keepdim=True)
        )

    def forward(self, bg: torch.Tensor, fg_bg: torch.Tensor) -> dict:
        diff = self.difference(bg.float(), fg_bg.float())
        logits = torch.where(diff > self.threshold, 20.0, -20.0)
        return {"mask": logits, "depth": torch.full_like(diff, 0.5)}


def fit_difference_threshold(
    dataset, stats: dict | None = None, bins: int = 1024, max_samples: int = 2000
) -> float:
    """The threshold that maximises the baseline's IoU over (up to ``max_samples`` of) ``dataset``."""
    probe = DifferenceBaseline(0.0, stats)
    fg_hist, bg_hist = (
        torch.zeros(bins, dtype=torch.float64),
        torch.zeros(bins, dtype=torch.float64),
    )
    seen = 0
    for batch in DataLoader(dataset, 64):
        diff = probe.difference(batch["bg"], batch["fg_bg"]).clamp(0, 1)
        idx = (diff * (bins - 1)).round().long().flatten()
        inside = batch["mask"].flatten() > 0.5
        fg_hist += torch.bincount(idx[inside], minlength=bins).double()
        bg_hist += torch.bincount(idx[~inside], minlength=bins).double()
        seen += len(batch["id"])
        if seen >= max_samples:
            break
    # predicting "object" above bin t: TP = fg above t, FP = bg above t, FN = fg at or below t
    tp = fg_hist.flip(0).cumsum(0).flip(0)
    fp = bg_hist.flip(0).cumsum(0).flip(0)
    iou = tp / (fg_hist.sum() + fp).clamp_min(1)
    best = int(iou.argmax())
    return (best - 0.5) / (bins - 1)  # between bin best-1 and best: values in bin best are "object"


def robustness_sweep(
    model: nn.Module,
    data: TrainData,
    size: int,
    stats: dict,
    split: str = "test",
    threshold: float | None = None,
    levels=LEVELS,
    device: str | None = None,
    max_samples: int | None = None,
) -> list[dict]:
    """The same evaluation under each background-perturbation level, for the model and the difference
    baseline (threshold chosen on clean val data unless given): one row per (model, level)."""
    if threshold is None:
        threshold = fit_difference_threshold(data.dataset("val", size, stats=stats), stats)
    baseline = DifferenceBaseline(threshold, stats)
    rows = []
    for level in levels:
        ds = data.raw(split, size)
        ds.transform = get_transforms(split, size, robustness_preset(level), stats)
        if max_samples:
            ds = torch.utils.data.Subset(ds, range(min(max_samples, len(ds))))
        nets = {"model": model, "difference": baseline}
        results = evaluate_models(nets, ds, device=device, progress=False)
        for name, (metrics, _) in results.items():
            if name == "difference":
                metrics = {k: v for k, v in metrics.items() if k.startswith("mask_")}
            rows.append({"model": name, "level": level, **metrics})
    return rows


# ---------------------------------------------------------------------------------------------------
# Trained models and user photos


def build_from_config(model_config: dict) -> nn.Module:
    """Rebuild an architecture from a checkpoint's ``model_config`` (class name + its config)."""
    name, cfg = model_config["name"], model_config.get("config")
    if name == "DepthMaskNet":
        # a checkpoint written before object_depth, split_stem or match_exposure existed has none
        older = {"object_depth": False, "split_stem": 0.0, "match_exposure": False}
        return DepthMaskNet(from_dict(ModelConfig, {**older, **cfg}))
    for cls in baselines.BASELINES.values():
        if cls.__name__ == name:
            return cls()
    raise ckpt.CheckpointError(f"checkpoint names an unknown model class {name!r}")


@dataclass
class Predictor:
    """A trained model with what it needs at inference: normalisation stats and its training size."""

    model: nn.Module
    stats: dict | None
    size: int

    @classmethod
    def from_checkpoint(
        cls, path: str | Path, device: str | None = None, flip: bool = False
    ) -> Predictor:
        """Load a checkpoint written by ``fit()``; ``flip``: average each prediction with the
        mirrored pair's (``tta.FlipAverage``, twice the inference time)."""
        state = ckpt.load(path)
        for key in ("model", "model_config", "train_config"):
            if key not in state:
                raise ckpt.CheckpointError(
                    f"{path}: checkpoint has no {key!r}; it was not written by fit()"
                )
        try:
            model = build_from_config(state["model_config"])
        except ckpt.CheckpointError as e:
            raise ckpt.CheckpointError(f"{path}: {e}") from e
        try:
            model.load_state_dict(state["model"])
        except RuntimeError as e:  # another shape than the named architecture's (hand-assembled)
            problems = [line.strip() for line in str(e).splitlines()[1:] if line.strip()]
            first = problems[0] if problems else str(e)
            first = first if len(first) <= 160 else first[:157] + "..."
            raise ckpt.CheckpointError(
                f"{path}: its weights do not fit the {state['model_config']['name']} it names "
                f"({len(problems)} kind(s) of mismatch; {first})"
            ) from e
        device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        size = state["train_config"]["stages"][
            min(state["stage"], len(state["train_config"]["stages"]) - 1)
        ][0]
        model = FlipAverage(model) if flip else model
        return cls(_for_inference(model, device), state.get("stats"), int(size))

    def __call__(self, bg, fg_bg) -> dict:
        return predict(self.model, bg, fg_bg, self.size, self.stats)


def _as_rgb(image, name: str) -> np.ndarray:
    if isinstance(image, (str, Path)):
        image = open_image(image)
    try:
        return to_rgb(image, name)
    except (ImageError, ValueError, TypeError) as e:
        raise ImageError(f"{name}: expected a file path, a PIL image or a uint8 array ({e})") from e


@torch.no_grad()
def predict(
    model: nn.Module, bg, fg_bg, size: int = 64, stats: dict | None = None, threshold: float = 0.5
) -> dict:
    """Mask and depth for one pair of any size and mode (file paths, PIL images or uint8 arrays).

    Both images are resized to ``size`` x ``size`` for the model, and the outputs back to fg_bg's size.
    Returns ``{"mask_prob": float (H, W), "mask": bool (H, W), "depth": float (H, W) in [0, 1]}``.
    """
    bg, fg_bg = _as_rgb(bg, "bg"), _as_rgb(fg_bg, "fg_bg")
    h, w = fg_bg.shape[:2]
    if bg.shape[:2] != (h, w):
        warnings.warn(
            f"bg is {bg.shape[1]}x{bg.shape[0]} but fg_bg is {w}x{h}; resizing bg to match",
            stacklevel=2,
        )
        bg = np.asarray(Image.fromarray(bg).resize((w, h), Image.Resampling.BILINEAR))
    t = get_transforms("test", size, stats=stats)
    blank = np.zeros((h, w), np.uint8)
    sample = t(
        {"bg": bg, "fg_bg": fg_bg, "mask": blank, "depth": blank.astype(np.float32), "id": "user"}
    )
    device = next(model.parameters(), torch.zeros(())).device
    model.eval()
    out = model(sample["bg"][None].to(device), sample["fg_bg"][None].to(device))
    prob = torch.sigmoid(out["mask"].float())
    back = {
        k: torch.nn.functional.interpolate(v, (h, w), mode="bilinear", align_corners=False)[0, 0]
        .cpu()
        .numpy()
        for k, v in (("mask_prob", prob), ("depth", out["depth"].float()))
    }
    return {
        "mask_prob": back["mask_prob"],
        "mask": back["mask_prob"] > threshold,
        "depth": back["depth"].clip(0, 1),
    }


def evaluate_dataset(
    model: nn.Module, source, split: str, size: int, stats: dict | None
) -> tuple[dict, list[dict]]:
    """``evaluate`` on a dataset folder/zip (``source`` a path) or synthetic settings (a DataConfig)."""
    ds = TrainData(source).raw(split, size) if not isinstance(source, QuartetDataset) else source
    ds.transform = get_transforms(split if split != "all" else "test", size, stats=stats)
    return evaluate(model, ds)


@torch.no_grad()
def predictions(model: nn.Module, dataset, indices, stats: dict | None = None) -> list[dict]:
    """Samples with the model's predictions, as numpy, for figures (``viz.prediction_grid``)."""
    device = next(model.parameters(), torch.zeros(())).device
    model.eval()
    rows = []
    for i in indices:
        s = dataset[int(i)]
        pred = model(s["bg"][None].to(device), s["fg_bg"][None].to(device))
        acc = MetricAccumulator()
        acc.update(
            {k: v.float() for k, v in pred.items()},
            s["mask"][None].to(device),
            s["depth"][None].to(device),
        )
        m = acc.compute()
        rows.append(
            {
                "id": s["id"],
                "bg": _to_uint8(denormalize(s["bg"], stats)),
                "fg_bg": _to_uint8(denormalize(s["fg_bg"], stats)),
                "true_mask": s["mask"][0].numpy(),
                "true_depth": s["depth"][0].numpy(),
                "pred_mask": torch.sigmoid(pred["mask"].float())[0, 0].cpu().numpy(),
                "pred_depth": pred["depth"].float()[0, 0].cpu().numpy(),
                "mask_iou": m["mask_iou"],
                "depth_rmse": m["depth_rmse"],
            }
        )
    return rows


def _to_uint8(img: torch.Tensor) -> np.ndarray:
    return np.rint(img.permute(1, 2, 0).clamp(0, 1).numpy() * 255).astype(np.uint8)
