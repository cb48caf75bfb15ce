"""Multi-label evaluation: per-task ROC-AUC (scikit-learn), skipping tasks with a single class."""

from __future__ import annotations

import numpy as np


def per_task_auroc(y_true: np.ndarray, scores: np.ndarray) -> np.ndarray:
    """ROC-AUC for each column; NaN where the column has one class only (Hu et al.'s protocol)."""
    y_true, scores = np.asarray(y_true), np.asarray(scores)
    if y_true.shape != scores.shape or y_true.ndim != 2:
        raise ValueError(f"expected matching [N, T] arrays, got {y_true.shape} and {scores.shape}")
    from sklearn.metrics import roc_auc_score  # imported on use: pre-training jobs never pay for it

    out = np.full(y_true.shape[1], np.nan)
    both = (y_true.sum(0) > 0) & (y_true.sum(0) < len(y_true))
    if both.any():  # one multilabel call: ~2.5× faster than one call per column
        out[both] = roc_auc_score(y_true[:, both], scores[:, both], average=None)
    return out


def mean_auroc(y_true: np.ndarray, scores: np.ndarray, tasks: np.ndarray | None = None) -> float:
    """Mean over evaluable tasks (optionally a subset, e.g. the 10 held-out FT tasks); NaN if none."""
    aucs = per_task_auroc(y_true, scores)
    if tasks is not None:
        aucs = aucs[np.asarray(tasks)]
    return float(np.nanmean(aucs)) if np.isfinite(aucs).any() else float("nan")


def weights_vs_truth(weights: np.ndarray, helpful: np.ndarray, kinds: list[str], helpfulness: np.ndarray | None = None) -> dict[str, float]:
    """How well learned PT-task weights recover a planted ground truth (synthetic data only)."""
    from scipy.stats import spearmanr
    from sklearn.metrics import roc_auc_score

    weights, helpful = np.asarray(weights, dtype=float), np.asarray(helpful, dtype=bool)
    out = {"weights_auc": float(roc_auc_score(helpful, weights)) if 0 < helpful.sum() < len(helpful) else float("nan")}
    for kind in sorted(set(kinds)):
        mask = np.array([k == kind for k in kinds])
        out[f"mean_weight_{kind}"] = float(weights[mask].mean())
    if helpfulness is not None and np.std(helpfulness) > 0 and np.std(weights) > 0:
        out["weights_spearman"] = float(spearmanr(weights, helpfulness).statistic)
    return out
