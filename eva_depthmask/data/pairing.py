"""Pairing a course dataset's composites with their backgrounds: by a rule on names, or by content.

Content (``match_content``, ``judge``): a composite's background is the one that agrees with it outside
its mask. Every image becomes a ``size`` x ``size`` RGB thumbnail (float32 in [0, 1]) after a centre crop
to square, so backgrounds of another size than the composites still compare; JPEGs are decoded at 1/2
to 1/8 scale (``Image.draft``: DCT scaling, several times faster than a full decode). The backgrounds' thumbnails
are made once; each block of composites is compared with all of them in two passes: a masked mean
squared difference (three matrix products) keeps the ``candidates`` nearest, then a robust distance
ranks those: the mean absolute difference (0-1, averaged over RGB) over the pixels outside the mask
grown by ``dilate`` pixels, the largest ``trim`` of them dropped (JPEG ringing, a cast shadow). The
nearest is taken unless a second one is nearly as near (``ratio``) or none is near (``max_distance``).

Names (``Backgrounds``, ``rule``): the number after "bg" in the composite's path inside fg_bg/, a regex,
a function or a CSV (course.py says which ``pairing`` means which).
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import numpy as np
from PIL import Image, UnidentifiedImageError
from tqdm.auto import tqdm

from ..storage import DatasetError, Store
from .course_layout import FOLDER_NAMES, folder_key

BG_NUMBER = re.compile(r"(?<![a-z])bg[\W_]*(\d+)", re.IGNORECASE)
MODES = ("auto", "name", "content")


@dataclass(frozen=True)
class ContentConfig:
    size: int = 24  # thumbnail side, pixels
    dilate: int = 1  # thumbnail pixels added around the mask (soft edges, JPEG ringing)
    trim: float = 0.1  # fraction of the largest pixel differences ignored (shadows, re-saves)
    candidates: int = 8  # backgrounds kept by the squared-difference pass for the robust one
    ratio: float = 0.7  # nearest distance at or above ratio x second nearest: ambiguous
    max_distance: float = 0.06  # nearest farther than this (mean |difference|, 0-1): none fits
    identical: float = 0.01  # look-alike backgrounds closer than this are called identical
    block: int = 1024  # composites compared at once (memory ~ block x candidates x size^2 x 12 B)
    sample: int = 16  # composites whose name pairing "auto" checks by content
    name_coverage: float = 0.9  # "auto" trusts names when this fraction resolves to a background


# ---------------------------------------------------------------------------------------------------
# Thumbnails and distances


def thumbnail(data: bytes, name: str, size: int, mask: bool = False) -> np.ndarray:
    """``(size, size, 3)`` float32 RGB in [0, 1] of the centred square; for a mask ``(size, size)``
    bool: the thumbnail pixels any foreground pixel falls in (0/255 masks, JPEG or not, and 0/1)."""
    mode = "L" if mask else "RGB"
    try:
        with Image.open(io.BytesIO(data)) as im:
            # JPEG only: decoded at the smallest DCT scale >= 2 x size, so that the antialiased
            # resize below sees the same detail whatever the file's size (a scale >= size alone
            # left background and composite of different sizes 1.5x farther apart)
            im.draft(mode, (2 * size, 2 * size))
            im = im.convert(mode)
    except (UnidentifiedImageError, OSError, SyntaxError) as e:
        raise DatasetError(f"{name}: unreadable or truncated image ({e})") from e
    w, h = im.size
    side = min(w, h)
    box = ((w - side) // 2, (h - side) // 2, (w - side) // 2 + side, (h - side) // 2 + side)
    if mask:
        arr = np.asarray(im)
        fg = arr > (0 if arr.max(initial=0) <= 1 else 127)  # binarised first: no JPEG noise
        im = Image.fromarray(fg.astype(np.uint8) * 255)
        return np.asarray(im.resize((size, size), Image.Resampling.BOX, box=box)) > 0
    # cropped first: resize(box=...) filters in pixels beyond the box's edges
    thumb = im.crop(box).resize((size, size), Image.Resampling.BILINEAR)  # antialiased
    return np.asarray(thumb, np.float32) / 255


def grow(mask: np.ndarray, steps: int) -> np.ndarray:
    """``(n, s, s)`` bool masks grown by ``steps`` pixels (3x3 square per step)."""
    for _ in range(steps):
        rows = mask.copy()
        rows[:, 1:] |= mask[:, :-1]
        rows[:, :-1] |= mask[:, 1:]
        mask = rows.copy()
        mask[:, :, 1:] |= rows[:, :, :-1]
        mask[:, :, :-1] |= rows[:, :, 1:]
    return mask


def trimmed_distance(diff: np.ndarray, outside: np.ndarray, trim: float) -> np.ndarray:
    """Mean of ``diff`` ``(n, k, P)`` over the pixels ``outside`` ``(n, P)`` marks, the largest
    ``trim`` fraction of them dropped: ``(n, k)``; inf where no pixel is outside."""
    diff = np.sort(np.where(outside[:, None], diff, np.inf), axis=2)
    valid = outside.sum(1)
    keep = np.maximum(np.ceil((1 - trim) * valid).astype(int), 1)
    total = np.cumsum(np.where(np.isfinite(diff), diff, 0), axis=2)
    last = np.broadcast_to((keep - 1)[:, None, None], (*diff.shape[:2], 1))
    dist = np.take_along_axis(total, last, axis=2)[..., 0] / keep[:, None]
    dist[valid == 0] = np.inf
    return dist


def nearest(comp: np.ndarray, outside: np.ndarray, bgs: np.ndarray, cfg: ContentConfig):
    """For composites ``comp`` ``(n, P, 3)`` compared where ``outside`` ``(n, P)`` holds, and
    backgrounds ``bgs`` ``(m, P, 3)``: the two nearest backgrounds ``(n, 2)`` int and their robust
    distances ``(n, 2)``, nearest first (index -1 and inf when there are fewer backgrounds)."""
    n, m = len(comp), len(bgs)
    w = outside.astype(np.float32)
    # sum_p w |c - b|^2 = sum w|c|^2 - 2 sum w c.b + sum w |b|^2: all pairs by matrix products
    sq = (w * (comp**2).sum(2)).sum(1)[:, None] + w @ (bgs**2).sum(2).T
    sq -= 2 * (w[..., None] * comp).reshape(n, -1) @ bgs.reshape(m, -1).T
    k = min(cfg.candidates, m)
    cand = np.argpartition(sq, k - 1, axis=1)[:, :k]
    diff = np.empty((n, k, comp.shape[1]), np.float32)
    comp_t, bgs_t = comp.transpose(0, 2, 1).copy(), bgs.transpose(0, 2, 1).copy()  # (., 3, P)
    for j in range(k):  # one candidate at a time, channels first: 2x faster than all at once
        diff[:, j] = np.abs(comp_t - bgs_t[cand[:, j]]).sum(1) / 3
    dist = trimmed_distance(diff, outside, cfg.trim)
    order = np.argsort(dist, axis=1, kind="stable")[:, :2]
    index = np.take_along_axis(cand, order, 1)
    dist = np.take_along_axis(dist, order, 1)
    if k == 1:
        index = np.concatenate([index, np.full((n, 1), -1)], 1)
        dist = np.concatenate([dist, np.full((n, 1), np.inf, np.float32)], 1)
    return index, dist


@dataclass
class Matches:
    """Content matches of composites ``names`` against backgrounds ``bgs`` (paths in the layout)."""

    names: list[str]
    bgs: list[str]
    thumbs: np.ndarray  # (m, P, 3) float32: the backgrounds' thumbnails
    index: np.ndarray  # (n, 2) int: nearest and second-nearest background
    distance: np.ndarray  # (n, 2) float32: their distances, mean |difference| in [0, 1]
    unreadable: dict[int, str]  # composite number -> why it could not be read


def match_content(
    store: Store,
    composites: list[str],
    masks: list[str | None],
    bgs: list[str],
    cfg: ContentConfig = ContentConfig(),
    progress: bool = False,
) -> Matches:
    """Compare every composite (with its mask, or none) with every background (see the module)."""
    if not bgs:
        raise DatasetError(f"{store.root}: no background images to pair the composites with")
    p = cfg.size**2
    thumbs = np.stack([thumbnail(store.read(r), store.name(r), cfg.size) for r in bgs])
    thumbs = thumbs.reshape(len(bgs), p, 3)
    n = len(composites)
    index, dist = np.full((n, 2), -1), np.full((n, 2), np.inf, np.float32)
    unreadable: dict[int, str] = {}
    bar = tqdm(total=n, desc="pairing by content", unit="composite", disable=not progress)
    for start in range(0, n, cfg.block):
        stop = min(start + cfg.block, n)
        comp = np.zeros((stop - start, cfg.size, cfg.size, 3), np.float32)
        inside = np.zeros((stop - start, cfg.size, cfg.size), bool)
        for j, i in enumerate(range(start, stop)):
            try:
                comp[j] = thumbnail(store.read(composites[i]), store.name(composites[i]), cfg.size)
            except DatasetError as e:
                unreadable[i] = str(e)
            try:  # an unreadable mask: compared without one (decoding reports the file later)
                if masks[i]:
                    inside[j] = thumbnail(store.read(masks[i]), masks[i], cfg.size, mask=True)
            except DatasetError:
                pass
        outside = ~grow(inside, cfg.dilate).reshape(-1, p)
        index[start:stop], dist[start:stop] = nearest(comp.reshape(-1, p, 3), outside, thumbs, cfg)
        bar.update(stop - start)
    bar.close()
    return Matches(composites, bgs, thumbs, index, dist, unreadable)


def judge(matches: Matches, cfg: ContentConfig) -> tuple[dict[int, int], dict[str, list[str]]]:
    """``{composite number: background number}`` for clear matches, and the rest by problem kind:
    "no background" (unreadable, or none near), "ambiguous pairing" (two near), and once per pair
    "look-alike backgrounds" (within ``max_distance`` of each other) that made composites ambiguous."""
    problems: dict[str, list[str]] = {
        "no background": [],
        "ambiguous pairing": [],
        "look-alike backgrounds": [],
    }
    pairs, twins = {}, {}
    for i, name in enumerate(matches.names):
        (a, b), (da, db) = matches.index[i], matches.distance[i]
        if i in matches.unreadable:
            why = matches.unreadable[i]
            problems["no background"].append(f"{name} (cannot pair by content: {why})")
        elif not da <= cfg.max_distance:
            near = f"the nearest, {matches.bgs[a]}, differs by {da:.3f}" if a >= 0 else "none"
            problems["no background"].append(f"{name} (no background looks like it: {near})")
        elif da >= cfg.ratio * db:
            problems["ambiguous pairing"].append(
                f"{name}: {matches.bgs[a]} ({da:.3f}) or {matches.bgs[b]} ({db:.3f})"
            )
            twins.setdefault(tuple(sorted((a, b))), []).append(i)
        else:
            pairs[i] = int(a)
    for (a, b), hits in twins.items():  # said once per pair, not per composite
        d = float(np.abs(matches.thumbs[a] - matches.thumbs[b]).mean())
        if d <= cfg.max_distance:  # each would fit the other's composites
            look = "look identical" if d < cfg.identical else f"look alike (differ by {d:.3f})"
            problems["look-alike backgrounds"].append(
                f"{matches.bgs[a]} and {matches.bgs[b]} {look}: {len(hits)} composites on them "
                "cannot be told apart; remove one, or pair by name or CSV"
            )
    return pairs, problems


# ---------------------------------------------------------------------------------------------------
# Pairing by names

Pair = tuple[str | None, str | None]  # (background token, split or None)


def bg_id(name: str) -> int | str:
    """A background's id: the number after "bg", else its only number, else its lowercase stem."""
    stem = PurePosixPath(name).name.lower()
    m = BG_NUMBER.search(stem)
    digits = re.findall(r"\d+", stem)
    return int(m.group(1)) if m else int(digits[0]) if len(digits) == 1 else stem


def rule(pairing, store: Store) -> Callable[[str], Pair]:
    """A function from a composite's path inside fg_bg/ to ``(background token, split)``:
    ``"name"`` (the number after "bg"), a regex, a function, or a CSV path."""
    if pairing == "name":
        return lambda name: ((m := BG_NUMBER.search(name)) and m.group(1), None)
    if callable(pairing):
        return lambda name: (None if (t := pairing(name)) is None else str(t), None)
    if isinstance(pairing, Path) or str(pairing).lower().endswith(".csv"):
        table = read_pairs(pairing, store)
        return lambda name: table.get(
            str(PurePosixPath(name.lower()).with_suffix("")),
            table.get(PurePosixPath(name).stem.lower(), (None, None)),
        )
    regex = re.compile(pairing)
    return lambda name: (
        (m := regex.search(name)) and (m.group(1) if regex.groups else m.group(0)),
        None,
    )


def read_pairs(pairing, store: Store) -> dict[str, Pair]:
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


class Backgrounds:
    """Find a background by file name, stem, path inside bg/, or id (``bg_id``)."""

    def __init__(self, bgs: list[str]):
        self.by_name: dict[str, str] = {}
        self.by_id: dict = {}
        for rel in bgs:
            inner = PurePosixPath(rel.lower().split("/", 1)[1])
            for name in (inner, inner.with_suffix(""), inner.name, inner.stem):
                self.by_name.setdefault(str(name), rel)
            self.by_id.setdefault(bg_id(str(inner)), []).append(rel)

    def clashes(self) -> list[str]:
        """Backgrounds sharing an id: a name rule cannot tell them apart."""
        return [" and ".join(v) for v in self.by_id.values() if len(v) > 1]

    def find(self, token: str) -> str | None:
        token = token.strip().lower()
        if token in self.by_name:
            return self.by_name[token]
        hits = self.by_id.get(bg_id(token)) or (
            self.by_id.get(int(token)) if token.isdigit() else None
        )
        return hits[0] if hits and len(hits) == 1 else None
