"""benchmarks/real_photos.py end to end on generated photo folders (never ../shared's photos)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from eva_depthmask.evaluation.photos import FORMATS, LEVELS

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("one_thread")]


def photo_folders(root: Path, n: int = 6) -> Path:
    """``n`` textured backgrounds (JPEG, 48x40) and ``n`` cut-outs: opaque discs on transparency."""
    rng = np.random.default_rng(0)
    (root / "bg").mkdir(parents=True)
    (root / "fg").mkdir()
    for i in range(n):
        small = rng.integers(30, 220, (6, 6, 3), dtype=np.uint8)
        bg = Image.fromarray(small).resize((48, 40), Image.Resampling.BICUBIC)
        bg.save(root / "bg" / f"room {i}.JPG", quality=92)
        yy, xx = np.mgrid[:20, :12]
        fg = np.zeros((20, 12, 4), np.uint8)
        fg[..., :3] = rng.integers(0, 255, 3, dtype=np.uint8)
        fg[..., 3] = 255 * ((((yy - 10) / 10) ** 2 + ((xx - 6) / 6) ** 2) <= 1)
        Image.fromarray(fg).save(root / "fg" / f"person_{i}.png")
    return root


def test_real_photos_benchmark_writes_every_row(load_benchmark, tmp_path):
    bench = load_benchmark("real_photos")
    out, figure = tmp_path / "rows.json", tmp_path / "fig.png"
    args = ["--photos", str(photo_folders(tmp_path / "photos")), "--work", str(tmp_path / "w")]
    args += ["--size", "16", "--eval-size", "32", "--epochs", "1", "--rooms", "6"]
    args += ["--test-samples", "4", "--threads", "1", "--out", str(out), "--figure", str(figure)]
    returned = bench.main(args)
    rows = json.loads(out.read_text())
    assert rows == returned
    keys = {(r["recipe"], r["format"], r["level"]) for r in rows}
    assert keys == {(r, f, lv) for r in bench.RECIPES for f in FORMATS for lv in LEVELS}
    for r in rows:
        for k in ("mask_iou", "difference_iou", "boundary_f", "coarse_iou"):
            assert 0.0 <= r[k] <= 1.0, (k, r)
        assert r["samples"] == 4
    # the baseline is exact on clean lossless pairs: fg_bg equals bg outside the object
    clean = [r for r in rows if r["level"] == "none" and r["format"] == "png"]
    assert all(r["difference_iou"] > 0.9 for r in clean)
    assert figure.stat().st_size > 0


def test_real_photos_benchmark_names_a_missing_folder(load_benchmark, tmp_path, capsys):
    bench = load_benchmark("real_photos")
    (tmp_path / "bg").mkdir()
    with pytest.raises(SystemExit):
        bench.main(["--photos", str(tmp_path), "--work", str(tmp_path / "w")])
    assert f"{tmp_path / 'fg'} is not a folder" in capsys.readouterr().err
