"""Reading the course's existing datasets: folders of backgrounds, composites, masks and depth maps,
in a folder or in one zip as gdown downloads it (read in place; one or two top folders inside are fine).

Layout: four folders, found by name in any case and spelling of separators (``FOLDER_NAMES``):
``bg/`` (or background/), ``fg_bg/`` (bgfg/, overlay/, ...), ``fg_bg_mask/`` or ``mask/``,
``fg_bg_depth/`` or ``depth/``; other folders (fg/, fg_mask/) are ignored, files may sit in subfolders.

Matching: a composite, its mask and its depth map are one sample when their names agree once a
trailing tag is dropped ("_mask", "_depth", "_depth_map_001"): compared by the numbers in the name
("bg001_fg023_05.jpg", "bg001_fg023_05_mask.png" and "bg_001_fg_023_05_depth.jpg" agree), or by the
whole name when numbers alone would be ambiguous.

Pairing a composite with its background (``pairing``):
- None (default): the number after "bg" in the composite's path inside fg_bg/ ("bg001_fg023_05.jpg"
  and "bg001/0005.jpg" -> background number 1), matched to the background whose name carries the same
  number ("bg001.jpg", "bg_1.png", "001.jpeg");
- a regular expression (str or compiled): searched in that path; its first group (or the match) names
  the background, by file name, stem or number;
- a function ``name -> background`` with the same meaning;
- a CSV file (a path ending in .csv, on disk or inside the dataset) with columns ``fg_bg`` and ``bg``
  (names or paths) and optionally ``split``.

Splits are by background, shuffled by ``seed`` exactly like generated datasets (sources.py), unless
the CSV gives them. Masks and depth maps are decoded by course_decode.py (JPEG masks re-binarised,
3-channel depth converted, other depth encodings normalised with a warning naming the file).
``validate_dataset`` (validation.py) lists every problem before training.
"""

from __future__ import annotations

import csv
import io
import re
import warnings
from collections.abc import Callable
from pathlib import Path, PurePosixPath

from ..config import DataConfig
from ..storage import DatasetError, Store
from .course_layout import FOLDER_NAMES, CourseLayout, find_layout, folder_key
from .manifest import manifest_row
from .sources import SPLITS, split_backgrounds

_TAG = re.compile(r"[\W_]*(?:mask|depth(?:[\W_]*map)?)(?:[\W_]*\d+)?$", re.IGNORECASE)
_LEAD = re.compile(r"^(?:mask|depth(?:[\W_]*map)?)[\W_]+", re.IGNORECASE)
_BG_NUMBER = re.compile(r"(?<![a-z])bg[\W_]*(\d+)", re.IGNORECASE)


# ---------------------------------------------------------------------------------------------------
# Matching files and pairing composites with backgrounds


def _inner(rel: str) -> str:
    """A file's path inside its role folder, without extension: "fg_bg/a/b.jpg" -> "a/b"."""
    return str(PurePosixPath(rel.split("/", 1)[1]).with_suffix(""))


def match_key(name: str, whole: bool = False, numbers: bool = True) -> tuple | str:
    """The key a composite, mask and depth map share: the numbers of the name (or the name)."""
    parts = name.lower().split("/")
    parts[-1] = _LEAD.sub("", _TAG.sub("", parts[-1])) or parts[-1]
    s = "/".join(parts if whole else parts[-1:])
    digits = tuple(int(x) for x in re.findall(r"\d+", s))
    return digits if numbers and digits else s


def _keyed(files: dict[str, list[str]]) -> tuple[dict[str, dict], list[str]]:
    """``{role: {key: rel}}`` for fg_bg, mask, depth with the first key rule that is unambiguous."""
    rules = [(False, True), (True, True), (False, False), (True, False)]
    for whole, numbers in rules:
        keyed, dups = {}, []
        for role in ("fg_bg", "mask", "depth"):
            keyed[role] = {}
            for rel in files[role]:
                key = match_key(_inner(rel), whole, numbers)
                if key in keyed[role]:
                    dups.append(f"{rel} and {keyed[role][key]}")
                else:
                    keyed[role][key] = rel
        if not dups:
            break
    return keyed, dups


def _bg_id(name: str) -> int | str:
    """A background's id: the number after "bg", else its only number, else its lowercase stem."""
    stem = PurePosixPath(name).name.lower()
    m = _BG_NUMBER.search(stem)
    digits = re.findall(r"\d+", stem)
    return int(m.group(1)) if m else int(digits[0]) if len(digits) == 1 else stem


Pair = tuple[str | None, str | None]  # (background token, split or None)


def _pairing_fn(pairing, store: Store) -> Callable[[str], Pair]:
    """A function from a composite's path inside fg_bg/ to ``(background token, split)``."""
    if pairing is None:
        return lambda name: ((m := _BG_NUMBER.search(name)) and m.group(1), None)
    if callable(pairing):
        return lambda name: (None if (t := pairing(name)) is None else str(t), None)
    if isinstance(pairing, Path) or str(pairing).lower().endswith(".csv"):
        table = _read_pairs(pairing, store)
        return lambda name: table.get(
            str(PurePosixPath(name.lower()).with_suffix("")),
            table.get(PurePosixPath(name).stem.lower(), (None, None)),
        )
    regex = re.compile(pairing)
    return lambda name: (
        (m := regex.search(name)) and (m.group(1) if regex.groups else m.group(0)),
        None,
    )


def _read_pairs(pairing, store: Store) -> dict[str, Pair]:
    """fg_bg name (path inside fg_bg/ and stem, lowercase, no extension) -> (bg, split) from a CSV."""
    path = Path(pairing)
    text = path.read_text() if path.is_file() else store.read(str(pairing)).decode("utf-8")
    reader = csv.DictReader(io.StringIO(text))
    cols = {c.lower().strip(): c for c in reader.fieldnames or ()}
    if "fg_bg" not in cols or "bg" not in cols:
        raise DatasetError(f"{pairing}: pairing CSV needs columns fg_bg and bg, has {list(cols)}")
    table = {}
    for row in reader:
        name = PurePosixPath(row[cols["fg_bg"]].strip().lower())
        if len(name.parts) > 1 and folder_key(name.parts[0]) in FOLDER_NAMES["fg_bg"]:
            name = PurePosixPath(*name.parts[1:])
        value = (row[cols["bg"]].strip(), row[cols["split"]].strip() if "split" in cols else None)
        table[str(name.with_suffix(""))] = table[name.stem] = value
    return table


class _Backgrounds:
    """Find a background by file name, stem, path inside bg/, or id (``_bg_id``)."""

    def __init__(self, bgs: list[str]):
        self.by_name: dict[str, str] = {}
        self.by_id: dict = {}
        for rel in bgs:
            inner = PurePosixPath(rel.lower().split("/", 1)[1])
            for name in (inner, inner.with_suffix(""), inner.name, inner.stem):
                self.by_name.setdefault(str(name), rel)
            self.by_id.setdefault(_bg_id(str(inner)), []).append(rel)

    def find(self, token: str) -> str | None:
        token = token.strip().lower()
        if token in self.by_name:
            return self.by_name[token]
        hits = self.by_id.get(_bg_id(token)) or (
            self.by_id.get(int(token)) if token.isdigit() else None
        )
        return hits[0] if hits and len(hits) == 1 else None


def pair_course(
    layout: CourseLayout,
    pairing=None,
    *,
    seed: int = 0,
    val_fraction: float = 0.1,
    test_fraction: float = 0.1,
) -> tuple[list[dict], dict[str, list[str]]]:
    """Manifest-like rows (one per complete sample) and the problems found, by kind, with names."""
    keyed, dups = _keyed(layout.files)
    bgs = layout.files["bg"]
    backgrounds = _Backgrounds(bgs)
    problems = {
        "duplicate names": dups,
        "ambiguous backgrounds": [
            " and ".join(v) for v in backgrounds.by_id.values() if len(v) > 1
        ],
    }
    bg_index = {rel: i for i, rel in enumerate(bgs)}
    cfg = DataConfig(seed=seed, val_fraction=val_fraction, test_fraction=test_fraction)
    split_of = {b: s for s, ids in split_backgrounds(len(bgs), cfg).items() for b in ids}
    find = _pairing_fn(pairing, layout.store)
    rows, lost = [], {"no background": [], "no mask": [], "no depth": []}
    for key, rel in sorted(keyed["fg_bg"].items(), key=lambda kv: kv[1]):
        token, split = find(rel.split("/", 1)[1])
        bg = backgrounds.find(token) if token else None
        if bg is None:
            lost["no background"].append(f"{rel}" + (f" (looked for {token!r})" if token else ""))
        for role in ("mask", "depth"):
            if key not in keyed[role]:
                lost[f"no {role}"].append(rel)
        if bg is None or key not in keyed["mask"] or key not in keyed["depth"]:
            continue
        if split and split not in SPLITS:
            raise DatasetError(f"pairing CSV: split {split!r} for {rel}; expected one of {SPLITS}")
        rows.append(
            _row(rel, bg, keyed["mask"][key], keyed["depth"][key], split or split_of[bg_index[bg]])
        )
    for role in ("mask", "depth"):
        problems[f"{role}s without composite"] = sorted(
            rel for key, rel in keyed[role].items() if key not in keyed["fg_bg"]
        )
    return rows, {**lost, **problems}


def _row(fg_bg: str, bg: str, mask: str, depth: str, split: str) -> dict:
    files = {"bg": bg, "fg_bg": fg_bg, "mask": mask, "depth": depth}
    return manifest_row(_inner(fg_bg).replace("/", "_"), split, "course", files)


ERRORS = ("no background", "no mask", "no depth", "duplicate names", "ambiguous backgrounds")


def index_course_dataset(
    path: str | Path,
    pairing=None,
    *,
    folders: dict[str, str] | None = None,
    seed: int = 0,
    val_fraction: float = 0.1,
    test_fraction: float = 0.1,
    strict: bool = True,
) -> list[dict]:
    """Rows (manifest.csv columns, paths relative to the layout's root) of every complete sample.

    ``strict``: a composite with no background, mask or depth, or clashing names, is a
    ``DatasetError`` naming them; otherwise those composites are left out with a warning.
    """
    layout = find_layout(path, folders)
    rows, problems = pair_course(
        layout, pairing, seed=seed, val_fraction=val_fraction, test_fraction=test_fraction
    )
    check_problems(path, problems, strict)
    return rows


def check_problems(path, problems: dict[str, list[str]], strict: bool) -> None:
    bad = {k: v for k, v in problems.items() if k in ERRORS and v}
    if not bad:
        return
    text = "; ".join(
        f"{k}: {len(v)} ({', '.join(v[:5])}{', ...' if len(v) > 5 else ''})" for k, v in bad.items()
    )
    if strict:
        raise DatasetError(f"{path}: {text}. validate_dataset(path) lists them all")
    warnings.warn(f"{path}: left out composites with {text}", stacklevel=3)
