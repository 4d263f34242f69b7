"""Reading quartets: ``QuartetDataset`` over a dataset folder, a ``.zip`` (read in place), a course
dataset (bg/, fg_bg/, mask/, depth/ folders, course.py), or a synthetic source with no disk at all
(``download`` in download.py fetches a dataset zip from Google Drive).

A raw sample (``QuartetDataset.raw``) is numpy: ``bg``/``fg_bg`` uint8 ``(H, W, 3)``, ``mask`` uint8
``(H, W)`` in {0, 1}, ``depth`` float32 ``(H, W)`` in [0, 1], ``id`` str, ``has_depth`` bool. ``dataset[i]``
passes it through ``transform`` (augment/quartet.py), or, with none, returns float tensors
``bg``/``fg_bg`` ``(3, H, W)`` in [0, 1], ``mask``/``depth`` ``(1, H, W)``; either way with ``has_depth``,
a 0-dim bool tensor (a DataLoader batch of them is a bool ``(B,)``). Writing datasets is
``make_dataset`` in datagen.py.

A dataset without depth (photos made with ``teacher=None``: stats.json ``"has_depth": false``) gives
``depth`` all zeros and ``has_depth`` False; losses and metrics leave its depth out. Every other
dataset (procedural rooms, course datasets, teacher-labelled photos) has ``has_depth`` True.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from ..composite import Placement, paste
from ..config import DataConfig, from_dict
from ..storage import DatasetError, Store, decode_depth, decode_image, decode_mask
from ..tensors import sample_tensors
from .course import check_problems, pair_course
from .course_decode import CourseDecoder
from .course_layout import find_layout, is_course_dataset
from .manifest import read_manifest
from .sources import SampleKey, SyntheticSource, check_split, sample_keys


def _unit(image: torch.Tensor) -> torch.Tensor:
    """uint8 ``(3, H, W)`` to float32 in [0, 1]: a sample read with no transform."""
    return image.float().div_(255)


class QuartetDataset(torch.utils.data.Dataset):
    """(bg, fg_bg, mask, depth) quartets of one split.

    ``QuartetDataset(path, split)`` reads a dataset folder or zip written by ``make_dataset``, or a
    course dataset with the default settings of ``QuartetDataset.course``, which takes options.
    ``QuartetDataset.synthetic(cfg, split)`` renders samples on the fly.
    Splits are by background: no background appears in two splits. Safe with DataLoader workers.
    """

    _decoder: CourseDecoder | None = None  # set for course datasets: their masks and depth vary

    def __init__(self, root: str | Path, split: str = "train", transform: Callable | None = None):
        check_split(split)
        if is_course_dataset(root):
            self.__dict__.update(QuartetDataset.course(root, split, transform).__dict__)
            return
        self.store = Store(root)
        self.split, self.transform = split, transform
        self.info = self._read_stats()
        self.has_depth = bool(self.info.get("has_depth", True))  # older datasets all had depth
        self.config = from_dict(DataConfig, self.info["config"]) if "config" in self.info else None
        rows = read_manifest(self.store)
        self.rows = _of_split(rows, split)
        self._check_files()
        self._source = (
            SyntheticSource(self.config)
            if self.config and self.info.get("source") == "synthetic"
            else None
        )
        self._keys: list[SampleKey] | None = None

    @classmethod
    def synthetic(
        cls,
        cfg: DataConfig = DataConfig(),
        split: str = "train",
        transform: Callable | None = None,
        fg_dir: str | Path | None = None,
    ) -> QuartetDataset:
        """Samples rendered on demand from procedural rooms (no disk); same keys and splits as on disk."""
        self = cls.__new__(cls)
        self.store, self.split, self.transform = None, split, transform
        self._source = SyntheticSource(cfg, fg_dir)
        self._keys = sample_keys(self._source.n_bg, self._source.n_fg, cfg, split)
        self.config, self.rows = cfg, None
        self.info = {"source": "synthetic", "config": None}
        self.has_depth = True
        return self

    @classmethod
    def course(
        cls,
        root: str | Path,
        split: str = "train",
        transform: Callable | None = None,
        *,
        pairing=None,
        folders: dict[str, str] | None = None,
        seed: int = 0,
        val_fraction: float = 0.1,
        test_fraction: float = 0.1,
        invert_depth: bool = False,
        strict: bool = True,
    ) -> QuartetDataset:
        """A course dataset (a folder or one zip with bg/, fg_bg/, mask/, depth/ folders): course.py.

        ``pairing`` maps composites to backgrounds (None: the "bg<number>" in their names; a regex, a
        function or a CSV); ``folders`` names folders the defaults miss (``{"mask": "Masks"}``);
        splits by background from ``seed`` and the fractions; ``invert_depth`` for maps where near is
        bright. ``strict``: incomplete samples are an error (else left out with a warning).
        """
        check_split(split)
        layout = find_layout(root, folders)
        rows, problems = pair_course(
            layout, pairing, seed=seed, val_fraction=val_fraction, test_fraction=test_fraction
        )
        check_problems(root, problems, strict)
        return cls.from_course_rows(layout, rows, split, transform, CourseDecoder(invert_depth))

    @classmethod
    def from_course_rows(cls, layout, rows, split, transform, decoder) -> QuartetDataset:
        """The dataset of rows that ``course.pair_course`` made from ``layout``."""
        self = cls.__new__(cls)
        self.store, self.split, self.transform = layout.store, split, transform
        self.rows = _of_split(rows, split)
        self.info = {"source": "course", "layout": "course", "folders": layout.folders}
        self.config, self._source, self._keys = None, None, None
        self._decoder = decoder
        self.has_depth = True
        return self

    # -- indexing ----------------------------------------------------------------------------------

    def __len__(self) -> int:
        return len(self._keys) if self._keys is not None else len(self.rows)

    def __getitem__(self, i: int) -> dict:
        raw = self.raw(i)
        out = self.transform(raw) if self.transform is not None else sample_tensors(raw, _unit)
        return with_depth_flag(out, raw["has_depth"])

    def depth_flags(self) -> np.ndarray:
        """bool ``(len,)``: which samples have depth (all or none, for one dataset)."""
        return np.full(len(self), self.has_depth)

    @property
    def ids(self) -> list[str]:
        return (
            [k.id for k in self._keys] if self._keys is not None else [r["id"] for r in self.rows]
        )

    @property
    def stats(self) -> dict | None:
        """Per-channel ``{"mean": [r, g, b], "std": [r, g, b]}`` in [0, 1] units, from stats.json."""
        return self.info.get("stats")

    def raw(self, i: int) -> dict:
        """Sample ``i`` as numpy arrays (see the module docstring)."""
        if not -len(self) <= i < len(self):
            raise IndexError(f"sample {i} out of range for a dataset of {len(self)}")
        if self._keys is not None:
            s = self._source.sample(self._keys[i])
            return {**{k: s[k] for k in ("bg", "fg_bg", "mask", "depth", "id")}, "has_depth": True}
        return {**self._read_row(self.rows[i]), "has_depth": self.has_depth}

    # -- reading a stored tree ---------------------------------------------------------------------

    def _read_stats(self) -> dict:
        if not self.store.exists("stats.json"):
            return {}
        try:
            return json.loads(self.store.read("stats.json"))
        except json.JSONDecodeError as e:
            raise DatasetError(f"{self.store.name('stats.json')}: not valid JSON ({e})") from e

    def _check_files(self) -> None:
        """Every file a manifest row names must exist: fail now, not in the middle of an epoch."""
        present = self.store.listing()
        for row in self.rows:
            if self.has_depth and not row["depth"]:
                raise DatasetError(
                    f"{self.store.name('manifest.csv')}: row {row['id']!r} names no depth file, "
                    'yet stats.json does not say the dataset has none ("has_depth": false)'
                )
            for col in ("bg", "fg", "fg_bg", "mask", "depth"):
                rel = row[col]
                if rel and rel not in present:
                    raise DatasetError(
                        f"{self.store.name('manifest.csv')}: row {row['id']!r} names {col} file "
                        f"{rel!r}, which is missing from the dataset"
                    )

    def _read_row(self, row: dict) -> dict:
        read = self.store.read
        read_depth, read_mask = (
            (self._decoder.depth, self._decoder.mask)
            if self._decoder
            else (decode_depth, decode_mask)
        )
        bg = decode_image(read(row["bg"]), self.store.name(row["bg"]))
        if self.has_depth:
            depth = read_depth(read(row["depth"]), self.store.name(row["depth"]))
        else:  # none stored: zeros of the image's size, which the flag tells losses to skip
            depth = np.zeros(bg.shape[:2], np.float32)
        if row["fg_bg"]:  # full layout: everything is on disk
            fg_bg = decode_image(read(row["fg_bg"]), self.store.name(row["fg_bg"]))
            mask = read_mask(read(row["mask"]), self.store.name(row["mask"]))
        else:  # lazy layout: composite again from bg + fg + placement
            fg = decode_image(read(row["fg"]), self.store.name(row["fg"]), "RGBA")
            placement = Placement(
                int(row["x"]), int(row["y"]), float(row["scale"]), row["flip"] == "1"
            )
            if (
                row["fg_z"] and self._source is not None
            ):  # depth/ holds the background's exact depth
                fg_bg, mask, depth = self._source.recompose(
                    bg, depth, fg, placement, float(row["fg_z"])
                )
            else:
                fg_bg, mask = paste(bg, fg, placement)
        _check_sizes(row["id"], bg=bg, fg_bg=fg_bg, mask=mask, depth=depth)
        return {"bg": bg, "fg_bg": fg_bg, "mask": mask, "depth": depth, "id": row["id"]}


def with_depth_flag(sample: dict, has_depth: bool) -> dict:
    """``sample`` (a transform's output) with ``has_depth`` as a 0-dim bool tensor: added after the
    transform, which keeps only the quartet's keys."""
    return {**sample, "has_depth": torch.tensor(bool(has_depth))}


def _of_split(rows: list[dict], split: str) -> list[dict]:
    return rows if split == "all" else [r for r in rows if r["split"] == split]


class SizeMismatchError(DatasetError):
    """The images of one sample differ in size."""


def _check_sizes(sample_id: str, **arrays: np.ndarray) -> None:
    shapes = {k: v.shape[:2] for k, v in arrays.items()}
    if len(set(shapes.values())) > 1:
        sizes = ", ".join(f"{k} {h}x{w}" for k, (h, w) in shapes.items())
        raise SizeMismatchError(f"sample {sample_id!r}: images of different sizes ({sizes})")
