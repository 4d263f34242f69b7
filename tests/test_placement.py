"""Placement never fails: any cut-out (1:20 to 20:1, 1x1, larger than the background) on any
background, at any scale range, lies wholly inside it with a non-empty mask, or is skipped at load
time with a warning naming its file; and placements that already fitted are drawn as before."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from PIL import Image

from eva_depthmask.composite import (
    Placement,
    check_placeable,
    fg_layer,
    place_and_paste,
    sample_placement,
)
from eva_depthmask.config import DataConfig
from eva_depthmask.data.datagen import make_dataset
from eva_depthmask.data.dataset import QuartetDataset
from eva_depthmask.data.sources import ImageFolders, SampleKey, SyntheticSource
from eva_depthmask.images import ALPHA_FLOOR, ImageError, UnplaceableError, check_fg
from eva_depthmask.synth import scenes

pytestmark = pytest.mark.usefixtures("one_thread")  # conftest.py

# Drawn by the code at git HEAD 049aaad, before the fix: (seed, fg (h, w), bg (H, W), scale, flip,
# the first two placements of default_rng(seed) as (x, y, scale, flip)). All of them fitted then.
BEFORE_THE_FIX = [
    (0, (30, 12), (64, 64), (0.3, 0.75), None, [(32, 45, 0.586633, False), (6, 27, 0.307437, True)]),
    (1, (30, 12), (64, 64), (0.3, 0.75), True, [(45, 63, 0.53032, True), (50, 62, 0.364872, True)]),
    (2, (100, 60), (64, 64), (0.3, 0.75), False, [(13, 38, 0.417725, False), (30, 45, 0.666402, False)]),
    (3, (50, 50), (32, 32), (0.3, 0.75), None, [(8, 16, 0.338542, False), (21, 18, 0.561973, False)]),
    (4, (20, 40), (64, 64), (0.3, 0.75), None, [(32, 61, 0.503913, True), (32, 64, 0.50336, False)]),
    (5, (64, 90), (224, 224), (0.3, 0.75), None, [(104, 210, 0.662251, False), (113, 222, 0.428611, False)]),
    (6, (240, 160), (224, 224), (0.2, 0.9), None, [(114, 161, 0.576715, True), (91, 158, 0.462148, True)]),
    (7, (12, 30), (48, 80), (0.2, 0.9), None, [(41, 47, 0.637567, True), (51, 18, 0.357645, False)]),
    (8, (400, 300), (128, 128), (0.3, 0.75), True, [(41, 128, 0.447138, True), (76, 113, 0.44342, True)]),
    (9, (60, 90), (64, 64), (0.5, 1.0), None, [(32, 64, 0.664977, False), (32, 57, 0.67501, True)]),
    (10, (33, 17), (16, 16), (0.3, 0.75), None, [(5, 13, 0.730201, True), (12, 15, 0.367177, True)]),
    (11, (45, 45), (96, 64), (0.1, 0.5), False, [(46, 55, 0.151428, False), (38, 34, 0.340599, False)]),
]  # fmt: skip

# Floor placements of the demo's procedural data (size 64, 30 sprites, one a room), drawn at git
# HEAD 049aaad: (room, sprite, flip, x, y, scale, fg_z).
FLOOR_BEFORE_THE_FIX = [
    (0, 12, False, 54, 58, 0.453758, 0.1816156804561615),
    (0, 12, True, 13, 50, 0.539208, 0.23155491054058075),
    (1, 9, False, 14, 46, 0.250043, 0.3172895610332489),
    (1, 9, True, 15, 59, 0.252657, 0.19891735911369324),
    (2, 0, False, 18, 55, 0.288624, 0.17350010573863983),
    (2, 0, True, 24, 55, 0.422106, 0.17350010573863983),
]


def test_placements_that_fitted_before_the_fix_are_drawn_exactly_as_before():
    for seed, fg_shape, bg_shape, scale, flip, expected in BEFORE_THE_FIX:
        rng = np.random.default_rng(seed)
        got = [sample_placement(rng, fg_shape, bg_shape, scale, flip) for _ in expected]
        assert [(p.x, p.y, p.scale, p.flip) for p in got] == expected, seed


def test_demo_floor_placements_are_drawn_exactly_as_before():
    cfg = DataConfig(size=64, n_bg=8000, n_fg=30, fg_per_bg=1, placements=1, image_format="png")
    source = SyntheticSource(cfg)
    for room_i, sprite, flip, *expected in FLOOR_BEFORE_THE_FIX:
        room = source.background(room_i)[0]
        rng = SampleKey(room_i, sprite, flip, 0).rng(cfg.seed)
        shape = source.foreground(sprite).shape
        p, fg_z = scenes.sample_floor_placement(room, shape, rng, cfg.scene, flip)
        assert [p.x, p.y, p.scale, fg_z] == expected and p.flip == flip


def test_a_cut_out_too_wide_for_any_floor_spot_is_shrunk_into_the_frame():
    room = scenes.render_room(0, 1, 32)
    for shape in [(20, 400), (10, 200), (400, 20), (1, 1)]:
        for k in range(10):
            p, _ = scenes.sample_floor_placement(room, shape, np.random.default_rng(k))
            h, w = p.fg_size(shape, 32, 32)
            left = p.x - w // 2
            assert left >= 0 and left + w <= 32, (shape, p)  # inside left-right: nothing cut off
            assert p.y - h >= -0.1 * h and p.y <= 32, (shape, p)  # at most 10% lost at the top


def _cut_out(h: int, w: int, kind: str) -> np.ndarray:
    """uint8 (h, w, 4): ``opaque`` everywhere, ``framed`` (a visible middle in a transparent frame)
    or ``sparse`` (one visible pixel), grey."""
    fg = np.zeros((h, w, 4), np.uint8)
    fg[..., :3] = 200
    if kind == "opaque":
        fg[..., 3] = 255
    elif kind == "framed":
        fg[h // 4 : h - h // 4, w // 4 : w - w // 4, 3] = 255
    else:
        fg[h // 2, w // 2, 3] = 255
    return fg


@st.composite
def _fg_shapes(draw) -> tuple[int, int]:
    """(h, w) up to 400 px a side with an aspect ratio between 1:20 and 20:1."""
    h = draw(st.integers(1, 400))
    w = round(h * 20 ** draw(st.floats(-1.0, 1.0)))
    return h, min(max(w, math.ceil(h / 20), 1), 400, 20 * h)


SCALES = st.one_of(
    st.sampled_from([(0.01, 0.02), (0.9, 1.0), (1.0, 1.5), (0.3, 0.75)]),
    st.tuples(st.floats(0.01, 1.5), st.floats(0.0, 1.0)).map(lambda t: (t[0], t[0] + t[1])),
)


@settings(max_examples=120, deadline=None, derandomize=True, database=None)
@given(
    fg_shape=_fg_shapes(),
    bg_shape=st.tuples(st.integers(16, 256), st.integers(16, 256)),
    scale=SCALES,
    flip=st.sampled_from([None, False, True]),
    kind=st.sampled_from(["opaque", "framed", "sparse"]),
    seed=st.integers(0, 2**32 - 1),
)
@example((100, 180), (64, 64), (0.3, 0.75), True, "framed", 4)  # the crash (1.8:1, 64 px)
@example((64, 100), (224, 224), (0.3, 0.75), None, "framed", 5)  # the same at 224 px
@example((1, 1), (16, 16), (0.01, 0.02), None, "opaque", 0)  # 1x1 at the smallest scale
@example((20, 400), (16, 16), (0.3, 0.75), False, "opaque", 1)  # 20:1 wider than 16 px at 1 px
@example((400, 20), (16, 40), (1.0, 1.5), True, "framed", 2)  # 1:20, taller than the bg
@example((400, 300), (17, 23), (0.9, 1.0), None, "framed", 3)  # far larger than the bg
# 0.5104166 of 48 px rounds to 24 px, the stored 6-digit 0.510417 to 25: HEAD drew y=24 for 24 px
@example((40, 20), (48, 48), (0.5104165, 0.5104166), False, "opaque", 25)
@example((55, 3), (16, 16), (0.3, 0.75), None, "opaque", 0)  # narrower than 1 px once resized
def test_any_cut_out_is_placed_inside_any_background(fg_shape, bg_shape, scale, flip, kind, seed):
    bg_h, bg_w = bg_shape
    fg = _cut_out(*fg_shape, kind)
    p = sample_placement(np.random.default_rng(seed), fg.shape, bg_shape, scale, flip)
    h, w = p.fg_size(fg.shape, bg_h, bg_w)
    top, left = p.y - h, p.x - w // 2  # where fg_layer puts it
    assert top >= 0 and top + h <= bg_h and left >= 0 and left + w <= bg_w, p
    assert h <= max(1, round(scale[1] * bg_h)) + 1  # never larger than asked (up to rounding)
    if h > 1:  # the aspect ratio is kept (a 1 px tall one may be squeezed to the bg's width),
        # down to 1 px wide: a 55x3 cut-out 9 px tall is 0.49 px wide, so 1 px
        assert abs(w - fg_shape[1] * h / fg_shape[0]) <= 0.5 or w == 1
    # nothing is cut off: the layer holds every visible pixel of the resized cut-out
    im = Image.fromarray(fg[:, ::-1] if p.flip else fg, "RGBA")
    small = np.asarray(im.resize((w, h), Image.Resampling.LANCZOS))[..., 3]
    _, alpha = fg_layer(fg, p, (bg_h, bg_w, 3))
    assert (alpha > 0).sum() == (small >= ALPHA_FLOOR).sum()

    bg = np.full((bg_h, bg_w, 3), 30, np.uint8)
    try:
        check_placeable(fg, bg.shape, scale, "cut.png")
    except UnplaceableError as e:  # only a lone pixel can average away at every allowed size
        assert kind == "sparse" and "cut.png" in str(e)
        return
    p2, fg_bg, mask = place_and_paste(np.random.default_rng(seed), bg, fg, scale, flip)
    assert mask.any() and p2.inside(fg.shape, bg.shape)
    np.testing.assert_array_equal(fg_bg[mask == 0], bg[mask == 0])


def test_a_sparse_cut_out_that_averages_away_goes_at_the_largest_size():
    fg = _cut_out(60, 60, "sparse")  # visible at 16 px tall, gone at 5-10 px (Lanczos, floor 8)
    bg = np.zeros((16, 16, 3), np.uint8)
    sizes = set()
    for seed in range(40):
        p, _, mask = place_and_paste(np.random.default_rng(seed), bg, fg, (0.3, 1.2))
        assert mask.any()
        sizes.add(p.fg_size(fg.shape, 16, 16))
    assert (16, 16) in sizes  # the fallback, at the largest size (1.2 of 16 px, clamped to 16)


def test_nothing_to_paste_is_unplaceable():
    with pytest.raises(UnplaceableError, match=r"dot\.png: a 1x1 px cut-out is too small"):
        check_fg(np.full((1, 1, 4), 255, np.uint8), "dot.png")
    with pytest.raises(UnplaceableError, match=r"blank\.png: .*fully transparent"):
        check_fg(np.zeros((5, 5, 4), np.uint8), "blank.png")
    with pytest.raises(UnplaceableError, match=r"speck\.png: .*vanish.*5x5 px"):
        check_placeable(_cut_out(200, 200, "sparse"), (16, 16), (0.1, 0.3), "speck.png")
    with pytest.raises(ValueError, match=r"scale: expected a range 0 < low <= high"):
        sample_placement(np.random.default_rng(0), (10, 10), (16, 16), (0.5, 0.2))


def _save(path: Path, fg: np.ndarray) -> None:
    Image.fromarray(fg, "RGBA").save(path)


@pytest.fixture()
def odd_cut_outs(tmp_path) -> tuple[Path, Path]:
    """Three noise backgrounds; cut-outs of every awkward kind, four of them unplaceable."""
    rng = np.random.default_rng(0)
    bg_dir, fg_dir = tmp_path / "bg", tmp_path / "fg"
    bg_dir.mkdir()
    fg_dir.mkdir()
    for i, shape in enumerate([(20, 28), (30, 24), (18, 18)]):
        Image.fromarray(rng.integers(0, 256, (*shape, 3), dtype=np.uint8)).save(bg_dir / f"{i}.png")
    _save(fg_dir / "a_person.png", _cut_out(30, 14, "framed"))
    wide, tall = _cut_out(4, 80, "opaque"), _cut_out(80, 4, "opaque")
    wide[0, :, 3] = tall[:, 0, 3] = 0  # 1:20 and 20:1 cut-outs, each with a transparent edge
    _save(fg_dir / "b_wide.png", wide)
    _save(fg_dir / "c_tall.png", tall)
    _save(fg_dir / "d_big.png", _cut_out(120, 90, "framed"))  # far larger than the background
    _save(fg_dir / "e_faint.png", _cut_out(60, 60, "sparse"))  # visible only when large
    _save(fg_dir / "f_dot.png", _cut_out(1, 1, "opaque"))
    _save(fg_dir / "g_speck.png", _cut_out(200, 200, "sparse"))  # vanishes at any size here
    _save(fg_dir / "h_blank.png", np.zeros((10, 10, 4), np.uint8))
    return bg_dir, fg_dir


CFG = DataConfig(size=16, placements=2, image_format="png", seed=3, fg_scale=(0.3, 1.2))
KEPT = ["a_person.png", "b_wide.png", "c_tall.png", "d_big.png", "e_faint.png"]
SKIPPED = ["f_dot.png", "g_speck.png", "h_blank.png"]


def brightness_teacher(images: np.ndarray) -> np.ndarray:
    return (1 - images.mean(-1) / 255).astype(np.float32)


def test_make_dataset_places_every_odd_cut_out_or_skips_it_by_name(tmp_path, odd_cut_outs):
    with pytest.warns(UserWarning) as caught:
        source = ImageFolders(*odd_cut_outs, CFG)
    said = [str(w.message) for w in caught]
    for name in SKIPPED:
        assert [m for m in said if name in m and m.endswith("skipped")], (name, said)
    assert not [m for m in said if any(k in m for k in KEPT)], said
    assert [p.name for p in source.fg_files] == KEPT and source.cfg.n_fg == len(KEPT)

    kw = {"teacher": brightness_teacher, "progress": False}
    out = make_dataset(tmp_path / "ds", CFG, source, workers=0, **kw)
    ds = QuartetDataset(out, "all")
    assert len(ds) == 3 * len(KEPT) * 2 * 2
    for i, row in enumerate(ds.rows):
        raw = ds.raw(i)
        assert raw["mask"].shape == (16, 16) and raw["mask"].any(), row
        p = Placement(int(row["x"]), int(row["y"]), float(row["scale"]), row["flip"] == "1")
        fg = np.asarray(Image.open(out / row["fg"]))
        assert p.inside(fg.shape, (16, 16)), row
        np.testing.assert_array_equal(fg_layer(fg, p, (16, 16, 3))[1] > 0, raw["mask"] > 0)

    parallel = make_dataset(tmp_path / "par", CFG, source, workers=2, **kw)
    assert _tree(parallel) == _tree(out)  # the workers place exactly as this process does


def _tree(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in root.rglob("*") if p.is_file()}


def test_folders_with_no_placeable_cut_out_or_a_bad_scale_are_refused(tmp_path, odd_cut_outs):
    bg_dir, fg_dir = odd_cut_outs
    for name in KEPT:
        (fg_dir / name).unlink()
    no_cut_out = pytest.raises(ImageError, match=r"fg: no cut-out can be placed")
    with pytest.warns(UserWarning) as caught, no_cut_out:
        ImageFolders(bg_dir, fg_dir, CFG)
    assert [n for n in SKIPPED if any(n in str(w.message) for w in caught)] == SKIPPED
    with pytest.raises(ValueError, match=r"DataConfig\.fg_scale: expected a range"):
        ImageFolders(bg_dir, fg_dir, DataConfig(size=16, fg_scale=(0.0, 0.5)))
