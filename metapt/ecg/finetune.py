"""ECG fine-tuning: a fresh head on N_FT labels per FT mode and FT seed, macro AUROC on the test fold,
and the finetune stage's body."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from metapt.ecg.domain import setting_of
from metapt.ecg.labelled import metaft_sizes
from metapt.ecg.processed import load_processed
from metapt.ecg.settings import ECGConfig
from metapt.finetune import finetune_modes
from metapt.labelled import labelled_indices, pairs, stack


def finetune_and_test(encoder: torch.nn.Module, x: np.ndarray, y: np.ndarray, pt_idx: np.ndarray, test_idx: np.ndarray, n_ft: int, cfg: ECGConfig, seed: int, modes: list[str] | None = None, progress: bool = False,
             states: dict[str, Any] | None = None, device: torch.device | str = "cpu") -> dict[str, Any]:
    """Final FT on n_ft labels from the PT folds (80/20 train/val), macro AUROC on the test fold.

    ``states``, if given, receives each FT run's best-validation weights under ``"<mode>/ft_seed<s>"``.
    """
    lab = labelled_indices(pt_idx, n_ft, seed)
    n_tr, _ = metaft_sizes(n_ft)
    train, val, test = pairs(x, y, lab[:n_tr]), pairs(x, y, lab[n_tr:]), pairs(x, y, test_idx)
    chosen = {m: cfg.finetune[m] for m in modes or list(cfg.finetune)}
    return finetune_modes(encoder, y.shape[1], train, val, test, chosen, cfg.ft_seeds, stack, torch.device(device), states, progress)


def finetune_run(profile, run, encoder: torch.nn.Module, *, device: torch.device, progress: bool, log_metrics) -> tuple[dict, dict]:
    """Final FT at every N and N_FT of the grid (baselines), or at the run's own N and each larger N_FT (meta-SimCLR)."""
    cfg = profile.ecg
    x, y, pt_idx, test_idx = load_processed()
    results, states = {}, {}
    for n in cfg.grid.ft_labels(run.labels):
        sink: dict[str, Any] = {}
        results[setting_of(n)] = finetune_and_test(encoder, x, y, pt_idx, test_idx, n, cfg, run.seed, progress=progress, states=sink, device=device)
        states.update({f"{setting_of(n)}/{k}": v for k, v in sink.items()})
        log_metrics({f"{setting_of(n)}/{mode}/test_macro_auroc": ev["test_macro_auroc"] for mode, ev in results[setting_of(n)].items()})
    return results, states
