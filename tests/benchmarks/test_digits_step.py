"""The digits PT-step benchmark runs on CPU with the PT job's own trainer, and times both kinds of step."""

import math

import torch

from benchmarks.digits_step import bench


def test_digits_step_benchmark_times_plain_and_hyper_steps():
    rows = bench("tiny", torch.device("cpu"), steps=4, warmup=0)
    by = {r[1]: r for r in rows}
    assert set(by) == {"simclr", "meta_simclr"}
    assert by["simclr"][5] == "" and by["simclr"][6] == 1.0  # no hyper-step without meta; its own baseline
    assert math.isfinite(by["meta_simclr"][5]) and by["meta_simclr"][5] > 0 and by["meta_simclr"][6] > 0
