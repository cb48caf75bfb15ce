"""The PPI part of the report: the signal ceiling (``metapt.ppi.probe``) of the uniform PT runs.

Per probed epoch: the AUC of the full-batch alignment ranking against the planted helpful tasks, with the
MetaFT head held fixed and through the re-fitted L2-logistic head, and the ranking's stability under
bootstrap resamples of MetaFT (mean pairwise Spearman). One cell per (epoch, quantity) with seed
statistics and lineage like every other cell; a sentence per MetaFT budget says whether the signal exists.
"""

from __future__ import annotations

from pathlib import Path

from metapt.records import EvalRow, Evaluation
from metapt.report.cells import Layout, Section, isnum, make_cell

QUANTITIES = {"auc_fixed_head": "ceiling AUC, fixed head", "auc_through_head": "ceiling AUC, through the head",
              "stability_through_head": "bootstrap rank stability"}


def ceiling_section(evaluation: Evaluation, layout: Layout, root: Path, folder: Path, sink: list[str] | None = None) -> Section:
    runs = [p for p in evaluation.pretrain if p.signal_ceiling]
    if not runs:  # the probe is off (ppi.pretrain.probe.epochs: []): nothing to say, nothing missing
        return Section("Signal ceiling (PPI)", "", [], [])
    budget = runs[0].signal_ceiling[0]["n_metaft"]
    epochs = sorted({e["epoch"] for p in runs for e in p.signal_ceiling})
    cells = []
    for epoch in epochs:
        for key in QUANTITIES:
            by_seed = {p.seed: EvalRow("ppi", f"probe_epoch={epoch}", p.method, p.method, p.seed, "pt", f"ceiling_{key}", e[key], 0, p.run, p.run)
                       for p in runs for e in p.signal_ceiling if e["epoch"] == epoch and key in e}
            if by_seed:
                cells.append(make_cell("ppi", (f"probe_epoch={epoch}", runs[0].method, f"ceiling_{key}", "pt"), by_seed))
    at = {(c["setting"], c["metric"]): c for c in cells}
    lines = [f"During uniform PT, each PT task's full-batch alignment ⟨∇θ ℓ_t, ∇θ L_val⟩ with the MetaFT objective "
             f"(MetaFT {budget[0]} train / {budget[1]} val graphs): the ranking any one-step task-weighting method estimates, noise-free. "
             "AUC against the planted helpful tasks (0.5 = chance), mean [95% CI] over PT seeds; stability = mean Spearman "
             "correlation of the through-head ranking between bootstrap resamples of MetaFT (the check that needs no truth).", "",
             "| PT epoch | " + " | ".join(QUANTITIES.values()) + " |", "|---|" + "---|" * len(QUANTITIES)]
    for epoch in epochs:
        row = []
        for key in QUANTITIES:
            c = at.get((f"probe_epoch={epoch}", f"ceiling_{key}"))
            row.append("–" if c is None else f"{c['mean']:.3f}" + (f" [{c['ci_low']:.3f}, {c['ci_high']:.3f}]" if isnum(c["ci_low"]) else "") + f" (n={c['n']})")
        lines.append(f"| {epoch} | " + " | ".join(row) + " |")
    last = at.get((f"probe_epoch={epochs[-1]}", "ceiling_auc_through_head"))
    if last is not None and isnum(last["ci_low"]):
        verdict = ("the signal exists (CI above 0.5)" if last["ci_low"] > 0.5 else "the ranking is inverted (CI below 0.5)" if last["ci_high"] < 0.5
                   else "no signal distinguishable from chance (CI includes 0.5): no one-step method can find the helpful tasks here")
        lines += ["", f"At MetaFT {budget[0]}/{budget[1]}, epoch {epochs[-1]}: through-head ceiling AUC {last['mean']:.3f} "
                      f"[{last['ci_low']:.3f}, {last['ci_high']:.3f}]: {verdict}."]
    return Section("Signal ceiling (PPI)", "\n".join(lines), cells, [])
