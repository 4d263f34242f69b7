"""Check a dataset before training: ``validate_dataset(path) -> ValidationReport``.

Works on course datasets (course.py: missing pairs, composites without a background or with two
look-alike backgrounds, clashing names)
and on eva_depthmask datasets (manifest rows naming missing files); then decodes the samples (all, or
``max_samples`` evenly spread) and lists unreadable files, samples whose images differ in size, masks
that are not binary and depth maps that needed converting, each with its file name.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from ..storage import DatasetError
from .course import ERRORS, pair_course
from .course_decode import CourseDecoder
from .course_layout import find_layout, is_course_dataset
from .dataset import QuartetDataset, SizeMismatchError

SHOWN = 10  # names listed per kind of problem in the printed report (all are kept in the report)


@dataclass
class ValidationReport:
    """Problems by kind, each a list of messages that name the files. ``ok``: no errors."""

    path: str
    kind: str  # "course" or "eva_depthmask"
    samples: int = 0
    counts: dict[str, int] = field(default_factory=dict)
    checked: int = 0  # samples whose files were all decoded
    errors: dict[str, list[str]] = field(default_factory=dict)
    warnings: dict[str, list[str]] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not any(self.errors.values())

    def __str__(self) -> str:
        head = (
            f"{self.path} ({self.kind}): {self.samples:,} samples {self.counts}, "
            f"{self.checked:,} decoded: {'OK' if self.ok else 'PROBLEMS'}"
        )
        lines = [head]
        for title, group in (("error", self.errors), ("warning", self.warnings)):
            for kind, items in group.items():
                if items:
                    lines.append(f"  {title}: {kind}: {len(items)}")
                    lines += [f"    {m}" for m in items[:SHOWN]]
                    lines += (
                        [f"    ... and {len(items) - SHOWN} more"] if len(items) > SHOWN else []
                    )
        return "\n".join(lines)


def validate_dataset(
    path: str | Path,
    pairing="auto",
    *,
    folders: dict[str, str] | None = None,
    max_samples: int | None = None,
    progress: bool = True,
    **split: float,
) -> ValidationReport:
    """Everything wrong with the dataset at ``path`` (folder or zip), found before training starts.

    ``pairing``, ``folders`` and ``split`` (``seed``, ``val_fraction``, ``test_fraction``) are as in
    ``QuartetDataset.course``; ``max_samples`` decodes only that many samples, evenly spread.
    """
    course = is_course_dataset(path)
    report = ValidationReport(str(path), "course" if course else "eva_depthmask")
    try:
        ds = (
            _course(path, pairing, folders, report, split, progress)
            if course
            else QuartetDataset(path, "all")
        )
    except DatasetError as e:
        report.errors["unreadable dataset"] = [str(e)]
        return report
    report.samples = len(ds)
    report.counts = {s: sum(r["split"] == s for r in ds.rows) for s in ("train", "val", "test")}
    picks = range(len(ds))
    if max_samples is not None and max_samples < len(ds):
        picks = np.linspace(0, len(ds) - 1, max_samples).round().astype(int).tolist()
    unreadable, sizes = set(), []
    for i in tqdm(picks, desc="validate", unit="sample", disable=not progress):
        try:
            ds.raw(i)
            report.checked += 1
        except SizeMismatchError as e:
            sizes.append(str(e))
        except DatasetError as e:
            unreadable.add(str(e))
    report.errors["unreadable files"] = sorted(unreadable)
    report.errors["size mismatch"] = sizes
    if course:
        for role, name, message in ds._decoder.notes:
            kind = "masks not binary" if role == "mask" else "depth maps converted"
            report.warnings.setdefault(kind, []).append(f"{name}: {message}")
    return report


def _course(path, pairing, folders, report, split: dict, progress: bool) -> QuartetDataset:
    """The course dataset with every complete sample; pairing problems go into ``report``."""
    layout = find_layout(path, folders)
    rows, problems = pair_course(layout, pairing, progress=None if progress else False, **split)
    for kind, items in problems.items():
        (report.errors if kind in ERRORS else report.warnings)[kind] = items
    decoder = CourseDecoder(record=True)
    return QuartetDataset.from_course_rows(layout, rows, "all", None, decoder)
