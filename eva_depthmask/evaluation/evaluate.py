"""Evaluation: a model's metrics over a dataset (``evaluate``, several models in one pass with
``evaluate_models``), and samples with predictions for figures (``predictions``).

The difference baseline (difference.py), the robustness sweep (robustness.py) and ``Predictor`` for
new photos (predictor.py) sit beside it.

Samples without depth (``has_depth`` False: photos made with ``teacher=None``) count for the mask
metrics only; with none in the dataset every depth metric is nan (metrics.py), as is a per-sample
depth value of such a sample.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm

from ..augment.normalize import denormalize
from ..augment.quartet import get_transforms
from ..data.dataset import QuartetDataset
from ..metrics import MetricAccumulator
from ..tensors import resolve_device
from ..training.loaders import TrainData, default_workers, eval_batches
from ..training.precision import autocast


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
    device = resolve_device(device)
    workers = default_workers(device) if workers is None else workers
    # channels_last: the convolutions' fast layout on CPU (oneDNN) and GPU alike, ~2x here (B7)
    models = {name: _for_inference(model, device) for name, model in models.items()}
    accs = {name: MetricAccumulator(per_sample=True) for name in models}
    batches = eval_batches(dataset, batch_size, workers, pin_memory=device.type == "cuda")
    total = -(-len(dataset) // batch_size)
    for batch in tqdm(batches, "evaluate", total, leave=False, disable=not progress):
        bg, fg_bg = batch["bg"].to(device), batch["fg_bg"].to(device)
        true_mask, true_depth = batch["mask"].to(device), batch["depth"].to(device)
        ids, has_depth = list(batch["id"]), batch.get("has_depth")
        for name, model in models.items():
            with autocast(device, amp):
                pred = model(bg, fg_bg)
            pred = {k: v.float() for k, v in pred.items()}
            accs[name].update(pred, true_mask, true_depth, ids, has_depth)
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
        has_depth = s.get("has_depth", torch.tensor(True)).reshape(1)
        acc.update(
            {k: v.float() for k, v in pred.items()},
            s["mask"][None].to(device),
            s["depth"][None].to(device),
            has_depth=has_depth,
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
                "depth_rmse": m["depth_rmse"],  # nan without depth
                "has_depth": bool(has_depth),
            }
        )
    return rows


def _to_uint8(img: torch.Tensor) -> np.ndarray:
    return np.rint(img.permute(1, 2, 0).clamp(0, 1).numpy() * 255).astype(np.uint8)
