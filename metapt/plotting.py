"""Shared figure output: non-interactive backend, atomic write, the format taken from the suffix."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from metapt.io import atomic_path  # noqa: E402


def save_figure(fig, out: Path) -> Path:
    fig.tight_layout()
    with atomic_path(out) as tmp:
        fig.savefig(tmp, format=out.suffix.lstrip(".") or "png", dpi=120)
    plt.close(fig)
    return out
