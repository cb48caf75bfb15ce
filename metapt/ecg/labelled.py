"""The MetaFT/FT split sizes of an ECG run (the paper's small-N splits); the labelled records themselves
are drawn by ``metapt.labelled``, nested across N."""

from __future__ import annotations

from metapt.labelled import train_val_sizes


def metaft_sizes(n: int) -> tuple[int, int]:
    """MetaFT-train/val sizes for N labels: 80/20, except the paper's 25 → 15/10 and 10 → 5/5."""
    return {25: (15, 10), 10: (5, 5)}.get(n) or train_val_sizes(n)
