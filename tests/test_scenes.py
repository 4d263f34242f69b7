"""scenes.py / sprites.py: determinism, exact depth against closed-form geometry, perspective of
floor placements, compositing rules and occlusion, soft sprite alpha."""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import pytest

from eva_depthmask.composite import Placement, fg_layer
from eva_depthmask.config import SceneConfig
from eva_depthmask.images import ALPHA_FLOOR
from eva_depthmask.synth.scenes import (
    LABELS,
    Camera,
    compose,
    draw_foreground,
    render_room,
    sample_floor_placement,
)
from eva_depthmask.synth.textures import lines

FLOOR, FURNITURE = LABELS.index("floor"), LABELS.index("furniture")
STRAIGHT = replace(SceneConfig(), camera_yaw_deg=(0.0, 0.0))  # closed forms below assume no yaw
EMPTY = replace(STRAIGHT, furniture=(0, 0))


def _focal(cam: Camera) -> float:
    return cam.size / 2 / math.tan(math.radians(cam.fov_deg) / 2)


def _pixel_dirs(cam: Camera) -> tuple[np.ndarray, np.ndarray]:
    """Normalised image coordinates (x right, y down) of the pixel centres, (n, n) each."""
    c = (np.arange(cam.size) + 0.5 - cam.size / 2) / _focal(cam)
    return np.meshgrid(c, c)


def _floor_z(cam: Camera) -> np.ndarray:
    """Camera z of the floor at every pixel centre: pinhole pitched down by p, height h."""
    _, yc = _pixel_dirs(cam)
    p = math.radians(cam.pitch_deg)
    den = yc * math.cos(p) + math.sin(p)
    return np.where(den > 0, cam.height_m / np.where(den > 0, den, 1), np.inf)


def _shell_z(room) -> np.ndarray:
    """Camera z of the empty room box at every pixel (no yaw): nearest of floor, ceiling, side walls
    and back wall along each ray. With the ray direction scaled to camera z = 1, t is z."""
    cam = room.camera
    x_min, x_max, _, z_max, height = room.bounds
    xc, yc = _pixel_dirs(cam)
    p = math.radians(cam.pitch_deg)
    dx = xc
    dy = -yc * math.cos(p) - math.sin(p)  # world up component of the ray
    dz = math.cos(p) - yc * math.sin(p)  # world forward component
    with np.errstate(divide="ignore"):
        cands = [
            np.where(dy < 0, -cam.height_m / dy, np.inf),
            np.where(dy > 0, (height - cam.height_m) / dy, np.inf),
            np.where(dx < 0, x_min / dx, np.inf),
            np.where(dx > 0, x_max / dx, np.inf),
            np.where(dz > 0, z_max / dz, np.inf),
        ]
    return np.min(cands, axis=0)


# ---------------------------------------------------------------------------------------------------
# Determinism


def test_rooms_and_sprites_are_deterministic():
    a, b = render_room(7, 3, 64), render_room(7, 3, 64)
    assert a.rgb.tobytes() == b.rgb.tobytes()
    assert a.depth.tobytes() == b.depth.tobytes()
    assert a.label.tobytes() == b.label.tobytes()
    c = render_room(7, 4, 64)
    assert a.rgb.tobytes() != c.rgb.tobytes()
    assert a.depth.tobytes() != c.depth.tobytes()
    assert render_room(8, 3, 64).rgb.tobytes() != a.rgb.tobytes()
    for i in range(6):  # every kind of sprite
        s1, s2 = draw_foreground(7, i, 64), draw_foreground(7, i, 64)
        assert s1.tobytes() == s2.tobytes()
    assert draw_foreground(7, 0, 64).tobytes() != draw_foreground(7, 6, 64).tobytes()


def test_a_room_is_the_same_scene_at_every_size():
    small, large = render_room(1, 2, 64), render_room(1, 2, 128)
    assert small.bounds == large.bounds
    assert replace(small.camera, size=128) == large.camera
    # the same geometry: 2x2 blocks of the large depth straddle the small pixel centres
    block = large.depth.reshape(64, 2, 64, 2).mean(axis=(1, 3))
    assert np.median(np.abs(block - small.depth)) < 2e-3


def test_outputs_have_the_documented_types():
    room = render_room(0, 0, 64)
    assert room.rgb.shape == (64, 64, 3) and room.rgb.dtype == np.uint8
    assert room.depth.shape == (64, 64) and room.depth.dtype == np.float32
    assert room.label.shape == (64, 64) and room.label.max() < len(LABELS)
    assert room.depth.min() >= 0.0 and room.depth.max() <= 1.0
    assert room.rgb.std() > 10  # an actual picture, not a flat colour


# ---------------------------------------------------------------------------------------------------
# Exact depth


@pytest.mark.parametrize("seed,index,size", [(0, 0, 64), (1, 5, 128), (2, 9, 96)])
def test_floor_depth_equals_the_floor_plane(seed, index, size):
    cfg = SceneConfig()  # furniture and yaw included: the floor's z depends on the row only
    room = render_room(seed, index, size, cfg)
    floor = room.label == FLOOR
    assert floor.sum() > size * size // 8
    expected = np.clip(_floor_z(room.camera) / cfg.max_depth_m, 0, 1)
    assert np.abs(room.depth[floor] - expected[floor]).max() < 1e-5


@pytest.mark.parametrize("index", [0, 1, 2, 3])
def test_empty_room_depth_is_the_room_box_everywhere(index):
    room = render_room(3, index, 64, EMPTY)
    expected = np.clip(_shell_z(room) / EMPTY.max_depth_m, 0, 1)
    assert np.abs(room.depth - expected).max() < 1e-5  # walls, ceiling, rugs, pictures: all exact
    back = room.label == LABELS.index("wall_back")
    assert back.sum() > 100  # the back wall is in view and covered by the check above
    assert (room.label != FURNITURE).all()


def test_furniture_is_in_front_of_the_room_box_and_exact_elsewhere():
    seen = 0
    for index in range(6):
        room = render_room(4, index, 64, replace(STRAIGHT, furniture=(3, 4)))
        shell = np.clip(_shell_z(room) / STRAIGHT.max_depth_m, 0, 1)
        furniture = room.label == FURNITURE
        seen += furniture.sum()
        assert np.abs(room.depth[~furniture] - shell[~furniture]).max() < 1e-5
        assert (room.depth[furniture] < shell[furniture]).all()
    assert seen > 200


def test_camera_projects_floor_points_to_their_pixels():
    cam = Camera(size=100, fov_deg=60.0, height_m=1.5, pitch_deg=12.0)
    f, p = _focal(cam), math.radians(12.0)
    x, z = 0.7, 4.0  # a floor point: closed-form camera coordinates
    y_cam = 1.5 * math.cos(p) - z * math.sin(p)
    z_cam = 1.5 * math.sin(p) + z * math.cos(p)
    col, row, zz = cam.project(np.array([x, 0.0, z]))
    assert zz == pytest.approx(z_cam)
    assert col == pytest.approx(50 + f * x / z_cam)
    assert row == pytest.approx(50 + f * y_cam / z_cam)
    assert cam.floor_z(row - 0.5) == pytest.approx(z_cam)  # floor_z takes the pixel index
    assert np.isinf(cam.floor_z(0))  # above the horizon: no floor
    turned = Camera(100, 60.0, 1.5, 0.0, yaw_deg=30.0)  # a point straight along the yaw: centre
    col, row, _ = turned.project(
        np.array([math.sin(math.radians(30)), 1.5, math.cos(math.radians(30))])
    )
    assert (col, row) == (pytest.approx(50), pytest.approx(50))


# ---------------------------------------------------------------------------------------------------
# Standing foregrounds on the floor


def test_lower_placements_are_nearer_and_larger():
    cfg = replace(SceneConfig(), fg_height_m=(1.0, 1.0))
    room = render_room(5, 2, 128, cfg)
    rng = np.random.default_rng(0)
    samples = [sample_floor_placement(room, (100, 40, 4), rng, cfg) for _ in range(60)]
    by_row = {}
    for pl, z in samples:
        assert room.label[pl.y, pl.x] == FLOOR
        assert z == room.depth[pl.y, pl.x]
        h, w = pl.fg_size((100, 40, 4), 128)
        assert pl.x - w // 2 >= 0 and pl.x - w // 2 + w <= 128  # inside left-right
        assert pl.y - h >= -0.1 * h  # at most 10% cut at the top
        by_row[pl.y] = (z, pl.scale)
    rows = sorted(by_row)
    assert len(rows) > 10
    zs = np.array([by_row[r][0] for r in rows])
    scales = np.array([by_row[r][1] for r in rows])
    assert (np.diff(zs) < 0).all()  # further down the image: nearer
    assert (np.diff(scales) > 0).all()  # ... and larger


def test_placement_scale_is_the_projected_height():
    cfg = replace(SceneConfig(), fg_height_m=(1.3, 1.3), camera_pitch_deg=(0.0, 0.0))
    room = render_room(6, 1, 128, cfg)
    cam = room.camera
    rng = np.random.default_rng(1)
    for _ in range(20):
        pl, fg_z = sample_floor_placement(room, (90, 60, 4), rng, cfg)
        z = fg_z * cfg.max_depth_m  # level camera: a vertical object's image height is f H / z
        assert pl.scale == pytest.approx(_focal(cam) * 1.3 / z / cam.size, abs=2e-5)


def test_placement_flip_is_random_unless_given():
    room = render_room(0, 1, 64)
    rng = np.random.default_rng(2)
    flips = {sample_floor_placement(room, (50, 30, 4), rng)[0].flip for _ in range(30)}
    assert flips == {True, False}
    assert sample_floor_placement(room, (50, 30, 4), rng, flip=True)[0].flip is True


# ---------------------------------------------------------------------------------------------------
# Compositing with depth


def _box_scene(size=96):
    rng = np.random.default_rng(3)
    bg = rng.integers(0, 256, (size, size, 3), dtype=np.uint8)
    bg_depth = np.full((size, size), 0.8, np.float32)
    box = np.zeros((size, size), bool)
    box[50:80, 20:45] = True  # a piece of furniture in front of where the fg stands
    bg_depth[box] = 0.3
    return bg, bg_depth, box


def test_compose_rules_and_occlusion_by_nearer_furniture():
    cfg = SceneConfig()
    bg, bg_depth, box = _box_scene()
    fg = draw_foreground(0, 0, 96)
    placement = Placement(x=35, y=90, scale=0.8, flip=False)
    fg_z = 0.5  # behind the box (0.3), in front of the wall (0.8)
    fg_bg, mask, depth = compose(bg, bg_depth, fg, placement, fg_z, cfg)
    _, alpha = fg_layer(fg, placement, bg.shape)
    assert ((alpha > 0) & box).any()  # the case really overlaps the box
    np.testing.assert_array_equal(mask, ((alpha > 0) & ~box).astype(np.uint8))
    assert mask.dtype == np.uint8 and fg_bg.dtype == np.uint8 and depth.dtype == np.float32
    np.testing.assert_array_equal(fg_bg[mask == 0], bg[mask == 0])
    np.testing.assert_array_equal(depth[mask == 0], bg_depth[mask == 0])
    inside = depth[mask == 1]
    bulge = cfg.fg_bulge_m / cfg.max_depth_m
    assert inside.max() <= fg_z + 1e-6 and inside.min() >= fg_z - bulge - 1e-6
    assert inside.min() < fg_z - 0.8 * bulge  # the middle of the body bulges towards the camera


def test_compose_without_bulge_is_flat_and_hidden_behind_everything_nearer():
    cfg = replace(SceneConfig(), fg_bulge_m=0.0)
    bg, bg_depth, _ = _box_scene()
    fg = draw_foreground(1, 2, 96)
    placement = Placement(x=48, y=95, scale=0.9)
    _, mask, depth = compose(bg, bg_depth, fg, placement, 0.6, cfg)
    assert mask.any()
    np.testing.assert_array_equal(depth[mask == 1], np.float32(0.6))
    _, mask_far, depth_far = compose(bg, bg_depth, fg, placement, 0.95, cfg)  # behind the wall
    assert not mask_far.any()
    np.testing.assert_array_equal(depth_far, bg_depth)


def test_compose_accepts_any_user_cutout():
    bg, bg_depth, box = _box_scene(64)
    fg = np.zeros((30, 20, 4), np.uint8)
    fg[..., :3] = 200
    fg[5:30, 4:16, 3] = 255  # a hard-edged opaque block
    fg[2:5, 4:16, 3] = ALPHA_FLOOR - 1  # matting noise: ignored
    placement = Placement(x=32, y=60, scale=30 / 64)
    fg_bg, mask, _ = compose(bg, bg_depth, fg, placement, 0.5)
    expected = np.zeros((64, 64), np.uint8)
    expected[35:60, 26:38] = 1  # rows y-30+5 .. y, cols x-10+4 .. x-10+16
    expected[box] = 0
    np.testing.assert_array_equal(mask, expected)
    assert (fg_bg[mask == 1] == 200).all()


def test_room_composite_keeps_the_fg_on_visible_floor():
    cfg = SceneConfig()
    room = render_room(9, 0, 128, cfg)
    fg = draw_foreground(9, 1, 128)
    rng = np.random.default_rng(4)
    for _ in range(5):
        placement, fg_z = sample_floor_placement(room, fg.shape, rng, cfg)
        fg_bg, mask, depth = compose(room.rgb, room.depth, fg, placement, fg_z, cfg)
        assert mask.sum() > 20
        assert (depth[mask == 1] <= fg_z + 1e-6).all()
        assert (depth[mask == 1] < room.depth[mask == 1]).all()  # visible means in front
        assert mask[placement.y - 3 : placement.y, :].any()  # it reaches down to its floor contact


def test_bad_inputs_name_the_argument():
    bg, bg_depth, _ = _box_scene(32)
    fg = draw_foreground(0, 0, 32)
    pl = Placement(16, 30, 0.5)
    with pytest.raises(ValueError, match="bg_depth"):
        compose(bg, bg_depth[:10], fg, pl, 0.5)
    with pytest.raises(ValueError, match="fg"):
        compose(bg, bg_depth, fg[..., :3], pl, 0.5)
    with pytest.raises(ValueError, match="fg_z"):
        compose(bg, bg_depth, fg, pl, 1.5)
    with pytest.raises(ValueError, match="seed"):
        render_room(-1, 0, 64)
    with pytest.raises(ValueError, match="size"):
        draw_foreground(0, 0, 4)
    with pytest.raises(ValueError, match="fg_shape"):
        sample_floor_placement(render_room(0, 0, 32), (0, 5), np.random.default_rng(0))


# ---------------------------------------------------------------------------------------------------
# Sprites


@pytest.mark.parametrize("size", [64, 128, 224])
def test_sprites_have_soft_alpha_margins_and_feet_on_the_bottom(size):
    shapes = []
    for index in range(6):
        fg = draw_foreground(2, index, size)
        a = fg[..., 3]
        assert fg.dtype == np.uint8 and fg.shape[2] == 4
        assert max(fg.shape[:2]) == size
        soft = ((a > 0) & (a < 255)).sum()
        assert soft > 0.5 * size  # anti-aliased outline, not a hard cut
        assert (a == 255).sum() > 0.05 * a.size
        assert not a[0].any() and not a[:, 0].any() and not a[:, -1].any()  # transparent margin
        assert a[-1].max() > 128  # the object stands on the bottom row
        shapes.append(fg.shape[:2])
    person, dog = shapes[0], shapes[1]
    assert person[0] > person[1] and dog[1] > dog[0]  # tall figures, long animals


def test_box_filtered_lines_cover_their_width():
    x = np.linspace(0, 10, 1001) + 3e-4  # no sample exactly on a line edge
    sharp = lines(x, 1.0, 0.2, np.full_like(x, 1e-4))
    assert set(np.unique(np.round(sharp, 6))) <= {0.0, 1.0}
    assert sharp.mean() == pytest.approx(0.2, abs=0.01)
    assert sharp[np.abs(x - np.round(x)) < 0.09].min() == pytest.approx(1.0)  # centred on integers
    blurred = lines(x, 1.0, 0.2, np.full_like(x, 5.0))  # many lines per pixel: their mean
    np.testing.assert_allclose(blurred, 0.2, atol=1e-9)
