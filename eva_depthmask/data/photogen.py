"""Datasets from photos: worker processes composite, a teacher in this process labels the depth.

``make_dataset(out, cfg, ImageFolders(bg_dir, fg_dir, cfg), teacher=...)`` (datagen.py) uses these
pieces. Chunks are composited (and, in the full layout, their fg_bg and mask written) by ``workers``
processes a few chunks ahead, while this process runs the teacher batched on the GPU and threads encode
and write the depth maps of the previous chunk, so none waits long for the others. Chunks come back in
order, so a run is deterministic and resumes chunk by chunk. With no teacher (``teacher=None``) the
chunks are composited and marked done, and the dataset has no depth at all.
"""

from __future__ import annotations

import json
import os
import time
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from pathlib import Path

import numpy as np

from ..storage import DatasetError, atomic_write, encode_depth, encode_image, encode_mask
from .teacher_base import COURSE_SAMPLES

AHEAD_PER_WORKER = 2  # chunks in flight per worker: enough to hide the teacher, bounded memory
WRITE_THREADS = 2  # depth PNG encoding (zlib) and writing overlap the teacher's next chunk
PROBE_SAMPLES = 8  # composites timed through the teacher before a run, for the estimate
COURSE_SIZE = 224  # px of the course's images, for the estimate
IDENTITY_KEYS = ("teacher", "model", "far_near_ratio", "clip_percentiles")
DEPTH_RECORD = "depth.json"  # in .progress/: whether an unfinished run writes depth


def composite_chunk(job: tuple) -> list[dict]:
    """Composite one chunk (in a worker): ``[{"fg_bg", "placement"}]`` in key order.

    ``job`` is ``(out, source, cfg, keys, paths)``; in the full layout fg_bg and mask are written too.
    """
    out, source, cfg, keys, paths = job
    made = []
    for key, p in zip(keys, paths, strict=True):
        s = source.sample(key)
        if not cfg.lazy:
            fg_bg = encode_image(s["fg_bg"], cfg.image_format)
            atomic_write(out / p["fg_bg"], fg_bg, durable=False)  # make_dataset syncs at the end
            atomic_write(out / p["mask"], encode_mask(s["mask"]), durable=False)
        made.append({"fg_bg": s["fg_bg"], "placement": s["placement"]})
    return made


def composited(jobs: list[tuple], workers: int | None) -> Iterator[list[dict]]:
    """``composite_chunk`` of every job, in order; ``workers=0`` runs them in this process."""
    if workers == 0 or len(jobs) <= 1:
        yield from map(composite_chunk, jobs)
        return
    workers = workers or os.cpu_count() or 1
    with ProcessPoolExecutor(max_workers=workers) as pool:
        ahead = AHEAD_PER_WORKER * workers
        running = deque()
        for job in jobs:
            running.append(pool.submit(composite_chunk, job))
            if len(running) >= ahead:
                yield running.popleft().result()
        while running:
            yield running.popleft().result()


def label_chunks(jobs: list[tuple], teacher, workers: int | None, done: Callable) -> None:
    """Composite ``jobs`` (``composite_chunk``), label each chunk with ``teacher`` and write its depth.

    PNG encoding and writing run in threads while the teacher labels the next chunk; ``done(job,
    made)`` is called, in order, once all of a chunk's depth files are written (at once when
    ``teacher`` is None: no depth to write).
    """
    if teacher is None:
        for job, made in zip(jobs, composited(jobs, workers), strict=True):
            done(job, made)
        return
    with ThreadPoolExecutor(WRITE_THREADS) as writer:
        pending = None
        try:
            for job, made in zip(jobs, composited(jobs, workers), strict=True):
                out, keys, paths = job[0], job[3], job[4]
                fg_bg = np.stack([m["fg_bg"] for m in made])
                depth = label(teacher, fg_bg, f"chunk {keys[0].id}..")
                if pending is not None:
                    previous, pending = pending, None
                    _finish(*previous, done)
                writes = [
                    writer.submit(_write_depth, out / p["depth"], d)
                    for p, d in zip(paths, depth, strict=True)
                ]
                pending = (job, made, writes)
        finally:  # also when the teacher fails or the user interrupts: keep the chunk before
            if pending is not None:
                _finish(*pending, done)


def _write_depth(path: Path, depth: np.ndarray) -> None:
    atomic_write(path, encode_depth(depth), durable=False)


def _finish(job: tuple, made: list[dict], writes: list, done: Callable) -> None:
    for w in writes:
        w.result()  # re-raises a failed write here, before the chunk is marked done
    done(job, made)


def label(teacher, fg_bg: np.ndarray, where: str) -> np.ndarray:
    """The teacher's depth of uint8 ``(B, H, W, 3)`` composites, checked: float32 ``(B, H, W)``."""
    quiet = hasattr(teacher, "progress")
    if quiet:  # make_dataset's own bar counts the samples; the teacher's would flicker per chunk
        teacher.progress, before = False, teacher.progress
    try:
        depth = np.asarray(teacher(fg_bg))
    finally:
        if quiet:
            teacher.progress = before
    name = teacher_identity(teacher)["teacher"]
    if depth.shape != fg_bg.shape[:3]:
        raise DatasetError(
            f"teacher {name}: returned shape {depth.shape} for {where}, expected {fg_bg.shape[:3]}"
        )
    if not np.isfinite(depth).all() or depth.min() < -1e-3 or depth.max() > 1 + 1e-3:
        raise DatasetError(
            f"teacher {name}: returned depth outside [0, 1] (or not finite) for {where}; a teacher "
            "must map its output to 0 = near, 1 = far (see teachers.py)"
        )
    return depth.astype(np.float32).clip(0, 1)


def record_depth(out: Path, has_depth: bool) -> None:
    """Note in ``out/.progress`` whether this run writes depth (``check_same_depth`` reads it)."""
    path = out / ".progress" / DEPTH_RECORD
    if not path.exists():
        atomic_write(path, json.dumps({"has_depth": has_depth}).encode())


def check_same_depth(out: Path, has_depth: bool, teacher) -> None:
    """Refuse to resume (or redo) a dataset of ``out`` made with depth when this run writes none,
    or the other way round: its samples would be half labelled. (Other settings, another teacher:
    ``chunks.prepare``.)"""
    for done in (out / "stats.json", out / ".progress" / DEPTH_RECORD):
        had = json.loads(done.read_text()).get("has_depth") if done.exists() else None
        if had is None or had == has_depth:
            continue  # nothing to go by (a stats.json before its stats: the record has it), or same
        if had:
            raise DatasetError(
                f"{out}: holds a dataset with depth (labelled by a teacher, or exact); this run has "
                "teacher=None, which would leave samples without depth; pass the dataset's teacher, "
                "or use a new folder"
            )
        what = (
            "exact depth"
            if teacher is None
            else f"teacher {describe_teacher(teacher)['teacher']!r}"
        )
        raise DatasetError(
            f"{out}: holds a dataset made without depth (teacher=None); this run writes depth "
            f"({what}), which would label only some samples; pass teacher=None to finish it, or "
            "use a new folder"
        )


def teacher_identity(teacher) -> dict:
    """What makes two teachers' labels the same (not device or dtype): resuming must not mix them."""
    info = teacher if isinstance(teacher, dict) else describe_teacher(teacher)
    return {k: info[k] for k in IDENTITY_KEYS if k in info}


def describe_teacher(teacher) -> dict:
    if hasattr(teacher, "describe"):
        return teacher.describe()
    return {"teacher": getattr(teacher, "__name__", type(teacher).__name__)}


def estimate_bytes(
    n: int, size: int, image_format: str, lazy: bool, photos: bool, has_depth: bool = True
) -> float:
    """About how many bytes ``n`` quartets take on disk (typical compressed sizes per pixel);
    ``has_depth=False``: photos with no teacher, no depth stored."""
    px = size * size
    depth = 2.0 * px if has_depth and (photos or not lazy) else 0.0  # 16-bit PNG per sample
    if lazy:
        return n * depth
    return n * (px * (0.9 if image_format == "jpg" else 2.2) + depth + 0.05 * px)


def estimate_run(teacher, source, keys: list, n_todo: int, cfg) -> dict:
    """Time the teacher on a few real composites; extrapolate to this run and to the course's 400k.

    The teacher resizes every image to its own input size (518 px for Depth Anything, 256 for MiDaS
    small), so its images/s hardly depend on ``cfg.size``; compositing and writing are extra.
    """
    fg_bg = np.stack([source.sample(k)["fg_bg"] for k in keys[:PROBE_SAMPLES]])
    label(teacher, fg_bg[:1], "the probe")  # warm-up: first calls allocate and compile
    t = time.perf_counter()
    label(teacher, fg_bg, "the probe")
    rate = len(fg_bg) / max(time.perf_counter() - t, 1e-9)
    return {
        "teacher": describe_teacher(teacher),
        "images_per_s": rate,
        "this_run_s": n_todo / rate,
        "course_s": COURSE_SAMPLES / rate,
        "course_bytes": estimate_bytes(
            COURSE_SAMPLES, COURSE_SIZE, cfg.image_format, cfg.lazy, True
        ),
    }


def print_estimate(est: dict, n_todo: int) -> None:
    t = est["teacher"]
    where = f" on {t['device']}" if "device" in t else ""
    print(
        f"make_dataset: teacher {t['teacher']}{where}: {est['images_per_s']:.1f} images/s "
        f"(probe of up to {PROBE_SAMPLES}); this run: {n_todo:,} samples to label, about "
        f"{_duration(est['this_run_s'])}; the course's {COURSE_SAMPLES:,} quartets at "
        f"{COURSE_SIZE} px: about {_duration(est['course_s'])} and {est['course_bytes'] / 1e9:.0f} GB"
    )


def _duration(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"
