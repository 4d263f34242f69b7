"""The model registry: every network by name, DepthMaskNet's variants and the seed projects' baselines.

``build_model(name, **kw)`` builds any model of ``MODELS``; all share
``forward(bg, fg_bg) -> {"mask", "depth"}``.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

from torch import nn

from . import baselines
from .depthmasknet import VARIANTS, depthmasknet

MODELS: dict[str, Callable[..., nn.Module]] = {
    "depthmasknet": depthmasknet,
    **{f"depthmasknet_{v}": partial(depthmasknet, v) for v in VARIANTS if v != "small"},
    **baselines.BASELINES,
}


def build_model(name: str = "depthmasknet", **kw) -> nn.Module:
    """A model from ``MODELS`` by name; ``kw`` go to its constructor (for DepthMaskNet: ``cfg``,
    ``variant`` or ModelConfig fields)."""
    if name not in MODELS:
        raise ValueError(f"model: expected one of {sorted(MODELS)}, got {name!r}")
    return MODELS[name](**kw)
