"""Writing datasets: ``make_dataset`` renders a source's quartets into a dataset folder: the image
folders bg/, fg/, fg_bg/, mask/ and depth/ (encoded as storage.py says), manifest.csv (a row a
sample, manifest.py) and stats.json (settings, counts, the train split's mean and std).

Resumable by construction. Work is cut into chunks (chunks.py: one background, a block of
foregrounds); every file is written atomically, and a chunk counts as done only once its manifest rows
are saved in ``.progress/``. A re-run skips finished chunks and redoes the rest; since every sample's
bytes depend only on its key, the result is the same as an uninterrupted run. The files are synced to
disk once, before manifest.csv and stats.json are written last, so a reader never mistakes an
unfinished folder for a dataset.

Photo sources (``ImageFolders``) have no depth: a teacher labels every fg_bg (photogen.py), and a run
refuses to resume with a different teacher, so one dataset never mixes two teachers' labels. With
``teacher=None`` the dataset has no depth: no depth file is written, stats.json says
``"has_depth": false`` (true for every other dataset), and a reader gives zeros with the flag
(dataset.py). A run refuses to resume a depth-less build with a teacher, or the other way round.
"""

from __future__ import annotations

import json
import os
import shutil
from concurrent.futures import ProcessPoolExecutor
from dataclasses import replace
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from ..config import DataConfig, to_dict
from ..storage import atomic_write, encode_depth, encode_image, encode_mask, zip_folder
from . import photogen
from .chunks import prepare, read_rows, record, save_rows, split_chunks, unfinished
from .dataset import QuartetDataset
from .manifest import manifest_row, write_manifest_text
from .sources import ImageFolders, SampleKey, SyntheticSource, sample_keys, split_backgrounds

FORMAT_VERSION = 1
STATS_SAMPLES = 2000  # fg_bg images read back for the normalisation statistics


def make_dataset(
    out: str | Path,
    cfg: DataConfig = DataConfig(),
    source: SyntheticSource | ImageFolders | None = None,
    *,
    teacher=None,
    workers: int | None = None,
    zip: bool = False,
    keep_folder: bool = True,
    progress: bool = True,
) -> Path:
    """Write the dataset of ``cfg`` (from ``source``, procedural rooms by default) to the folder ``out``.

    ``workers`` processes render in parallel (default: all cores; 0 renders in this process).
    ``cfg.lazy`` stores only manifest, bg, fg and depth; fg_bg and mask are re-composited on read.
    ``zip=True`` also packs the folder into ``out.zip`` (removing the folder unless ``keep_folder``).
    Returns the folder, or the zip when one was made. Re-running after an interruption resumes.

    ``source=ImageFolders(bg_dir, fg_dir, cfg)`` builds from photos: ``teacher`` (teachers.py) labels
    the depth of every fg_bg in this process, batched, while ``workers`` composite; the time and
    disk for the course's 400k quartets at 224 px are printed first, from a timed probe. Without a
    teacher the dataset has no depth (module docstring). ``cfg.n_bg`` and ``cfg.n_fg`` are then the
    folders' counts.
    """
    out = Path(out)
    source = source or SyntheticSource(cfg)
    cfg = _check_source(cfg, source, teacher)
    for j in range(source.n_fg):  # read every cut-out now: a bad one fails before any writing
        source.foreground(j)
    has_depth = _has_depth(source, teacher)
    photogen.check_same_depth(out, has_depth, teacher)
    identity = photogen.teacher_identity(teacher) if teacher is not None else None
    if prepare(out, cfg, identity):
        return _finish_zip(out, zip, keep_folder)
    photogen.record_depth(out, has_depth)
    keys = sample_keys(source.n_bg, source.n_fg, cfg)
    chunks = split_chunks(keys)
    _write_samples(out, source, cfg, teacher, keys, chunks, workers, progress)
    _finish_folder(out, source, cfg, teacher, chunks)
    return _finish_zip(out, zip, keep_folder)


def _write_samples(out: Path, source, cfg: DataConfig, teacher, keys, chunks, workers, progress):
    """Every chunk not done yet, in ``workers`` processes (photos: composited there, labelled by the
    teacher here), after the estimates of time and disk; then the files synced to disk."""
    photos = source.kind == "photos"
    split_of = {b: s for s, bgs in split_backgrounds(source.n_bg, cfg).items() for b in bgs}
    todo = unfinished(out, chunks)
    n_todo = sum(map(len, todo))
    _estimate(len(keys), cfg, photos, _has_depth(source, teacher))
    if teacher is not None and todo:
        estimate = photogen.estimate_run(teacher, source, todo[0], n_todo, cfg)
        photogen.print_estimate(estimate, n_todo)

    _write_shared(out, source, cfg)
    bar = tqdm(total=len(keys), initial=len(keys) - n_todo, unit="sample", disable=not progress)
    jobs = [(out, source, cfg, c, split_of) for c in todo]
    if photos:
        _write_photo_chunks(out, source, cfg, teacher, todo, split_of, workers, bar)
    elif workers == 0 or len(todo) <= 1:
        for job in jobs:
            bar.update(_write_chunk(*job))
    else:
        with ProcessPoolExecutor(max_workers=workers or os.cpu_count()) as pool:
            for n in pool.map(_write_chunk_job, jobs):
                bar.update(n)
    bar.close()
    if hasattr(os, "sync"):  # the files were written without fsync: make them durable at once
        os.sync()


def _finish_folder(out: Path, source, cfg: DataConfig, teacher, chunks) -> None:
    """manifest.csv and stats.json from the chunks' saved rows, written last: a folder that has
    them is a finished dataset. Then the chunks' progress records go."""
    rows = [row for c in chunks for row in read_rows(record(out, c))]
    atomic_write(out / "manifest.csv", write_manifest_text(rows).encode())
    stats = _stats(out, source, cfg, rows, _has_depth(source, teacher))
    if teacher is not None:
        stats["teacher"] = photogen.describe_teacher(teacher)
    elif not stats["has_depth"] and (out / "depth").is_dir() and not any((out / "depth").iterdir()):
        (out / "depth").rmdir()  # made by prepare for every dataset; this one has nothing there
    atomic_write(out / "stats.json", json.dumps(stats, indent=2).encode())
    shutil.rmtree(out / ".progress")


def _check_source(cfg: DataConfig, source, teacher) -> DataConfig:
    """``cfg`` as the source sees it (photos: the folders' counts); a teacher only for photos."""
    if source.kind == "photos":
        cfg = replace(cfg, n_bg=source.n_bg, n_fg=source.n_fg)
    elif teacher is not None:
        raise ValueError("teacher: only photo sources (ImageFolders) need one; synthetic is exact")
    if source.cfg != cfg:
        raise ValueError("source: was built with a different DataConfig than cfg")
    return cfg


def _has_depth(source, teacher) -> bool:
    """Whether the dataset stores depth: always for synthetic rooms, for photos with a teacher."""
    return source.kind != "photos" or teacher is not None


def _finish_zip(out: Path, zip: bool, keep_folder: bool) -> Path:
    """``out`` packed into ``out.zip`` (whole, or not at all: the folder stays if zipping fails)."""
    if not zip:
        return out
    dest = out.with_suffix(".zip")
    zip_folder(out, dest)
    if not keep_folder:
        # renamed away first: a run killed while deleting must not leave a folder that still looks
        # finished, which a re-run would pack again, half of it, over the good zip
        doomed = out.with_name(f".{out.name}.removing")
        shutil.rmtree(doomed, ignore_errors=True)  # left by such a killed run
        os.replace(out, doomed)
        shutil.rmtree(doomed)
    return dest


def _paths(
    key: SampleKey, cfg: DataConfig, photos: bool = False, depth: bool = True
) -> dict[str, str]:
    """Where a sample's files go; a lazy synthetic dataset keeps one depth per background, photos
    (whose depth is the teacher's view of each composite) one per sample, and without a teacher
    none ("")."""
    ext = cfg.image_format
    if not depth:
        depth_file = ""
    elif cfg.lazy and not photos:
        depth_file = f"depth/bg_{key.bg:04d}.png"
    else:
        depth_file = f"depth/{key.id}.png"
    return {
        "bg": f"bg/{key.bg:04d}.{ext}",
        "fg": f"fg/{key.fg:04d}.png",
        "fg_bg": "" if cfg.lazy else f"fg_bg/{key.id}.{ext}",
        "mask": "" if cfg.lazy else f"mask/{key.id}.png",
        "depth": depth_file,
    }


def _write_shared(out: Path, source, cfg: DataConfig) -> None:
    """Foregrounds, and the backgrounds of photo sources, once each. Procedural rooms are rendered
    where their samples are (``_write_background``): once, and in parallel."""
    for j in range(source.n_fg):
        if not (out / f"fg/{j:04d}.png").exists():
            data = encode_image(source.foreground(j), "png")
            atomic_write(out / f"fg/{j:04d}.png", data, durable=False)
    if source.kind == "photos":
        for i in range(source.n_bg):
            _write_bg_image(out, source, cfg, i)


def _write_bg_image(out: Path, source, cfg: DataConfig, i: int) -> None:
    """Background ``i``'s image, unless already written (atomically: a second writer is harmless)."""
    path = out / f"bg/{i:04d}.{cfg.image_format}"
    if not path.exists():
        atomic_write(path, encode_image(source.bg_image(i), cfg.image_format), durable=False)


def _write_background(out: Path, source: SyntheticSource, cfg: DataConfig, i: int) -> None:
    """Room ``i``'s image (and, for the lazy layout, its exact depth); two chunks of one room may
    both write them, and atomic_write makes that harmless."""
    _write_bg_image(out, source, cfg, i)
    if cfg.lazy and not (out / f"depth/bg_{i:04d}.png").exists():
        depth = encode_depth(source.background(i)[1])
        atomic_write(out / f"depth/bg_{i:04d}.png", depth, durable=False)


def _write_chunk_job(job: tuple) -> int:
    return _write_chunk(*job)


def _write_chunk(
    out: Path, source: SyntheticSource, cfg: DataConfig, chunk: list, split_of: dict
) -> int:
    """Render and write one chunk's room and samples, then record its manifest rows (which marks it
    done). A chunk holds samples of one room (``split_chunks``)."""
    _write_background(out, source, cfg, chunk[0].bg)
    rows = []
    for key in chunk:
        s = source.sample(key)
        paths = _paths(key, cfg)
        if not cfg.lazy:
            fg_bg = encode_image(s["fg_bg"], cfg.image_format)
            atomic_write(out / paths["fg_bg"], fg_bg, durable=False)
            atomic_write(out / paths["mask"], encode_mask(s["mask"]), durable=False)
            atomic_write(out / paths["depth"], encode_depth(s["depth"]), durable=False)
        rows.append(
            manifest_row(key.id, split_of[key.bg], source.kind, paths, s["placement"], s["fg_z"])
        )
    save_rows(out, chunk, rows)
    return len(chunk)


def _write_photo_chunks(out, source, cfg, teacher, chunks, split_of, workers, bar) -> None:
    """photogen.label_chunks does the work; a chunk is marked done once its depth files exist (at once
    without a teacher: it has none)."""
    has_depth = teacher is not None
    paths = [[_paths(key, cfg, photos=True, depth=has_depth) for key in chunk] for chunk in chunks]
    jobs = [(out, source, cfg, c, p) for c, p in zip(chunks, paths, strict=True)]

    def done(job: tuple, made: list[dict]) -> None:
        chunk, chunk_paths = job[3], job[4]
        rows = [
            manifest_row(key.id, split_of[key.bg], source.kind, p, m["placement"])
            for key, p, m in zip(chunk, chunk_paths, made, strict=True)
        ]
        save_rows(out, chunk, rows)
        bar.update(len(chunk))

    photogen.label_chunks(jobs, teacher, workers, done)


def _stats(out: Path, source, cfg: DataConfig, rows: list[dict], has_depth: bool) -> dict:
    """stats.json: counts, settings, whether there is depth, and per-channel mean/std of the train
    split's bg and fg_bg images (no depth statistics: a depth-less dataset's zeros are no data)."""
    first = {"config": to_dict(cfg), "source": source.kind, "has_depth": has_depth}
    atomic_write(out / "stats.json", json.dumps(first).encode())  # for the reader below
    train = QuartetDataset(out, "train")
    n = len(train)
    picks = np.linspace(0, n - 1, min(n, STATS_SAMPLES)).round().astype(int) if n else []
    total, sq, count = np.zeros(3), np.zeros(3), 0
    for i in picks:
        raw = train.raw(int(i))
        for img in (raw["bg"], raw["fg_bg"]):
            x = img.reshape(-1, 3).astype(np.float64) / 255
            total, sq, count = total + x.sum(0), sq + (x**2).sum(0), count + len(x)
    mean = total / max(count, 1)
    std = np.sqrt(np.maximum(sq / max(count, 1) - mean**2, 1e-12))
    return {
        "version": FORMAT_VERSION,
        "layout": "lazy" if cfg.lazy else "full",
        "size": cfg.size,
        "counts": {s: sum(r["split"] == s for r in rows) for s in ("train", "val", "test")},
        "n_bg": source.n_bg,
        "n_fg": source.n_fg,
        "stats": {"mean": mean.round(6).tolist(), "std": std.round(6).tolist()},
        **source.describe(),
        "has_depth": has_depth,
    }


def disk_usage(path: str | Path) -> dict:
    """Bytes of a dataset folder or zip: ``{"total": ..., "per_sample": ..., "<folder>": ...}``."""
    path = Path(path)
    if path.is_file():
        n = len(QuartetDataset(path, "all"))
        return {"total": path.stat().st_size, "per_sample": round(path.stat().st_size / max(n, 1))}
    usage = {}
    for sub in sorted(p for p in path.iterdir() if p.is_dir() and not p.name.startswith(".")):
        usage[sub.name] = sum(f.stat().st_size for f in sub.iterdir())
    usage["total"] = sum(usage.values()) + sum(
        f.stat().st_size for f in path.iterdir() if f.is_file()
    )
    usage["per_sample"] = round(usage["total"] / max(len(QuartetDataset(path, "all")), 1))
    return usage


def _estimate(n: int, cfg: DataConfig, photos: bool = False, has_depth: bool = True) -> None:
    """Print how much disk the dataset will take, before any work starts (about, from typical sizes)."""
    size = photogen.estimate_bytes(n, cfg.size, cfg.image_format, cfg.lazy, photos, has_depth)
    amount = f"{size / 1e9:.1f} GB" if size >= 1e9 else f"{size / 1e6:.0f} MB"
    print(f"make_dataset: {n:,} samples at {cfg.size} px, about {amount} on disk")
