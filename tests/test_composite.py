import numpy as np
import pytest
from PIL import Image

from eva_depthmask.composite import Placement, paste, sample_placement
from eva_depthmask.images import ImageError, list_images, load_bg, load_fg, square_resize, to_rgba


def _bg(h=40, w=50, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


def _square_fg(h=10, w=6, margin=2, colour=(200, 10, 30)):
    """An opaque rectangle of ``colour`` inside a fully transparent margin."""
    fg = np.zeros((h + 2 * margin, w + 2 * margin, 4), np.uint8)
    fg[margin:-margin, margin:-margin] = (*colour, 255)
    return fg


def test_paste_without_resize_puts_fg_exactly_where_expected():
    bg, fg = _bg(), _square_fg()
    # scale chosen so the fg keeps its 14 px height on a 40 px background: no resampling
    pl = Placement(x=20, y=30, scale=14 / 40)
    fg_bg, mask = paste(bg, fg, pl)
    expected = np.zeros((40, 50), np.uint8)
    top, left = 30 - 14, 20 - 10 // 2
    expected[top + 2 : top + 12, left + 2 : left + 8] = 1
    np.testing.assert_array_equal(mask, expected)
    assert (fg_bg[expected == 1] == (200, 10, 30)).all()
    np.testing.assert_array_equal(fg_bg[expected == 0], bg[expected == 0])


def test_fg_bg_equals_bg_outside_mask_and_differs_on_soft_edges():
    bg = _bg(64, 64)
    yy, xx = np.mgrid[:30, :20]
    alpha = np.clip(255 * (8 - np.hypot(yy - 15, xx - 10)) / 3, 0, 255).astype(
        np.uint8
    )  # soft disc
    fg = np.dstack([np.full((30, 20, 3), 250, np.uint8), alpha])
    fg_bg, mask = paste(bg, fg, Placement(32, 50, 0.7, flip=True))
    assert set(np.unique(mask)) == {0, 1}
    np.testing.assert_array_equal(fg_bg[mask == 0], bg[mask == 0])
    assert (fg_bg[mask == 1] != bg[mask == 1]).any(axis=-1).mean() > 0.9


def test_visible_hides_occluded_part():
    bg, fg = _bg(), _square_fg()
    visible = np.ones((40, 50), bool)
    visible[:, :20] = False  # something in front covers the left part of the image
    fg_bg, mask = paste(bg, fg, Placement(20, 30, 14 / 40), visible=visible)
    assert mask[:, :20].sum() == 0 and mask[:, 20:].sum() > 0
    np.testing.assert_array_equal(fg_bg[:, :20], bg[:, :20])


def test_flip_mirrors_the_cut_out():
    bg = np.zeros((20, 20, 3), np.uint8)
    fg = np.zeros((10, 10, 4), np.uint8)
    fg[:, :3] = (255, 255, 255, 255)  # a bar on the left
    _, plain = paste(bg, fg, Placement(10, 15, 0.5))
    _, flipped = paste(bg, fg, Placement(10, 15, 0.5, flip=True))
    np.testing.assert_array_equal(flipped[5:15, 5:15], plain[5:15, 5:15][:, ::-1])


def test_sample_placement_is_seeded_and_inside():
    fg, bg_shape = _square_fg(30, 12), (64, 64, 3)
    a = [sample_placement(np.random.default_rng(3), fg.shape, bg_shape) for _ in range(2)]
    assert a[0] == a[1]
    rng = np.random.default_rng(0)
    for _ in range(200):
        pl = sample_placement(rng, fg.shape, bg_shape, scale=(0.2, 0.9))
        h, w = pl.fg_size(fg.shape, 64)
        assert pl.y - h >= 0 and pl.y <= 64
        assert pl.x - w // 2 >= 0 and pl.x - w // 2 + w <= 64


def test_palette_transparency_and_modes(tmp_path):
    pal = Image.new("P", (8, 8), 0)
    pal.putpalette([0, 0, 0, 255, 0, 0] + [0] * 762)
    for y in range(2, 6):
        for x in range(2, 6):
            pal.putpixel((x, y), 1)
    pal.info["transparency"] = 0  # palette index 0 is transparent
    pal.save(tmp_path / "p.png", transparency=0)
    fg = load_fg(tmp_path / "p.png")
    assert fg.shape == (8, 8, 4)
    assert (fg[2:6, 2:6, 3] == 255).all() and fg[0, 0, 3] == 0
    assert (fg[3, 3, :3] == (255, 0, 0)).all()

    la = np.zeros((6, 6, 2), np.uint8)
    la[1:5, 1:5] = (128, 255)
    Image.fromarray(la, "LA").save(tmp_path / "la.png")
    assert load_fg(tmp_path / "la.png")[2, 2].tolist() == [128, 128, 128, 255]
    assert to_rgba(np.zeros((3, 3), np.uint8)).shape == (3, 3, 4)


def test_foreground_without_transparency_is_refused(tmp_path):
    Image.fromarray(_bg(10, 10)).save(tmp_path / "opaque.png")
    with pytest.raises(ImageError, match=r"opaque\.png.*no transparency"):
        load_fg(tmp_path / "opaque.png")
    Image.fromarray(np.zeros((4, 4, 4), np.uint8)).save(tmp_path / "empty.png")
    with pytest.raises(ImageError, match=r"empty\.png.*fully transparent"):
        load_fg(tmp_path / "empty.png")


def test_nearly_opaque_cut_out_warns(tmp_path):
    fg = np.full((20, 20, 4), 255, np.uint8)
    fg[0, :5, 3] = 0  # 5 transparent pixels of 400
    Image.fromarray(fg).save(tmp_path / "bad_cutout.png")
    with pytest.warns(UserWarning, match=r"bad_cutout\.png.*opaque"):
        load_fg(tmp_path / "bad_cutout.png")


def test_truncated_and_missing_images_are_named(tmp_path):
    Image.fromarray(_bg(64, 64)).save(tmp_path / "full.jpg", quality=95)
    data = (tmp_path / "full.jpg").read_bytes()
    (tmp_path / "cut.jpg").write_bytes(data[: len(data) // 3])
    with pytest.raises(ImageError, match=r"cut\.jpg.*truncated"):
        load_bg(tmp_path / "cut.jpg", 32)
    (tmp_path / "text.png").write_text("not an image")
    with pytest.raises(ImageError, match=r"text\.png.*unreadable"):
        load_fg(tmp_path / "text.png")
    with pytest.raises(ImageError, match=r"nothere\.png.*no such file"):
        load_fg(tmp_path / "nothere.png")


def test_list_images_mixed_extensions_and_bad_folders(tmp_path):
    for name in ("b.JPG", "a.jpeg", "c.png", "notes.txt"):
        (tmp_path / name).write_bytes(b"x")
    assert [p.name for p in list_images(tmp_path, "background")] == ["a.jpeg", "b.JPG", "c.png"]
    with pytest.raises(FileNotFoundError, match="missing.*background folder does not exist"):
        list_images(tmp_path / "missing", "background")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ImageError, match="empty.*no foreground images"):
        list_images(tmp_path / "empty", "foreground")


def test_square_resize_crops_centre():
    img = np.zeros((20, 40, 3), np.uint8)
    img[:, 10:30] = 255  # the centre square is white, the sides black
    out = square_resize(img, 20)
    assert out.shape == (20, 20, 3) and (out == 255).all()
    assert square_resize(img, 8).shape == (8, 8, 3)
