"""Where a trained model's depth scale error comes from, on a synthetic dataset.

Every synthetic background is a room drawn with its own camera (field of view, height, pitch) and box
(scenes.render_room), none of which a 64 px picture states outright. This script evaluates a
checkpoint on the dataset's test split, takes each sample's signed scale error e = log median(true /
predicted depth) (``depth_scale_bias`` per sample: > 0 where the network put the room too near),
draws each room's camera again from the dataset's stored config, and fits e by least squares on one
set of room parameters after another. "Scale error left" is mean |e - fit|: what the error would be
if the network knew those parameters as exactly as the fit does; the first row (nothing known, the
mean taken out) is the error without its average bias.

A network that judged distance by apparent size at one assumed focal length would show a slope of
-1 / sin(fov) per radian of field of view (``fov_blind_slope``, per degree); a slope near 0 means
the network reads the field of view from the picture.

    .venv/bin/python benchmarks/scale_factors.py --ckpt demo_out/run/ckpt_00005600.pt --data demo_out/data

Writes benchmarks/results/scale_factors.json and prints a markdown table.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

from eva_depthmask.config import SceneConfig
from eva_depthmask.data.dataset import QuartetDataset
from eva_depthmask.evaluation.evaluate import evaluate
from eva_depthmask.evaluation.predictor import Predictor
from eva_depthmask.storage import DatasetError
from eva_depthmask.synth.furniture import FRONT_WALL_GAP_M
from eva_depthmask.synth.scenes import CEILING_GAP_M, room_camera
from eva_depthmask.training.loaders import TrainData

RESULTS = Path(__file__).parent / "results" / "scale_factors.json"
# name -> (how it enters the fit); lengths enter as logs, so their slopes are ratios
FACTORS = {
    "fov_deg": "deg",
    "camera_height_m": "log",
    "pitch_deg": "deg",
    "room_height_m": "log",
    "room_length_m": "log",
    "room_width_m": "log",
}
PROPORTIONS = ("camera_height/room_height", "back_wall/room_height", "room_width/room_height")
KNOWN_SETS = (
    (),
    ("fov_deg",),
    ("fov_deg", "camera_height_m"),
    ("fov_deg", "camera_height_m", "pitch_deg"),
    tuple(FACTORS),
)


def room_factors(data: str | Path, ids: list[str]) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """``(room, {factor: values})``, each ``(N,)``: the room index behind each sample id, and its
    camera and box, drawn again from the synthetic dataset's stored config (stats.json) without
    rendering."""
    dataset = QuartetDataset(data, "all")  # reads and checks stats.json and manifest.csv
    if dataset.info.get("source") != "synthetic" or dataset.config is None:
        raise DatasetError(
            f"{dataset.store.name('stats.json')}: expected a synthetic dataset (source "
            f"'synthetic') whose rooms can be drawn again, got source "
            f"{dataset.info.get('source')!r}"
        )
    cfg = dataset.config
    room_of = {r["id"]: int(Path(r["bg"]).stem) for r in dataset.rows}
    missing = [i for i in ids if i not in room_of]
    if missing:
        raise DatasetError(f"{dataset.store.name('manifest.csv')}: no rows for ids {missing[:3]}")
    room = np.array([room_of[i] for i in ids], dtype=np.int64)
    return room, drawn_factors(cfg.seed, room, cfg.size, cfg.scene)


def drawn_factors(
    seed: int, room: np.ndarray, size: int, scene: SceneConfig
) -> dict[str, np.ndarray]:
    """``{factor: (N,)}`` for the room indices ``room`` (N,) of stream ``seed``, each room's camera
    and box drawn again without rendering."""
    rooms: dict[int, tuple[float, ...]] = {}
    for i in np.unique(room).tolist():
        camera, (x_min, x_max, z_min, z_max, height) = room_camera(seed, i, size, scene)
        rooms[i] = (
            camera.fov_deg,
            camera.height_m,
            camera.pitch_deg,
            height,
            z_max - z_min,
            x_max - x_min,
        )
    table = np.array([rooms[r] for r in room.tolist()], dtype=np.float64)
    return {name: table.reshape(len(room), len(FACTORS))[:, j] for j, name in enumerate(FACTORS)}


def proportions(factors: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The room's scale-free shape, each ``(N,)``: its camera height, the back wall's distance from
    the camera (the drawn room length; the box reaches ``FRONT_WALL_GAP_M`` behind the camera, out of
    view) and its width, each over the room height. Perspective shows these without a known length."""
    back_wall = factors["room_length_m"] - FRONT_WALL_GAP_M
    lengths = (factors["camera_height_m"], back_wall, factors["room_width_m"])
    return {k: v / factors["room_height_m"] for k, v in zip(PROPORTIONS, lengths, strict=True)}


def proportion_floor(factors: dict[str, np.ndarray], scene: SceneConfig) -> np.ndarray:
    """``(N,)`` signed scale error log(true / guessed room height) of an ideal reader that knows each
    room's ``proportions`` exactly and the ranges ``scene`` draws from, but no length in it.

    Height, camera height, length and width are drawn uniformly and independently, so given the three
    ratios the height's posterior is proportional to h^3 (a Jacobian h per ratio) on the interval all
    four ranges allow, and its median -- the guess with the least mean |log error| -- is
    ((lo^4 + hi^4) / 2)^(1/4). Every depth scales with the room, so this is the depth's scale error
    too: the floor for any predictor that reads the room's shape and not its size (furniture is the
    only ruler the pictures hold).
    """
    if scene.camera_height_m[1] > scene.room_height_m[0] - CEILING_GAP_M:
        raise ValueError(
            f"SceneConfig camera_height_m {scene.camera_height_m} reaches within {CEILING_GAP_M} m of "
            f"the lowest ceiling {scene.room_height_m[0]} m, where the camera height is clipped: "
            "expected ranges whose draws are independent"
        )
    height = factors["room_height_m"]
    lo = np.full_like(height, scene.room_height_m[0])
    hi = np.full_like(height, scene.room_height_m[1])
    drawn = (scene.camera_height_m, scene.room_length_m, scene.room_width_m)
    for ratio, (low, high) in zip(proportions(factors).values(), drawn, strict=True):
        lo, hi = np.maximum(lo, low / ratio), np.minimum(hi, high / ratio)
    return np.log(height / ((lo**4 + hi**4) / 2) ** 0.25)


def floor_metrics(data: str | Path, factors: dict[str, np.ndarray]) -> dict[str, float]:
    """``proportion_floor`` over the samples of ``factors`` (drawn from the synthetic dataset
    ``data``): its mean |log| scale error, and the abs-rel of a perfect shape at its scale."""
    error = proportion_floor(factors, QuartetDataset(data, "all").config.scene)
    return {
        "depth_scale_log": float(np.abs(error).mean()),
        "depth_abs_rel": float(np.abs(np.expm1(-error)).mean()),  # |exp(-e) - 1| at every pixel
    }


def explain(error: np.ndarray, factors: dict[str, np.ndarray], known: tuple[str, ...]) -> dict:
    """Least-squares fit of ``error`` (N,) on a constant and the ``known`` factors (logs of
    lengths, degrees as they are): the mean |residual|, R^2 and each factor's slope."""
    design = np.column_stack([np.ones_like(error), *(_fitted(factors[k], k) for k in known)])
    coef, *_ = np.linalg.lstsq(design, error, rcond=None)
    left = error - design @ coef
    var = float(error.var())
    return {
        "known": list(known),
        "scale_error_left": float(np.abs(left).mean()),
        "r2": 1.0 - float(left.var()) / var if var > 0 else 0.0,
        "slopes": {k: float(c) for k, c in zip(known, coef[1:], strict=True)},
    }


def scale_factors(ckpt: str | Path, data: str | Path, split: str = "test") -> dict:
    """Evaluate ``ckpt`` on ``split`` of the synthetic dataset ``data``; the fits of ``KNOWN_SETS``."""
    predictor = Predictor.from_checkpoint(ckpt)
    dataset = TrainData(data).dataset(split, predictor.size, stats=predictor.stats)
    metrics, rows = evaluate(predictor.model, dataset, progress=False)
    error = np.array([r["depth_scale_bias"] for r in rows], dtype=np.float64)
    room, factors = room_factors(data, [r["id"] for r in rows])
    mean_fov = np.deg2rad(factors["fov_deg"].mean())
    return {
        "samples": len(rows),
        "rooms": len(np.unique(room)),
        "depth_scale_log": metrics["depth_scale_log"],
        "depth_scale_bias": metrics["depth_scale_bias"],
        "depth_abs_rel": metrics["depth_abs_rel"],
        "depth_abs_rel_aligned": metrics["depth_abs_rel_aligned"],
        "correlation": {
            k: float(np.corrcoef(_fitted(v, k), error)[0, 1]) for k, v in factors.items()
        },
        "fov_blind_slope": float(-np.deg2rad(1.0) / np.sin(mean_fov)),
        "fits": [explain(error, factors, known) for known in KNOWN_SETS],
        "proportion_floor": floor_metrics(data, factors),
    }


def _fitted(values: np.ndarray, name: str) -> np.ndarray:
    return np.log(values) if FACTORS[name] == "log" else values


def print_table(result: dict) -> None:
    print(
        f"\n{result['samples']} samples, {result['rooms']} rooms: scale error "
        f"{result['depth_scale_log']:.4f} (mean |e|), bias {result['depth_scale_bias']:+.4f}; "
        f"abs-rel {result['depth_abs_rel']:.4f}, aligned {result['depth_abs_rel_aligned']:.4f}"
    )
    print("\n| factor | correlation with e |\n|---|---|")
    for k, r in result["correlation"].items():
        print(f"| {k} | {r:+.3f} |")
    print("\n| known to the fit | scale error left | R^2 | slopes |\n|---|---|---|---|")
    for fit in result["fits"]:
        slopes = ", ".join(f"{k} {v:+.4f}" for k, v in fit["slopes"].items())
        known = ", ".join(fit["known"]) or "(nothing: the bias taken out)"
        print(f"| {known} | {fit['scale_error_left']:.4f} | {fit['r2']:.3f} | {slopes} |")
    print(f"\nfov-blind slope: {result['fov_blind_slope']:+.4f} per degree")
    floor = result["proportion_floor"]
    print(
        f"an ideal reader of each room's proportions, no length known: scale error "
        f"{floor['depth_scale_log']:.4f}; a perfect shape at its scale: abs-rel "
        f"{floor['depth_abs_rel']:.4f}"
    )


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--ckpt", type=Path, required=True, help="a checkpoint written by fit()")
    p.add_argument("--data", type=Path, required=True, help="the synthetic dataset folder or zip")
    p.add_argument("--split", default="test", choices=("train", "val", "test"))
    p.add_argument("--out", type=Path, default=RESULTS)
    args = p.parse_args(argv)
    result = scale_factors(args.ckpt, args.data, args.split)
    result["meta"] = {
        "command": " ".join(["python", *sys.argv]) if argv is None else f"main({argv})",
        "ckpt": str(args.ckpt),
        "data": str(args.data),
        "split": args.split,
        "finished": time.strftime("%Y-%m-%d %H:%M"),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1))
    print_table(result)
    return result


if __name__ == "__main__":
    main()
