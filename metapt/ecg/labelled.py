"""The labelled records of an ECG run: N of the PT folds, nested across N, and the MetaFT/FT splits of them."""

from __future__ import annotations

import numpy as np
import torch


def metaft_sizes(n: int) -> tuple[int, int]:
    """MetaFT-train/val sizes for N labels: 80/20, except the paper's 25 → 15/10 and 10 → 5/5."""
    special = {25: (15, 10), 10: (5, 5)}
    if n in special:
        return special[n]
    if n < 2:
        raise ValueError(f"N must be ≥ 2 labelled examples, got {n}")
    n_val = max(1, round(0.2 * n))
    return n - n_val, n_val


def labelled_indices(pool: np.ndarray, n: int, seed: int) -> np.ndarray:
    """The first n of a seeded permutation of the PT-fold records: nested across N for one seed."""
    if n > len(pool):
        raise ValueError(f"asked for {n} labelled examples, only {len(pool)} records in the PT folds")
    return np.random.default_rng(seed).permutation(pool)[:n]


def pairs(x: np.ndarray, y: np.ndarray, idx: np.ndarray) -> list[tuple[torch.Tensor, torch.Tensor]]:
    return [(torch.from_numpy(x[i]), torch.from_numpy(y[i])) for i in idx]


def stack(items):
    return tuple(torch.stack(t) for t in zip(*items))
