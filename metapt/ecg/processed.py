"""The processed ECG data on disk: z-scored, padded signals [N, 1024, 12], labels, folds."""

from __future__ import annotations

import numpy as np

from metapt.domain import processed_dir
from metapt.ecg.data import split_indices

SIGNALS, LABELS, FOLDS = "signals.npy", "labels.npy", "folds.npy"


def load_processed() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    d = processed_dir("ecg")
    x, y, folds = np.load(d / SIGNALS, mmap_mode="r"), np.load(d / LABELS), np.load(d / FOLDS)
    split = split_indices(folds, "paper")
    return np.ascontiguousarray(x), y, split["pt"], split["test"]
