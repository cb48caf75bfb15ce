"""Digits fine-tuning: per task, a fresh head on N labels of the task (80/20 train/val), macro AUROC on its
test set, for every FT mode and FT seed; and the finetune stage's body."""

from __future__ import annotations

from typing import Any

import torch

from metapt.digits.domain import setting_of
from metapt.digits.processed import TaskData, load_task
from metapt.digits.settings import DigitsParams
from metapt.finetune import finetune_modes
from metapt.labelled import labelled_indices, pairs, stack, train_val_sizes


def finetune_task(encoder: torch.nn.Module, data: TaskData, n: int, cfg: DigitsParams, seed: int, states: dict[str, Any], device: torch.device,
                  progress: bool = False) -> dict[str, Any]:
    """Final FT on the same N labels MetaFT drew (same seed): {mode: {test_macro_auroc, runs}}; FT weights into ``states``."""
    lab = labelled_indices(data.pt, n, seed)
    n_tr, _ = train_val_sizes(n)
    train, val, test = pairs(data.x, data.y, lab[:n_tr]), pairs(data.x, data.y, lab[n_tr:]), pairs(data.x, data.y, data.test)
    return finetune_modes(encoder, data.y.shape[1], train, val, test, dict(cfg.finetune), cfg.ft_seeds, stack, device, states, progress)


def finetune_run(profile, run, encoder: torch.nn.ModuleDict, *, device: torch.device, progress: bool, log_metrics) -> tuple[dict, dict]:
    """Every task at every N of the grid (no PT and the fixed policies), or at the run's own N (meta-SimCLR)."""
    cfg = profile.digits
    results: dict[str, dict] = {}
    states: dict[str, Any] = {}
    for task in cfg.grid.tasks:
        data = load_task(task)
        for n in [run.labels] if run.labels is not None else cfg.grid.labels:
            sink: dict[str, Any] = {}
            ev = finetune_task(encoder[task], data, n, cfg, run.seed, sink, device, progress)
            results.setdefault(setting_of(n), {})[task] = ev
            states.update({f"{setting_of(n)}/{task}/{k}": v for k, v in sink.items()})
            log_metrics({f"{setting_of(n)}/{task}/{mode}/test_macro_auroc": e["test_macro_auroc"] for mode, e in ev.items()})
    return results, states
