"""The throughput benchmark runs on CPU, and its ETA adds up over the paper profile's grid."""

import math

import pytest
import torch

from benchmarks.throughput import PAPER, DataSizes, bench_ecg, bench_ppi, eta_rows
from metapt.runs import NO_PT, ecg_runs, ppi_runs

CPU = torch.device("cpu")


@pytest.fixture(scope="module")
def measured():
    return bench_ppi("tiny", CPU, steps=2, warmup=0), bench_ecg("tiny", CPU, steps=2, warmup=0, labels=[10])


def test_every_kind_is_timed_with_positive_times(measured):
    ppi, ecg = measured
    assert set(ppi) == {"plain", "meta", "meta_fast", "cotrain", "cotrain_pcgrad", "ft_full", "ft_eval"}
    assert set(ecg) == {"plain", "meta@10", "meta_fast@10", "ft_full", "ft_eval"}
    for r in [*ppi.values(), *ecg.values()]:
        assert r["s_per_step"] > 0 and r["batch"] > 0
    for r in (ppi["meta"], ppi["meta_fast"], ecg["meta@10"], ecg["meta_fast@10"]):  # the 2-step window starts on a hyper-step
        assert r["n_hyper"] == 1 and r["hyper_s"] > 0
    assert ppi["plain"]["n_hyper"] == 0


def test_eta_rows_cover_the_paper_grid_and_add_up(measured):
    ppi, ecg = measured
    sizes = DataSizes()
    rows = eta_rows(ppi, ecg, PAPER, sizes)
    body, total = rows[:-1], rows[-1]
    jobs = lambda prefix: sum(r[1] for r in body if r[0].startswith(prefix))  # noqa: E731
    pruns, eruns = ppi_runs(PAPER), ecg_runs(PAPER)
    assert jobs("pretrain_ppi") == sum(r.method != NO_PT for r in pruns)
    assert jobs("finetune_ppi") == len(pruns)
    assert jobs("pretrain_ecg") == sum(r.method != NO_PT for r in eruns)
    assert jobs("finetune_ecg") == len(eruns)
    assert total[1] == sum(r[1] for r in body)
    assert total[5] == pytest.approx(sum(r[5] for r in body))
    for _, n_jobs, steps, s_step, h_job, h_total in body:
        assert h_total == pytest.approx(n_jobs * h_job) and h_job > 0
        if steps:
            assert h_job == pytest.approx(steps * s_step / 3600)

    loop = PAPER.ppi.pretrain.loop
    meta = next(r for r in body if r[0].startswith("pretrain_ppi meta"))
    assert meta[2] == loop.epochs * math.ceil(sizes.ppi_pt / PAPER.ppi.pretrain.batch_size)
    w = loop.warmup_epochs  # no hyper-steps in the warm-up epochs
    assert meta[3] == pytest.approx((w * ppi["meta"]["normal_s"] + (loop.epochs - w) * ppi["meta"]["s_per_step"]) / loop.epochs)
    plain = next(r for r in body if r[0].startswith("pretrain_ppi uniform"))
    assert plain[3] == pytest.approx(ppi["plain"]["s_per_step"])
    n10 = next(r for r in body if r[0] == "pretrain_ecg meta_simclr N=10")
    el, m10 = PAPER.ecg.pretrain.loop, ecg["meta@10"]
    assert n10[1] == len(PAPER.seeds)
    assert n10[3] == pytest.approx((el.warmup_epochs * m10["normal_s"] + (el.epochs - el.warmup_epochs) * m10["s_per_step"]) / el.epochs)
    assert n10[2] == PAPER.ecg.pretrain.loop.epochs * (sizes.ecg_pt // PAPER.ecg.pretrain.batch_size)
