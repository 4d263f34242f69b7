"""benchmarks/bench_loader.py and bench_fit_workers.py end to end on tiny settings, on this CPU."""

import json
import time

import pytest
import torch

from eva_depthmask.config import AugConfig
from eva_depthmask.data.dataset import QuartetDataset

DELAY = 0.01  # seconds added to every sample read, so that a timing has a known floor


def slow_reads(monkeypatch) -> None:
    """Every QuartetDataset.raw takes DELAY longer (in loader workers too: they are forked)."""
    real_raw = QuartetDataset.raw

    def raw(self, i):
        time.sleep(DELAY)
        return real_raw(self, i)

    monkeypatch.setattr(QuartetDataset, "raw", raw)


def timed_seconds(bench, row: dict, batch: int, batches: int) -> float:
    """The seconds a row's rate was measured over: its timed samples over its rate."""
    return (batches - bench.WARM_BATCHES) * batch / row["samples_per_s"]


def test_bench_loader_times_each_worker_count_once_in_process(
    load_benchmark, tmp_path, capsys, monkeypatch
):
    bench = load_benchmark("bench_loader")
    out = tmp_path / "loader.json"
    threads = torch.get_num_threads()
    slow_reads(monkeypatch)
    try:
        args = ["--size", "32", "--workers", "0", "1", "--opencv-threads", "1", "0"]
        t0 = time.perf_counter()
        bench.main([*args, "--batch", "4", "--batches", "5", "--out", str(out)])
        wall = time.perf_counter() - t0
    finally:
        torch.set_num_threads(threads)
    rows = json.loads(out.read_text())["rows"]
    # the in-process row once (OpenCV's threads are the workers'), the worker row per setting
    assert [(r["workers"], r["opencv_threads"]) for r in rows] == [(0, None), (1, 1), (1, 0)]
    # each rate covers a stretch of the run: all of it after the untimed first batches
    spans = [r["first_batches_s"] + timed_seconds(bench, r, 4, 5) for r in rows]
    assert sum(spans) < wall
    # in this process nothing is read ahead: the timed 2 batches of 4 read 8 samples, each slowed
    assert timed_seconds(bench, rows[0], 4, 5) >= 8 * DELAY
    table = capsys.readouterr().out.split("| workers |")[1]
    assert "| 0 | - |" in table and "| 1 | 1 |" in table and "| 1 | default |" in table


def test_bench_loader_cached_row_reads_every_sample_once(
    load_benchmark, tmp_path, monkeypatch, capsys
):
    bench = load_benchmark("bench_loader")
    data = bench.TrainData(bench.demo_data(32, 20, tmp_path / "data"), AugConfig())
    data.stats()  # read before counting: the count below is the loader's alone
    reads = []
    real_raw = QuartetDataset.raw
    monkeypatch.setattr(QuartetDataset, "raw", lambda self, i: reads.append(i) or real_raw(self, i))
    row = bench.loader_rate(data, 32, batch=4, batches=5, workers=0, threads=1, cached=True)
    # the untimed pass decodes the 20 samples (the cache's layout, from sample 0, may add one); the
    # timed pass finds them all in the cache
    assert sorted(reads) == sorted(set(reads)) and 20 <= len(reads) <= 21
    assert (row["workers"], row["opencv_threads"], row["cached"]) == (0, None, True)
    t0 = time.perf_counter()
    with_workers = bench.loader_rate(
        data, 32, batch=4, batches=5, workers=1, threads=1, cached=True
    )
    wall = time.perf_counter() - t0
    assert (with_workers["workers"], with_workers["cached"]) == (1, True)
    # the rate's stretch lies inside the call, after the untimed pass that filled the cache
    assert with_workers["first_batches_s"] + timed_seconds(bench, with_workers, 4, 5) < wall
    # uncached, in this process, every read slowed: the first 3 batches and the timed 2 are two
    # stretches of the call that do not overlap, each at least its reads' delays long
    slow_reads(monkeypatch)
    t0 = time.perf_counter()
    plain = bench.loader_rate(data, 32, batch=4, batches=5, workers=0, threads=1)
    wall = time.perf_counter() - t0
    timed = timed_seconds(bench, plain, 4, 5)
    assert plain["first_batches_s"] >= 12 * DELAY and timed >= 8 * DELAY
    assert plain["first_batches_s"] + timed < wall


def test_bench_loader_refuses_too_few_batches_by_name(load_benchmark, capsys):
    with pytest.raises(SystemExit):
        load_benchmark("bench_loader").parse_args(["--batches", "2"])
    assert "--batches" in capsys.readouterr().err


def test_bench_fit_workers_reports_both_epochs_of_a_real_fit(load_benchmark, tmp_path):
    bench = load_benchmark("bench_fit_workers")
    out = tmp_path / "fit.json"
    threads = torch.get_num_threads()
    t0 = time.perf_counter()
    try:
        args = [
            "--device",
            "cpu",
            "--size",
            "32",
            "--rooms",
            "20",
            "--batch",
            "8",
            "--workers",
            "0",
        ]
        bench.main([*args, "--models", "depthmasknet", "--threads", "1", "--out", str(out)])
    finally:
        torch.set_num_threads(threads)
    wall = time.perf_counter() - t0
    result = json.loads(out.read_text())
    (row,) = result["rows"]
    assert row["name"] == "depthmasknet" and row["workers"] == 0
    assert row["train_seconds"] < row["wall_seconds"] < wall
    # an epoch's images over its rate is the time it trained: the two epochs' times add up to
    # the training time the run logged (a rate of steps, or of the wrong images, would not)
    per_epoch = row["train_images"] / 2
    took = per_epoch / row["epoch0_img_per_s"] + per_epoch / row["epoch1_img_per_s"]
    assert took == pytest.approx(row["train_seconds"], rel=0.25)
    # 20 rooms x 2 flips, 80 % of them train: 32 quartets, 4 batches of 8 per epoch, 2 epochs
    assert row["train_images"] == 2 * 4 * 8
    assert result["meta"]["device"] == "CPU" and "--rooms" in result["meta"]["command"]


def test_bench_device_data_rows_for_every_path_and_a_lazy_dataset(load_benchmark, tmp_path):
    """bench_device_data.py: one row per network and path (a lazy dataset on the device path too),
    with the keys of issue 35, written to --out."""
    bench = load_benchmark("bench_device_data")
    out = tmp_path / "rows.json"
    args = ["--sizes", "32", "--rooms", "30", "--models", "depthmasknet", "--batch", "8"]
    threads = torch.get_num_threads()
    try:
        rows = bench.main([*args, "--lazy", "--device", "cpu", "--out", str(out)])
    finally:
        torch.set_num_threads(threads)
    keys = {"network", "size", "path", "cores", "loader_img_per_s", "fit_img_per_s"}
    assert all(keys | {"step_img_per_s", "data"} <= set(r) for r in rows)
    assert [(r["path"], r["data"]) for r in rows] == [
        ("host", "full"),
        ("device", "full"),
        ("device", "lazy"),
    ]
    assert all(r["loader_img_per_s"] > 0 and r["fit_img_per_s"] > 0 for r in rows)
    assert json.loads(out.read_text())["rows"] == rows


def test_bench_device_data_times_the_augmentation_on_the_device(
    load_benchmark, tmp_path, monkeypatch
):
    """The device path's loader rate includes fit's work on the batch: slowed by a known delay per
    batch, the rate cannot exceed batch / delay."""
    bench = load_benchmark("bench_device_data")
    root = bench.make_data(32, 20, tmp_path / "data")
    data = bench.TrainData(root, AugConfig(backend="torch"))
    real = bench.device_quartet

    def slow(*args):
        time.sleep(0.05)
        return real(*args)

    monkeypatch.setattr(bench, "device_quartet", slow)
    rate = bench.loader_rate(data, 32, 4, torch.device("cpu"), 0)
    assert 0 < rate <= 4 / 0.05
