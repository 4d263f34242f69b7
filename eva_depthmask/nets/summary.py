"""Model summaries with torchinfo, fed both inputs.

torchsummary, which the seed projects used, takes one ``input_size`` and mis-reports two-input
models (one seed printed a forward/backward size of 31,581,162,963,630 MB). torchinfo runs the real
``forward(bg, fg_bg)`` on ``input_data=[bg, fg_bg]`` and counts multiply-adds per layer.
"""

from __future__ import annotations

from collections.abc import Iterable

import torch
import torchinfo
from torch import nn

from .registry import build_model

COLUMNS = ("model", "params", "size", "macs_per_pair", "forward_backward_mb", "params_mb")


def model_summary(
    model: nn.Module, size: int | tuple[int, int] = 64, batch_size: int = 1, device: str = "cpu"
) -> dict:
    """Params, multiply-adds and memory of ``model`` on a ``(batch_size, 3, H, W)`` pair.

    Returns ``{"params", "trainable_params", "macs", "macs_per_pair", "input_mb",
    "forward_backward_mb", "params_mb", "total_mb", "size"}``; sizes in MB of 10^6 bytes.
    """
    h, w = (size, size) if isinstance(size, int) else size
    bg = torch.zeros(batch_size, 3, h, w, device=device)
    fg_bg = torch.zeros(batch_size, 3, h, w, device=device)
    was_training = model.training
    stats = torchinfo.summary(model, input_data=[bg, fg_bg], verbose=0, device=device, mode="eval")
    model.train(was_training)
    mb = 1e6
    input_mb = stats.total_input / mb
    fwd_bwd_mb = stats.total_output_bytes / mb
    params_mb = stats.total_param_bytes / mb
    return {
        "size": h if h == w else (h, w),
        "params": int(stats.total_params),
        "trainable_params": int(stats.trainable_params),
        "macs": int(stats.total_mult_adds),
        "macs_per_pair": int(stats.total_mult_adds) // batch_size,
        "input_mb": input_mb,
        "forward_backward_mb": fwd_bwd_mb,
        "params_mb": params_mb,
        "total_mb": input_mb + fwd_bwd_mb + params_mb,
    }


def summary_table(
    names: Iterable[str] | None = None, sizes: Iterable[int] = (64, 224), device: str = "cpu"
) -> list[dict]:
    """One row per (model name, size): ``{"model", "size", "params", "macs_per_pair", ...}``."""
    from .registry import MODELS

    rows = []
    for name in names if names is not None else MODELS:
        model = build_model(name).to(device)
        for size in sizes:
            rows.append({"model": name, **model_summary(model, size, device=device)})
    return rows


def format_table(rows: list[dict]) -> str:
    """A markdown table: params once per model, then G multiply-adds and memory per size."""
    sizes = sorted({r["size"] for r in rows})
    head = ["model", "params (M)"]
    head += [f"GMACs @{s}" for s in sizes] + [f"fwd+bwd MB @{s}" for s in sizes]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for name in dict.fromkeys(r["model"] for r in rows):
        by_size = {r["size"]: r for r in rows if r["model"] == name}
        first = next(iter(by_size.values()))
        cells = [name, f"{first['params'] / 1e6:.3f}"]
        cells += [f"{by_size[s]['macs_per_pair'] / 1e9:.3f}" if s in by_size else "" for s in sizes]
        cells += [f"{by_size[s]['forward_backward_mb']:.1f}" if s in by_size else "" for s in sizes]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def print_summary_table(
    names: Iterable[str] | None = None, sizes: Iterable[int] = (64, 224), device: str = "cpu"
) -> list[dict]:
    """Print ``format_table(summary_table(...))`` and return the rows."""
    rows = summary_table(names, sizes, device)
    print(format_table(rows))
    return rows
