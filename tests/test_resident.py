"""ResidentParts (data/resident.py): a lazy dataset's parts on a device, composited a batch at a time,
checked sample by sample against the CPU read of the same rows (``QuartetDataset.raw``), on real
files: procedural rooms, and photo folders with soft-edged cut-outs (one of them 1:20)."""

import csv
import functools
import re
import shutil
from dataclasses import replace

import numpy as np
import pytest
import torch
from PIL import Image

from eva_depthmask.composite import Placement, fg_layer
from eva_depthmask.config import DataConfig
from eva_depthmask.data.datagen import make_dataset
from eva_depthmask.data.dataset import QuartetDataset
from eva_depthmask.data.resident import ResidentParts
from eva_depthmask.data.sources import ImageFolders
from eva_depthmask.images import ALPHA_FLOOR
from eva_depthmask.storage import decode_image

SMALL = DataConfig(size=32, n_bg=6, n_fg=3, placements=2, image_format="png", lazy=True)
DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])

pytestmark = pytest.mark.usefixtures("one_thread")  # conftest.py


def brightness_teacher(images: np.ndarray) -> np.ndarray:
    """A stand-in depth teacher: brighter is nearer."""
    return (1 - images.mean(-1) / 255).astype(np.float32)


def _cutout(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    """uint8 (h, w, 4): a lopsided blob (a bump on its right: mirroring shows) with a soft alpha
    edge, textured, inside a faint halo of alpha below ALPHA_FLOOR (matting noise, never masked)."""
    yy, xx = np.mgrid[:h, :w] + 0.5
    body = ((yy - h / 2) / (h / 2 - 1)) ** 2 + ((xx - w * 0.4) / (w * 0.3)) ** 2
    bump = ((yy - h * 0.3) / (h * 0.12)) ** 2 + ((xx - w * 0.75) / (w * 0.18)) ** 2
    alpha = np.clip((1 - np.minimum(body, bump)) * 3, 0, 1) * 255
    alpha = np.where(alpha < ALPHA_FLOOR, ALPHA_FLOOR // 2, alpha)  # the halo fills the frame
    rgb = rng.integers(40, 216, (h, w, 3)) + 30 * np.sin(xx / 3)[..., None]
    return np.dstack([np.clip(rgb, 0, 255), alpha]).astype(np.uint8)


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    """``(bg_dir, fg_dir)``: four noise photos, a tall and a square cut-out, and a 1:20 one."""
    rng = np.random.default_rng(0)
    root = tmp_path_factory.mktemp("folders")
    bg_dir, fg_dir = root / "bg", root / "fg"
    bg_dir.mkdir()
    fg_dir.mkdir()
    for i in range(4):
        Image.fromarray(rng.integers(0, 256, (40, 56, 3), dtype=np.uint8)).save(bg_dir / f"{i}.png")
    for k, (h, w) in enumerate([(60, 30), (40, 40), (10, 200)]):
        Image.fromarray(_cutout(rng, h, w)).save(fg_dir / f"{k}.png")
    return bg_dir, fg_dir


@pytest.fixture(scope="module")
def datasets(tmp_path_factory, folders) -> dict:
    """Lazy datasets by name: procedural rooms, photos without depth, photos with a teacher's."""
    root = tmp_path_factory.mktemp("resident")
    photos = ImageFolders(*folders, replace(SMALL, placements=3))
    made = {"rooms": make_dataset(root / "rooms", SMALL, workers=0, progress=False)}
    for name, teacher in (("photos", None), ("taught", brightness_teacher)):
        made[name] = make_dataset(
            root / name, photos.cfg, photos, teacher=teacher, workers=0, progress=False
        )
    return made


@functools.cache
def _batch(path, device: str, split: str = "all") -> tuple:
    """``(ds, parts, out, cpu)``: every row of ``split`` composited on ``device`` (numpy, channels
    last like the CPU read) and read on the CPU. Cached: a dataset is composited once per device."""
    ds = QuartetDataset(path, split)
    parts = ResidentParts.from_dataset(ds, device)
    cpu = [ds.raw(i) for i in range(len(ds))]
    depth = None
    if parts.needs_depth:
        depth = torch.from_numpy(np.stack([c["depth"] for c in cpu])[:, None]).to(device)
    got = parts.composite(torch.arange(len(ds)), depth)
    out = {k: v.cpu().permute(0, 2, 3, 1).numpy() for k, v in got.items()}
    out["mask"], out["depth"] = out["mask"][..., 0], out["depth"][..., 0]
    return ds, parts, out, cpu


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    return float((a & b).sum() / max((a | b).sum(), 1))


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("name", ["rooms", "photos", "taught"])
def test_bg_is_identical_and_fg_bg_keeps_its_bytes_outside_the_mask(datasets, name, device):
    _, _, out, cpu = _batch(datasets[name], device)
    for i, c in enumerate(cpu):
        np.testing.assert_array_equal(out["bg"][i], c["bg"])
        outside = out["mask"][i] == 0
        np.testing.assert_array_equal(out["fg_bg"][i][outside], c["bg"][outside])
        assert set(np.unique(out["mask"][i])) <= {0, 1}


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("name", ["rooms", "photos"])
def test_mask_is_where_the_pasted_alpha_is_above_zero(datasets, name, device):
    """The rule itself, on the device's own alpha: matting noise cleared, then mask = alpha > 0 (in
    rooms, of what the room does not hide: a part of it, all of it in samples with nothing in front)."""
    _, parts, out, _ = _batch(datasets[name], device)
    _, alpha, _ = parts._unpremultiplied(parts._layers(np.arange(len(out["mask"]))))
    alpha = alpha[:, 0].cpu().numpy()
    assert ((alpha == 0) | (alpha >= ALPHA_FLOOR / 255)).all()  # nothing below the floor
    mask = out["mask"].astype(bool)
    assert not (mask & (alpha == 0)).any()
    if name == "photos":
        np.testing.assert_array_equal(mask, alpha > 0)
    else:
        assert (
            sum(np.array_equal(m, a > 0) for m, a in zip(mask, alpha, strict=True)) > len(mask) / 2
        )


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("name", ["rooms", "photos"])
def test_masks_and_fg_bg_agree_with_the_cpu(datasets, name, device):
    """Pillow's Lanczos, premultiplied, in both: photos give the CPU reader's masks exactly and its
    fg_bg but for a rounding here and there; in rooms the fg's depth layer is resized, not measured
    at the pasted size, so where furniture hides part of the fg the outline can differ. Measured
    (32 px, 72 samples each): photos all masks equal, 68 fg_bg identical, mean |fg_bg - CPU| under
    the mask <= 0.49 levels a sample; rooms 59 identical, IoU >= 0.842, mean 0.995."""
    _, _, out, cpu = _batch(datasets[name], device)
    ious, diffs, same = [], [], 0
    for i, c in enumerate(cpu):
        mask, true = out["mask"][i].astype(bool), c["mask"].astype(bool)
        assert mask.any() == true.any(), i
        ious.append(_iou(mask, true))
        fg_bg = out["fg_bg"][i][mask].astype(int)
        diffs.append(np.abs(fg_bg - c["fg_bg"][mask]).mean() if mask.any() else 0.0)
        same += np.array_equal(mask, true) and np.array_equal(out["fg_bg"][i], c["fg_bg"])
    if name == "photos":
        assert min(ious) == 1.0 and max(diffs) <= 1.0, (min(ious), max(diffs))
        assert same >= 0.9 * len(cpu), same
    else:
        assert min(ious) >= 0.8 and np.mean(ious) >= 0.99, (min(ious), np.mean(ious))
        assert same >= 0.75 * len(cpu), same


@pytest.mark.parametrize("device", DEVICES)
def test_room_depth_agrees_with_the_cpu_and_the_room_hides_the_fg(datasets, device):
    """Outside both masks the room's own depth, exactly; inside both the fg's bulging layer, within a
    part of its depth (fg_bulge_m / max_depth_m = 0.0125). Measured (32 px): max 0.0026 (0.21 of it),
    mean 0.0004 (0.03 of it); the room hides 68 px of the fgs."""
    ds, parts, out, cpu = _batch(datasets["rooms"], device)
    scene = ds.config.scene
    bulge = scene.fg_bulge_m / scene.max_depth_m
    worst, errors, hidden = 0.0, [], 0
    for i, c in enumerate(cpu):
        mask, true = out["mask"][i].astype(bool), c["mask"].astype(bool)
        np.testing.assert_array_equal(out["depth"][i][~(mask | true)], c["depth"][~(mask | true)])
        err = np.abs(out["depth"][i] - c["depth"])[mask & true]
        worst, errors = max(worst, err.max(initial=0)), [*errors, *err]
        hidden += _hidden_on_the_cpu(ds, i, c["mask"])
    grid = (
        out["depth"] * 65535
    )  # 16-bit PNG levels, as the CPU read gives them (float32: 0.004 off)
    np.testing.assert_allclose(grid, np.rint(grid), atol=0.01)
    assert worst <= 0.4 * bulge and np.mean(errors) <= 0.1 * bulge, (worst, np.mean(errors))
    assert hidden >= 20  # the room hides parts of some foregrounds: occlusion is being checked


def _hidden_on_the_cpu(ds: QuartetDataset, i: int, mask: np.ndarray) -> int:
    """Pixels of sample ``i``'s pasted fg that the room hides in the CPU read."""
    row = ds.rows[i]
    fg = decode_image(ds.store.read(row["fg"]), row["fg"], "RGBA")
    place = Placement(int(row["x"]), int(row["y"]), float(row["scale"]), row["flip"] == "1")
    return int(((fg_layer(fg, place, mask.shape)[1] > 0) & (mask == 0)).sum())


@pytest.mark.parametrize("device", DEVICES)
def test_depth_is_taken_from_disk_only_for_taught_photos(datasets, device):
    rows = torch.arange(4)
    for name in ("rooms", "photos"):
        parts = _batch(datasets[name], device)[1]
        assert not parts.needs_depth
        with pytest.raises(ValueError, match="takes no depth"):
            parts.composite(rows, torch.zeros(4, 1, 32, 32, device=device))
    assert not _batch(datasets["photos"], device)[2]["depth"].any()  # zeros: no depth stored
    ds, parts, out, cpu = _batch(datasets["taught"], device, "train")
    assert parts.needs_depth
    with pytest.raises(ValueError, match="needs each sample's depth"):
        parts.composite(rows)
    for i, c in enumerate(cpu):  # passed through, split rows in the CPU's order
        np.testing.assert_array_equal(out["depth"][i], c["depth"])
        assert _iou(out["mask"][i] > 0, c["mask"] > 0) >= 0.85


def test_a_full_layout_or_a_row_without_placement_is_refused(datasets, tmp_path):
    full = make_dataset(
        tmp_path / "full", replace(SMALL, lazy=False, n_bg=2, n_fg=1), workers=0, progress=False
    )
    with pytest.raises(
        ValueError, match=re.escape(str(tmp_path / "full" / "manifest.csv")) + ".*not a lazy"
    ):
        ResidentParts.from_dataset(QuartetDataset(full, "all"), "cpu")
    shutil.copytree(datasets["photos"], tmp_path / "cut")
    manifest = tmp_path / "cut" / "manifest.csv"
    with manifest.open() as f:
        rows = list(csv.DictReader(f))
    rows[3]["x"] = ""
    with manifest.open("w", newline="") as f:
        writer = csv.DictWriter(f, list(rows[0]), lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
    with pytest.raises(ValueError, match=f"{re.escape(str(manifest))}.*{rows[3]['id']}.*placement"):
        ResidentParts.from_dataset(QuartetDataset(tmp_path / "cut", "all"), "cpu")
