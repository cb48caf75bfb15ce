"""The evaluate_digits stage's body: every (task, N, method, PT seed, FT mode) macro AUROC, with its runs,
and each PT run's summary (its policy trajectory: what the planted-truth check reads)."""

from __future__ import annotations

from metapt import jobs
from metapt.digits.domain import DOMAIN, metric_of, setting_of
from metapt.io import read_json
from metapt.records import EvalRow, Evaluation, PTSummary


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
        pt = jobs.pretrain_log(run)
        phi = run.pretrain_dir / "phi.npz"
        summaries.append(PTSummary(str(run.pretrain_dir), run.method, None if run.labels is None else setting_of(run.labels), run.seed, run.labels,
                                   pt.get("pt_steps"), pt.get("hyper_steps"), None, str(phi) if phi.exists() else None, None))
    return Evaluation("digits", profile.name, cfg.data.source, None, rows, summaries)
