"""The benchmark runs, and its memory claims hold: IFT memory is flat in P, unrolling grows with T."""

import torch

from benchmarks.hyperstep import bench_memory, bench_steps


def test_benchmark_steps_run_on_tiny_gin():
    out = bench_steps("tiny", torch.device("cpu"), rounds=1)
    assert out["plain_ms"] > 0 and out["fresh_ms"] > 0


def test_hyperstep_memory_is_flat_in_p_and_unrolled_memory_grows_with_t():
    m = bench_memory("tiny", torch.device("cpu"))
    assert m["hyper_P5_mb"] < 1.5 * m["hyper_P1_mb"]
    assert m["fast_mb"] < 1.5 * m["hyper_P1_mb"]  # reusing the PT step's graph adds no second graph
    assert m["unroll40_mb"] > 2.5 * m["unroll10_mb"] > 2.5 * m["hyper_P1_mb"]
