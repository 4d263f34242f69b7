"""Reading the course's existing datasets (folders or one zip) and validating them before training."""

import csv
import io
import shutil
import zipfile
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from eva_depthmask.config import DataConfig
from eva_depthmask.data.course import index_course_dataset, match_key
from eva_depthmask.data.datagen import make_dataset
from eva_depthmask.data.dataset import QuartetDataset, SizeMismatchError
from eva_depthmask.data.download import download
from eva_depthmask.data.sources import split_backgrounds
from eva_depthmask.data.validation import validate_dataset
from eva_depthmask.storage import DatasetError

S = 32  # image side
N_BG = 6


def true_mask(f: int, k: int) -> np.ndarray:
    mask = np.zeros((S, S), np.uint8)
    top, left = 4 + 3 * k, 6 + 5 * f
    mask[top : top + 14, left : left + 8] = 1
    return mask


def true_depth(k: int) -> np.ndarray:
    depth = np.repeat(np.linspace(1.0, 0.2, S)[:, None], S, 1)  # floor: far at the top
    return depth * (0.6 + 0.1 * k)


def save(img: np.ndarray, path: Path, **kw) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(img).save(path, **kw)


def make_course(root: Path, names=("bg", "fg_bg", "fg_bg_mask", "fg_bg_depth")) -> Path:
    """6 backgrounds x 2 foregrounds x 2 placements, saved the way students did: all JPEG (q75),
    masks with compression noise, depth as 3-channel 8-bit JPEG, names embedding the background."""
    rng = np.random.default_rng(0)
    bg_dir, fg_bg_dir, mask_dir, depth_dir = (root / n for n in names)
    for b in range(1, N_BG + 1):
        bg = rng.integers(40, 200, (S, S, 3), dtype=np.uint8)
        save(bg, bg_dir / f"bg{b:03d}.jpg", quality=90)
        for f in (1, 2):
            for k in (1, 2):
                stem = f"bg{b:03d}_fg{f:03d}_{k:02d}"
                mask = true_mask(f, k)
                fg_bg = np.where(mask[..., None] > 0, np.uint8(250), bg)
                save(fg_bg, fg_bg_dir / f"{stem}.jpg", quality=90)
                save(mask * 255, mask_dir / f"{stem}_mask.jpg", quality=75)
                grey = np.rint(true_depth(k) * 255).astype(np.uint8)
                save(np.stack([grey] * 3, -1), depth_dir / f"{stem}_depth.jpg", quality=90)
    return root


def zip_tree(folder: Path, dest: Path, top: str = "") -> Path:
    with zipfile.ZipFile(dest, "w") as zf:
        for p in sorted(folder.rglob("*")):
            if p.is_file():
                zf.write(p, top + p.relative_to(folder).as_posix())
        zf.writestr("__MACOSX/bg/._bg001.jpg", b"junk")
    return dest


@pytest.fixture()
def course(tmp_path) -> Path:
    return make_course(tmp_path / "course")


def test_folder_reads_with_pairs_masks_and_depth(course):
    ds = QuartetDataset(course, "all")  # no manifest.csv: recognised as a course dataset
    assert len(ds) == N_BG * 4 and ds.info["source"] == "course"
    for i, row in enumerate(ds.rows):
        b, f, k = (int(x) for x in match_key(row["id"]))
        assert row["bg"] == f"bg/bg{b:03d}.jpg"
        assert row["mask"] == f"fg_bg_mask/{row['id']}_mask.jpg"
        raw = ds.raw(i)
        np.testing.assert_array_equal(raw["mask"], true_mask(f, k))  # JPEG noise re-binarised
        assert np.abs(raw["depth"] - true_depth(k)).max() < 4 / 255  # 3-channel JPEG depth
        assert (
            raw["fg_bg"].shape == raw["bg"].shape == (S, S, 3) and raw["depth"].dtype == np.float32
        )
    assert ds[0]["depth"].shape == (1, S, S)


def test_zip_with_a_top_folder_and_odd_folder_names(course, tmp_path):
    for old, new in (
        ("bg", "BG"),
        ("fg_bg", "FgBg"),
        ("fg_bg_mask", "Masks"),
        ("fg_bg_depth", "Depth"),
    ):
        (course / old).rename(course / new)
    path = zip_tree(course, tmp_path / "download.zip", top="S15 dataset/")
    zipped = QuartetDataset(path, "all")
    folder = QuartetDataset.course(course, "all")
    assert zipped.ids == folder.ids and len(zipped) == N_BG * 4
    for i in (0, 9, len(folder) - 1):
        a, b = zipped.raw(i), folder.raw(i)
        for key in ("bg", "fg_bg", "mask", "depth"):
            np.testing.assert_array_equal(a[key], b[key])
    assert download("any-id", path) == path  # a course zip counts as a dataset: no download


def test_zip_course_dataset_with_dataloader_workers(course, tmp_path):
    import torch

    ds = QuartetDataset(zip_tree(course, tmp_path / "c.zip"), "train")
    loader = torch.utils.data.DataLoader(ds, batch_size=4, num_workers=2)
    batches = list(loader)
    assert [i for b in batches for i in b["id"]] == ds.ids
    assert batches[0]["mask"].shape == (4, 1, S, S) and batches[0]["depth"].dtype == torch.float32


def test_splits_are_by_background_and_seeded(course):
    bg_of = {}
    for split in ("train", "val", "test"):
        for row in QuartetDataset.course(course, split, seed=5, val_fraction=0.2).rows:
            bg_of.setdefault(split, set()).add(int(row["bg"][5:8]) - 1)
    expected = split_backgrounds(N_BG, DataConfig(seed=5, val_fraction=0.2))
    assert {s: sorted(v) for s, v in bg_of.items()} == expected
    other = QuartetDataset.course(course, "test", seed=6, val_fraction=0.2).rows
    assert [r["id"] for r in other] != [
        r["id"] for r in QuartetDataset.course(course, "test", seed=5, val_fraction=0.2).rows
    ]


def _renamed(course: Path) -> Path:
    """Composites named '<bg number>_<fg>_<k>' and backgrounds '<number>.jpg': no 'bg' in the names."""
    for p in (course / "bg").iterdir():
        p.rename(p.with_name(p.name[2:]))
    for folder in ("fg_bg", "fg_bg_mask", "fg_bg_depth"):
        for p in (course / folder).iterdir():
            p.rename(p.with_name(p.name[2:].replace("fg", "")))
    return course


def test_pairing_by_regex_function_and_csv(course, tmp_path):
    _renamed(course)
    with pytest.raises(DatasetError, match=r"no background: 24 \(fg_bg/001_001_01\.jpg"):
        index_course_dataset(course, pairing="name")  # no "bg<number>" in the names
    by_regex = index_course_dataset(course, pairing=r"^(\d+)_")
    by_function = index_course_dataset(course, pairing=lambda name: name.split("_")[0] + ".jpg")
    assert by_regex == by_function and len(by_regex) == 24
    assert {r["bg"] for r in by_regex if r["id"].startswith("004_")} == {"bg/004.jpg"}
    by_content = index_course_dataset(course)  # the default pairs them by content
    assert [r["bg"] for r in by_content] == [f"bg/{r['id'][:3]}.jpg" for r in by_content]
    assert len(by_content) == 24

    pairs = tmp_path / "pairs.csv"
    with open(pairs, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["FG_BG", "bg", "split"])
        for r in by_regex:
            writer.writerow(
                [r["fg_bg"], Path(r["bg"]).stem, "test" if r["id"][2] == "1" else "train"]
            )
    rows = index_course_dataset(course, pairing=pairs)
    assert [r["bg"] for r in rows] == [r["bg"] for r in by_regex]
    assert {r["split"] for r in rows if r["bg"] == "bg/001.jpg"} == {"test"}


def test_composite_without_background_missing_mask_and_orphans(course):
    shutil.copy(course / "fg_bg/bg001_fg001_01.jpg", course / "fg_bg/bg009_fg001_01.jpg")
    shutil.copy(
        course / "fg_bg_mask/bg001_fg001_01_mask.jpg", course / "fg_bg_mask/bg009_fg001_01_mask.jpg"
    )
    shutil.copy(
        course / "fg_bg_depth/bg001_fg001_01_depth.jpg",
        course / "fg_bg_depth/bg009_fg001_01_depth.jpg",
    )
    (course / "fg_bg_mask/bg002_fg001_02_mask.jpg").rename(
        course / "fg_bg_mask/bg002_fg007_02_mask.jpg"
    )
    with pytest.raises(
        DatasetError, match=r"no background: 1 \(fg_bg/bg009_fg001_01\.jpg \(looked for '009'\)\)"
    ):
        QuartetDataset.course(course)
    with pytest.warns(
        UserWarning, match=r"left out composites.*no mask: 1 \(fg_bg/bg002_fg001_02\.jpg\)"
    ):
        ds = QuartetDataset.course(course, "all", strict=False)
    assert len(ds) == N_BG * 4 - 1
    report = validate_dataset(course, progress=False)
    assert not report.ok
    assert report.errors["no background"] == ["fg_bg/bg009_fg001_01.jpg (looked for '009')"]
    assert report.errors["no mask"] == ["fg_bg/bg002_fg001_02.jpg"]
    assert report.warnings["masks without composite"] == ["fg_bg_mask/bg002_fg007_02_mask.jpg"]
    assert "bg009_fg001_01.jpg" in str(report)


def test_validate_finds_size_mismatch_unreadable_files_and_odd_encodings(course):
    assert validate_dataset(course, progress=False).ok
    save(np.zeros((16, 16), np.uint8), course / "fg_bg_mask/bg001_fg001_01_mask.jpg")
    depth = course / "fg_bg_depth/bg001_fg001_02_depth.jpg"
    depth.write_bytes(depth.read_bytes()[:200])
    soft = np.repeat(np.linspace(0, 255, S)[None], S, 0).astype(np.uint8)
    save(soft, course / "fg_bg_mask/bg002_fg001_01_mask.jpg")
    (course / "fg_bg_depth/bg002_fg001_02_depth.jpg").unlink()
    save(
        np.rint(true_depth(2) * 5000).astype(np.uint16),
        course / "fg_bg_depth/bg002_fg001_02_depth.png",
    )
    report = validate_dataset(course, progress=False)
    assert not report.ok and report.checked == N_BG * 4 - 2
    assert report.errors["size mismatch"] == [
        "sample 'bg001_fg001_01': images of different sizes (bg 32x32, fg_bg 32x32, mask 16x16, depth 32x32)"
    ]
    assert len(report.errors["unreadable files"]) == 1
    assert (
        "bg001_fg001_02_depth.jpg: unreadable or truncated" in report.errors["unreadable files"][0]
    )
    assert (
        "fg_bg_mask/bg002_fg001_01_mask.jpg: mask is not binary (75% grey"
        in (report.warnings["masks not binary"][0])
    )
    assert (
        "bg002_fg001_02_depth.png: 16-bit depth map" in report.warnings["depth maps converted"][0]
    )
    with pytest.raises(SizeMismatchError, match="mask 16x16"):
        QuartetDataset.course(course, "all").raw(0)
    small = validate_dataset(course, max_samples=5, progress=False)
    assert (
        small.checked + len(small.errors["size mismatch"]) + len(small.errors["unreadable files"])
        == 5
    )


@pytest.mark.parametrize(
    "encode, expected, warning",
    [
        (
            lambda d: np.rint(d * 65535).astype(np.uint16),
            lambda d: d,
            r"16-bit depth map: read as value/65535",
        ),
        (
            lambda d: np.rint(d * 255).astype(np.uint16),
            lambda d: d,
            r"16-bit depth map holding only 0-255",
        ),
        (
            lambda d: np.rint(d * 4000).astype(np.uint16),
            lambda d: d / d.max(),
            r"16-bit depth map reaching only \d+: divided by its maximum",
        ),
        (
            lambda d: (d * 5).astype(np.float32),
            lambda d: d / d.max(),
            r"depth map in \[0, 4\]: rescaled to \[0, 1\]",
        ),
        (lambda d: d.astype(np.float32), lambda d: d, r"float depth map in \[0, 1\]: used as is"),
    ],
    ids=["16bit", "16bit-0-255", "16bit-low", "float-metres", "float-0-1"],
)
def test_depth_in_other_value_ranges_is_normalised_with_a_warning(
    course, encode, expected, warning
):
    target = true_depth(2)
    path = course / "fg_bg_depth/bg001_fg001_02_depth.jpg"
    path.unlink()
    ext = ".tiff" if encode(target).dtype == np.float32 else ".png"
    save(encode(target), path.with_suffix(ext))
    ds = QuartetDataset.course(course, "all")
    i = ds.ids.index("bg001_fg001_02")
    with pytest.warns(UserWarning, match=rf"bg001_fg001_02_depth{ext}: {warning}"):
        depth = ds.raw(i)["depth"]
    np.testing.assert_allclose(depth, expected(target), atol=1 / 250)


def test_masks_stored_as_0_1_and_colour_depth(course):
    save(true_mask(1, 1), course / "fg_bg_mask/bg003_fg001_01_mask.png")
    (course / "fg_bg_mask/bg003_fg001_01_mask.jpg").unlink()
    colour = np.zeros((S, S, 3), np.uint8)
    colour[..., 0] = 200
    save(colour, course / "fg_bg_depth/bg003_fg001_02_depth.png")
    (course / "fg_bg_depth/bg003_fg001_02_depth.jpg").unlink()
    ds = QuartetDataset.course(course, "all")
    with pytest.warns(UserWarning, match=r"bg003_fg001_01_mask\.png: mask stored as 0/1"):
        np.testing.assert_array_equal(
            ds.raw(ds.ids.index("bg003_fg001_01"))["mask"], true_mask(1, 1)
        )
    with pytest.warns(UserWarning, match=r"bg003_fg001_02_depth\.png: colour depth map"):
        ds.raw(ds.ids.index("bg003_fg001_02"))


def test_layout_problems_are_named(course, tmp_path):
    shutil.copytree(course / "fg_bg_mask", course / "masks")
    with pytest.raises(
        DatasetError, match=r"several mask folders \['fg_bg_mask', 'masks'\].*folders="
    ):
        QuartetDataset.course(course)
    assert len(QuartetDataset.course(course, "all", folders={"mask": "masks"})) == N_BG * 4
    shutil.rmtree(course / "masks")
    shutil.rmtree(course / "fg_bg_depth")
    with pytest.raises(DatasetError, match=r"no depth folder; accepted names: .*depth.*folders="):
        QuartetDataset.course(course)
    with pytest.raises(DatasetError, match="no course dataset layout found"):
        QuartetDataset.course(tmp_path / "course" / "bg")


def test_match_key_drops_tags_and_compares_numbers():
    assert match_key("bg001_fg023_05") == match_key("bg001_fg023_05_mask") == (1, 23, 5)
    assert match_key("bg_001_fg_023_05_depth_map_005") == (1, 23, 5)
    assert match_key("Depth_bg1_fg23_5") == (1, 23, 5)
    assert match_key("kitchen") == match_key("kitchen-mask") == "kitchen"


def test_validate_an_eva_depthmask_dataset(tmp_path):
    cfg = replace(DataConfig(size=32, n_bg=3, n_fg=2, placements=1), image_format="png")
    path = make_dataset(tmp_path / "ds", cfg, workers=0, progress=False)
    report = validate_dataset(path, progress=False)
    assert report.ok and report.kind == "eva_depthmask" and report.checked == cfg.n_samples
    victim = sorted((path / "mask").iterdir())[0]
    victim.unlink()
    report = validate_dataset(path, progress=False)
    assert not report.ok and victim.name in report.errors["unreadable dataset"][0]
    buf = io.StringIO()
    print(report, file=buf)
    assert "PROBLEMS" in buf.getvalue()
