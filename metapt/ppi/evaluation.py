"""The evaluate_ppi stage's body: every (setting, method, PT seed, FT mode, metric) value, with its runs."""

from __future__ import annotations

from metapt import jobs
from metapt.domain import processed_dir
from metapt.io import read_json
from metapt.ppi.domain import DOMAIN, budget_column
from metapt.ppi.processed import TRUTH
from metapt.records import EvalRow, Evaluation

METRICS = {"test_hard": "test_hard_auroc", "test_easy": "test_easy_auroc"}


def evaluation(profile) -> Evaluation:
    """Rows for the report and lineage. A run whose PT never saw FT data fills the partial column too,
    and its held-out-task FT the held-out column, and each budget column ``N=<n>``; a run meta-trained for a
    setting or a budget fills that one."""
    rows, summaries = [], []
    truth = processed_dir("ppi") / TRUTH
    # the label-budget axis: column → MetaFT-train graphs (``full`` at ft_budget; None for the paper's whole split)
    budgets = {col: b[0] for col, b in profile.ppi.budgets().items() if b is not None}
    for run in DOMAIN.runs(profile):
        ft = read_json(run.finetune_dir / "finetune.json")
        access_free = not DOMAIN.method(run.method).sees_ft_data
        columns = {"all": ["full"] + (["partial"] if access_free and "partial" in profile.ppi.grid.settings else []), "heldout": ["heldout"]}
        for task_set, modes in ft["results"].items():
            for setting in [run.setting] if run.setting != "full" else columns.get(task_set, [task_set]):
                for mode, ev in modes.items():
                    for key, metric in METRICS.items():
                        rows.append(EvalRow("ppi", setting, run.method, run.method, run.seed, mode, metric, ev[key], len(ev["runs"]),
                                            run.pretrain_dir and str(run.pretrain_dir), str(run.finetune_dir), budgets.get(setting)))
        if run.pretrain_dir is None:
            continue
        summaries.append(jobs.pt_summary(run, budget_column(run.labels) if run.labels is not None else run.setting))
    return Evaluation("ppi", profile.name, profile.ppi.data.source, str(truth) if truth.exists() else None, rows, summaries)
