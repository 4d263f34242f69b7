"""Datasets from photo folders labelled by a teacher: ImageFolders + make_dataset(teacher=...)."""

import json
import warnings
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from eva_depthmask.composite import Placement, paste
from eva_depthmask.config import DataConfig
from eva_depthmask.data.datagen import make_dataset
from eva_depthmask.data.dataset import QuartetDataset
from eva_depthmask.data.sources import ImageFolders
from eva_depthmask.images import ImageError
from eva_depthmask.storage import DatasetError

CFG = DataConfig(size=32, placements=2, image_format="png", seed=3)


pytestmark = pytest.mark.usefixtures("one_thread")  # conftest.py


def brightness_teacher(images: np.ndarray) -> np.ndarray:
    """A stand-in teacher with a known answer: brighter is nearer."""
    return (1 - images.mean(-1) / 255).astype(np.float32)


def _tree(root: Path) -> dict[str, bytes]:
    return {
        p.relative_to(root).as_posix(): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


@pytest.fixture()
def photos(tmp_path) -> tuple[Path, Path]:
    """Five non-square backgrounds with mixed extensions, an RGBA and a palette cut-out."""
    rng = np.random.default_rng(0)
    bg_dir, fg_dir = tmp_path / "bg", tmp_path / "fg"
    bg_dir.mkdir()
    fg_dir.mkdir()
    for i, ext in enumerate([".jpg", ".JPEG", ".png", ".jpg", ".jpg"]):
        img = rng.integers(0, 256, (40, 56, 3), dtype=np.uint8)
        Image.fromarray(img).save(bg_dir / f"room_{i}{ext}", quality=95)
    fg = np.zeros((30, 14, 4), np.uint8)
    fg[4:, 3:11] = (250, 250, 250, 255)
    Image.fromarray(fg).save(fg_dir / "a.png")
    pal = Image.new("P", (12, 20), 0)
    pal.putpalette([0, 0, 0, 30, 200, 90] + [0] * 762)
    pal.paste(1, (2, 2, 10, 18))
    pal.info["transparency"] = 0
    pal.save(fg_dir / "b.png", transparency=0)
    return bg_dir, fg_dir


def test_image_folders_sample_and_splits(photos):
    source = ImageFolders(*photos, CFG)
    assert (source.n_bg, source.n_fg) == (5, 2) and source.cfg.n_bg == 5
    assert source.background(1).shape == (32, 32, 3)
    from eva_depthmask.data.sources import sample_keys

    keys = sample_keys(5, 2, source.cfg)
    assert len(keys) == 5 * 2 * 2 * 2
    s = source.sample(keys[3])
    assert s["depth"] is None and s["fg_z"] is None
    # each cut-out's own colour (as the photos fixture made it) fills fg_bg where the mask is 1,
    # and the noise backgrounds never come near it
    colours = {"a.png": (250, 250, 250), "b.png": (30, 200, 90)}
    shown = dict.fromkeys(colours, 0)
    for key in keys:
        k = source.sample(key)
        name = source.fg_files[key.fg].name
        near = np.abs(k["fg_bg"].astype(int) - colours[name]).max(-1) <= 12
        assert not (np.abs(k["bg"].astype(int) - colours[name]).max(-1) <= 12).any()
        inside = k["mask"] == 1
        assert not near[~inside].any(), key
        if inside.sum() >= 20:  # its rim is blended with the background
            assert near[inside].mean() > 0.2, key
        shown[name] += int(near.sum())
    assert min(shown.values()) > 100
    fg_bg, mask = paste(s["bg"], source.foreground(keys[3].fg), s["placement"])
    np.testing.assert_array_equal(fg_bg, s["fg_bg"])
    np.testing.assert_array_equal(mask, s["mask"])
    h = s["placement"].fg_size(source.foreground(keys[3].fg).shape, 32)[0]
    assert CFG.fg_scale[0] * 32 - 1 <= h <= CFG.fg_scale[1] * 32 + 1


def test_photo_dataset_depth_is_the_teachers_view_of_each_composite(tmp_path, photos, capsys):
    out = make_dataset(
        tmp_path / "ds",
        CFG,
        ImageFolders(*photos, CFG),
        teacher=brightness_teacher,
        workers=0,
        progress=False,
    )
    printed = capsys.readouterr().out
    assert "teacher brightness_teacher" in printed
    assert "the course's 400,000 quartets at 224 px: about" in printed and "GB" in printed
    ds = QuartetDataset(out, "all")
    assert len(ds) == 40 and {r["source"] for r in ds.rows} == {"photos"}
    assert all(r["fg_z"] == "" for r in ds.rows)
    for i in range(0, 40, 7):
        raw, row = ds.raw(i), ds.rows[i]
        expected = brightness_teacher(raw["fg_bg"][None])[0]
        np.testing.assert_allclose(raw["depth"], expected, atol=1 / 65535)
        placement = Placement(int(row["x"]), int(row["y"]), float(row["scale"]), row["flip"] == "1")
        fg = np.asarray(Image.open(out / row["fg"]))
        np.testing.assert_array_equal(paste(raw["bg"], fg, placement)[1], raw["mask"])
    stats = json.loads((out / "stats.json").read_text())
    assert stats["teacher"] == {"teacher": "brightness_teacher"} and stats["source"] == "photos"
    assert stats["has_depth"] is True and ds.has_depth and bool(ds[0]["has_depth"])
    assert stats["n_bg"] == 5 and stats["config"]["n_bg"] == 5
    splits = {s: {r["bg"] for r in ds.rows if r["split"] == s} for s in ("train", "val", "test")}
    assert not (splits["train"] & splits["val"] or splits["train"] & splits["test"])
    assert all(splits.values())


def test_lazy_layout_and_parallel_workers_give_the_same_samples(tmp_path, photos):
    source = ImageFolders(*photos, CFG)
    kw = {"teacher": brightness_teacher, "progress": False}
    full = make_dataset(tmp_path / "full", CFG, source, workers=0, **kw)
    lazy_cfg = replace(CFG, lazy=True)
    lazy = make_dataset(
        tmp_path / "lazy", lazy_cfg, ImageFolders(*photos, lazy_cfg), workers=0, **kw
    )
    assert not (lazy / "fg_bg").exists() and len(list((lazy / "depth").iterdir())) == 40
    a, b = QuartetDataset(full, "all"), QuartetDataset(lazy, "all")
    for i in range(len(a)):
        for k in ("bg", "fg_bg", "mask", "depth"):
            np.testing.assert_array_equal(a.raw(i)[k], b.raw(i)[k], err_msg=k)
    parallel = make_dataset(tmp_path / "par", CFG, source, workers=2, **kw)
    assert _tree(parallel) == _tree(full)


def test_interrupted_run_resumes_to_the_same_bytes_and_keeps_its_teacher(tmp_path, photos):
    source = ImageFolders(*photos, CFG)
    ref = make_dataset(
        tmp_path / "ref", CFG, source, teacher=brightness_teacher, workers=0, progress=False
    )
    calls = []

    def brightness_teacher_dies(images):  # same labels, then the runtime disconnects
        calls.append(len(images))
        if len(calls) > 4:  # two probe calls, then two chunks
            raise KeyboardInterrupt
        return brightness_teacher(images)

    brightness_teacher_dies.describe = lambda: {"teacher": "brightness_teacher"}
    out = tmp_path / "cut"
    with pytest.raises(KeyboardInterrupt):
        make_dataset(out, CFG, source, teacher=brightness_teacher_dies, workers=0, progress=False)
    assert not (out / "manifest.csv").exists() and len(list((out / ".progress").glob("*.csv"))) == 2
    with pytest.raises(DatasetError, match="interrupted make_dataset"):
        QuartetDataset(out)

    def other_teacher(images):
        return brightness_teacher(images)

    with pytest.raises(DatasetError, match="another teacher"):
        make_dataset(out, CFG, source, teacher=other_teacher, workers=0, progress=False)
    make_dataset(out, CFG, source, teacher=brightness_teacher, workers=0, progress=False)
    assert _tree(out) == _tree(ref)


def test_teacher_output_is_checked(tmp_path, photos):
    source = ImageFolders(*photos, CFG)

    def far_too_far(images):
        return np.full(images.shape[:3], 7.0, np.float32)

    with pytest.raises(DatasetError, match=r"teacher far_too_far: returned depth outside \[0, 1\]"):
        make_dataset(tmp_path / "ds", CFG, source, teacher=far_too_far, workers=0, progress=False)
    with pytest.raises(ValueError, match="only photo sources"):
        make_dataset(tmp_path / "ds3", CFG, teacher=brightness_teacher, progress=False)
    assert not (tmp_path / "ds3").exists()  # photos without a teacher: test_depthless.py


def test_bad_photos_are_all_named_before_anything_is_written(tmp_path, photos):
    bg_dir, fg_dir = photos
    bad_bg = bg_dir / "room_2.png"
    bad_bg.write_bytes(bad_bg.read_bytes()[:80])
    Image.fromarray(np.full((9, 9, 3), 50, np.uint8)).save(fg_dir / "c_opaque.png")
    with pytest.raises(ImageError, match=r"2 unusable image\(s\)") as info:
        ImageFolders(bg_dir, fg_dir, CFG)
    assert "room_2.png" in str(
        info.value
    ) and "c_opaque.png: foreground has no transparency" in str(info.value)
    nearly = np.full((10, 10, 4), 255, np.uint8)
    nearly[0, 0, 3] = 0
    (fg_dir / "c_opaque.png").unlink()
    bad_bg.unlink()
    Image.fromarray(nearly).save(fg_dir / "d_nearly.png")
    with pytest.warns(UserWarning, match=r"d_nearly\.png: foreground is 99% opaque"):
        assert ImageFolders(bg_dir, fg_dir, CFG).n_fg == 3


def test_depth_anything_labels_a_photo_dataset(tmp_path, photos):
    pytest.importorskip("transformers")
    from test_teachers import tiny_depth_anything

    from eva_depthmask.data.teachers import DepthAnythingTeacher

    model, processor = tiny_depth_anything()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        teacher = DepthAnythingTeacher(model=model, processor=processor, device="cpu")
    cfg = replace(CFG, placements=1, flips=False)
    out = make_dataset(
        tmp_path / "ds", cfg, ImageFolders(*photos, cfg), teacher=teacher, workers=0, progress=False
    )
    ds = QuartetDataset(out, "all")
    assert len(ds) == 10
    for i in range(len(ds)):
        raw = ds.raw(i)
        assert raw["depth"].min() == 0 and raw["depth"].max() == 1
        np.testing.assert_allclose(raw["depth"], teacher(raw["fg_bg"][None])[0], atol=2e-4)
    stats = json.loads((out / "stats.json").read_text())
    assert (
        stats["teacher"]["teacher"] == "depth_anything" and stats["teacher"]["far_near_ratio"] == 10
    )
