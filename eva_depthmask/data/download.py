"""``download``: a dataset zip from Google Drive, checked to be a dataset before it takes its name."""

from __future__ import annotations

import inspect
import os
from pathlib import Path

from ..storage import DatasetError, Store
from .course_layout import is_course_dataset
from .manifest import read_manifest


def download(url_or_id: str, dest: str | Path, quiet: bool = False) -> Path:
    """Fetch a dataset zip from Google Drive (a share link or a file id) to ``dest`` with gdown.

    An existing valid dataset at ``dest`` is kept (no download). The file is fetched under a temporary
    name and checked to be a dataset (ours, or a course layout) before it takes ``dest``'s name.
    """
    dest = Path(dest)
    if dest.exists():
        _check_dataset(dest)
        return dest
    import gdown  # only needed here; keeps import of this module light

    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(f".{dest.name}.part")
    kwargs = {"url": url_or_id} if "/" in url_or_id else {"id": url_or_id}
    if "/" in url_or_id and "fuzzy" in inspect.signature(gdown.download).parameters:
        kwargs["fuzzy"] = True  # gdown 5 reads share links only when asked; gdown 6 always does
    try:
        got = gdown.download(output=str(part), quiet=quiet, **kwargs)
    except Exception as e:  # gdown raises many kinds: network, permission, HTML instead of a file
        part.unlink(missing_ok=True)
        raise DatasetError(
            f"could not download {url_or_id!r} ({type(e).__name__}: {e}); check the link is shared "
            "with 'anyone with the link' and that this machine is online"
        ) from e
    if got is None or not part.exists():
        raise DatasetError(f"could not download {url_or_id!r}: gdown returned nothing")
    try:
        _check_dataset(part)
    except DatasetError as e:
        with open(part, "rb") as f:
            head = f.read(512).lstrip().lower()
        part.unlink(missing_ok=True)
        why = (
            "Google Drive sent a web page, not the file: is the link shared with 'anyone with "
            "the link', and is the file's download quota not exceeded?"
            if head.startswith((b"<!doctype html", b"<html"))
            else str(e).replace(str(part), "the file")
        )
        raise DatasetError(
            f"{url_or_id!r}: downloaded, but not a dataset; {dest} not written ({why})"
        ) from e
    os.replace(part, dest)
    return dest


def _check_dataset(path: Path) -> None:
    """A DatasetError unless ``path`` is an eva_depthmask dataset or a course dataset."""
    if not is_course_dataset(path):
        read_manifest(Store(path))
