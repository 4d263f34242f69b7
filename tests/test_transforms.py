"""augment: quartet.py, normalize.py + realism.py on composites built here: a random-texture bg, a soft RGBA blob pasted
with composite.paste, and a depth map whose values inside and outside the object are known."""

from __future__ import annotations

from dataclasses import replace

import cv2
import numpy as np
import pytest
import torch

from eva_depthmask.augment.batch import augment_batch
from eva_depthmask.augment.normalize import (
    check_sample,
    denormalize,
    to_numpy_sample,
    to_tensor_sample,
)
from eva_depthmask.augment.quartet import get_transforms, sample_seed
from eva_depthmask.augment.realism import PERTURBATIONS, cast_shadow, single_perturbation
from eva_depthmask.composite import Placement, paste
from eva_depthmask.config import AugConfig, from_dict, robustness_preset, to_dict

FG_DEPTH, BG_DEPTH = 0.25, 0.75
STATS = {"mean": [0.5, 0.5, 0.5], "std": [0.25, 0.25, 0.25]}
# everything off; tests switch on what they look at
QUIET = AugConfig(spatial=False, photometric=False, realism=False)
# spatial only, every step firing, so the geometry really changes
SPATIAL = replace(QUIET, spatial=True, crop_p=0.5, affine_p=1.0, hflip_p=0.5)


def make_sample(size: int, seed: int = 0, sample_id: str = "s0") -> dict:
    """bg: random texture; fg: a red ellipse with a soft edge; depth: FG_DEPTH on the object, BG_DEPTH
    elsewhere. By construction fg_bg differs from bg exactly on the mask (checked, not assumed)."""
    rng = np.random.default_rng(seed)
    bg = cv2.resize(rng.integers(0, 256, (size // 4, size // 4, 3), np.uint8), (size, size))
    fg = np.zeros((40, 30, 4), np.uint8)
    cv2.ellipse(fg, (15, 20), (12, 18), 0, 0, 360, (230, 20, 20, 255), -1, cv2.LINE_AA)
    fg_bg, mask = paste(bg, fg, Placement(x=size // 2, y=int(size * 0.8), scale=0.45))
    assert np.array_equal((fg_bg != bg).any(-1), mask == 1), "test composite is not clean"
    depth = np.where(mask == 1, FG_DEPTH, BG_DEPTH).astype(np.float32)
    return {"bg": bg, "fg_bg": fg_bg, "mask": mask, "depth": depth, "id": sample_id}


@pytest.fixture(scope="module")
def sample() -> dict:
    return make_sample(96)


@pytest.fixture(params=["albumentations", "torch"])
def backend(request) -> str:
    """The train pipeline's backend: each sample on the host, or batches of tensors (batch.py)."""
    return request.param


def on(backend: str, cfg: AugConfig = AugConfig()) -> AugConfig:
    return replace(cfg, backend=backend)


def differs(out: dict) -> np.ndarray:
    return (out["fg_bg"] != out["bg"]).any(-1)


# ---------------------------------------------------------------------------------------------------
# Spatial


def test_spatial_keeps_the_quartet_exact_with_nearest_resampling(sample, backend):
    t = get_transforms("train", 64, on(backend, replace(SPATIAL, interpolation="nearest")))
    plain = get_transforms("val", 64, replace(QUIET, interpolation="nearest")).augment(sample)
    moved = 0
    for seed in range(25):
        out = t.augment(sample, seed=seed)
        assert out["mask"].shape == (64, 64) and out["bg"].shape == (64, 64, 3)
        np.testing.assert_array_equal(differs(out), out["mask"] == 1)
        assert set(np.unique(out["mask"])) <= {0, 1}
        # depth moved with the mask: the object's depth exactly on the mask, the room's elsewhere
        np.testing.assert_array_equal(out["depth"], np.where(out["mask"] == 1, FG_DEPTH, BG_DEPTH))
        moved += not np.array_equal(out["mask"], plain["mask"])
    assert moved >= 20  # the geometry really changed


def test_spatial_bilinear_differs_only_at_the_mask_edge(sample, backend):
    t = get_transforms("train", 64, on(backend, SPATIAL))
    # the torch backend resamples twice when shrinking (resize on the host, then the warp): each
    # pixel's footprint reaches one pixel further
    ring = np.ones((5, 5) if backend == "albumentations" else (7, 7), np.uint8)
    for seed in range(15):
        out = t.augment(sample, seed=seed)
        m = out["mask"]
        assert set(np.unique(m)) <= {0, 1}
        near = cv2.dilate(m, ring).astype(bool)
        # where the frame cuts the object, its edge is just outside: no interior there
        core = cv2.erode(m, ring, borderType=cv2.BORDER_CONSTANT, borderValue=0).astype(bool)
        assert not (differs(out) & ~near).any(), "fg_bg differs from bg away from the mask"
        assert differs(out)[core].all(), "the object's interior equals bg"
        d = out["depth"]
        assert d.dtype == np.float32 and d.min() >= FG_DEPTH - 1e-6 and d.max() <= BG_DEPTH + 1e-6
        np.testing.assert_allclose(d[core], FG_DEPTH, atol=1e-6)
        np.testing.assert_allclose(d[~near], BG_DEPTH, atol=1e-6)


def test_depth_interpolation_stays_in_unit_range(backend):
    s = make_sample(96, seed=3)
    s["depth"] = np.tile(np.linspace(0.0, 1.0, 96, dtype=np.float32), (96, 1))  # touches 0 and 1
    t = get_transforms("train", 64, on(backend, SPATIAL))
    for seed in range(10):
        d = t.augment(s, seed=seed)["depth"]
        assert d.min() >= 0.0 and d.max() <= 1.0


def test_resize_depth_is_interpolated_and_mask_is_nearest_known_answer():
    s = make_sample(96, seed=4)
    s["depth"] = np.tile(np.linspace(0.0, 1.0, 96, dtype=np.float32), (96, 1))
    out = get_transforms("val", 64).augment(s)
    # shrinking by 1.5 averages each output pixel's footprint [1.5 j, 1.5 j + 1.5) of source pixels,
    # weighted by overlap; the ramp's value at source pixel i is i / 95
    lo = 1.5 * np.arange(64)[:, None]
    i = np.arange(96)[None, :]
    overlap = np.clip(np.minimum(lo + 1.5, i + 1) - np.maximum(lo, i), 0.0, None)
    expected = (overlap * i).sum(1) / overlap.sum(1) / 95.0
    np.testing.assert_allclose(out["depth"], np.tile(expected, (64, 1)), atol=1e-4)
    assert set(np.unique(out["mask"])) == {0, 1}


def test_horizontal_flip_known_answer(sample, backend):
    cfg = replace(on(backend, QUIET), spatial=True, crop_p=0.0, affine_p=0.0, hflip_p=1.0)
    out = get_transforms("train", 96, cfg).augment(sample, seed=0)
    for key in ("bg", "fg_bg", "mask", "depth"):
        np.testing.assert_array_equal(out[key], sample[key][:, ::-1])


# ---------------------------------------------------------------------------------------------------
# Photometric


def test_photometric_changes_both_images_alike_and_never_mask_or_depth(sample, backend):
    cfg = replace(
        on(backend, QUIET),
        photometric=True,
        color_p=1.0,
        brightness_contrast_p=1.0,
        noise_p=1.0,
        dropout_p=1.0,
    )
    t = get_transforms("train", 96, cfg)
    for seed in range(5):
        out = t.augment(sample, seed=seed)
        np.testing.assert_array_equal(out["mask"], sample["mask"])
        np.testing.assert_array_equal(out["depth"], sample["depth"])
        assert not np.array_equal(out["bg"], sample["bg"])
        assert not np.array_equal(out["fg_bg"], sample["fg_bg"])
        # the same change on both photos: outside the object they are still identical
        outside = sample["mask"] == 0
        np.testing.assert_array_equal(out["fg_bg"][outside], out["bg"][outside])


# ---------------------------------------------------------------------------------------------------
# Background realism


@pytest.mark.parametrize("name", [n for n in PERTURBATIONS if n != "shadow"])
def test_each_background_perturbation_changes_bg_and_only_bg(sample, name, backend):
    # at the strong level's strengths, so even a small draw shows on a 96 px image
    strong = on(backend, robustness_preset("strong"))
    t = get_transforms("train", 96, single_perturbation(strong, name))
    for seed in range(3):
        out = t.augment(sample, seed=seed)
        assert np.abs(out["bg"].astype(int) - sample["bg"]).mean() > 0.1, f"{name} left bg alone"
        for key in ("fg_bg", "mask", "depth"):
            np.testing.assert_array_equal(out[key], sample[key])


def test_default_training_breaks_the_differencing_shortcut_most_of_the_time(sample, backend):
    # with the default probabilities some perturbation fires in ~93 % of samples (1 - 0.7 * 0.5 *
    # 0.5 * 0.8 * 0.7 * 0.7); the rest stay perfect composites, which real pairs can also be
    t = get_transforms("train", 96, replace(on(backend), spatial=False, photometric=False))
    outside = sample["mask"] == 0
    broken = [differs(t.augment(sample, seed=seed))[outside].any() for seed in range(40)]
    assert 30 <= sum(broken) < 40


def test_shadow_darkens_fg_bg_background_only(sample, backend):
    t = get_transforms("train", 96, single_perturbation(on(backend, QUIET), "shadow"))
    for seed in range(5):
        out = t.augment(sample, seed=seed)
        for key in ("bg", "mask", "depth"):
            np.testing.assert_array_equal(out[key], sample[key])
        inside = sample["mask"] == 1
        np.testing.assert_array_equal(out["fg_bg"][inside], sample["fg_bg"][inside])
        assert (out["fg_bg"] <= sample["fg_bg"]).all(), "the shadow brightened a pixel"
        assert (out["fg_bg"] < sample["fg_bg"]).any(-1).sum() > 20


def test_shadow_known_answer():
    mask = np.zeros((40, 40), np.uint8)
    mask[10:20, 10:20] = 1
    fg_bg = np.full((40, 40, 3), 200, np.uint8)
    rng = np.random.default_rng(0)
    # no offset, (almost) no blur: the shadow lies under the object, which hides it completely
    out = cast_shadow(fg_bg, mask, rng, (0.5, 0.5), (0.0, 0.0), (0.0, 0.0))
    np.testing.assert_array_equal(out, fg_bg)
    # offset 10 px (a quarter of the side) in some direction, 50 % darkness: part of the moved
    # square falls outside the object and is darkened to exactly 200 * 0.5; nothing else changes
    for _ in range(5):
        out = cast_shadow(fg_bg, mask, rng, (0.5, 0.5), (0.25, 0.25), (0.0, 0.0))
        dark = (out < 200).any(-1)
        assert out.min() == 100 and (out[dark] >= 100).all()
        assert not dark[mask == 1].any()
        reach = np.zeros_like(dark)
        reach[0:31, 0:31] = True  # the square [10, 20) moved by <= 10 px, plus 1 px of blur
        assert not (dark & ~reach).any()


def test_robustness_presets_are_repeatable_and_ordered(sample):
    plain = get_transforms("test", 96).augment(sample)
    none = get_transforms("test", 96, robustness_preset("none")).augment(sample)
    for key in ("bg", "fg_bg", "mask", "depth"):
        np.testing.assert_array_equal(none[key], plain[key])
    change = {}
    for level in ("mild", "strong"):
        t = get_transforms("test", 96, robustness_preset(level))
        a, b = t.augment(sample, seed=1), t.augment(sample, seed=2)  # eval ignores the seed
        np.testing.assert_array_equal(a["bg"], b["bg"])
        np.testing.assert_array_equal(a["fg_bg"], b["fg_bg"])
        np.testing.assert_array_equal(a["mask"], plain["mask"])
        np.testing.assert_array_equal(a["depth"], plain["depth"])
        change[level] = np.abs(a["bg"].astype(int) - plain["bg"]).mean()
    assert 0 < change["mild"] < change["strong"]
    # the perturbation is keyed on the id: another id, another (equally repeatable) draw
    other = t.augment({**sample, "id": "other"})
    assert not np.array_equal(other["bg"], a["bg"])
    with pytest.raises(ValueError, match="robustness level"):
        robustness_preset("extreme")


# ---------------------------------------------------------------------------------------------------
# Determinism and seeding


def test_same_seed_same_output_and_different_seed_differs(sample, backend):
    a = get_transforms("train", 64, on(backend))(sample, seed=7)
    b = get_transforms("train", 64, on(backend))(sample, seed=7)  # a separate instance
    c = get_transforms("train", 64, on(backend))(sample, seed=8)
    for key in ("bg", "fg_bg", "mask", "depth"):
        assert torch.equal(a[key], b[key]), key
    assert not all(torch.equal(a[k], c[k]) for k in ("bg", "fg_bg"))
    g1, g2 = np.random.default_rng(5), np.random.default_rng(5)
    t = get_transforms("train", 64, on(backend))
    assert torch.equal(t(sample, g1)["fg_bg"], t(sample, g2)["fg_bg"])


def test_unseeded_calls_follow_cfg_seed(sample, backend):
    t1, t2 = get_transforms("train", 64, on(backend)), get_transforms("train", 64, on(backend))
    first = [t1(sample)["fg_bg"] for _ in range(3)]
    second = [t2(sample)["fg_bg"] for _ in range(3)]
    assert all(torch.equal(x, y) for x, y in zip(first, second, strict=True))
    assert not torch.equal(first[0], first[1])
    other = get_transforms("train", 64, AugConfig(seed=1, backend=backend))(sample)["fg_bg"]
    assert not torch.equal(other, first[0])


def test_val_and_test_are_deterministic_resize_only(sample):
    small = make_sample(64)
    for split in ("val", "test"):
        t = get_transforms(split, 64, stats=STATS)
        out = t(small, seed=1)
        ref = to_tensor_sample(small, STATS)
        for key in ("bg", "fg_bg", "mask", "depth"):
            assert torch.equal(out[key], ref[key]), (split, key)
        assert torch.equal(t(sample, seed=1)["fg_bg"], t(sample, seed=99)["fg_bg"])


def test_sample_seed_is_stable_and_distinct():
    seeds = {sample_seed(0, e, i) for e in range(3) for i in range(100)}
    assert len(seeds) == 300
    assert sample_seed(0, 1, 2) == sample_seed(0, 1, 2) != sample_seed(1, 1, 2)


class _Repeat(torch.utils.data.Dataset):
    def __init__(self, raw: dict, n: int):
        self.raw, self.n, self.t = raw, n, get_transforms("train", 32)

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, i: int) -> torch.Tensor:
        return self.t(self.raw)["fg_bg"]  # no seed: the worker-aware stream


def test_dataloader_workers_do_not_repeat_each_other():
    ds = _Repeat(make_sample(32), 8)
    loader = torch.utils.data.DataLoader(ds, batch_size=None, num_workers=2)
    torch.manual_seed(0)
    outs = list(loader)  # worker 0 gives items 0, 2, 4, 6; worker 1 gives 1, 3, 5, 7
    flat = [o.flatten() for o in outs]
    for i in range(0, 8, 2):
        assert not torch.equal(flat[i], flat[i + 1])
    torch.manual_seed(0)
    again = list(loader)
    assert all(torch.equal(x, y) for x, y in zip(outs, again, strict=True))


def test_train_output_follows_the_tensor_contract(sample, backend):
    out = get_transforms("train", 64, on(backend), stats=STATS)(sample, seed=0)
    assert set(out) == {"bg", "fg_bg", "mask", "depth", "id"} and out["id"] == sample["id"]
    for key, shape in (("bg", (3, 64, 64)), ("fg_bg", (3, 64, 64)), ("mask", (1, 64, 64))):
        assert out[key].shape == shape and out[key].dtype == torch.float32, key
    assert out["depth"].shape == (1, 64, 64) and out["depth"].dtype == torch.float32
    assert set(out["mask"].unique().tolist()) <= {0.0, 1.0}
    assert out["depth"].min() >= 0.0 and out["depth"].max() <= 1.0
    assert out["bg"].min() >= -2.0 - 1e-6 and out["bg"].max() <= 2.0 + 1e-6  # (0..1 - 0.5) / 0.25


def test_aug_config_round_trips_through_json_dicts():
    for level in ("none", "mild", "strong"):
        cfg = robustness_preset(level)
        assert from_dict(AugConfig, to_dict(cfg)) == cfg


# ---------------------------------------------------------------------------------------------------
# Normalisation


def test_normalisation_and_denormalize_known_answer():
    s = make_sample(32)
    s["bg"][0, 0] = [0, 255, 51]
    out = to_tensor_sample(s, STATS)
    # (x / 255 - 0.5) / 0.25
    np.testing.assert_allclose(out["bg"][:, 0, 0].numpy(), [-2.0, 2.0, -1.2], atol=1e-6)
    assert out["mask"].shape == (1, 32, 32) and out["depth"].dtype == torch.float32
    back = denormalize(out["bg"], STATS)
    np.testing.assert_allclose(back.permute(1, 2, 0).numpy(), s["bg"] / 255.0, atol=1e-6)
    batch = denormalize(torch.stack([out["bg"], out["fg_bg"]]), STATS)
    assert batch.shape == (2, 3, 32, 32) and batch.min() >= 0.0 and batch.max() <= 1.0
    raw = to_numpy_sample(to_tensor_sample(s), None)  # ImageNet stats both ways
    for key in ("bg", "fg_bg", "mask", "depth"):
        np.testing.assert_array_equal(raw[key], s[key])


# ---------------------------------------------------------------------------------------------------
# Bad input


def _broken(change: dict, drop: str | None = None) -> dict:
    s = {**make_sample(32), **change}
    if drop:
        del s[drop]
    return s


@pytest.mark.parametrize(
    ("sample_", "key"),
    [
        (_broken({}, drop="depth"), "depth"),
        (_broken({}, drop="id"), "id"),
        (_broken({"fg_bg": np.zeros((30, 32, 3), np.uint8)}), "fg_bg"),
        (_broken({"mask": np.zeros((32, 31), np.uint8)}), "mask"),
        (_broken({"depth": np.full((32, 32), 1.5, np.float32)}), "depth"),
        (_broken({"depth": np.full((32, 32), np.nan, np.float32)}), "depth"),
        (_broken({"mask": np.full((32, 32), 255, np.uint8)}), "mask"),
        (_broken({"bg": np.zeros((32, 32, 3), np.float32)}), "bg"),
    ],
)
def test_bad_samples_name_the_key(sample_, key):
    with pytest.raises(ValueError, match=f"'{key}'"):
        check_sample(sample_)
    with pytest.raises(ValueError, match=f"'{key}'"):
        get_transforms("train", 32)(sample_, seed=0)


def test_bad_arguments():
    with pytest.raises(ValueError, match="split"):
        get_transforms("training", 64)
    with pytest.raises(ValueError, match="size"):
        get_transforms("train", 0)
    with pytest.raises(ValueError, match="stats"):
        get_transforms("val", 64, stats={"mean": [0.5, 0.5], "std": [0.2, 0.2, 0.2]})
    with pytest.raises(ValueError, match="stats"):
        get_transforms("val", 64, stats={"mean": [0.5] * 3, "std": [0.0] * 3})
    with pytest.raises(ValueError, match="AugConfig.hflip_p"):
        AugConfig(hflip_p=1.5)
    with pytest.raises(ValueError, match="seed"):
        get_transforms("train", 32)(make_sample(32), seed=-1)


def test_torch_backend_leaves_the_batch_to_the_device_with_the_same_result(sample):
    cfg = replace(robustness_preset("strong"), spatial=True, photometric=True, backend="torch")
    deferred = get_transforms("train", 64, cfg, normalize=False)
    here = get_transforms("train", 64, cfg)
    parts = [deferred(sample, seed=s) for s in (3, 4)]
    resized = cv2.resize(sample["mask"], (64, 64), interpolation=cv2.INTER_NEAREST_EXACT)
    for p in parts:  # only resized: the augmentation is left to augment_batch, as parameters
        assert p["aug"].dtype == np.float32
        np.testing.assert_array_equal(p["mask"][0].numpy(), resized)
    batch = {k: torch.stack([p[k] for p in parts]) for k in ("bg", "fg_bg", "mask", "depth")}
    one = augment_batch(
        {**{k: v[:1] for k, v in batch.items()}, "aug": torch.from_numpy(parts[0]["aug"])[None]}
    )
    alone = here.augment(sample, seed=3)  # the same seed, augmented at once on the CPU
    np.testing.assert_array_equal(one["bg"][0].permute(1, 2, 0).numpy(), alone["bg"])
    np.testing.assert_array_equal(one["mask"][0, 0].numpy(), alone["mask"])
