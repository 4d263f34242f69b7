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
- "auto" (the default; None means the same): by name when nearly every composite (``name_coverage``)
  carries "bg<number>" naming an existing background, as for "name", and the content agrees on a
  small sample (``sample`` composites, pairing.py; the few without such a name are "no background");
  otherwise by content, with a warning when names were overruled. A number not marked by "bg"
  ("img_0050.jpg": with 100 backgrounds, bg_050.jpg exists) is never read as a background's;
- "name": the number after "bg" in the composite's path inside fg_bg/ ("bg001_fg023_05.jpg" and
  "bg001/0005.jpg" -> background number 1), matched to the background whose name carries the same
  number ("bg001.jpg", "bg_1.png", "001.jpeg"), trusted without looking at the images;
- "content": the background that agrees with the composite outside its mask (pairing.py), reporting
  composites no background fits and those two backgrounds fit nearly as well ("ambiguous pairing",
  with "look-alike backgrounds" once per pair of (near-)duplicate backgrounds that caused it);
  composites without a mask are not compared (they are reported under "no mask");
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

import re
import warnings
from pathlib import Path, PurePosixPath

import numpy as np

from ..config import DataConfig
from ..storage import DatasetError
from .course_layout import CourseLayout, find_layout
from .manifest import manifest_row
from .pairing import MODES, Backgrounds, ContentConfig, Pair, judge, match_content, rule
from .sources import SPLITS, split_backgrounds

_TAG = re.compile(r"[\W_]*(?:mask|depth(?:[\W_]*map)?)(?:[\W_]*\d+)?$", re.IGNORECASE)
_LEAD = re.compile(r"^(?:mask|depth(?:[\W_]*map)?)[\W_]+", re.IGNORECASE)


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


def pair_course(
    layout: CourseLayout,
    pairing="auto",
    *,
    seed: int = 0,
    val_fraction: float = 0.1,
    test_fraction: float = 0.1,
    content: ContentConfig = ContentConfig(),
    progress: bool | None = None,
) -> tuple[list[dict], dict[str, list[str]]]:
    """Manifest-like rows (one per complete sample) and the problems found, by kind, with names.

    ``progress``: a bar while pairing by content (None: from ``PROGRESS_FROM`` composites on).
    """
    keyed, dups = _keyed(layout.files)
    bgs = layout.files["bg"]
    items = sorted(keyed["fg_bg"].items(), key=lambda kv: kv[1])
    masks = [keyed["mask"].get(key) for key, _ in items]
    show = len(items) >= PROGRESS_FROM if progress is None else progress
    chosen, problems = _assign(layout, [rel for _, rel in items], masks, pairing, content, show)
    bg_index = {rel: i for i, rel in enumerate(bgs)}
    cfg = DataConfig(seed=seed, val_fraction=val_fraction, test_fraction=test_fraction)
    split_of = {b: s for s, ids in split_backgrounds(len(bgs), cfg).items() for b in ids}
    rows, lost = [], {"no mask": [], "no depth": []}
    for (key, rel), (bg, split) in zip(items, chosen, strict=True):
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
    problems = {"no background": problems.pop("no background"), **lost, **problems}
    problems["duplicate names"] = dups
    for role in ("mask", "depth"):
        problems[f"{role}s without composite"] = sorted(
            rel for key, rel in keyed[role].items() if key not in keyed["fg_bg"]
        )
    return rows, problems


def _assign(layout, composites, masks, pairing, cfg, progress) -> tuple[list[Pair], dict]:
    """Each composite's ``(background path or None, split or None)``, and pairing problems by kind."""
    mode = "auto" if pairing is None else pairing if str(pairing) in MODES else None
    if mode == "content":
        return _by_content(layout, composites, masks, cfg, progress)
    backgrounds = Backgrounds(layout.files["bg"])
    find = rule("name" if mode else pairing, layout.store)
    chosen, lost = [], []
    for rel in composites:
        token, split = find(rel.split("/", 1)[1])
        bg = backgrounds.find(token) if token else None
        if bg is None:
            lost.append(f"{rel}" + (f" (looked for {token!r})" if token else ""))
        chosen.append((bg, split))
    if mode == "auto" and not _names_hold(layout, composites, masks, chosen, cfg):
        return _by_content(layout, composites, masks, cfg, progress)
    return chosen, {"no background": lost, "ambiguous backgrounds": backgrounds.clashes()}


def _names_hold(layout, composites, masks, chosen: list[Pair], cfg: ContentConfig) -> bool:
    """Whether "auto" keeps the names' pairing: nearly every composite names a background, and on
    ``cfg.sample`` of them (evenly spread) the content does not clearly say otherwise for most."""
    named = [i for i, (bg, _) in enumerate(chosen) if bg]
    if len(named) < cfg.name_coverage * len(composites) or not named:
        return not composites
    named = [i for i in named if masks[i]]  # checked where the mask tells what to compare
    if not named:
        return True
    spread = np.linspace(0, len(named) - 1, min(cfg.sample, len(named))).round().astype(int)
    pick = sorted({named[j] for j in spread})
    bgs = layout.files["bg"]
    found = match_content(
        layout.store, [composites[i] for i in pick], [masks[i] for i in pick], bgs, cfg
    )
    seen, _ = judge(found, cfg)  # only clear content matches count against a name
    wrong = [
        f"{composites[i]} is named for {chosen[i][0]} but looks like {bgs[seen[j]]}"
        for j, i in enumerate(pick)
        if j in seen and bgs[seen[j]] != chosen[i][0]
    ]
    where = layout.store.root
    if 2 * len(wrong) > len(pick):
        warnings.warn(
            f"{where}: the bg numbers in the composites' names disagree with their content for "
            f"{len(wrong)} of {len(pick)} checked (e.g. {wrong[0]}): paired by content instead; "
            "pairing='name' trusts the names",
            stacklevel=5,
        )
        return False
    if wrong:
        warnings.warn(
            f"{where}: paired by the bg numbers in the names, but the content disagrees for "
            f"{len(wrong)} of {len(pick)} checked: {'; '.join(wrong)}",
            stacklevel=5,
        )
    return True


def _by_content(layout, composites, masks, cfg, progress) -> tuple[list[Pair], dict]:
    """Pairs by content of the composites that have a mask (the others are "no mask" already)."""
    bgs = layout.files["bg"]
    have = [i for i, m in enumerate(masks) if m]
    found = match_content(
        layout.store, [composites[i] for i in have], [masks[i] for i in have], bgs, cfg, progress
    )
    pairs, problems = judge(found, cfg)
    chosen: list[Pair] = [(None, None)] * len(composites)
    for j, b in pairs.items():
        chosen[have[j]] = (bgs[b], None)
    return chosen, problems


def _row(fg_bg: str, bg: str, mask: str, depth: str, split: str) -> dict:
    files = {"bg": bg, "fg_bg": fg_bg, "mask": mask, "depth": depth}
    return manifest_row(_inner(fg_bg).replace("/", "_"), split, "course", files)


ERRORS = (
    "no background",
    "no mask",
    "no depth",
    "ambiguous pairing",
    "look-alike backgrounds",
    "duplicate names",
    "ambiguous backgrounds",
)
PROGRESS_FROM = 2000  # composites: fewer are paired by content without a progress bar


def index_course_dataset(
    path: str | Path,
    pairing="auto",
    *,
    folders: dict[str, str] | None = None,
    seed: int = 0,
    val_fraction: float = 0.1,
    test_fraction: float = 0.1,
    strict: bool = True,
) -> list[dict]:
    """Rows (manifest.csv columns, paths relative to the layout's root) of every complete sample.

    ``strict``: a composite with no background, mask or depth, an ambiguous pairing, or clashing
    names, is a ``DatasetError`` naming them; otherwise those composites are left out with a warning.
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
