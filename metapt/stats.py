"""Seed statistics for results tables: mean ± std, a t-based 95 % CI, and paired differences."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import stats


@dataclass(frozen=True)
class Summary:
    mean: float
    std: float
    n: int
    ci_low: float
    ci_high: float

    def __str__(self) -> str:
        return f"{self.mean:.4f} ± {self.std:.4f} (n={self.n}, 95% CI [{self.ci_low:.4f}, {self.ci_high:.4f}])"


def summarise(values) -> Summary:
    """Mean, sample std and the t-distribution 95 % CI of the mean (NaN bounds for n = 1)."""
    x = np.asarray(values, dtype=float)
    n = len(x)
    if n == 0:
        raise ValueError("no values to summarise")
    mean = float(x.mean())
    std = float(x.std(ddof=1)) if n > 1 else 0.0
    half = float(stats.t.ppf(0.975, n - 1) * std / np.sqrt(n)) if n > 1 else float("nan")
    return Summary(mean, std, n, mean - half, mean + half)


@dataclass(frozen=True)
class Paired:
    diff: Summary
    p_value: float  # two-sided paired t-test; NaN for n < 2 or zero variance


def paired(a, b) -> Paired:
    """a − b over matched seeds, with a two-sided paired t-test."""
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if a.shape != b.shape:
        raise ValueError(f"paired comparison needs matched seeds, got {a.shape} and {b.shape}")
    d = a - b
    p = float(stats.ttest_rel(a, b).pvalue) if len(d) > 1 and d.std() > 0 else float("nan")
    return Paired(summarise(d), p)
