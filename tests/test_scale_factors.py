"""benchmarks/scale_factors.py: the rooms behind the samples, the fits, and the script end to end."""

import json
import shutil

import numpy as np
import pytest
import torch
from PIL import Image

from eva_depthmask.config import SceneConfig, TrainConfig
from eva_depthmask.data.manifest import read_manifest
from eva_depthmask.evaluation.predictor import Predictor
from eva_depthmask.metrics import EPS
from eva_depthmask.nets.registry import build_model
from eva_depthmask.storage import DatasetError, Store
from eva_depthmask.synth.scenes import render_room
from eva_depthmask.training.fit import fit
from eva_depthmask.training.loaders import TrainData
from eva_depthmask.training.precision import autocast


def log_scales(ckpt, data) -> np.ndarray:
    """``(N,)`` log of each test sample's median over pixels of true / predicted depth (both
    floored at metrics.EPS; the lower middle value, as torch's median), from its predictions."""
    predictor = Predictor.from_checkpoint(ckpt, device="cpu")
    test = TrainData(data).dataset("test", predictor.size, stats=predictor.stats)
    out = []
    for i in range(len(test)):
        s = test[i]
        with torch.no_grad(), autocast("cpu"):  # the precision evaluate() predicts in
            pred = predictor.model(s["bg"][None], s["fg_bg"][None])["depth"]
        p, t = (x.double().flatten().numpy() for x in (pred.float(), s["depth"]))
        ratio = np.sort(np.maximum(t, EPS) / np.maximum(p, EPS))
        out.append(np.log(ratio[(ratio.size - 1) // 2]))
    return np.array(out)


@pytest.fixture(scope="module")
def sf(load_benchmark):
    return load_benchmark("scale_factors")


def test_room_factors_are_the_rooms_the_dataset_was_drawn_from(sf, rooms):
    data, cfg = rooms
    rows = read_manifest(Store(data))
    room, factors = sf.room_factors(data, [r["id"] for r in rows])
    assert set(factors) == set(sf.FACTORS) and len(room) == len(rows)
    for k, r in enumerate(rows):
        rendered = render_room(cfg.seed, int(room[k]), cfg.size, cfg.scene)
        stored = np.asarray(Image.open(data / r["bg"]).convert("RGB"))
        np.testing.assert_array_equal(rendered.rgb, stored)  # the right room, and its stream
        assert factors["fov_deg"][k] == rendered.camera.fov_deg
        assert factors["camera_height_m"][k] == rendered.camera.height_m
        x_min, x_max, z_min, z_max, height = rendered.bounds
        assert factors["room_length_m"][k] == z_max - z_min
        assert factors["room_height_m"][k] == height
    assert len(np.unique(factors["fov_deg"])) == len(np.unique(room)) > 1


def test_explain_recovers_the_slopes_of_a_known_error(sf):
    rng = np.random.default_rng(0)
    n = 400
    factors = {k: rng.uniform(1.0, 3.0, n) for k in sf.FACTORS}
    factors["fov_deg"] = rng.uniform(50, 75, n)
    noise = 0.001 * rng.standard_normal(n)
    error = 0.05 - 0.01 * factors["fov_deg"] + 0.2 * np.log(factors["camera_height_m"]) + noise
    both = sf.explain(error, factors, ("fov_deg", "camera_height_m"))
    assert both["slopes"]["fov_deg"] == pytest.approx(-0.01, abs=2e-4)
    assert both["slopes"]["camera_height_m"] == pytest.approx(0.2, abs=5e-3)
    assert both["r2"] > 0.99 and both["scale_error_left"] < 0.002
    fov = sf.explain(error, factors, ("fov_deg",))
    assert 0.5 < fov["r2"] < both["r2"]
    none = sf.explain(error, factors, ())
    assert none["r2"] == pytest.approx(0.0, abs=1e-12) and none["slopes"] == {}
    assert none["scale_error_left"] == pytest.approx(np.abs(error - error.mean()).mean())


def test_proportion_floor_guesses_the_median_room_size_given_its_proportions(sf):
    scene = SceneConfig()
    factors = sf.drawn_factors(5, np.arange(4000), 16, scene)
    error = sf.proportion_floor(factors, scene)  # log(true / guessed room height)
    # a posterior median: too small as often as too large, whatever the room's proportions
    assert abs((error > 0).mean() - 0.5) < 0.025
    for ratio in sf.proportions(factors).values():
        wide = ratio > np.median(ratio)
        for part in (wide, ~wide):
            assert abs((error[part] > 0).mean() - 0.5) < 0.035
    # and the least mean |log error|: scaled guesses do worse, the prior's median alone far worse
    least = np.abs(error).mean()
    assert all(np.abs(error - np.log(k)).mean() > least for k in (0.97, 1.03))
    prior = np.log(factors["room_height_m"] / np.mean(scene.room_height_m))
    assert least < 0.8 * np.abs(prior).mean()
    clipped = SceneConfig(camera_height_m=(1.1, 2.3))
    with pytest.raises(ValueError, match=r"camera_height_m.*clipped"):
        sf.proportion_floor(factors, clipped)


def test_a_dataset_that_is_not_synthetic_is_refused(sf, rooms, tmp_path):
    data = rooms[0]
    stats = json.loads((data / "stats.json").read_text())
    for name, source in (("nostats", None), ("folders", "folders")):
        folder = shutil.copytree(data, tmp_path / name)
        if source is None:
            (folder / "stats.json").unlink()
        else:
            (folder / "stats.json").write_text(json.dumps({**stats, "source": source}))
        with pytest.raises(DatasetError, match=r"stats\.json.*synthetic"):
            sf.room_factors(folder, ["x"])


def test_script_fits_a_trained_checkpoint_end_to_end(sf, rooms, tmp_path, one_thread):
    data, data_cfg = rooms
    torch.manual_seed(0)
    run = tmp_path / "run"
    cfg = TrainConfig(stages=((32, 1, 8),), ckpt_dir=str(run), tensorboard=False, device="cpu")
    fit(build_model("depthmasknet_tiny"), TrainData(data), cfg)
    out = tmp_path / "sf.json"
    result = sf.main(["--ckpt", str(run / "best.pt"), "--data", str(data), "--out", str(out)])
    assert json.loads(out.read_text())["fits"] == result["fits"]
    test_rows = [r for r in read_manifest(Store(data)) if r["split"] == "test"]
    assert result["samples"] == len(test_rows) and result["rooms"] == len(test_rows) // 2
    assert [f["known"] for f in result["fits"]] == [list(k) for k in sf.KNOWN_SETS]
    r2 = [f["r2"] for f in result["fits"]]
    assert r2[0] == pytest.approx(0.0, abs=1e-9)
    assert all(b >= a - 1e-9 for a, b in zip(r2, r2[1:], strict=False))  # nested fits
    # the scale error is each test sample's log median(true / predicted), computed here afresh
    e = log_scales(run / "best.pt", data)
    assert len(e) == result["samples"]
    assert result["depth_scale_bias"] == pytest.approx(e.mean(), abs=1e-3)
    assert result["depth_scale_log"] == pytest.approx(np.abs(e).mean(), abs=1e-3)
    assert result["fits"][0]["scale_error_left"] == pytest.approx(
        np.abs(e - e.mean()).mean(), abs=1e-3
    )
    per_degree = [-np.deg2rad(1) / np.sin(np.deg2rad(f)) for f in data_cfg.scene.fov_deg]
    assert per_degree[0] <= result["fov_blind_slope"] <= per_degree[1]
    floor = result["proportion_floor"]
    assert 0 < floor["depth_scale_log"] < 0.2 and 0 < floor["depth_abs_rel"] < 0.2
