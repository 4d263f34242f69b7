"""make_dataset's unit of resumable work: chunks of samples, their progress records, and the checks
a re-run makes before it trusts them.

A chunk is one background's samples (a block of foregrounds); it counts as done once its manifest rows
are saved in ``.progress/<first id>-<last id>.csv``. Files are written without fsync until the run
ends (make_dataset syncs once then), so after a machine went down mid-run a record, or a file it
names, can be empty: ``unfinished`` redoes such chunks. A killed process alone cannot cause that
(every file is renamed into place whole).
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

from ..config import DataConfig, diff, from_dict, to_dict
from ..storage import DatasetError, atomic_write
from . import photogen
from .manifest import MANIFEST_COLUMNS
from .sources import SampleKey

CHUNK_SAMPLES = 256  # samples per unit of resumable work


def prepare(out: Path, cfg: DataConfig, teacher: dict | None = None) -> bool:
    """Create the tree; refuse to resume (or overwrite) a dataset made with other settings or another
    teacher (``teacher``: ``photogen.teacher_identity``, None for synthetic data).

    Returns True when ``out`` already holds this very dataset, finished.
    """
    if out.exists() and not out.is_dir():
        raise DatasetError(f"{out}: exists and is not a folder")
    marker = out / ".progress" / "config.json"
    for done in (out / "stats.json", marker):
        if done.exists():
            raw = json.loads(done.read_text())
            old = from_dict(DataConfig, raw.get("config", raw))
            if old != cfg:
                changes = ", ".join(f"{k}: {a!r} -> {b!r}" for k, (a, b) in diff(old, cfg).items())
                raise DatasetError(
                    f"{out}: holds a dataset made with other settings ({changes}); use a new folder"
                )
            if done == out / "stats.json" and "stats" not in raw:
                continue  # stats.json of a run stopped while computing its stats: no teacher yet
            old_teacher = raw.get("teacher") if "config" in raw else None
            old_teacher = old_teacher and photogen.teacher_identity(old_teacher)
            if old_teacher != teacher:
                raise DatasetError(
                    f"{out}: holds a dataset labelled by another teacher ({old_teacher} -> "
                    f"{teacher}); use a new folder"
                )
    if (out / "stats.json").exists():
        if (out / "manifest.csv").exists() and not (out / ".progress").exists():
            return True
        (out / "stats.json").unlink()  # finished writing samples but not the stats: redo them
    for sub in ("bg", "fg", "depth", ".progress") + (() if cfg.lazy else ("fg_bg", "mask")):
        (out / sub).mkdir(parents=True, exist_ok=True)
        for stale in (out / sub).glob(".*.tmp"):  # left by a process killed mid-write
            stale.unlink()
    if not marker.exists():
        settings = to_dict(cfg) if teacher is None else {"config": to_dict(cfg), "teacher": teacher}
        atomic_write(marker, json.dumps(settings).encode())
    return False


def split_chunks(keys: list[SampleKey]) -> list[list[SampleKey]]:
    """Consecutive keys grouped by background, about CHUNK_SAMPLES each."""
    chunks, cur = [], []
    for key in keys:
        if cur and (key.bg != cur[-1].bg or (len(cur) >= CHUNK_SAMPLES and key.fg != cur[-1].fg)):
            chunks.append(cur)
            cur = []
        cur.append(key)
    return chunks + ([cur] if cur else [])


def record(out: Path, chunk: list[SampleKey]) -> Path:
    """Where the progress record of ``chunk`` (its manifest rows) goes."""
    return out / ".progress" / f"{chunk[0].id}-{chunk[-1].id}.csv"


def unfinished(out: Path, chunks: list[list[SampleKey]]) -> list[list[SampleKey]]:
    """The chunks still to write: all but those whose record lists every sample of the chunk, each
    row whole, and whose files all exist and are not empty (empty ones are removed, so that the
    writers, which skip a shared file that exists, make them again)."""
    todo = []
    for chunk in chunks:
        path = record(out, chunk)
        rows = read_rows(path) if path.exists() else []
        listed = [row["id"] for row in rows] == [key.id for key in chunk]
        complete = all(None not in row.values() for row in rows)  # no row cut short
        if listed and complete and _files_whole(out, rows):
            continue
        path.unlink(missing_ok=True)
        todo.append(chunk)
    return todo


def _files_whole(out: Path, rows: list[dict]) -> bool:
    """Whether every file the manifest ``rows`` name exists and is not empty; removes empty ones."""
    whole = True
    for row in rows:
        for path in (out / row[k] for k in ("bg", "fg", "fg_bg", "mask", "depth") if row[k]):
            if not path.exists() or path.stat().st_size == 0:
                path.unlink(missing_ok=True)
                whole = False
    return whole


def save_rows(out: Path, chunk: list[SampleKey], rows: list[dict]) -> None:
    """Mark ``chunk`` done: its manifest ``rows`` as its record, once its files are written."""
    buf = io.StringIO()
    csv.DictWriter(buf, MANIFEST_COLUMNS, lineterminator="\n").writerows(rows)
    atomic_write(record(out, chunk), buf.getvalue().encode(), durable=False)


def read_rows(path: Path) -> list[dict]:
    """The manifest rows of a record (a row cut short has None for its missing columns)."""
    return list(csv.DictReader(io.StringIO(path.read_text()), MANIFEST_COLUMNS))
