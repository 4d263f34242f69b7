"""benchmarks/bench_loader.py and bench_fit_workers.py end to end on tiny settings, on this CPU."""

import json

import pytest
import torch

from eva_depthmask.config import AugConfig
from eva_depthmask.dataset import QuartetDataset


def test_bench_loader_times_each_worker_count_once_in_process(load_benchmark, tmp_path, capsys):
    bench = load_benchmark("bench_loader")
    out = tmp_path / "loader.json"
    threads = torch.get_num_threads()
    try:
        args = ["--size", "32", "--workers", "0", "1", "--opencv-threads", "1", "0"]
        bench.main([*args, "--batch", "4", "--batches", "5", "--out", str(out)])
    finally:
        torch.set_num_threads(threads)
    rows = json.loads(out.read_text())["rows"]
    # the in-process row once (OpenCV's threads are the workers'), the worker row per setting
    assert [(r["workers"], r["opencv_threads"]) for r in rows] == [(0, None), (1, 1), (1, 0)]
    assert all(r["samples_per_s"] > 0 for r in rows)
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
    with_workers = bench.loader_rate(
        data, 32, batch=4, batches=5, workers=1, threads=1, cached=True
    )
    assert (with_workers["workers"], with_workers["cached"]) == (1, True)
    assert row["samples_per_s"] > 0 and with_workers["samples_per_s"] > 0


def test_bench_loader_refuses_too_few_batches_by_name(load_benchmark, capsys):
    with pytest.raises(SystemExit):
        load_benchmark("bench_loader").parse_args(["--batches", "2"])
    assert "--batches" in capsys.readouterr().err


def test_bench_fit_workers_reports_both_epochs_of_a_real_fit(load_benchmark, tmp_path):
    bench = load_benchmark("bench_fit_workers")
    out = tmp_path / "fit.json"
    threads = torch.get_num_threads()
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
    result = json.loads(out.read_text())
    (row,) = result["rows"]
    assert row["name"] == "depthmasknet" and row["workers"] == 0
    assert row["epoch0_img_per_s"] > 0 and row["epoch1_img_per_s"] > 0
    # 20 rooms x 2 flips, 80 % of them train: 32 quartets, 4 batches of 8 per epoch, 2 epochs
    assert row["train_images"] == 2 * 4 * 8
    assert result["meta"]["device"] == "CPU" and "--rooms" in result["meta"]["command"]
