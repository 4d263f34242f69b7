"""manifest.csv: one row per sample (id, split, source files, placement, ...), read and written."""

from __future__ import annotations

import csv
import io

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
