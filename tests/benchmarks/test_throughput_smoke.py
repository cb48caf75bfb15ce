"""The throughput benchmark runs on CPU, and its ETA adds up over the paper profile's grid."""

import math

import pytest
import torch

from benchmarks.throughput import PAPER, PT_KIND_OVERRIDES, DataSizes, bench_ecg, bench_ppi, eta_rows, pt_kind, pt_kinds
from metapt.domain import Method, domain

CPU = torch.device("cpu")


@pytest.fixture(scope="module")
def measured():
    return bench_ppi("tiny", CPU, steps=2, warmup=0), bench_ecg("tiny", CPU, steps=2, warmup=0, labels=[10])


def test_pt_kinds_follow_the_declared_method_properties():
    d = domain("ppi")
    for m in d.methods:
        if m.pretrains and (d.name, m.name) not in PT_KIND_OVERRIDES:
            assert pt_kind(d, m) == ("meta" if m.learns_phi else "cotrain" if m.sees_ft_data else "plain")
    assert pt_kind(d, Method("new_cotrain", sees_ft_data=True)) == "cotrain"  # a new method needs no edit in throughput.py
    assert pt_kind(d, Method("new_meta", learns_phi=True, sees_ft_data=True)) == "meta"
    assert {pt_kind(domain("ecg"), m) for m in domain("ecg").methods if m.pretrains} == {"plain", "meta"}
    with pytest.raises(ValueError):
        pt_kind(d, next(m for m in d.methods if not m.pretrains))


def test_every_kind_is_timed_with_positive_times(measured):
    ppi, ecg = measured
    assert set(pt_kinds(domain("ppi"))) == {"plain", "meta", "cotrain", "cotrain_pcgrad"}
    assert set(ppi) == {*pt_kinds(domain("ppi")), "meta_fast", "ft_full", "ft_eval"}
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
    for name in ("ppi", "ecg"):
        d = domain(name)
        runs = d.runs(PAPER)
        assert jobs(f"pretrain_{name} ") == sum(d.method(r.method).pretrains for r in runs)
        assert jobs(f"finetune_{name} ") == len(runs)
        for m in d.methods:  # one PT row per pre-training method of the grid (per N where it has a label budget)
            assert jobs(f"pretrain_{name} {m.name} ") == (sum(r.method == m.name for r in runs) if m.pretrains else 0)
    assert jobs("pretrain_ppi meta ") == len(PAPER.seeds) + len(PAPER.ppi.grid.settings) * len(PAPER.setting_seeds)
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
    cotrain = next(r for r in body if r[0].startswith("pretrain_ppi cotrain_pcgrad "))
    assert cotrain[3] == pytest.approx(ppi["cotrain_pcgrad"]["s_per_step"])
    n10 = next(r for r in body if r[0] == "pretrain_ecg meta_simclr N=10")
    el, m10 = PAPER.ecg.pretrain.loop, ecg["meta@10"]
    assert n10[1] == len(PAPER.seeds)
    assert n10[3] == pytest.approx((el.warmup_epochs * m10["normal_s"] + (el.epochs - el.warmup_epochs) * m10["s_per_step"]) / el.epochs)
    assert n10[2] == PAPER.ecg.pretrain.loop.epochs * (sizes.ecg_pt // PAPER.ecg.pretrain.batch_size)
    ft10 = next(r for r in body if r[0] == "finetune_ecg meta_simclr N=10")
    assert ft10[1] == len(PAPER.seeds)
    ft_all = next(r for r in body if r[0].startswith("finetune_ecg no_pt/simclr "))  # fine-tuned at every N and N_FT
    assert ft_all[1] == 2 * len(PAPER.seeds) and ft_all[2] > ft10[2]
