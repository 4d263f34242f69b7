"""Bytes on disk: image encoding, atomic writes, and reading a dataset tree from a folder or a zip.

Encodings: bg and fg_bg JPEG quality 95 or PNG; mask PNG 8-bit 0/255; depth PNG 16-bit with
``depth = value / 65535``; fg PNG RGBA.
"""

from __future__ import annotations

import errno
import functools
import io
import os
import tempfile
import zipfile
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

DEPTH_SCALE = 65535  # 16-bit PNG


class DatasetError(ValueError):
    """A dataset on disk that cannot be read as one; the message names the file and the problem."""


# ---------------------------------------------------------------------------------------------------
# Encoding


def quantize_depth(depth: np.ndarray) -> np.ndarray:
    """Depth as it comes back from a 16-bit PNG: float32 in [0, 1] on a grid of 1/65535."""
    return (np.rint(np.clip(depth, 0.0, 1.0) * DEPTH_SCALE) / DEPTH_SCALE).astype(np.float32)


def encode_image(img: np.ndarray, fmt: str) -> bytes:
    """uint8 RGB ``(H, W, 3)``, RGBA ``(H, W, 4)`` or L ``(H, W)`` as JPEG (q95) or PNG bytes."""
    buf = io.BytesIO()
    if fmt in ("jpg", "jpeg"):
        Image.fromarray(img).save(
            buf, "JPEG", quality=95, subsampling=0
        )  # 4:4:4: no colour smear at edges
    elif fmt == "png":
        Image.fromarray(img).save(
            buf, "PNG", compress_level=1
        )  # fast; PNG is lossless at any level
    else:
        raise ValueError(f"image_format: expected 'jpg' or 'png', got {fmt!r}")
    return buf.getvalue()


def encode_mask(mask: np.ndarray) -> bytes:
    return encode_image((mask > 0).astype(np.uint8) * 255, "png")


def depth_to_uint16(depth: np.ndarray) -> np.ndarray:
    """Depth ``(H, W)`` in [0, 1] (clipped to it) as the uint16 values of a 16-bit PNG: steps of
    1/65535 (``decode_depth`` reads them back)."""
    return np.rint(np.clip(depth, 0, 1) * DEPTH_SCALE).astype(np.uint16)


def encode_depth(depth: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(depth_to_uint16(depth)).save(
        buf, "PNG", compress_level=1
    )  # low bits are noise: 6 is no smaller
    return buf.getvalue()


def decode_image(data: bytes, name: str, mode: str = "RGB") -> np.ndarray:
    """Decode image bytes into a uint8 array in ``mode`` ("RGB", "RGBA", "L")."""
    try:
        with Image.open(io.BytesIO(data)) as im:
            im.load()
            if mode == "RGBA" or (im.mode == "P" and mode == "RGB"):
                im = im.convert("RGBA")
            return np.asarray(im.convert(mode), dtype=np.uint8).copy()
    except (UnidentifiedImageError, OSError, SyntaxError) as e:
        raise DatasetError(f"{name}: unreadable or truncated image ({e})") from e


def decode_mask(data: bytes, name: str) -> np.ndarray:
    """uint8 ``(H, W)`` in {0, 1}; anything above mid-grey is foreground (re-binarises JPEG masks)."""
    return (decode_image(data, name, "L") > 127).astype(np.uint8)


def decode_depth(data: bytes, name: str) -> np.ndarray:
    """float32 ``(H, W)`` in [0, 1] from a 16-bit PNG (or an 8-bit image, scaled by 255)."""
    try:
        with Image.open(io.BytesIO(data)) as im:
            im.load()
            arr = np.asarray(im)
    except (UnidentifiedImageError, OSError, SyntaxError) as e:
        raise DatasetError(f"{name}: unreadable or truncated depth map ({e})") from e
    if arr.dtype == np.uint16 or (arr.dtype.kind in "iu" and arr.max(initial=0) > 255):
        return (arr.astype(np.float32) / DEPTH_SCALE).clip(0, 1)
    if (
        arr.ndim == 3
    ):  # a 3-channel 8-bit depth map: the channels are equal (or nearly), use their mean
        arr = arr[..., :3].mean(axis=2)
    return (arr.astype(np.float32) / 255.0).clip(0, 1)


# ---------------------------------------------------------------------------------------------------
# Writing


def atomic_write(path: str | Path, data: bytes, durable: bool = True) -> None:
    """Write ``data`` to ``path`` so that a reader sees the old file, or the new one whole, never a part.

    The bytes go to a temporary file in the same folder (same filesystem), are flushed and, when
    ``durable``, fsynced, and the file is renamed over ``path``. On any error the temporary file is
    removed and ``path`` is untouched. Without the fsync the rename still protects against a killed
    process; only a machine that goes down before the kernel writes the bytes back can leave an empty
    file (data/chunks.py checks for those when make_dataset resumes). A fsync per sample file made
    make_dataset a quarter slower at 64 px (benchmarks/README.md, G2).
    """
    path = Path(path)
    tmp = _temporary_copy(path, data, durable)
    try:
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _temporary_copy(path: Path, data: bytes, durable: bool) -> Path:
    """``data`` in a new hidden file beside ``path`` (removed again if writing fails)."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.fchmod(fd, 0o666 & ~_umask())  # mkstemp makes 0600; give what open() would
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            if durable:
                os.fsync(f.fileno())
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return Path(tmp)


def write_files(folder: str | Path, files: dict[str, bytes]) -> list[Path]:
    """Write ``files`` (name -> bytes) into ``folder``, all of them or none.

    Every file is written under a temporary name first and renamed into place only once all are
    written, so a failure (a full disk, a name taken by a folder) leaves ``folder`` as it was: the
    temporaries are removed, and so is ``folder`` (with any parents) when this call created it.
    Returns the paths written, in the order given.
    """
    folder = Path(folder)
    created = [p for p in (folder, *folder.parents) if not p.exists()]
    paths = [folder / name for name in files]
    temps: list[Path] = []
    try:
        taken = [p for p in paths if p.is_dir()]
        if taken:  # checked first: renaming onto a folder would fail after others were replaced
            raise IsADirectoryError(
                errno.EISDIR, "a folder has the name of an output file", taken[0]
            )
        folder.mkdir(parents=True, exist_ok=True)
        for path in paths:
            temps.append(_temporary_copy(path, files[path.name], durable=True))
        for tmp, path in zip(temps, paths, strict=True):
            os.replace(tmp, path)
    except BaseException:
        for tmp in temps:
            tmp.unlink(missing_ok=True)
        for made in created:  # innermost first; only folders this call made, and only if empty
            if made.is_dir() and not any(made.iterdir()):
                made.rmdir()
        raise
    return paths


@functools.cache
def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def zip_folder(folder: Path, dest: Path) -> None:
    """Pack a dataset folder into one zip (stored, not deflated: JPEG/PNG are compressed already)."""
    fd, tmp = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".tmp", dir=dest.parent)
    os.close(fd)
    try:
        with zipfile.ZipFile(tmp, "w", zipfile.ZIP_STORED) as zf:
            for p in sorted(folder.rglob("*")):
                if p.is_file() and not p.name.startswith("."):
                    zf.write(p, p.relative_to(folder).as_posix())
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.replace(tmp, dest)
    except BaseException as e:
        Path(tmp).unlink(missing_ok=True)
        if isinstance(e, OSError):  # a full disk, a folder in the way: say which zip, and that
            raise DatasetError(  # the dataset folder itself is untouched
                f"{dest}: could not write the zip ({e.strerror or e}); {folder} is intact"
            ) from e
        raise


# ---------------------------------------------------------------------------------------------------
# Reading a tree from a folder or a zip


class Store:
    """Random access to the files of a dataset tree, in a folder or inside a zip (read in place).

    Safe with DataLoader workers: a zip handle is opened lazily in each process, never shared across
    a fork. Memory does not grow with the dataset: nothing is cached but the zip's directory.
    """

    def __init__(self, root: str | Path, prefix: str | None = None):
        """``prefix``: the folder inside a zip that holds the tree ("" or "name/"); by default the one
        holding manifest.csv. Course datasets (data/course.py) find theirs by their folder names."""
        self.root = Path(root)
        if not self.root.exists():
            raise DatasetError(f"{self.root}: no such dataset folder or zip")
        self.is_zip = self.root.is_file()
        self._zip: zipfile.ZipFile | None = None
        self._pid = -1
        self.prefix = ""
        if self.is_zip:
            if not zipfile.is_zipfile(self.root):
                raise DatasetError(f"{self.root}: not a zip file and not a folder")
            self.prefix = self._find_prefix() if prefix is None else prefix

    def _handle(self) -> zipfile.ZipFile:
        if self._zip is None or self._pid != os.getpid():
            self._zip = zipfile.ZipFile(self.root)
            self._pid = os.getpid()
        return self._zip

    def _find_prefix(self) -> str:
        """The folder inside the zip that holds manifest.csv ("" at the top, or one level down)."""
        names = [n for n in self._handle().namelist() if n.endswith("manifest.csv")]
        names = [n for n in names if n.count("/") <= 1]
        if not names:
            raise DatasetError(
                f"{self.root}: zip holds no manifest.csv; it is not an eva_depthmask dataset"
            )
        return min(names, key=len)[: -len("manifest.csv")]

    def name(self, rel: str) -> str:
        """A human-readable location of ``rel`` for error messages."""
        return f"{self.root}:{self.prefix}{rel}" if self.is_zip else str(self.root / rel)

    def read(self, rel: str) -> bytes:
        try:
            if self.is_zip:
                return self._handle().read(self.prefix + rel)
            return (self.root / rel).read_bytes()
        except (KeyError, FileNotFoundError) as e:
            raise DatasetError(f"{self.name(rel)}: missing file") from e

    def exists(self, rel: str) -> bool:
        if self.is_zip:
            return self.prefix + rel in self._names()
        return (self.root / rel).exists()

    def listing(self) -> set[str]:
        """Every file of the tree as a relative posix path (one directory scan, not one stat per file)."""
        if self.is_zip:
            n = len(self.prefix)
            return {name[n:] for name in self._names() if name.startswith(self.prefix)}
        out = set()
        for sub in self.root.iterdir():
            if sub.is_dir():
                out.update(f"{sub.name}/{e.name}" for e in os.scandir(sub) if e.is_file())
            elif sub.is_file():
                out.add(sub.name)
        return out

    def _names(self) -> set[str]:
        if not hasattr(self, "_name_set"):
            self._name_set = set(self._handle().namelist())
        return self._name_set

    def walk(self) -> list[str]:
        """Every file below the tree's root, at any depth, as sorted relative posix paths."""
        if self.is_zip:
            n = len(self.prefix)
            names = self._handle().namelist()
            return sorted(m[n:] for m in names if m.startswith(self.prefix) and not m.endswith("/"))
        out = []
        for folder, dirs, files in os.walk(self.root):
            dirs.sort()
            rel = Path(folder).relative_to(self.root).as_posix()
            out.extend(f if rel == "." else f"{rel}/{f}" for f in files)
        return sorted(out)

    def __getstate__(self) -> dict:
        state = self.__dict__.copy()
        state["_zip"] = None  # reopened in the receiving process
        return state
