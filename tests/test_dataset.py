import csv
import functools
import http.server
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
import zipfile
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from eva_depthmask.config import DataConfig
from eva_depthmask.data.datagen import make_dataset
from eva_depthmask.data.dataset import QuartetDataset
from eva_depthmask.data.download import download
from eva_depthmask.data.manifest import MANIFEST_COLUMNS
from eva_depthmask.data.sources import SyntheticSource, split_backgrounds
from eva_depthmask.images import ImageError
from eva_depthmask.storage import DatasetError

SMALL = DataConfig(size=32, n_bg=6, n_fg=3, placements=2, image_format="png")


def _same(a: dict, b: dict) -> None:
    for k in ("bg", "fg_bg", "mask", "depth"):
        np.testing.assert_array_equal(a[k], b[k], err_msg=k)
    assert a["id"] == b["id"]


def _tree(root: Path) -> dict[str, bytes]:
    return {
        p.relative_to(root).as_posix(): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


@pytest.fixture(scope="module")
def full_png(tmp_path_factory) -> Path:
    return make_dataset(
        tmp_path_factory.mktemp("full") / "ds", SMALL, workers=0, zip=True, progress=False
    )


def test_synthetic_samples_are_deterministic_and_typed():
    a = QuartetDataset.synthetic(SMALL, "train")
    b = QuartetDataset.synthetic(SMALL, "train")
    for i in (0, 5, len(a) - 1):
        _same(a.raw(i), b.raw(i))
    other = QuartetDataset.synthetic(replace(SMALL, seed=1), "train")
    assert not np.array_equal(a.raw(0)["fg_bg"], other.raw(0)["fg_bg"])
    s = a[3]
    assert s["bg"].shape == (3, 32, 32) and s["bg"].dtype == torch.float32
    assert s["mask"].shape == (1, 32, 32) and set(s["mask"].unique().tolist()) <= {0.0, 1.0}
    assert s["depth"].min() >= 0 and s["depth"].max() <= 1


def test_splits_share_no_background():
    cfg = replace(SMALL, n_bg=20)
    splits = split_backgrounds(20, cfg)
    assert sum(map(len, splits.values())) == 20 and set().union(*splits.values()) == set(range(20))
    assert len(splits["val"]) == 2 and len(splits["test"]) == 2
    bgs = {s: {i.split("_")[0] for i in QuartetDataset.synthetic(cfg, s).ids} for s in splits}
    assert (
        not bgs["train"] & bgs["val"]
        and not bgs["train"] & bgs["test"]
        and not bgs["val"] & bgs["test"]
    )


def test_fg_per_bg_draws_a_fixed_subset_of_foregrounds_per_background():
    cfg = replace(SMALL, n_bg=8, n_fg=5, fg_per_bg=2, placements=1)
    ids = QuartetDataset.synthetic(cfg, "all").ids
    assert len(ids) == cfg.n_samples == 8 * 2 * 2
    fgs = {b: {i.split("_")[1] for i in ids if i.startswith(f"{b:04d}_")} for b in range(8)}
    assert all(len(f) == 2 for f in fgs.values())
    assert len(set().union(*fgs.values())) > 2  # backgrounds differ in their foregrounds
    assert QuartetDataset.synthetic(cfg, "all").ids == ids  # the draw is seeded
    reseeded = QuartetDataset.synthetic(replace(cfg, seed=1), "all").ids
    assert len(reseeded) == len(ids) and reseeded != ids
    assert len(QuartetDataset.synthetic(replace(cfg, fg_per_bg=9), "all")) == 8 * 5 * 2  # capped
    with pytest.raises(ValueError, match="fg_per_bg"):
        replace(cfg, fg_per_bg=0)


def test_folder_and_zip_round_trip(full_png):
    folder = full_png.with_suffix("")
    synthetic = QuartetDataset.synthetic(SMALL, "all")
    on_disk, in_zip = QuartetDataset(folder, "all"), QuartetDataset(full_png, "all")
    assert on_disk.ids == synthetic.ids == in_zip.ids
    assert len(on_disk) == SMALL.n_samples
    for i in range(len(on_disk)):
        _same(on_disk.raw(i), synthetic.raw(i))  # PNG and 16-bit depth: nothing is lost on disk
        _same(in_zip.raw(i), on_disk.raw(i))
    stats = json.loads((folder / "stats.json").read_text())
    assert sum(stats["counts"].values()) == SMALL.n_samples
    assert all(0 < m < 1 for m in stats["stats"]["mean"]) and all(
        s > 0 for s in stats["stats"]["std"]
    )
    assert stats["config"]["size"] == 32


def test_zip_dataset_works_with_dataloader_workers(full_png):
    ds = QuartetDataset(full_png, "train")
    loader = torch.utils.data.DataLoader(ds, batch_size=4, num_workers=2)
    ids = [i for batch in loader for i in batch["id"]]
    assert ids == ds.ids


def test_lazy_layout_gives_the_same_samples(tmp_path, full_png):
    lazy = make_dataset(tmp_path / "lazy", replace(SMALL, lazy=True), workers=0, progress=False)
    assert not (lazy / "fg_bg").exists() and not (lazy / "mask").exists()
    full = QuartetDataset(full_png.with_suffix(""), "all")
    for i, j in enumerate(range(len(full))):
        _same(QuartetDataset(lazy, "all").raw(i), full.raw(j))


def test_lazy_jpeg_keeps_mask_and_depth_exact(tmp_path):
    cfg = replace(SMALL, image_format="jpg", n_bg=3)
    full = QuartetDataset(make_dataset(tmp_path / "f", cfg, workers=0, progress=False), "all")
    lazy = QuartetDataset(
        make_dataset(tmp_path / "l", replace(cfg, lazy=True), workers=0, progress=False), "all"
    )
    for i in range(len(full)):
        a, b = full.raw(i), lazy.raw(i)
        np.testing.assert_array_equal(a["mask"], b["mask"])
        np.testing.assert_array_equal(a["depth"], b["depth"])
        assert np.abs(a["fg_bg"].astype(int) - b["fg_bg"]).mean() < 3  # two JPEG round trips differ


def test_parallel_workers_write_the_same_bytes(tmp_path, full_png):
    cfg = replace(SMALL, n_bg=4)
    a = make_dataset(tmp_path / "a", cfg, workers=0, progress=False)
    b = make_dataset(tmp_path / "b", cfg, workers=2, progress=False)
    assert _tree(a) == _tree(b)


@pytest.mark.slow
def test_killed_make_dataset_resumes_to_the_same_result(tmp_path):
    args = ["--size", "32", "--n-bg", "16", "--n-fg", "4", "--placements", "3", "--format", "png"]
    make = [sys.executable, "-m", "eva_depthmask", "make-data"]
    subprocess.run(
        [*make, str(tmp_path / "ref"), *args, "--workers", "0"], check=True, capture_output=True
    )

    target = tmp_path / "cut"
    proc = subprocess.Popen(
        [*make, str(target), *args, "--workers", "0"], stderr=subprocess.DEVNULL
    )
    deadline = time.time() + 60
    while time.time() < deadline and len(list((target / ".progress").glob("*.csv"))) < 3:
        time.sleep(0.01)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert not (target / "manifest.csv").exists(), "killed too late: nothing left to resume"
    with pytest.raises(DatasetError, match="interrupted make_dataset"):
        QuartetDataset(target, "train")

    subprocess.run([*make, str(target), *args, "--workers", "0"], check=True, capture_output=True)
    assert _tree(target) == _tree(tmp_path / "ref")


class _StopsAfter(SyntheticSource):
    """The synthetic source, interrupted (as by Ctrl-C) when asked for sample ``n``."""

    def __init__(self, cfg: DataConfig, n: int):
        super().__init__(cfg)
        self.left = n

    def sample(self, key):
        if self.left == 0:
            raise KeyboardInterrupt
        self.left -= 1
        return super().sample(key)


def test_a_resumed_run_remakes_what_a_crash_left_empty_or_cut_short(tmp_path):
    # files are written without fsync until the end: a machine that goes down mid-run can leave a
    # finished chunk's files empty or missing, or its progress record cut short
    cfg = replace(SMALL, n_bg=4)
    ref = make_dataset(tmp_path / "ref", cfg, workers=0, progress=False)
    target = tmp_path / "cut"
    per_room = cfg.n_fg * cfg.placements * 2  # one chunk per room here
    with pytest.raises(KeyboardInterrupt):
        make_dataset(target, cfg, _StopsAfter(cfg, 2 * per_room + 1), workers=0, progress=False)
    records = sorted((target / ".progress").glob("*.csv"))
    assert len(records) == 2 and not (target / "manifest.csv").exists()
    rows = list(csv.DictReader(records[0].read_text().splitlines(), MANIFEST_COLUMNS))
    for path in (rows[0]["bg"], rows[0]["fg"], rows[3]["fg_bg"], rows[5]["depth"]):
        (target / path).write_bytes(b"")
    (target / rows[-1]["mask"]).unlink()
    text = records[1].read_bytes()
    records[1].write_bytes(text[: len(text) - 20])  # the last row loses its last columns
    make_dataset(target, cfg, workers=0, progress=False)
    assert _tree(target) == _tree(ref)


def test_finished_dataset_is_not_rebuilt_and_other_settings_are_refused(tmp_path):
    cfg = replace(SMALL, n_bg=3)
    path = make_dataset(tmp_path / "ds", cfg, workers=0, progress=False)
    before = {p: p.stat().st_mtime_ns for p in path.rglob("*")}
    make_dataset(tmp_path / "ds", cfg, workers=0, progress=False)
    assert before == {p: p.stat().st_mtime_ns for p in path.rglob("*")}
    with pytest.raises(DatasetError, match=r"other settings \(size: 32 -> 48"):
        make_dataset(tmp_path / "ds", replace(cfg, size=48), workers=0, progress=False)


CUT_OUT_COLOURS = ((255, 0, 255), (0, 255, 128))  # colours the procedural rooms never show


def _cut_outs(folder: Path, n: int = 2) -> Path:
    """``n`` RGBA cut-outs, person_<j>.png, each an opaque block of ``CUT_OUT_COLOURS[j]``."""
    folder.mkdir()
    for j in range(n):
        fg = np.zeros((40, 20, 4), np.uint8)
        fg[5:40, 4:16] = (*CUT_OUT_COLOURS[j], 255)
        Image.fromarray(fg).save(folder / f"person_{j}.png")
    return folder


def test_user_cut_outs_are_what_is_pasted_in_rooms(tmp_path):
    fg_dir = _cut_outs(tmp_path / "fg", 2)
    source = SyntheticSource(replace(SMALL, n_bg=3), fg_dir=fg_dir)
    assert source.n_fg == 2
    shown = {0: 0, 1: 0}
    for key in QuartetDataset.synthetic(source.cfg, "all", fg_dir=fg_dir)._keys:
        s = source.sample(key)
        colour = np.array(CUT_OUT_COLOURS[key.fg])
        near = np.abs(s["fg_bg"].astype(int) - colour).max(-1) <= 12  # resampling shifts a few
        assert not (np.abs(s["bg"].astype(int) - colour).max(-1) <= 12).any()  # not the room's
        inside = s["mask"] == 1
        assert not near[~inside].any(), key.id
        if inside.sum() >= 20:  # the cut-out's own colour fills its inside (its rim is blended)
            assert near[inside].mean() > 0.2, key.id
        shown[key.fg] += int(near.sum())
    assert min(shown.values()) > 100


@pytest.mark.parametrize(
    "problem, error, message",
    [
        ("missing_folder", FileNotFoundError, r"nope.*foreground folder does not exist"),
        ("empty_folder", ImageError, r"no foreground images"),
        ("truncated", ImageError, r"person_1\.png.*truncated"),
        ("opaque", ImageError, r"person_1\.png.*no transparency"),
    ],
)
def test_bad_foregrounds_fail_before_anything_is_written(tmp_path, problem, error, message):
    fg_dir = tmp_path / "nope"
    if problem != "missing_folder":
        fg_dir = _cut_outs(tmp_path / "fg", 2)
        bad = fg_dir / "person_1.png"
        if problem == "empty_folder":
            for p in fg_dir.iterdir():
                p.unlink()
        elif problem == "truncated":
            bad.write_bytes(bad.read_bytes()[:60])
        else:
            Image.fromarray(np.full((8, 8, 3), 9, np.uint8)).save(bad)
    with pytest.raises(error, match=message):
        cfg = replace(SMALL, n_bg=3)
        make_dataset(
            tmp_path / "out", cfg, SyntheticSource(cfg, fg_dir=fg_dir), workers=0, progress=False
        )
    assert not (tmp_path / "out").exists()


def test_zip_that_is_not_a_dataset(tmp_path):
    with zipfile.ZipFile(tmp_path / "photos.zip", "w") as zf:
        zf.writestr("bg/001.jpg", b"x")
    with pytest.raises(DatasetError, match=r"photos\.zip.*not an eva_depthmask dataset"):
        QuartetDataset(tmp_path / "photos.zip")


def test_manifest_row_pointing_at_missing_file(tmp_path):
    path = make_dataset(tmp_path / "ds", replace(SMALL, n_bg=3), workers=0, progress=False)
    victim = sorted((path / "mask").iterdir())[1]
    victim.unlink()
    with pytest.raises(
        DatasetError, match=rf"manifest\.csv.*mask file 'mask/{victim.name}'.*missing"
    ):
        QuartetDataset(path, "all")


def test_truncated_file_inside_dataset_is_named(tmp_path):
    path = make_dataset(tmp_path / "ds", replace(SMALL, n_bg=3), workers=0, progress=False)
    ds = QuartetDataset(path, "all")
    victim = path / ds.rows[0]["fg_bg"]
    victim.write_bytes(victim.read_bytes()[:100])
    with pytest.raises(DatasetError, match=rf"{victim.name}.*truncated"):
        ds.raw(0)


def test_download_offline_is_a_clear_error(tmp_path):
    with pytest.raises(DatasetError, match="could not download"):
        download("1AbCdEfGhIjKlMnOpQrStUvWxYz012345", tmp_path / "data.zip", quiet=True)
    assert list(tmp_path.iterdir()) == []


def test_download_keeps_an_existing_dataset(full_png):
    assert download("any-id", full_png) == full_png  # valid already: no network needed


WEB_PAGE = "<!DOCTYPE html><html><body>Google Drive can't scan this file for viruses</body></html>"


def _photos_zip(path: Path) -> Path:
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("holiday/001.jpg", b"x")
    return path


def test_download_refuses_an_existing_file_that_is_not_a_dataset(tmp_path):
    page, photos = tmp_path / "page.zip", _photos_zip(tmp_path / "photos.zip")
    page.write_text(WEB_PAGE)
    before = _tree(tmp_path)
    with pytest.raises(DatasetError, match=r"page\.zip: not a zip file and not a folder"):
        download("any-id", page)
    with pytest.raises(DatasetError, match=r"photos\.zip: zip holds no manifest\.csv"):
        download("any-id", photos)
    assert _tree(tmp_path) == before


class _QuietFiles(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args) -> None:
        pass


@pytest.fixture()
def web(tmp_path, monkeypatch):
    """``(folder, url)``: a web server on this machine serving ``folder``, for download()."""
    folder = tmp_path / "web"
    folder.mkdir()
    handler = functools.partial(_QuietFiles, directory=str(folder))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    yield folder, f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_download_of_what_is_not_a_dataset_writes_nothing(web, tmp_path, full_png):
    folder, url = web
    (folder / "page.zip").write_text(WEB_PAGE)  # what Drive sends for an unshared link
    _photos_zip(folder / "photos.zip")
    shutil.copy(full_png, folder / "data.zip")
    got = tmp_path / "got"
    with pytest.raises(
        DatasetError, match=r"page\.zip.*not written \(Google Drive sent a web page"
    ):
        download(f"{url}/page.zip", got / "page.zip", quiet=True)
    with pytest.raises(DatasetError, match=r"photos\.zip.*not written \(the file: zip holds no"):
        download(f"{url}/photos.zip", got / "photos.zip", quiet=True)
    assert list(got.iterdir()) == []  # no dataset, no partial download
    assert download(f"{url}/data.zip", got / "data.zip", quiet=True) == got / "data.zip"
    assert (got / "data.zip").read_bytes() == full_png.read_bytes()
    assert sorted(p.name for p in got.iterdir()) == ["data.zip"]


def _same_as_rendered(path: Path, cfg: DataConfig) -> None:
    """Every sample of the dataset at ``path`` is the one ``cfg`` renders."""
    stored, rendered = QuartetDataset(path, "all"), QuartetDataset.synthetic(cfg, "all")
    assert len(stored) == len(rendered)
    for i in range(len(rendered)):
        _same(stored.raw(i), rendered.raw(i))


def test_zip_without_the_folder_and_a_zip_that_cannot_be_written(tmp_path):
    cfg = replace(SMALL, n_bg=3)
    make = functools.partial(make_dataset, tmp_path / "ds", cfg, workers=0, progress=False)
    (tmp_path / "ds.zip").mkdir()  # the zip's name is taken
    with pytest.raises(DatasetError, match=r"ds\.zip: could not write the zip .*ds is intact"):
        make(zip=True, keep_folder=False)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ds", "ds.zip"]  # no partial zip
    assert list((tmp_path / "ds.zip").iterdir()) == []
    _same_as_rendered(tmp_path / "ds", cfg)  # the folder is kept, whole
    (tmp_path / "ds.zip").rmdir()
    assert make(zip=True, keep_folder=False) == tmp_path / "ds.zip"  # packs the finished folder
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ds.zip"]
    _same_as_rendered(tmp_path / "ds.zip", cfg)


class _Killed(BaseException):
    """The process going away in the middle of a call."""


def test_a_run_killed_while_removing_the_folder_leaves_no_half_dataset(tmp_path, monkeypatch):
    cfg = replace(SMALL, n_bg=3)
    make = functools.partial(make_dataset, tmp_path / "ds", cfg, workers=0, progress=False)
    real_rmtree = shutil.rmtree

    def killed_halfway(path, *args, **kwargs):
        path = Path(path)
        if path.parent != tmp_path or not path.exists():
            return real_rmtree(path, *args, **kwargs)
        for f in (path / "mask").iterdir():  # some files are gone when the process is killed
            f.unlink()
        raise _Killed

    monkeypatch.setattr(shutil, "rmtree", killed_halfway)
    with pytest.raises(_Killed):
        make(zip=True, keep_folder=False)
    monkeypatch.setattr(shutil, "rmtree", real_rmtree)
    # the re-run must not take the half-removed folder for a finished dataset and pack it
    assert make(zip=True, keep_folder=False) == tmp_path / "ds.zip"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ds.zip"]
    _same_as_rendered(tmp_path / "ds.zip", cfg)
