"""PPI fine-tuning: a fresh 40-way head on the PT encoder, per FT mode and FT seed, and the finetune stage's body."""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np
import torch

from metapt.finetune import finetune
from metapt.ppi.domain import DOMAIN, budget_column
from metapt.ppi.graphs import collate_graphs, subset
from metapt.ppi.processed import load_processed
from metapt.ppi.settings import PPIConfig
from metapt.ppi.splits import PPISplits, with_ft_budget


def finetune_and_test(
    encoder: torch.nn.Module,
    graphs: Sequence,
    splits: PPISplits,
    cfg: PPIConfig,
    access: str = "full",
    fold: int = 0,
    modes: Sequence[str] | None = None,
    device: torch.device | str = "cpu",
    progress: bool = False,
    states: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Final FT (fresh 40-way head, GNN weights only) per mode and FT seed; test-hard/test-easy AUROC.

    ``states``, if given, receives each FT run's best-validation weights under ``"<mode>/ft_seed<s>"``.
    """
    tasks = splits.heldout_tasks(fold) if access == "heldout" else None
    n_ft = int(graphs[0].go_target_downstream.numel())
    tests = {"test_hard": subset(graphs, splits.test_hard), "test_easy": subset(graphs, splits.test_easy)}
    train, val = subset(graphs, splits.ft_train), subset(graphs, splits.ft_val)
    targets = lambda b: b.go_target_downstream.view(b.num_graphs, -1)  # noqa: E731
    dev = torch.device(device)
    out: dict[str, Any] = {}
    for mode in modes or list(cfg.finetune):
        runs = []
        for s in cfg.ft_seeds:
            res = finetune(encoder, n_ft, train, val, tests, collate_graphs(), targets, cfg.finetune[mode], seed=s, tasks=tasks, prepare=lambda b: b.to(dev), progress=progress)
            if states is not None:
                states[f"{mode}/ft_seed{s}"] = res.best_state
            runs.append({"ft_seed": s, **res.to_dict()})
        out[mode] = {
            "runs": runs,
            "test_hard": float(np.mean([r["test_auroc"]["test_hard"] for r in runs])),
            "test_easy": float(np.mean([r["test_auroc"]["test_easy"] for r in runs])),
        }
    return out


def task_sets(profile, run) -> dict[str, tuple[str, tuple[int, int] | None]]:
    """Which FT label sets this PT run is fine-tuned on, each with its FT-access kind and label budget.

    ``all``: the 40 tasks at ``ft_budget``; ``heldout``: the held-out fold's 10; ``N=<n>``: the 40 tasks at an
    extra MetaFT budget (``ppi.grid.budgets``), on the same FT data MetaFT used, as the paper does. A run
    whose PT never saw FT data serves every setting and budget; a run meta-trained for a setting or a
    budget is fine-tuned only there.
    """
    cfg = profile.ppi
    if run.labels is not None:
        return {budget_column(run.labels): ("full", cfg.budget(run.labels))}
    if run.setting == "heldout":
        return {"heldout": ("heldout", cfg.ft_budget)}
    if DOMAIN.method(run.method).sees_ft_data:
        return {"all": ("full", cfg.ft_budget)}
    extra = {col: ("full", b) for col, b in cfg.budgets().items() if col != "full"}
    return {"all": ("full", cfg.ft_budget), **({"heldout": ("heldout", cfg.ft_budget)} if "heldout" in cfg.grid.settings else {}), **extra}


def finetune_run(profile, run, encoder: torch.nn.Module, *, device: torch.device, progress: bool, log_metrics) -> tuple[dict, dict]:
    """The finetune stage's body: every task set × FT mode × FT seed; scores and best-validation weights."""
    cfg = profile.ppi
    graphs, full, _ = load_processed()
    results, states = {}, {}
    for name, (access, budget) in task_sets(profile, run).items():
        sink: dict[str, Any] = {}
        results[name] = finetune_and_test(encoder, graphs, with_ft_budget(full, budget), cfg, access=access, fold=cfg.grid.heldout_fold,
                                          device=device, progress=progress, states=sink)
        states.update({f"{name}/{k}": v for k, v in sink.items()})
        for mode, ev in results[name].items():
            log_metrics({f"{name}/{mode}/test_hard_auroc": ev["test_hard"], f"{name}/{mode}/test_easy_auroc": ev["test_easy"]})
    return results, states
