"""The PPI label-budget map (``metapt.ppi.report.budget_section``) from typed records the evaluation stage writes."""

from __future__ import annotations

import numpy as np
import pytest

from metapt.domain import domain
from metapt.ppi.report import budget_section
from metapt.records import EvalRow, Evaluation, PTSummary
from metapt.report.cells import Layout

# (column, method) → test-hard per PT seed. At 100/100 meta sits on uniform; at 2,000/400 it closes half the gap.
SCORES = {
    ("full", "uniform"): [0.70, 0.71, 0.69, 0.70, 0.72],
    ("full", "oracle"): [0.80, 0.81, 0.79, 0.80, 0.82],
    ("full", "meta"): [0.70, 0.72, 0.68, 0.71, 0.71],
    ("N=2000", "uniform"): [0.75, 0.76, 0.74, 0.75, 0.77],
    ("N=2000", "oracle"): [0.85, 0.86, 0.84, 0.85, 0.87],
    ("N=2000", "meta"): [0.80, 0.80, 0.79, 0.81, 0.82],
}
LABELS = {"full": 100, "N=2000": 2000}


def _evaluation() -> Evaluation:
    rows, pretrain = [], []
    for (col, method), values in SCORES.items():
        for seed, v in enumerate(values):
            name = f"{method}-full{'-N2000' if col != 'full' and method == 'meta' else ''}-s{seed}"
            for mode, shift in (("linear", 0.0), ("full", -0.01)):
                rows.append(EvalRow("ppi", col, method, method, seed, mode, "test_hard_auroc", v + shift, 1,
                                    f"results/ppi/pretrain/{name}", f"results/ppi/finetune/{name}", LABELS[col]))
            if method == "meta":
                pretrain.append(PTSummary(f"results/ppi/pretrain/{name}", "meta", col, seed, 2000 if col != "full" else None, 100, 20,
                                          weights_vs_truth={"weights_auc": (0.55 if col == "full" else 0.75) + 0.01 * seed}))
    for seed in range(5):
        ceiling = [{"epoch": 4, "column": col, "n_metaft": size, "auc_fixed_head": 0.5, "auc_through_head": auc + 0.01 * seed,
                    "stability_through_head": (0.1 if col == "full" else 0.6) + 0.01 * seed}
                   for col, size, auc in (("full", [100, 100], 0.49), ("N=2000", [2000, 400], 0.78))]
        pretrain.append(PTSummary(f"results/ppi/pretrain/uniform-full-s{seed}", "uniform", "full", seed, None, 100, 0, signal_ceiling=ceiling))
    return Evaluation("ppi", "embedded", "synthetic", None, rows, pretrain)


@pytest.fixture(scope="module")
def section(tmp_path_factory):
    ev = _evaluation()
    return budget_section(ev, Layout.of(ev, domain("ppi")), tmp_path_factory.mktemp("root"), tmp_path_factory.mktemp("figures"))


def test_every_budget_gets_weights_and_ceiling_cells_with_lineage(section):
    cells = {c["id"]: c for c in section.cells}
    w = cells["ppi/N=2000/meta/weights_auc/pt"]
    assert w["mean"] == pytest.approx(0.77) and w["runs"][0]["pt_run"] == "results/ppi/pretrain/meta-full-N2000-s0"
    assert cells["ppi/full/meta/weights_auc/pt"]["mean"] == pytest.approx(0.57)
    c = cells["ppi/N=2000/uniform/ceiling_auc_through_head/epoch4"]
    assert c["mean"] == pytest.approx(0.80) and c["n"] == 5 and c["ci_low"] > 0.5
    assert cells["ppi/full/uniform/ceiling_stability_through_head/epoch4"]["mean"] == pytest.approx(0.12)


def test_the_map_states_per_budget_whether_meta_helps_and_whether_the_signal_exists(section):
    md = section.markdown
    # linear eval leads: the claims are made there
    assert md.index("test_hard_auroc, linear FT") < md.index("test_hard_auroc, full FT")
    gap = (np.mean(SCORES["N=2000", "meta"]) - np.mean(SCORES["N=2000", "uniform"])) / (np.mean(SCORES["N=2000", "oracle"]) - np.mean(SCORES["N=2000", "uniform"]))
    assert "| 2000/400 |" in md and f"{100 * gap:+.0f} % [" in md
    lines = [line for line in md.splitlines() if line.startswith("- MetaFT")]
    assert len(lines) == 2
    assert lines[0].startswith("- MetaFT 100/100: meta does NOT help") and "no signal distinguishable from chance" in lines[0]
    assert lines[1].startswith("- MetaFT 2000/400: meta helps") and f"closing {100 * gap:.0f} % of the gap" in lines[1]
    assert "the signal exists (through-head ceiling AUC 0.800" in lines[1]


def test_one_figure_against_budget(section):
    (path, caption), = section.figures
    assert path.name == "ppi_budget_map.png" and path.stat().st_size > 10_000 and "budget" in caption
