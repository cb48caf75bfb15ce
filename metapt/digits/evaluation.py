"""The evaluate_digits stage's body: every (task, N, method, PT seed, FT mode) macro AUROC, with its runs,
and each PT run's summary (its policy trajectory: what the planted-truth check reads)."""

from __future__ import annotations

from metapt import jobs
from metapt.digits.domain import DOMAIN, metric_of, setting_of
from metapt.io import read_json
from metapt.records import EvalRow, Evaluation


def evaluation(profile) -> Evaluation:
    cfg = profile.digits
    rows, summaries = [], []
    for run in DOMAIN.runs(profile):
        ft = read_json(run.finetune_dir / "finetune.json")
        for n in [run.labels] if run.labels is not None else cfg.grid.labels:
            for task in cfg.grid.tasks:
                for mode, ev in ft["results"][setting_of(n)][task].items():
                    rows.append(EvalRow("digits", setting_of(n), run.method, run.method, run.seed, mode, metric_of(task), ev["test_macro_auroc"],
                                        len(ev["runs"]), run.pretrain_dir and str(run.pretrain_dir), str(run.finetune_dir), n))
        if run.pretrain_dir is None:
            continue
        summaries.append(jobs.pt_summary(run, None if run.labels is None else setting_of(run.labels)))
    return Evaluation("digits", profile.name, cfg.data.source, None, rows, summaries)
