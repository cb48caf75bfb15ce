"""The evaluate_ecg stage's body: every (N, method, PT seed, FT mode) macro AUROC, with its runs."""

from __future__ import annotations

from metapt import jobs
from metapt.ecg.domain import DOMAIN, setting_of
from metapt.io import read_json
from metapt.records import EvalRow, Evaluation


def evaluation(profile) -> Evaluation:
    """A meta-SimCLR run fine-tuned on more labels than it learned from is its own row: ``meta_simclr@N``."""
    rows, summaries = [], []
    for run in DOMAIN.runs(profile):
        ft = read_json(run.finetune_dir / "finetune.json")
        for n in profile.ecg.grid.ft_labels(run.labels):
            learned_from = run.labels if run.labels is not None and n != run.labels else None
            row = run.method if learned_from is None else f"{run.method}@{learned_from}"
            for mode, ev in ft["results"][setting_of(n)].items():
                rows.append(EvalRow("ecg", setting_of(n), run.method, row, run.seed, mode, "test_macro_auroc", ev["test_macro_auroc"],
                                    len(ev["runs"]), run.pretrain_dir and str(run.pretrain_dir), str(run.finetune_dir), n, learned_from))
        if run.pretrain_dir is None:
            continue
        summaries.append(jobs.pt_summary(run, None if run.labels is None else setting_of(run.labels)))
    return Evaluation("ecg", profile.name, profile.ecg.data.source, None, rows, summaries)
