"""manifest.csv: one row per sample (id, split, source files, placement, ...), read and written."""

from __future__ import annotations

import csv
import io

from ..composite import Placement
from ..storage import DatasetError, Store

MANIFEST_COLUMNS = (
    "id",
    "split",
    "bg",
    "fg",
    "x",
    "y",
    "scale",
    "flip",
    "fg_z",
    "source",
    "fg_bg",
    "mask",
    "depth",
)


FILES = ("bg", "fg", "fg_bg", "mask", "depth")  # paths relative to the dataset root, "" for none


def manifest_row(
    sample_id: str,
    split: str,
    source: str,
    files: dict[str, str],
    placement: Placement | None = None,
    fg_z: float | None = None,
) -> dict:
    """One manifest.csv row: ``files`` maps some of ``FILES`` to their paths (the rest are "");
    ``placement`` (the pasted foreground's x, y, scale, flip) and the foreground's depth ``fg_z``
    are "" where unknown (a course dataset holds no placements; photos have no exact depth)."""
    where = dict.fromkeys(("x", "y", "scale", "flip"), "")
    if placement is not None:
        x, y, scale, flip = placement.x, placement.y, placement.scale, placement.flip
        where = {"x": x, "y": y, "scale": repr(scale), "flip": int(flip)}
    return {
        "id": sample_id,
        "split": split,
        **dict.fromkeys(FILES, ""),
        **files,
        **where,
        "fg_z": "" if fg_z is None else repr(float(fg_z)),
        "source": source,
    }


def read_manifest(store: Store) -> list[dict]:
    """Rows of manifest.csv as dicts; a missing manifest or missing columns is a ``DatasetError``."""
    if not store.exists("manifest.csv"):
        hint = (
            " (an interrupted make_dataset? run it again to finish)"
            if store.exists(".progress")
            else ""
        )
        raise DatasetError(
            f"{store.name('manifest.csv')}: missing; not an eva_depthmask dataset{hint}"
        )
    text = store.read("manifest.csv").decode("utf-8")
    reader = csv.DictReader(io.StringIO(text))
    missing = set(MANIFEST_COLUMNS) - set(reader.fieldnames or ())
    if missing:
        raise DatasetError(f"{store.name('manifest.csv')}: missing columns {sorted(missing)}")
    return list(reader)


def write_manifest_text(rows: list[dict]) -> str:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, MANIFEST_COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return buf.getvalue()
