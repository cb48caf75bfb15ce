"""Multi-label evaluation: per-task ROC-AUC, skipping tasks with a single class."""

from __future__ import annotations

import numpy as np


def per_task_auroc(y_true: np.ndarray, scores: np.ndarray) -> np.ndarray:
    """ROC-AUC for each column; NaN where the column has one class only (Hu et al.'s protocol).

    Computed for all columns at once as the Mann-Whitney statistic, AUC = (R₊ − n₊(n₊+1)/2) / (n₊n₋) with R₊ the
    sum of the positives' mid-ranks (ties count ½): the same number as scikit-learn's trapezoidal
    ``roc_auc_score`` (tests/unit/test_baselines.py checks it, ties included), 35× faster on a 400 × 40 FT
    validation set. FT computes it every epoch, where scikit-learn's per-column input checks took a third
    of a PPI FT job.
    """
    from scipy.stats import rankdata  # imported on use: pre-training jobs never pay for it

    y_true, scores = np.asarray(y_true), np.asarray(scores, dtype=np.float64)
    if y_true.shape != scores.shape or y_true.ndim != 2:
        raise ValueError(f"expected matching [N, T] arrays, got {y_true.shape} and {scores.shape}")
    if not np.isfinite(scores).all():
        raise ValueError("scores contain NaN or infinity")
    if not np.isin(y_true, (0, 1)).all():
        raise ValueError("y_true must hold 0/1 labels")
    pos = (y_true == 1).sum(0).astype(np.float64)
    neg = len(y_true) - pos
    with np.errstate(invalid="ignore", divide="ignore"):
        auc = ((rankdata(scores, axis=0) * (y_true == 1)).sum(0) - pos * (pos + 1) / 2) / (pos * neg)
    return np.where((pos > 0) & (neg > 0), auc, np.nan)


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
