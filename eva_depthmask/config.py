"""Settings as dataclasses with defaults in code.

Notebooks override fields with ``dataclasses.replace``; ``asdict(cfg)`` goes into every dataset's
stats.json and every checkpoint, so a run can be rebuilt from what it wrote.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields, is_dataclass
from typing import Any


@dataclass(frozen=True)
class SceneConfig:
    """Procedural indoor rooms and foreground sprites (scenes.py). Lengths in metres, angles in degrees.

    Depth on disk and in memory is the camera z-distance divided by ``max_depth_m``: 0 is the camera
    plane, 1 is ``max_depth_m`` or farther (clipped).
    """

    max_depth_m: float = 12.0
    room_width_m: tuple[float, float] = (3.5, 7.0)
    room_length_m: tuple[float, float] = (4.0, 10.0)
    room_height_m: tuple[float, float] = (2.4, 3.2)
    camera_height_m: tuple[float, float] = (1.1, 1.7)
    camera_pitch_deg: tuple[float, float] = (5.0, 20.0)  # looking down, positive
    fov_deg: tuple[float, float] = (50.0, 75.0)  # horizontal field of view
    furniture: tuple[int, int] = (1, 4)  # pieces per room, inclusive
    fg_height_m: tuple[float, float] = (
        0.5,
        1.9,
    )  # real height of a foreground standing on the floor
    fg_bulge_m: float = 0.15  # how much nearer a foreground's centre is than its silhouette


@dataclass(frozen=True)
class DataConfig:
    """What a dataset holds and how it is split. ``size`` is the side of the square images in pixels.

    The course dataset is 100 backgrounds x 100 foregrounds x 2 flips x 20 placements = 400k quartets;
    the defaults here are that recipe at 64 px. Splits are by background, so no background is shared.
    """

    size: int = 64
    n_bg: int = 100
    n_fg: int = 100
    placements: int = 20  # per (bg, fg, flip)
    flips: bool = True
    seed: int = 0
    val_fraction: float = 0.1
    test_fraction: float = 0.1
    image_format: str = "jpg"  # bg and fg_bg on disk: "jpg" (quality 95) or "png" (lossless)
    lazy: bool = (
        False  # store manifest, bg, fg, depth only; fg_bg and mask are re-composited on read
    )
    fg_scale: tuple[float, float] = (0.3, 0.75)  # fg height / image height, for photo backgrounds
    scene: SceneConfig = field(default_factory=SceneConfig)

    @property
    def n_samples(self) -> int:
        return self.n_bg * self.n_fg * (2 if self.flips else 1) * self.placements


def to_dict(cfg: Any) -> dict:
    """``asdict`` with tuples turned into lists, so the result round-trips through JSON unchanged."""
    return _jsonable(asdict(cfg))


def from_dict(cls: type, data: dict) -> Any:
    """Rebuild a (nested) config dataclass from ``to_dict`` output; unknown keys are an error."""
    known = {f.name: f for f in fields(cls)}
    unknown = set(data) - set(known)
    if unknown:
        raise ValueError(f"{cls.__name__}: unknown settings {sorted(unknown)}")
    kwargs = {}
    for name, value in data.items():
        default = getattr(cls(), name) if _has_defaults(cls) else None
        if is_dataclass(default):
            value = from_dict(type(default), value)
        elif isinstance(value, list):
            value = tuple(value)
        kwargs[name] = value
    return cls(**kwargs)


def diff(a: Any, b: Any) -> dict[str, tuple[Any, Any]]:
    """Settings that differ between two configs of the same type: ``{"field.sub": (a, b)}``."""
    flat_a, flat_b = _flatten(to_dict(a)), _flatten(to_dict(b))
    keys = sorted(set(flat_a) | set(flat_b))
    return {k: (flat_a.get(k), flat_b.get(k)) for k in keys if flat_a.get(k) != flat_b.get(k)}


def _has_defaults(cls: type) -> bool:
    try:
        cls()
    except TypeError:
        return False
    return True


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    return value


def _flatten(d: dict, prefix: str = "") -> dict:
    out = {}
    for k, v in d.items():
        if isinstance(v, dict):
            out.update(_flatten(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out
