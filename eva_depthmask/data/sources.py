"""Where quartets come from, and which ones a dataset holds.

A *source* supplies backgrounds (with their depth when it is known exactly), foregrounds, placements and
the compositing rule. ``SyntheticSource`` is the offline default: procedural rooms with exact depth
(synth/scenes.py) and procedural sprites or the user's own cut-outs, placed on the floor in perspective.
``ImageFolders`` is the course's recipe: background photos and cut-outs pasted at random places and
sizes; their depth comes from a teacher (teachers.py) that ``make_dataset`` runs on each fg_bg, or
is absent (``teacher=None``: masks only, the samples flagged ``has_depth`` False).

A dataset is the grid of keys ``(bg, fg, flip, k)``: every background with every foreground, mirrored or
not, at ``placements`` random positions each. Each key seeds its own generator, so a sample's bytes do
not depend on which process makes it or in what order.
"""

from __future__ import annotations

import functools
import warnings
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from ..composite import check_placeable, check_scale, place_and_paste
from ..config import DataConfig, to_dict
from ..images import ImageError, UnplaceableError, list_images, load_bg, load_fg
from ..storage import quantize_depth
from ..synth import scenes

SPLITS = ("train", "val", "test")


@dataclass(frozen=True, order=True)
class SampleKey:
    """One quartet of the grid: background ``bg``, foreground ``fg``, mirrored or not, placement ``k``."""

    bg: int
    fg: int
    flip: bool
    k: int

    @property
    def id(self) -> str:
        return f"{self.bg:04d}_{self.fg:04d}_{int(self.flip)}_{self.k:02d}"

    @classmethod
    def from_id(cls, sample_id: str) -> SampleKey:
        bg, fg, flip, k = sample_id.split("_")
        return cls(int(bg), int(fg), flip == "1", int(k))

    def rng(self, seed: int) -> np.random.Generator:
        return np.random.default_rng([seed, self.bg, self.fg, int(self.flip), self.k, 0x51])


def check_split(split: str) -> None:
    """A ``ValueError`` unless ``split`` is one of ``SPLITS`` or ``"all"``."""
    if split not in SPLITS + ("all",):
        raise ValueError(f"split: expected one of {SPLITS + ('all',)}, got {split!r}")


def split_backgrounds(n_bg: int, cfg: DataConfig) -> dict[str, list[int]]:
    """Backgrounds of each split, shuffled by ``cfg.seed``: no background belongs to two splits.

    Each of val and test gets at least one background when there are three or more.
    """
    return _split(n_bg, cfg, 0x5EED)


def split_foregrounds(n_fg: int, cfg: DataConfig) -> dict[str, list[int]]:
    """Foregrounds of each split when ``cfg.split_fg`` (same fractions, their own shuffle); without
    it every split uses every foreground."""
    if not cfg.split_fg:
        return {s: list(range(n_fg)) for s in SPLITS}
    return _split(n_fg, cfg, 0xF65)


def _split(n: int, cfg: DataConfig, salt: int) -> dict[str, list[int]]:
    order = np.random.default_rng([cfg.seed, salt]).permutation(n).tolist()
    n_test = max(round(cfg.test_fraction * n), 1 if n >= 3 and cfg.test_fraction > 0 else 0)
    n_val = max(round(cfg.val_fraction * n), 1 if n >= 3 and cfg.val_fraction > 0 else 0)
    test, val, train = order[:n_test], order[n_test : n_test + n_val], order[n_test + n_val :]
    return {"train": sorted(train), "val": sorted(val), "test": sorted(test)}


def sample_keys(n_bg: int, n_fg: int, cfg: DataConfig, split: str = "all") -> list[SampleKey]:
    """The keys of one split (or ``"all"``), in a fixed order: background, foreground, flip, placement.

    With ``cfg.split_fg`` a background is paired only with the foregrounds of its own split."""
    check_split(split)
    bg_splits = split_backgrounds(n_bg, cfg)
    fg_splits = split_foregrounds(n_fg, cfg)
    bgs = sorted((b, s) for s in SPLITS if split in ("all", s) for b in bg_splits[s])
    flips = (False, True) if cfg.flips else (False,)
    return [
        SampleKey(b, f, flip, k)
        for b, s in bgs
        for f in fg_choice(b, n_fg, cfg, fg_splits[s])
        for flip in flips
        for k in range(cfg.placements)
    ]


def fg_choice(bg: int, n_fg: int, cfg: DataConfig, pool: list[int] | None = None) -> list[int]:
    """The foregrounds pasted on background ``bg``: all of ``pool`` (default: every foreground), or
    ``cfg.fg_per_bg`` of them drawn by seed."""
    pool = list(range(n_fg)) if pool is None else pool
    if cfg.fg_count(len(pool)) == len(pool):
        return list(pool)
    rng = np.random.default_rng([cfg.seed, bg, 0xF6])
    if len(pool) == n_fg:  # the draw every dataset made before split_fg: keep its samples
        return sorted(rng.choice(n_fg, cfg.fg_per_bg, replace=False).tolist())
    return sorted(rng.choice(pool, cfg.fg_per_bg, replace=False).tolist())


class SyntheticSource:
    """Procedural rooms with exact depth; procedural sprites, or the cut-outs in ``fg_dir`` if given.

    Rooms and sprites are rendered on first use and kept in a bounded cache (per process), so memory
    does not grow with the number of samples drawn.
    """

    kind = "synthetic"

    def __init__(
        self, cfg: DataConfig = DataConfig(), fg_dir: str | Path | None = None, cache: int = 128
    ):
        self.cfg = cfg
        self.fg_files = list_images(fg_dir, "foreground") if fg_dir is not None else None
        self.n_bg = cfg.n_bg
        self.n_fg = len(self.fg_files) if self.fg_files else cfg.n_fg
        self._cache = cache
        self._make_caches()

    def _make_caches(self) -> None:
        self.background = functools.lru_cache(self._cache)(self._background)
        self.foreground = functools.lru_cache(self._cache)(self._foreground)

    def __getstate__(self) -> dict:
        state = self.__dict__.copy()
        del state["background"], state["foreground"]  # caches are per process
        return state

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        self._make_caches()

    def _background(self, i: int) -> tuple[scenes.Room, np.ndarray]:
        """Room ``i`` and its depth on the 16-bit grid of the stored PNG: float32 ``(S, S)``."""
        room = scenes.render_room(self.cfg.seed, i, self.cfg.size, self.cfg.scene)
        return room, quantize_depth(room.depth)

    def bg_image(self, i: int) -> np.ndarray:
        """uint8 ``(S, S, 3)`` background ``i``."""
        return self.background(i)[0].rgb

    def _foreground(self, j: int) -> np.ndarray:
        """uint8 ``(h, w, 4)`` cut-out ``j``."""
        if self.fg_files is not None:
            return load_fg(self.fg_files[j])
        return scenes.draw_foreground(self.cfg.seed, j, self.cfg.size, self.cfg.scene)

    def sample(self, key: SampleKey) -> dict:
        """The raw quartet of ``key`` plus how it was made: ``placement`` and ``fg_z``."""
        room, bg_depth = self.background(key.bg)
        fg = self.foreground(key.fg)
        rng = key.rng(self.cfg.seed)
        placement, fg_z = scenes.sample_floor_placement(
            room, fg.shape, rng, self.cfg.scene, key.flip
        )
        fg_bg, mask, depth = scenes.compose(room.rgb, bg_depth, fg, placement, fg_z, self.cfg.scene)
        return {
            "bg": room.rgb,
            "fg_bg": fg_bg,
            "mask": mask,
            "depth": quantize_depth(depth),
            "id": key.id,
            "placement": placement,
            "fg_z": fg_z,
        }

    def recompose(
        self, bg: np.ndarray, bg_depth: np.ndarray, fg: np.ndarray, placement, fg_z: float
    ):
        """fg_bg, mask and depth from stored parts (the lazy layout): the same rule as ``sample``."""
        fg_bg, mask, depth = scenes.compose(bg, bg_depth, fg, placement, fg_z, self.cfg.scene)
        return fg_bg, mask, quantize_depth(depth)

    def describe(self) -> dict:
        return {
            "source": self.kind,
            "foregrounds": "procedural"
            if self.fg_files is None
            else str(Path(self.fg_files[0]).parent),
            "config": to_dict(self.cfg),
        }


class ImageFolders:
    """Background photos and cut-out foregrounds from two folders: the course's own recipe.

    Every (bg, fg) pair gets ``cfg.placements`` random placements (``composite.sample_placement``:
    anywhere inside the image, height ``cfg.fg_scale`` of the image's), mirrored and not when
    ``cfg.flips``. Photos have no depth: ``sample`` leaves it None and ``make_dataset`` labels each
    fg_bg with a teacher, or, with ``teacher=None``, stores none. Backgrounds are centre-cropped to squares of ``cfg.size``; files are taken
    in name order, any mix of extensions; ``n_bg``/``n_fg`` keep only the first ones. Every file is
    read once here, so a bad one fails now, naming it, before anything is written. ``cfg.n_bg`` and
    ``cfg.n_fg`` are replaced by the folders' counts (``self.cfg``).
    """

    kind = "photos"

    def __init__(
        self,
        bg_dir: str | Path,
        fg_dir: str | Path,
        cfg: DataConfig = DataConfig(),
        *,
        n_bg: int | None = None,
        n_fg: int | None = None,
        cache: int = 256,
    ):
        self.bg_dir, self.fg_dir = Path(bg_dir), Path(fg_dir)
        self.bg_files = list_images(bg_dir, "background")[:n_bg]
        self.fg_files = list_images(fg_dir, "foreground")[:n_fg]
        self.n_bg, self.n_fg = len(self.bg_files), len(self.fg_files)
        self.cfg = replace(cfg, n_bg=self.n_bg, n_fg=self.n_fg)
        self._cache = cache
        self._make_caches()
        self.check()

    _make_caches = SyntheticSource._make_caches
    __getstate__ = SyntheticSource.__getstate__
    __setstate__ = SyntheticSource.__setstate__

    def check(self) -> None:
        """Read every file; one ``ImageError`` lists all the bad ones (warnings for doubtful ones).

        A cut-out that reads but can never be pasted visibly at ``cfg.size`` and ``cfg.fg_scale``
        (1 px, fully transparent, or sparse pixels that vanish: ``composite.check_placeable``) is
        skipped with a warning naming it; ``fg_files``, ``n_fg`` and ``cfg.n_fg`` count the rest.
        """
        check_scale(self.cfg.fg_scale, "DataConfig.fg_scale")
        errors, skipped = [], []
        for i in range(len(self.bg_files)):
            try:
                self.background(i)
            except ImageError as e:
                errors.append(str(e))
        for j, path in enumerate(self.fg_files):
            try:
                fg = self.foreground(j)
                check_placeable(fg, (self.cfg.size, self.cfg.size), self.cfg.fg_scale, str(path))
            except UnplaceableError as e:
                warnings.warn(f"{e}; skipped", stacklevel=3)
                skipped.append(path)
            except ImageError as e:
                errors.append(str(e))
        if errors:
            raise ImageError(f"{len(errors)} unusable image(s):\n  " + "\n  ".join(errors))
        if skipped:
            self.fg_files = [p for p in self.fg_files if p not in skipped]
            if not self.fg_files:
                raise ImageError(f"{self.fg_dir}: no cut-out can be placed (see the warnings)")
            self.n_fg = len(self.fg_files)
            self.cfg = replace(self.cfg, n_fg=self.n_fg)
            self._make_caches()  # the cached foregrounds' indices have moved

    def _background(self, i: int) -> np.ndarray:
        """uint8 ``(S, S, 3)`` background photo ``i``."""
        return load_bg(self.bg_files[i], self.cfg.size)

    def _foreground(self, j: int) -> np.ndarray:
        """uint8 ``(h, w, 4)`` cut-out ``j``."""
        return load_fg(self.fg_files[j])

    def bg_image(self, i: int) -> np.ndarray:
        return self.background(i)

    def sample(self, key: SampleKey) -> dict:
        """fg_bg and mask of ``key`` with its ``placement``; ``depth`` is None (a teacher's job, if any).

        The cut-out lies wholly inside the image and its mask is never empty
        (``composite.place_and_paste``)."""
        bg, fg = self.background(key.bg), self.foreground(key.fg)
        placement, fg_bg, mask = place_and_paste(
            key.rng(self.cfg.seed), bg, fg, self.cfg.fg_scale, key.flip
        )
        return {
            "bg": bg,
            "fg_bg": fg_bg,
            "mask": mask,
            "depth": None,
            "id": key.id,
            "placement": placement,
            "fg_z": None,
        }

    def describe(self) -> dict:
        return {
            "source": self.kind,
            "backgrounds": str(self.bg_dir),
            "foregrounds": str(self.fg_dir),
            "bg_files": [p.name for p in self.bg_files],
            "fg_files": [p.name for p in self.fg_files],
            "config": to_dict(self.cfg),
        }
