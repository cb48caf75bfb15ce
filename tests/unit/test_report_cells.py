"""Report cells on typed evaluation rows: seed statistics, the best baseline, paired tests, order, verdicts, PT cost.

The data below are shared with ``test_report_build.py`` and ``test_report_figures.py`` (plain
names, no test functions, so importing them collects nothing twice).
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats as sps

from metapt.domain import domain
from metapt.records import EvalRow, Evaluation, PTSummary
from metapt.report.cells import Layout, domain_cells, pt_cost, verdict
from metapt.report.tables import format_cell, format_delta

# PPI headline values per (setting, row): seed -> value. partial/heldout ran 3 seeds, full 5.
PPI = {
    ("full", "no_pt"): [0.60, 0.61, 0.62, 0.60, 0.59],
    ("full", "uniform"): [0.70, 0.72, 0.71, 0.69, 0.70],
    ("full", "cotrain"): [0.74, 0.73, 0.75, 0.76, 0.74],  # best baseline (by mean)
    ("full", "cotrain_pcgrad"): [0.78, 0.60, 0.70, 0.71, 0.72],  # best single seed, lower mean
    ("full", "meta"): [0.77, 0.76, 0.79, 0.79, 0.77],
    ("full", "oracle"): [0.90, 0.91, 0.92, 0.90, 0.91],  # upper bound: never the baseline
    ("partial", "uniform"): [0.70, 0.72, 0.71, 0.69, 0.70],
    ("partial", "cotrain"): [0.71, 0.70, 0.72],
    ("partial", "meta"): [0.70, 0.69, float("nan")],  # a diverged seed
    ("heldout", "uniform"): [0.70, 0.72, 0.71, 0.69, 0.70],
    ("heldout", "meta"): [0.71, 0.73, 0.70],  # 3 seeds against uniform's 5
}
# ECG: columns are label budgets; meta_simclr@10 learned its warp from 10 labels and was fine-tuned on 100.
ECG = {
    ("N=100", "no_pt"): [0.60, 0.62, 0.61],
    ("N=100", "simclr"): [0.70, 0.71, 0.72],
    ("N=100", "meta_simclr"): [0.72, 0.73, 0.73],
    ("N=100", "meta_simclr@10"): [0.71, 0.72, 0.70],
    ("N=25", "no_pt"): [0.55, 0.56, 0.54],
    ("N=25", "simclr"): [0.62, 0.61, 0.63],
    ("N=25", "meta_simclr"): [0.62, 0.62, 0.62],  # ties simclr's mean: must be called "does NOT beat"
}
FT_LABELS = {"N=10": 10, "N=25": 25, "N=100": 100}  # the ECG columns' label budgets, as the evaluation stage sets them
LEARNED_FROM = {"meta_simclr@10": ("meta_simclr", 10)}  # a table row → (declared method, labels it learned from)


def eval_rows(domain_name: str, table: dict, metric: str, mode: str, shift: float = 0.0) -> list[EvalRow]:
    """One typed row per (column, row, seed), with the fields the evaluation stage fills in."""
    rows = []
    for (setting, row), values in table.items():
        method, learned = LEARNED_FROM.get(row, (row, None))
        run = f"{method}-{setting}-s{{}}" if learned is None else f"{method}-N{learned}-s{{}}"
        for seed, v in enumerate(values):
            rows.append(EvalRow(domain=domain_name, setting=setting, method=method, row=row, seed=seed, mode=mode, metric=metric,
                                value=None if v is None else v + shift, n_ft_seeds=2,
                                pt_run=None if method == "no_pt" else f"results/{domain_name}/pretrain/{run.format(seed)}",
                                ft_run=f"results/{domain_name}/finetune/{run.format(seed)}",
                                ft_labels=FT_LABELS.get(setting), learned_from=learned))
    return rows


def evaluation(domain_name: str, rows: list[EvalRow], pretrain: list[PTSummary] = (), truth: str | None = None) -> Evaluation:
    return Evaluation(domain_name, "embedded", "synthetic", truth, list(rows), list(pretrain))


def _cells(ev: Evaluation) -> dict[str, dict]:
    return {c["id"]: c for c in domain_cells(ev)}


@pytest.fixture(scope="module")
def ppi_cells():
    return _cells(evaluation("ppi", eval_rows("ppi", PPI, "test_hard_auroc", "full")))


@pytest.fixture(scope="module")
def ecg_cells():
    return _cells(evaluation("ecg", eval_rows("ecg", ECG, "test_macro_auroc", "linear")))


def test_paired_delta_is_the_mean_of_per_seed_differences_against_the_best_baseline(ppi_cells):
    meta = ppi_cells["ppi/full/meta/test_hard_auroc/full"]
    assert meta["best_baseline"] == "cotrain"  # not cotrain_pcgrad (best single seed) nor oracle (upper bound)
    a, b = PPI[("full", "meta")], PPI[("full", "cotrain")]
    d = np.subtract(a, b)
    assert meta["delta_mean"] == pytest.approx(np.mean(d), abs=1e-12)
    assert meta["p_value"] == pytest.approx(sps.ttest_rel(a, b).pvalue)
    lo, hi = sps.t.interval(0.95, 4, loc=np.mean(d), scale=sps.sem(d))
    assert (meta["delta_ci_low"], meta["delta_ci_high"]) == pytest.approx((lo, hi))
    assert meta["mean"] == pytest.approx(np.mean(a)) and meta["std"] == pytest.approx(np.std(a, ddof=1)) and meta["n"] == 5
    lo, hi = sps.t.interval(0.95, 4, loc=np.mean(a), scale=sps.sem(a))
    assert (meta["ci_low"], meta["ci_high"]) == pytest.approx((lo, hi))
    assert "best_baseline" not in ppi_cells["ppi/full/cotrain/test_hard_auroc/full"]  # only rows that learn φ are tested


def test_meta_is_also_tested_against_its_plain_counterpart_and_the_gap_it_closes_is_reported(ppi_cells, ecg_cells):
    """The best baseline (cotrain) is not meta's plain counterpart (uniform): both comparisons are kept."""
    meta = ppi_cells["ppi/full/meta/test_hard_auroc/full"]
    a, u, o = (np.mean(PPI[("full", m)]) for m in ("meta", "uniform", "oracle"))
    assert meta["plain"] == "uniform" and meta["gap_upper"] == "oracle"
    assert meta["gap_closed"] == pytest.approx((a - u) / (o - u)) and meta["gap"] == pytest.approx(o - u)
    assert meta["plain_delta_mean"] == pytest.approx(a - u) and meta["plain_p_value"] == pytest.approx(sps.ttest_rel(PPI[("full", "meta")], PPI[("full", "uniform")]).pvalue)
    assert "of the uniform → oracle gap" in format_delta(meta) and "vs uniform +" in format_delta(meta)
    ecg = ecg_cells["ecg/N=100/meta_simclr/test_macro_auroc/linear"]  # no upper bound in the column: no gap, but the plain test
    assert ecg["plain"] == "simclr" and "gap_closed" not in ecg and ecg["plain_n_paired"] == 3


def test_no_gap_share_is_reported_when_the_upper_bound_does_not_beat_the_plain_method():
    """An oracle within noise of uniform leaves no gap: a share of it would read as hundreds of percent."""
    table = {("full", "uniform"): [0.70, 0.72, 0.71], ("full", "oracle"): [0.71, 0.70, 0.72], ("full", "meta"): [0.74, 0.73, 0.75]}
    meta = _cells(evaluation("ppi", eval_rows("ppi", table, "test_hard_auroc", "full")))["ppi/full/meta/test_hard_auroc/full"]
    assert meta["gap_upper"] == "oracle" and meta["gap_closed"] is None and meta["gap_ci_low"] < 0 < meta["gap_ci_high"]
    assert "no uniform → oracle gap to close" in format_delta(meta)


def test_fewer_meta_seeds_are_paired_on_the_common_seeds_only(ppi_cells):
    meta = ppi_cells["ppi/heldout/meta/test_hard_auroc/full"]
    assert meta["best_baseline"] == "uniform" and meta["n_paired"] == 3 and meta["paired_seeds"] == [0, 1, 2]
    assert meta["delta_mean"] == pytest.approx(np.mean(np.subtract(PPI[("heldout", "meta")], PPI[("heldout", "uniform")][:3])))


def test_nan_values_are_counted_not_dropped(ppi_cells):
    meta = ppi_cells["ppi/partial/meta/test_hard_auroc/full"]
    assert math.isnan(meta["values"][2]) and meta["n_nan"] == 1 and meta["n"] == 2 and meta["seeds"] == [0, 1, 2]
    assert meta["mean"] == pytest.approx(0.695) and meta["n_paired"] == 2 and meta["paired_seeds"] == [0, 1]
    assert "(+1 NaN)" in format_cell(meta)


def test_rows_follow_the_declaration_and_columns_the_label_budget(ppi_cells, ecg_cells):
    ppi_order = [c.split("/")[1:3] for c in ppi_cells]
    assert [s for s, _ in ppi_order] == ["full"] * 6 + ["partial"] * 3 + ["heldout"] * 2  # Domain.settings order
    assert [m for s, m in ppi_order if s == "full"] == ["no_pt", "uniform", "cotrain", "cotrain_pcgrad", "meta", "oracle"]
    order = [c.split("/")[1:3] for c in ecg_cells]
    assert [s for s, _ in order] == ["N=25"] * 3 + ["N=100"] * 4  # by ft_labels, not as strings
    assert [m for s, m in order if s == "N=100"] == ["no_pt", "simclr", "meta_simclr", "meta_simclr@10"]
    layout = Layout.of(evaluation("ecg", eval_rows("ecg", {**ECG, ("N=10", "simclr"): [0.5]}, "test_macro_auroc", "linear")))
    assert layout.column_order(["N=100", "N=10", "N=25"]) == ["N=10", "N=25", "N=100"]
    assert layout.row_order(["meta_simclr@10", "zzz", "simclr", "no_pt", "meta_simclr"]) == ["no_pt", "simclr", "meta_simclr", "meta_simclr@10", "zzz"]


def test_a_partial_access_row_is_tested_and_keeps_its_row_label(ecg_cells):
    cell = ecg_cells["ecg/N=100/meta_simclr@10/test_macro_auroc/linear"]
    assert cell["method"] == "meta_simclr@10" and cell["best_baseline"] == "simclr"  # never meta_simclr (it learns φ too)
    assert cell["delta_mean"] == pytest.approx(np.mean(np.subtract(ECG[("N=100", "meta_simclr@10")], ECG[("N=100", "simclr")])))
    assert cell["runs"][1] == {"seed": 1, "pt_run": "results/ecg/pretrain/meta_simclr-N10-s1", "ft_run": "results/ecg/finetune/meta_simclr-N10-s1"}


def test_every_phi_learning_method_is_tested_and_none_is_a_baseline():
    table = {("full", "cotrain"): [0.74, 0.73, 0.75], ("full", "agnostic"): [0.80, 0.81, 0.79], ("full", "meta"): [0.77, 0.76, 0.79],
             ("full", "oracle"): [0.9, 0.9, 0.9]}
    assert domain("ppi").method("agnostic").learns_phi  # the declaration, not a name, decides
    cells = _cells(evaluation("ppi", eval_rows("ppi", table, "test_hard_auroc", "full")))
    assert cells["ppi/full/meta/test_hard_auroc/full"]["best_baseline"] == "cotrain"
    assert cells["ppi/full/agnostic/test_hard_auroc/full"]["best_baseline"] == "cotrain"
    assert "best_baseline" not in cells["ppi/full/oracle/test_hard_auroc/full"]


def test_verdict_wording(ecg_cells):
    base = {"best_baseline": "uniform", "n_paired": 3}
    assert verdict({**base, "delta_mean": 0.02, "delta_ci_low": 0.01, "delta_ci_high": 0.03}).startswith("beats")
    assert "NOT" in verdict({**base, "delta_mean": 0.02, "delta_ci_low": -0.01, "delta_ci_high": 0.05})
    assert "NOT" in verdict({**base, "delta_mean": -0.01, "delta_ci_low": -0.02, "delta_ci_high": -0.001})
    assert "cannot tell" in verdict({**base, "delta_mean": 0.02, "delta_ci_low": None, "delta_ci_high": None})
    assert verdict(ecg_cells["ecg/N=25/meta_simclr/test_macro_auroc/linear"]).startswith("does NOT beat simclr")


def test_all_nan_meta_cell_is_kept_with_no_comparison():
    rows = eval_rows("ecg", {("N=25", "simclr"): [0.6, 0.7], ("N=25", "meta_simclr"): [float("nan"), None]}, "test_macro_auroc", "linear")
    meta = {c["method"]: c for c in domain_cells(evaluation("ecg", rows))}["meta_simclr"]
    assert meta["n"] == 0 and meta["n_nan"] == 2 and math.isnan(meta["mean"])
    assert meta["best_baseline"] == "simclr" and meta["n_paired"] == 0 and math.isnan(meta["delta_mean"])
    assert "no shared seeds" in format_delta(meta) and "(+2 NaN)" in format_cell(meta)


def test_duplicate_seed_rows_are_an_error():
    rows = eval_rows("ecg", {("N=25", "simclr"): [0.6]}, "test_macro_auroc", "linear")
    with pytest.raises(ValueError, match="two evaluation rows"):
        domain_cells(evaluation("ecg", rows + rows))


def test_pt_cost_counts_steps_not_wall_time():
    pts = [PTSummary(f"r{m}{s}", m, "full", s, None, pt_steps=60, hyper_steps=6 if m == "meta" else 0) for m in ("uniform", "meta") for s in range(3)]
    pts.append(PTSummary("rx", "meta", "partial", 9, None, pt_steps=None, hyper_steps=None))  # counts unknown: a run, no numbers
    cost = pt_cost(evaluation("ppi", [], pts))
    assert list(cost["methods"]) == ["uniform", "meta"]  # declaration order
    assert cost["methods"]["meta"] == {"n_runs": 4, "mean_pt_steps": 60.0, "mean_hyper_steps": 6.0}
    assert cost["meta"] == [{"method": "meta", "plain": "uniform", "hyper_steps_per_pt_step": pytest.approx(0.1), "pt_steps_vs_plain": 1.0}]
    assert not any("wall" in k for m in cost["methods"].values() for k in m)
