"""Depth-teacher throughput, and the time and disk that the course's 400k quartets at 224 px take.

    .venv/bin/python benchmarks/bench_teacher.py [--batch 4] [--repeats 1] [--threads 1] [--photos DIR]

Teachers are the real transformers classes with random weights (no download works offline): a tiny
configuration and Depth Anything V2 Small's own architecture, built from the published config values
typed in below (so speed, not quality, is what is measured). CPU images/s always; GPU (fp16) too when
CUDA is available. Disk per quartet comes from a small real photo dataset written at 224 px (``--photos``
with bg/ and fg/ inside; procedural rooms and sprites when absent) labelled by a smooth stand-in
teacher. Writes benchmarks/results/bench_teacher.json and prints a markdown table. One CPU thread by
default: on a shared machine a second thread waiting for a busy core makes small models many times
slower, so one thread gives the steadier (if pessimistic) figure.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
import warnings
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from eva_depthmask.config import DataConfig
from eva_depthmask.data.datagen import disk_usage, make_dataset
from eva_depthmask.data.sources import ImageFolders, SyntheticSource
from eva_depthmask.data.teacher_base import images_per_second
from eva_depthmask.data.teachers import DepthAnythingTeacher

RESULTS = Path(__file__).parent / "results" / "bench_teacher.json"
REAL_PHOTOS = Path(__file__).resolve().parents[2] / "shared" / "realdata" / "indoor_people"
N, SIZE = 400_000, 224

# depth-anything/Depth-Anything-V2-Small-hf: config.json and preprocessor_config.json values
DA_V2_SMALL = {
    "backbone": {
        "hidden_size": 384,
        "num_hidden_layers": 12,
        "num_attention_heads": 6,
        "mlp_ratio": 4,
        "patch_size": 14,
        "image_size": 518,
        "out_indices": [9, 10, 11, 12],
        "reshape_hidden_states": False,
    },
    "head": {
        "reassemble_hidden_size": 384,
        "reassemble_factors": [4, 2, 1, 0.5],
        "neck_hidden_sizes": [48, 96, 192, 384],
        "fusion_hidden_size": 64,
        "head_hidden_size": 32,
        "depth_estimation_type": "relative",
    },
    "processor": {"size": 518, "keep_aspect_ratio": True, "ensure_multiple_of": 14},
}
TINY = {
    "backbone": {
        "hidden_size": 32,
        "num_hidden_layers": 4,
        "num_attention_heads": 2,
        "mlp_ratio": 2,
        "patch_size": 14,
        "image_size": 28,
        "out_indices": [1, 2, 3, 4],
        "reshape_hidden_states": False,
    },
    "head": {
        "reassemble_hidden_size": 32,
        "neck_hidden_sizes": [8, 16, 32, 32],
        "fusion_hidden_size": 16,
        "head_hidden_size": 8,
    },
    "processor": {"size": 42, "keep_aspect_ratio": True, "ensure_multiple_of": 14},
}


def build(spec: dict, device: str) -> DepthAnythingTeacher:
    import transformers

    cfg = transformers.DepthAnythingConfig(
        backbone_config=transformers.Dinov2Config(**spec["backbone"]), **spec["head"]
    )
    model = transformers.AutoModelForDepthEstimation.from_config(cfg)
    proc_cls = getattr(transformers, "DPTImageProcessorPil", None) or transformers.DPTImageProcessor
    p = spec["processor"]
    processor = proc_cls(
        size={"height": p["size"], "width": p["size"]},
        keep_aspect_ratio=p["keep_aspect_ratio"],
        ensure_multiple_of=p["ensure_multiple_of"],
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the no-GPU warning times the model too; we time it here
        return DepthAnythingTeacher(model=model, processor=processor, device=device, progress=False)


def measure(name: str, spec: dict, device: str, batch: int, repeats: int) -> dict:
    teacher = build(spec, device)
    images = np.random.default_rng(0).integers(0, 256, (batch, SIZE, SIZE, 3), np.uint8)
    t = time.perf_counter()
    for _ in range(repeats):
        teacher.processor(images=list(images), return_tensors="pt")
    preprocess = repeats * batch / (time.perf_counter() - t)
    rate = images_per_second(teacher, images, repeats)
    params = sum(p.numel() for p in teacher.model.parameters())
    return {
        "teacher": name,
        "device": device,
        "dtype": str(teacher.dtype).replace("torch.", ""),
        "params": params,
        "batch": batch,
        "images_per_s": round(rate, 3),
        "preprocess_images_per_s": round(preprocess, 1),
        "hours_for_400k": round(N / rate / 3600, 1),
    }


def smooth_teacher(images: np.ndarray) -> np.ndarray:
    """A stand-in with the smoothness of real depth maps (for bytes per PNG, not for quality)."""
    h = images.shape[1]
    rows = np.linspace(1.0, 0.1, h, dtype=np.float32)[None, :, None]
    return np.clip(rows * (0.8 + 0.2 * images.mean(-1) / 255), 0, 1).astype(np.float32)


def bytes_per_quartet(photos: Path | None, tmp: Path) -> dict:
    """Full and lazy layouts of 5 bg x 4 fg x 2 flips x 2 placements at 224 px (JPEG)."""
    cfg = DataConfig(size=SIZE, placements=2, seed=0)
    if photos is None or not (photos / "bg").is_dir():
        photos = tmp / "photos"
        src = SyntheticSource(DataConfig(size=SIZE, n_bg=5, n_fg=4))
        for sub, n, get in (("bg", 5, src.bg_image), ("fg", 4, src.foreground)):
            (photos / sub).mkdir(parents=True)
            for i in range(n):
                Image.fromarray(get(i)).save(photos / sub / f"{i:02d}.png")
    out = {"photos": photos.name}  # the folder name only: no machine paths in results
    for lazy in (False, True):
        c = replace(cfg, lazy=lazy)
        source = ImageFolders(photos / "bg", photos / "fg", c, n_bg=5, n_fg=4)
        path = make_dataset(
            tmp / f"ds{int(lazy)}", c, source, teacher=smooth_teacher, workers=0, progress=False
        )
        per = disk_usage(path)["per_sample"]
        out["lazy" if lazy else "full"] = {
            "bytes_per_quartet": per,
            "gb_for_400k": round(per * N / 1e9, 1),
        }
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--batch", type=int, default=4)
    p.add_argument("--repeats", type=int, default=1)
    p.add_argument("--photos", type=Path, default=REAL_PHOTOS)
    p.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    rows = []
    devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    for device in devices:
        batch = args.batch if device == "cpu" else 32
        for name, spec in (
            ("tiny (random)", TINY),
            ("Depth-Anything-V2-Small arch (random)", DA_V2_SMALL),
        ):
            rows.append(measure(name, spec, device, batch, args.repeats if device == "cpu" else 5))
            print(json.dumps(rows[-1]))
    with tempfile.TemporaryDirectory() as tmp:
        disk = bytes_per_quartet(args.photos, Path(tmp))
    result = {
        "what": f"teacher images/s on {SIZE} px inputs; time and disk for {N:,} quartets at {SIZE} px",
        "machine": {
            "cpu": platform.machine(),
            "cores": os.cpu_count(),
            "threads": torch.get_num_threads(),
        },
        "versions": {
            "torch": torch.__version__,
            "transformers": __import__("transformers").__version__,
        },
        "cuda": torch.cuda.get_device_name() if torch.cuda.is_available() else None,
        "rows": rows,
        "disk": disk,
    }
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=1))
    print("| teacher | device | params | batch | images/s | preprocess images/s | h for 400k |")
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        print(
            f"| {r['teacher']} | {r['device']} ({r['dtype']}) | {r['params'] / 1e6:.2f} M | {r['batch']} "
            f"| {r['images_per_s']:.2f} | {r['preprocess_images_per_s']:.0f} | {r['hours_for_400k']:,} |"
        )
    for layout in ("full", "lazy"):
        d = disk[layout]
        print(
            f"disk, {layout} layout (jpg): {d['bytes_per_quartet']:,} B/quartet, {d['gb_for_400k']} GB for 400k"
        )


if __name__ == "__main__":
    main()
