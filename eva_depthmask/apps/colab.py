"""Colab conveniences: detect Colab, mount Google Drive, and pick default folders.

In Colab the runtime's disk disappears with the runtime, so datasets worth keeping and every checkpoint
go to Drive; elsewhere everything stays under the working folder.
"""

from __future__ import annotations

import sys
from pathlib import Path

DRIVE_MOUNT = Path("/content/drive")
DRIVE_ROOT = DRIVE_MOUNT / "MyDrive" / "eva_depthmask"


def in_colab() -> bool:
    return "google.colab" in sys.modules


def mount_drive() -> Path:
    """Mount Google Drive (asks for permission once) and return the project's folder on it."""
    if not in_colab():
        raise RuntimeError("mount_drive: Google Drive can only be mounted inside Colab")
    from google.colab import drive  # only exists inside Colab

    if not (DRIVE_MOUNT / "MyDrive").exists():
        drive.mount(str(DRIVE_MOUNT))
    DRIVE_ROOT.mkdir(parents=True, exist_ok=True)
    return DRIVE_ROOT


def default_root(use_drive: bool | None = None) -> Path:
    """Where data and runs live: Drive in Colab (unless ``use_drive=False``), else the working folder."""
    if use_drive is None:
        use_drive = in_colab()
    return mount_drive() if use_drive else Path.cwd()


def default_paths(use_drive: bool | None = None) -> dict[str, Path]:
    """``{"data": ..., "runs": ...}`` under ``default_root``."""
    root = default_root(use_drive)
    return {"data": root / "data", "runs": root / "runs"}
