"""Config helpers: to and from JSON-ready dicts, differences between two configs, flattening.

``to_dict(cfg)`` goes into every dataset's stats.json and every checkpoint; ``from_dict`` rebuilds the
dataclass, so a run can be rebuilt from what it wrote.
"""

from __future__ import annotations

from dataclasses import asdict, fields, is_dataclass
from typing import Any


def to_dict(cfg: Any) -> dict:
    """``asdict`` with tuples turned into lists, so the result round-trips through JSON unchanged."""
    return _jsonable(asdict(cfg))


def from_dict(cls: type, data: dict) -> Any:
    """Rebuild a (nested) config dataclass from ``to_dict`` output; unknown keys are an error."""
    known = {f.name: f for f in fields(cls)}
    unknown = set(data) - set(known)
    if unknown:
        raise ValueError(f"{cls.__name__}: unknown settings {sorted(unknown)}")
    defaults = cls() if _has_defaults(cls) else None
    kwargs = {}
    for name, value in data.items():
        default = getattr(defaults, name, None)
        kwargs[name] = from_dict(type(default), value) if is_dataclass(default) else _tuples(value)
    return cls(**kwargs)


def diff(a: Any, b: Any) -> dict[str, tuple[Any, Any]]:
    """Settings that differ between two configs of the same type: ``{"field.sub": (a, b)}``."""
    flat_a, flat_b = flatten(to_dict(a)), flatten(to_dict(b))
    keys = sorted(set(flat_a) | set(flat_b))
    return {k: (flat_a.get(k), flat_b.get(k)) for k in keys if flat_a.get(k) != flat_b.get(k)}


def _has_defaults(cls: type) -> bool:
    try:
        cls()
    except TypeError:
        return False
    return True


def _tuples(value: Any) -> Any:
    """Lists (as JSON gives them back) to tuples, all the way down: configs hold tuples."""
    return tuple(_tuples(v) for v in value) if isinstance(value, list) else value


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    return value


def flatten(d: dict, prefix: str = "") -> dict:
    """Nested dicts as one level: ``{"scene": {"fov": 1}}`` -> ``{"scene.fov": 1}``."""
    out = {}
    for k, v in d.items():
        if isinstance(v, dict):
            out.update(flatten(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out
