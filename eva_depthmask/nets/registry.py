"""The model registry: every network by name, DepthMaskNet's variants and the seed projects' baselines.

``build_model(name, **kw)`` builds any model of ``MODELS``; all share
``forward(bg, fg_bg) -> {"mask", "depth"}``. ``identity(model)`` says what a model is, as a
checkpoint stores it: ``{"name", "kwargs"}`` with ``build_model(name, **kwargs)`` building the same
architecture, however the model was built (nets/identity.py); ``from_identity`` builds it.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

from torch import nn

from ..config import to_dict
from . import baselines
from .depthmasknet import VARIANTS, DepthMaskNet, depthmasknet

MODELS: dict[str, Callable[..., nn.Module]] = {
    "depthmasknet": depthmasknet,
    **{f"depthmasknet_{v}": partial(depthmasknet, v) for v in VARIANTS if v != "small"},
    **baselines.BASELINES,
}

# The name each registered class is rebuilt by, from its instances' ``init_kwargs``: a variant is
# a DepthMaskNet config, so every DepthMaskNet is "depthmasknet" with its config's fields.
NAMES: dict[type, str] = {
    DepthMaskNet: "depthmasknet",
    **{cls: name for name, cls in baselines.BASELINES.items()},
}


def build_model(name: str = "depthmasknet", **kw) -> nn.Module:
    """A model from ``MODELS`` by name; ``kw`` go to its constructor (for DepthMaskNet: ``cfg``,
    ``variant`` or ModelConfig fields)."""
    if name not in MODELS:
        raise ValueError(f"model: expected one of {sorted(MODELS)}, got {name!r}")
    return MODELS[name](**kw)


def identity(model: nn.Module) -> dict:
    """``{"name": registry name, "kwargs": constructor arguments as plain data}`` of a registered
    model. A model of another class (a test's or a notebook's own) is named by its class, with its
    ``cfg`` (if any) as kwargs: enough to refuse resuming into another one, not to rebuild it."""
    name = NAMES.get(type(model))
    if name is not None:
        return {"name": name, "kwargs": dict(model.init_kwargs)}
    cfg = getattr(model, "cfg", None)
    return {"name": type(model).__name__, "kwargs": to_dict(cfg) if cfg is not None else None}


def from_identity(ident: dict) -> nn.Module:
    """The model ``identity`` describes, freshly initialised; ``kwargs`` None (a version-1
    checkpoint's baseline, whose arguments were not recorded) builds it with its defaults."""
    name = ident["name"]
    if name not in MODELS:
        raise ValueError(f"unknown model {name!r} (known: {', '.join(sorted(MODELS))})")
    return build_model(name, **(ident.get("kwargs") or {}))
