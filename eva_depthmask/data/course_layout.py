"""Finding a course dataset's four folders (bg, fg_bg, mask, depth) in a folder or a zip.

Folder names are compared in lower case without separators (``FOLDER_NAMES``); the folders may sit at
the top or one or two folders down (a zip made of a folder, a Drive export); macOS ``__MACOSX`` and
hidden files are skipped; image files may sit in subfolders of the four. course.py pairs them up.
"""

from __future__ import annotations

import os
import re
import zipfile
from dataclasses import dataclass
from pathlib import Path

from ..images import IMAGE_EXTENSIONS
from ..storage import DatasetError, Store

ROLES = ("bg", "fg_bg", "mask", "depth")
_FG_BG = ("fgbg", "bgfg", "overlay", "overlayed", "composite")
FOLDER_NAMES = {
    "bg": {"bg", "bgs", "background", "backgrounds", "bgimages"},
    "fg_bg": {f"{n}{s}" for n in _FG_BG for s in ("", "s", "images")},
    "mask": {f"{n}{m}" for n in ("", *_FG_BG) for m in ("mask", "masks")},
    "depth": {
        f"{n}{d}" for n in ("", *_FG_BG) for d in ("depth", "depths", "depthmap", "depthmaps")
    },
}


@dataclass
class CourseLayout:
    """Where a course dataset's files are: ``files[role]`` are paths relative to ``store``'s root."""

    store: Store
    folders: dict[str, str]
    files: dict[str, list[str]]


def folder_key(folder: str) -> str:
    return re.sub(r"[^a-z0-9]", "", folder.lower())


def _visible(rel: str) -> bool:
    parts = rel.split("/")
    return not any(p.startswith(".") or p == "__MACOSX" for p in parts)


def _roles(children: set[str], folders: dict[str, str]) -> dict[str, str] | str:
    """Role -> child folder among ``children``; a message instead when a role is ambiguous."""
    found = {}
    for role in ROLES:
        if role in folders:
            if folders[role] in children:
                found[role] = folders[role]
            continue
        hits = sorted(c for c in children if folder_key(c) in FOLDER_NAMES[role])
        if len(hits) > 1:
            return f"several {role} folders {hits}; choose one with folders={{{role!r}: ...}}"
        if hits:
            found[role] = hits[0]
    return found


def find_layout(path: str | Path, folders: dict[str, str] | None = None) -> CourseLayout:
    """Find the four folders in a folder or zip (at its top or up to two folders down)."""
    path = Path(path)
    prefix, roles, names = _find_root(path, folders)
    missing = [r for r in ROLES if r not in roles]
    if missing:
        raise DatasetError(
            f"{path}: found {sorted(roles.values())} but no {' or '.join(missing)} folder; "
            f"accepted names: {', '.join(sorted(FOLDER_NAMES[missing[0]]))} (any case), or "
            f"pass folders={{{missing[0]!r}: 'your_folder'}}"
        )
    root = f"{prefix}/" if prefix else ""
    if path.is_file():
        store = Store(path, prefix=root)
        inside = [n[len(root) :] for n in names if n.startswith(root)]
    else:
        store = Store(path / prefix)
        inside = [f"{roles[r]}/{n}" for r in ROLES for n in Store(path / root / roles[r]).walk()]
    files = {
        role: sorted(
            n
            for n in inside
            if n.startswith(roles[role] + "/")
            and Path(n).suffix.lower() in IMAGE_EXTENSIONS
            and _visible(n)
        )
        for role in ROLES
    }
    return CourseLayout(store, roles, files)


def _find_root(path: Path, folders: dict[str, str] | None) -> tuple[str, dict[str, str], list]:
    """``(prefix, {role: folder}, zip names)`` of the shallowest folder holding bg and fg_bg folders.

    Looks at folder names only (a zip's directory is in memory; a folder is scanned three deep, not
    walked), so recognising a dataset stays cheap however many files it holds.
    """
    folders = dict(folders or {})
    unknown = set(folders) - set(ROLES)
    if unknown:
        raise ValueError(f"folders: unknown roles {sorted(unknown)}; expected some of {ROLES}")
    if not path.exists():
        raise DatasetError(f"{path}: no such dataset folder or zip")
    if path.is_file() and not zipfile.is_zipfile(path):
        raise DatasetError(f"{path}: not a zip file and not a folder")
    names = _zip_names(path) if path.is_file() else []
    children: dict[str, set[str]] = {}
    for rel in names or _dir_tree(path):
        parts = rel.split("/")
        for depth in range(min(3, len(parts) - 1)):
            children.setdefault("/".join(parts[:depth]), set()).add(parts[depth])
    for prefix in sorted(children, key=lambda p: (p.count("/") + bool(p), p)):
        roles = _roles(children[prefix], folders)
        if isinstance(roles, str):
            raise DatasetError(f"{path}:{prefix or '/'}: {roles}")
        if "bg" in roles and "fg_bg" in roles:
            return prefix, roles, names
    raise DatasetError(
        f"{path}: no course dataset layout found: expected folders like bg/ and fg_bg/ "
        "(and mask/, depth/) at the top or one or two folders down"
    )


def is_course_dataset(path: str | Path) -> bool:
    """A folder or zip without manifest.csv (or unfinished make_dataset) holding a course layout."""
    path = Path(path)
    if path.is_dir():
        if (path / "manifest.csv").exists() or (path / ".progress").exists():
            return False
    elif not (path.is_file() and zipfile.is_zipfile(path)) or any(
        n.endswith("manifest.csv") and n.count("/") <= 1 for n in _zip_names(path)
    ):
        return False
    try:
        _find_root(path, None)
    except DatasetError:
        return False
    return True


def _zip_names(path: Path) -> list[str]:
    with zipfile.ZipFile(path) as zf:
        return [n for n in zf.namelist() if not n.endswith("/") and _visible(n)]


def _dir_tree(path: Path, depth: int = 3) -> list[str]:
    """Sub-folders of ``path`` down to ``depth`` levels, as "a/b/" paths (for ``_find_root``)."""
    out, level = [], [""]
    for _ in range(depth):
        nxt = []
        for rel in level:
            with os.scandir(path / rel) as it:
                subs = [f"{rel}{e.name}/" for e in it if e.is_dir() and _visible(e.name)]
            nxt += subs
        out += nxt
        level = nxt
    return out
