"""The fork-server benchmark runs both ways and reports a positive ratio (its size is not a pass/fail criterion)."""

from benchmarks.forkserver import bench


def test_forkserver_benchmark_times_both_ways():
    r = bench(rounds=1)
    assert r["own_process_s"] > 0 and r["fork_server_s"] > 0 and r["ratio"] > 0
