"""The probe benchmark runs on CPU at the tiny size and its scaled per-task loop counts every task."""

import torch

from benchmarks.probe import bench


def test_probe_benchmark_times_every_variant():
    r = bench("tiny", torch.device("cpu"), rounds=1, loop_tasks=2, ks=[1, 3])
    assert r["tasks"] == 20 and r["params"] > 0
    assert all(r[k] > 0 for k in ("plain_s", "loop_s", "all@1_s", "all@3_s", "mem_plain_mb", "mem_all@3_mb"))
