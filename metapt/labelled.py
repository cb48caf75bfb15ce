"""The labelled examples of a run, shared by the domains that learn from N labels (ECG, digits):
N of the PT pool, nested across N for one seed, as (x, y) tensor pairs."""

from __future__ import annotations

import numpy as np
import torch


def labelled_indices(pool: np.ndarray, n: int, seed: int) -> np.ndarray:
    """The first n of a seeded permutation of the PT pool: nested across N for one seed."""
    if n > len(pool):
        raise ValueError(f"asked for {n} labelled examples, only {len(pool)} in the PT pool")
    return np.random.default_rng(seed).permutation(pool)[:n]


def train_val_sizes(n: int) -> tuple[int, int]:
    """MetaFT-train/val (and final FT train/val) sizes for N labels: 80/20, at least one of each."""
    if n < 2:
        raise ValueError(f"N must be ≥ 2 labelled examples, got {n}")
    n_val = max(1, round(0.2 * n))
    return n - n_val, n_val


def pairs(x: np.ndarray, y: np.ndarray, idx: np.ndarray) -> list[tuple[torch.Tensor, torch.Tensor]]:
    return [(torch.from_numpy(x[i]), torch.from_numpy(y[i])) for i in idx]


def stack(items):
    return tuple(torch.stack(t) for t in zip(*items))
