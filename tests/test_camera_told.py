"""benchmarks/camera_told.py: the told network, the cameras behind the samples, and the script end
to end."""

import json
import shutil
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from eva_depthmask.config import AugConfig
from eva_depthmask.data.manifest import read_manifest
from eva_depthmask.metrics import EPS
from eva_depthmask.nets.fusion import FUSION_CHANNELS
from eva_depthmask.nets.registry import build_model
from eva_depthmask.storage import DatasetError, Store
from eva_depthmask.synth.scenes import room_camera
from eva_depthmask.training.loaders import TrainData
from eva_depthmask.training.precision import autocast


@pytest.fixture(scope="module")
def ct(load_benchmark):
    return load_benchmark("camera_told")


def pair(seed: int = 0, batch: int = 2) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(batch, 3, 32, 32, generator=g), torch.randn(batch, 3, 32, 32, generator=g)


def test_a_new_told_network_is_the_plain_network_and_then_follows_the_camera(ct):
    torch.manual_seed(0)
    plain = build_model("depthmasknet").eval()
    told = ct.CameraTold(build_model("depthmasknet"), 3).eval()
    told.net.load_state_dict(plain.state_dict())
    bg, fg_bg = pair()
    with torch.no_grad():
        want = plain(bg, fg_bg)
        got = told(bg, fg_bg, torch.randn(2, 3))  # the zero-initialised MLP adds nothing yet
        for k in want:
            torch.testing.assert_close(got[k], want[k], rtol=0, atol=0)
        torch.nn.init.normal_(told.embed[2].weight)
        camera = torch.tensor([[1.0, 0.0, 0.0], [-1.0, 0.5, 0.0]])
        told.camera = camera
        x_in = torch.randn(2, FUSION_CHANNELS[told.net.cfg.fusion], 32, 32)
        want, got = plain.encoder(x_in), told.net.encoder(x_in)
        added = told.embed(camera)[:, :, None, None]
        for level in range(len(want) - 1):
            torch.testing.assert_close(got[level], want[level], rtol=0, atol=0)
        torch.testing.assert_close(got[-1], want[-1] + added)
    assert added[0].abs().mean() > 0.1 and (added[0] - added[1]).abs().mean() > 0.1


def test_the_guessing_network_reads_its_camera_from_the_features(ct):
    torch.manual_seed(0)
    told = ct.CameraTold(build_model("depthmasknet"), 3, guess=True).eval()
    bg, fg_bg = pair(batch=3)
    with torch.no_grad():
        out = told(bg, fg_bg, torch.full((3, 3), float("nan")))  # NaN would spread if it were read
    assert told.guessed.shape == (3, 3) and torch.isfinite(told.guessed).all()
    assert all(torch.isfinite(v).all() for v in out.values())


def test_cameras_are_each_rooms_standardised(ct, rooms):
    data, cfg = rooms
    rows = read_manifest(Store(data))
    camera = ct.cameras(data, "camera")
    assert set(camera) == {r["id"] for r in rows}
    table = np.stack([camera[r["id"]] for r in rows])
    np.testing.assert_allclose(table.mean(0), 0.0, atol=1e-5)
    np.testing.assert_allclose(table.std(0), 1.0, atol=1e-5)
    room_ids = [int(Path(r["bg"]).stem) for r in rows]
    fov = np.array([room_camera(cfg.seed, i, cfg.size, cfg.scene)[0].fov_deg for i in room_ids])
    assert np.corrcoef(fov, table[:, 0])[0, 1] == pytest.approx(1.0)
    assert ct.cameras(data, "room")[rows[0]["id"]].shape == (6,)
    shape = np.stack([ct.cameras(data, "proportions")[r["id"]] for r in rows])
    bounds = [room_camera(cfg.seed, i, cfg.size, cfg.scene) for i in room_ids]
    seen = {  # the camera height and the back wall's distance (z_max), over the room height
        2: [c.height_m / b[4] for c, b in bounds],
        3: [b[3] / b[4] for _, b in bounds],
    }
    for col, ratio in seen.items():
        assert np.corrcoef(np.log(ratio), shape[:, col])[0, 1] == pytest.approx(1.0)
    assert not np.any(np.stack(list(ct.cameras(data, "none").values())))


def log_scales(model, data: Path, size: int, told: str, ct) -> np.ndarray:
    """``(N,)`` log of each test sample's median over pixels of true / predicted depth (floored at
    metrics.EPS; the lower middle value, as torch's median), from ``model``'s predictions."""
    train_data = TrainData(data, AugConfig())
    test = train_data.dataset("test", size, stats=train_data.stats())
    camera = ct.cameras(data, told)
    out = []
    for i in range(len(test)):
        s = test[i]
        with torch.no_grad(), autocast("cpu"):
            pred = model(s["bg"][None], s["fg_bg"][None], torch.from_numpy(camera[s["id"]][None]))
        p, t = (x.double().flatten().numpy() for x in (pred["depth"].float(), s["depth"]))
        ratio = np.sort(np.maximum(t, EPS) / np.maximum(p, EPS))
        out.append(np.log(ratio[(ratio.size - 1) // 2]))
    return np.array(out)


def test_script_trains_each_told_network_end_to_end(ct, rooms, tmp_path, one_thread, monkeypatch):
    data = rooms[0]
    out = tmp_path / "ct.json"
    # the real run() and score(), watched: each run's duration, the time its network spent in
    # training forward passes, its scoring time (made longer than the run's set-up) and its network
    seen = {"forward": 0.0, "runs": [], "scored": []}
    real_run, real_score, real_forward = ct.run, ct.score, ct.CameraTold.forward

    def timed_forward(self, *args):
        t0 = time.perf_counter()
        try:
            return real_forward(self, *args)
        finally:
            if self.training:
                seen["forward"] += time.perf_counter() - t0

    def watched_run(*args):
        seen["forward"], t0 = 0.0, time.perf_counter()
        row = real_run(*args)
        seen["runs"].append((time.perf_counter() - t0, seen["forward"]))
        return row

    def watched_score(model, *args):
        t0 = time.perf_counter()
        time.sleep(0.5)  # a slow scoring, which the training time must not count
        row = real_score(model, *args)
        seen["scored"].append((time.perf_counter() - t0, model))
        return row

    monkeypatch.setattr(ct.CameraTold, "forward", timed_forward)
    monkeypatch.setattr(ct, "run", watched_run)
    monkeypatch.setattr(ct, "score", watched_score)
    args = ["--data", str(data), "--told", "none", "guessed", "--images", "64", "--epochs", "2"]
    rows = ct.main([*args, "--batch", "8", "--size", "32", "--threads", "1", "--out", str(out)])
    assert json.loads(out.read_text())["rows"] == rows
    assert [(r["told"], r["seed"]) for r in rows] == [("none", 0), ("guessed", 0)]
    for r, (wall, forward), (scoring, model) in zip(
        rows, seen["runs"], seen["scored"], strict=True
    ):
        # training time: at least its forward passes, at most the run less its scoring
        assert forward <= r["train_seconds"] <= wall - scoring
        # the scale error is each test sample's log median(true / predicted), computed afresh
        e = log_scales(model, data, 32, r["told"], ct)
        assert r["depth_scale_bias"] == pytest.approx(e.mean(), abs=1e-3)
        assert r["depth_scale_log"] == pytest.approx(np.abs(e).mean(), abs=1e-3)
    assert "camera_error" not in rows[0]
    assert set(rows[1]["camera_error"]) == {"fov_deg", "camera_height_m", "pitch_deg"}


def test_a_dataset_that_is_not_synthetic_is_refused_before_training(ct, rooms, tmp_path):
    data = rooms[0]
    folder = shutil.copytree(data, tmp_path / "folders")
    stats = json.loads((folder / "stats.json").read_text())
    (folder / "stats.json").write_text(json.dumps({**stats, "source": "folders"}))
    with pytest.raises(DatasetError, match=r"stats\.json.*synthetic"):
        ct.main(["--data", str(folder), "--out", str(tmp_path / "x.json")])
    assert not (tmp_path / "x.json").exists()
