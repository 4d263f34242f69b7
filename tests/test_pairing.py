"""Pairing course composites with their backgrounds when the names do not say (data/pairing.py)."""

import io
import warnings
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from eva_depthmask.data.course import index_course_dataset
from eva_depthmask.data.course_layout import find_layout
from eva_depthmask.data.dataset import QuartetDataset
from eva_depthmask.data.pairing import ContentConfig, Matches, judge, match_content, thumbnail
from eva_depthmask.data.validation import validate_dataset
from eva_depthmask.storage import DatasetError

S = 32  # image side
N_BG, PER_BG = 12, 10


def img_name(b: int, j: int) -> str:
    """The failing real layout: ten composites per background, numbered on, no background number."""
    return f"img_{PER_BG * b + j:04d}"


def backgrounds(identical: tuple[int, int] | None = None, side: int = S) -> list[np.ndarray]:
    """12 textured ``side`` x ``side`` backgrounds; 0 and 1 share a base texture, and so do 2 and 3
    (small differences and a slight tint tell them apart); ``identical``: the second copies the first."""
    rng = np.random.default_rng(7)
    cell = np.ones((side // 4, side // 4, 1))
    bases = [np.kron(rng.uniform(30, 220, (4, 4, 3)), cell) for _ in range(10)]
    out = []
    for b in range(N_BG):
        img = bases[b // 2 if b < 4 else b - 2] + rng.normal(0, 8, (side, side, 3))
        img[..., 0] += 12 * (b % 2)
        out.append(np.clip(img, 0, 255).astype(np.uint8))
    if identical:
        out[identical[1]] = out[identical[0]]
    return out


def save(img: np.ndarray, path: Path, **kw) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(img).save(path, **kw)


def make_course(
    root: Path, name=img_name, identical=None, bg_side: int = S, halo: float = 0
) -> dict[str, str]:
    """A course dataset: each composite is its background (made at ``bg_side``, resized to ``S`` as
    the course did) with a blob pasted, JPEG q90, mask PNG. Returns the ground truth: composite
    path -> its background's path. ``halo``: a white rim that wide around the blob, outside its mask
    (a feathered cut-out's fringe)."""
    rng = np.random.default_rng(1)
    yy, xx = np.mgrid[:S, :S]
    truth = {}
    for b, big in enumerate(backgrounds(identical, bg_side)):
        save(big, root / f"bg/bg_{b:03d}.jpg", quality=90)
        bg = np.asarray(Image.fromarray(big).resize((S, S), Image.Resampling.BICUBIC))
        for j in range(PER_BG):
            cy, cx, ry, rx = rng.uniform(8, 24), rng.uniform(8, 24), *rng.uniform(4, 9, 2)
            r = np.sqrt(((yy - cy) / ry) ** 2 + ((xx - cx) / rx) ** 2)
            mask = r <= 1
            fg_bg = np.where((r <= 1 + halo / min(ry, rx))[..., None], np.uint8(255), bg)
            fg_bg = np.where(mask[..., None], rng.integers(0, 256, 3, dtype=np.uint8), fg_bg)
            stem = name(b, j)
            save(fg_bg, root / f"fg_bg/{stem}.jpg", quality=90)
            save(mask.astype(np.uint8) * 255, root / f"mask/{stem}_mask.png")
            save(np.full((S, S), 128, np.uint8), root / f"depth/{stem}_depth.png")
            truth[f"fg_bg/{stem}.jpg"] = f"bg/bg_{b:03d}.jpg"
    return truth


def zipped(root: Path, dest: Path) -> Path:
    with zipfile.ZipFile(dest, "w") as zf:
        for p in sorted(root.rglob("*")):
            zf.write(p, "download/" + p.relative_to(root).as_posix())
    return dest


def paired(rows: list[dict]) -> dict[str, str]:
    return {r["fg_bg"]: r["bg"] for r in rows}


def named(items: list[str]) -> set[str]:
    """The composites a list of problem messages names (each message starts with one)."""
    return {m.split(":")[0].split(" ")[0] for m in items}


def test_numbered_composites_pair_with_their_true_background_without_arguments(tmp_path):
    truth = make_course(tmp_path / "c")
    rows = index_course_dataset(tmp_path / "c")
    assert paired(rows) == truth
    # the trap: img_0005 carries number 5 and bg_005 exists, but it is background 0's composite
    assert paired(rows)["fg_bg/img_0005.jpg"] == "bg/bg_000.jpg"
    report = validate_dataset(tmp_path / "c", progress=False)
    assert report.ok and report.samples == N_BG * PER_BG, str(report)
    assert len(QuartetDataset.course(tmp_path / "c", "all")) == N_BG * PER_BG
    with pytest.raises(DatasetError, match=r"no background: 120 \(fg_bg/img_0000\.jpg"):
        index_course_dataset(tmp_path / "c", pairing="name")


def test_bg_numbers_in_names_pair_by_name_and_the_content_check_agrees(tmp_path):
    # backgrounds 4 and 5 identical: content alone cannot tell them apart, the names can
    truth = make_course(tmp_path / "c", lambda b, j: f"bg{b:03d}_fg{j:02d}", identical=(4, 5))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no disagreement warning, no fall-back
        rows = index_course_dataset(tmp_path / "c")
    assert paired(rows) == truth
    with pytest.raises(DatasetError, match=r"ambiguous pairing: 20 \(fg_bg/bg004_fg00"):
        index_course_dataset(tmp_path / "c", pairing="content")


def test_misleading_bg_numbers_fall_back_to_content_with_a_warning(tmp_path):
    def shifted(b, j):  # a "bg" number, but the next background's
        return f"bg{(b + 1) % N_BG:03d}_{PER_BG * b + j:04d}"

    truth = make_course(tmp_path / "c", shifted)
    with pytest.warns(UserWarning, match=r"disagree with their content for 16 of 16.*by content"):
        rows = index_course_dataset(tmp_path / "c")
    assert paired(rows) == truth
    by_name = paired(index_course_dataset(tmp_path / "c", pairing="name"))
    assert by_name["fg_bg/bg001_0000.jpg"] == "bg/bg_001.jpg"  # "name" trusts them as asked


def test_a_few_misnamed_composites_keep_the_names_with_a_warning(tmp_path):
    def mostly_right(b, j):
        return f"bg{(b + 1) % N_BG if b == 6 else b:03d}_{PER_BG * b + j:04d}"

    make_course(tmp_path / "c", mostly_right)
    with pytest.warns(UserWarning, match=r"paired by the bg numbers.*fg_bg/bg007_006\d\.jpg is "):
        rows = index_course_dataset(tmp_path / "c")
    assert paired(rows)["fg_bg/bg007_0060.jpg"] == "bg/bg_007.jpg"  # the names, as warned


@pytest.mark.parametrize("packed", [False, True], ids=["folder", "zip"])
def test_identical_and_missing_backgrounds_are_reported_by_name(tmp_path, packed):
    truth = make_course(tmp_path / "c", identical=(10, 11))
    (tmp_path / "c/bg/bg_009.jpg").unlink()
    path = zipped(tmp_path / "c", tmp_path / "c.zip") if packed else tmp_path / "c"
    on = {b: {c for c, bg in truth.items() if bg == f"bg/bg_{b:03d}.jpg"} for b in range(N_BG)}
    with pytest.raises(
        DatasetError, match=r"ambiguous pairing: 20 \(fg_bg/img_0100\.jpg: bg/bg_01"
    ):
        index_course_dataset(path)
    report = validate_dataset(path, progress=False)
    assert named(report.errors["ambiguous pairing"]) == on[10] | on[11]
    assert all(
        "bg/bg_010.jpg" in m and "bg/bg_011.jpg" in m for m in report.errors["ambiguous pairing"]
    )
    [twins] = report.errors["look-alike backgrounds"]  # said once, not per composite
    assert "bg_010.jpg and bg/bg_011.jpg look identical" in twins and "20 composites" in twins
    assert named(report.errors["no background"]) == on[9]
    assert "no background looks like it" in report.errors["no background"][0]
    with pytest.warns(UserWarning, match=r"left out composites with .*ambiguous pairing: 20"):
        rows = index_course_dataset(path, strict=False)
    assert paired(rows) == {c: bg for c, bg in truth.items() if c not in on[9] | on[10] | on[11]}


def test_backgrounds_larger_than_the_composites(tmp_path):
    truth = make_course(tmp_path / "c", bg_side=2 * S)
    assert paired(index_course_dataset(tmp_path / "c")) == truth


@pytest.mark.parametrize(
    "margin", [{"dilate": 1, "trim": 0.0}, {"dilate": 0, "trim": 0.1}], ids=["dilate", "trim"]
)
def test_a_fringe_outside_the_mask_is_ignored_by_the_dilation_or_the_trim(tmp_path, margin):
    # each margin alone keeps every composite paired (with neither, 28 of 120 are lost)
    truth = make_course(tmp_path / "c", halo=1.5)
    layout = find_layout(tmp_path / "c")
    composites = sorted(truth)
    masks = [f"mask/{Path(c).stem}_mask.png" for c in composites]
    cfg = ContentConfig(**margin)
    pairs, _ = judge(match_content(layout.store, composites, masks, layout.files["bg"], cfg), cfg)
    assert {composites[i]: layout.files["bg"][b] for i, b in pairs.items()} == truth


def test_thumbnail_crops_to_the_centre_square_and_reads_0_1_masks(tmp_path):
    rng = np.random.default_rng(3)
    wide = rng.integers(0, 256, (S, S + 16, 3), dtype=np.uint8)
    square = wide[:, 8 : 8 + S]
    thumbs = [thumbnail(png_bytes(a), "x.png", 16) for a in (wide, square)]
    np.testing.assert_array_equal(thumbs[0], thumbs[1])
    assert thumbs[0].shape == (16, 16, 3) and thumbs[0].dtype == np.float32
    mask = np.zeros((S, S), np.uint8)
    mask[:8, :8] = 1  # stored as 0/1: the top-left quarter
    expected = np.zeros((16, 16), bool)
    expected[:4, :4] = True
    np.testing.assert_array_equal(thumbnail(png_bytes(mask), "m.png", 16, mask=True), expected)
    with pytest.raises(DatasetError, match="bad.jpg: unreadable"):
        thumbnail(b"not an image", "bad.jpg", 16)


def png_bytes(arr: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, "PNG")
    return buf.getvalue()


def test_unreadable_composite_and_missing_mask_are_named_once(tmp_path):
    make_course(tmp_path / "c")
    victim = tmp_path / "c/fg_bg/img_0031.jpg"
    victim.write_bytes(victim.read_bytes()[:50])
    (tmp_path / "c/mask/img_0042_mask.png").unlink()  # not compared: reported as "no mask" only
    report = validate_dataset(tmp_path / "c", progress=False)
    assert [m.split(" ")[0] for m in report.errors["no background"]] == ["fg_bg/img_0031.jpg"]
    assert "cannot pair by content" in report.errors["no background"][0]
    assert report.errors["no mask"] == ["fg_bg/img_0042.jpg"]
    assert report.samples == N_BG * PER_BG - 2


def test_judge_ratio_test_distance_limit_and_look_alike_backgrounds():
    thumbs = np.zeros((3, 4, 3), np.float32)
    thumbs[1] += 0.03  # a near-duplicate of background 0
    thumbs[2] += 0.5
    matches = Matches(
        names=["fg_bg/clear.jpg", "fg_bg/tie.jpg", "fg_bg/far.jpg"],
        bgs=["bg/a.jpg", "bg/b.jpg", "bg/c.jpg"],
        thumbs=thumbs,
        index=np.array([[0, 2], [0, 1], [2, 0]]),
        distance=np.array([[0.01, 0.02], [0.02, 0.025], [0.2, 0.3]], np.float32),
        unreadable={},
    )
    pairs, problems = judge(matches, ContentConfig())
    assert pairs == {0: 0}  # 0.01 < 0.7 x 0.02: clear
    assert problems["ambiguous pairing"] == ["fg_bg/tie.jpg: bg/a.jpg (0.020) or bg/b.jpg (0.025)"]
    assert problems["look-alike backgrounds"] == [
        "bg/a.jpg and bg/b.jpg look alike (differ by 0.030): 1 composites on them cannot be told "
        "apart; remove one, or pair by name or CSV"
    ]
    assert problems["no background"] == [
        "fg_bg/far.jpg (no background looks like it: the nearest, bg/c.jpg, differs by 0.200)"
    ]
