"""What a model is, as plain data: the arguments its constructor was given.

A registered model (``registry.MODELS``) is identified by ``{"name": registry name, "kwargs": ...}``
such that ``build_model(name, **kwargs)`` builds the same architecture (``registry.identity``).
The kwargs are read from the instance, so a model built directly (``Session15Net(dropout=0.2)``,
``DepthMaskNet(ModelConfig(...))``) has the identity ``build_model`` would give it:

- a class whose constructor takes plain arguments is decorated with ``@keeps_init_kwargs``: each
  instance keeps the arguments it was built with, defaults filled in, as ``init_kwargs``;
- DepthMaskNet's arguments are its config: its ``init_kwargs`` are ``ModelConfig``'s fields.

Values are stored as plain data (ints, floats, strings, lists, dicts): tuples become lists, a
dataclass its dict, a path its string, so that checkpoints load with ``weights_only=True``.
"""

from __future__ import annotations

import functools
import inspect
from dataclasses import is_dataclass
from pathlib import PurePath
from typing import Any

from ..config import to_dict


def plain(value: Any, name: str = "argument") -> Any:
    """``value`` as plain data (tuples -> lists, dataclass -> dict, path -> str), or a TypeError."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, (list, tuple)):
        return [plain(v, name) for v in value]
    if isinstance(value, dict):
        return {str(k): plain(v, f"{name}.{k}") for k, v in value.items()}
    if is_dataclass(value) and not isinstance(value, type):
        return to_dict(value)
    if isinstance(value, PurePath):
        return str(value)
    raise TypeError(f"{name}: a {type(value).__name__} cannot be stored as a model's identity")


def keeps_init_kwargs(cls: type) -> type:
    """Class decorator: each instance of exactly ``cls`` keeps its constructor's arguments as
    ``self.init_kwargs`` (plain data, defaults filled in). A subclass's instance keeps none: its
    own constructor may take other arguments."""
    init = cls.__init__
    signature = inspect.signature(init)
    if any(p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD) for p in signature.parameters.values()):
        raise TypeError(f"{cls.__name__}: *args or **kwargs cannot be kept as an identity")

    @functools.wraps(init)
    def __init__(self, *args, **kwargs):
        init(self, *args, **kwargs)
        if type(self) is cls:
            bound = signature.bind(self, *args, **kwargs)
            bound.apply_defaults()
            given = list(bound.arguments.items())[1:]  # without self
            self.init_kwargs = {k: plain(v, k) for k, v in given}

    cls.__init__ = __init__
    return cls
