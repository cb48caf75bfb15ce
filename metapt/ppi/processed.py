"""The processed PPI data on disk: one graphs file for both sources, the splits, the planted truth."""

from __future__ import annotations

import numpy as np

from metapt.domain import processed_dir
from metapt.io import read_json
from metapt.ppi.legacy import load_converted
from metapt.ppi.splits import PPISplits

GRAPHS, SPLITS, TRUTH = "graphs.pt", "splits.npz", "truth.json"


def load_processed() -> tuple[list, PPISplits, dict | None]:
    d = processed_dir("ppi")
    graphs = list(load_converted(d / GRAPHS))
    with np.load(d / SPLITS) as z:
        splits = PPISplits(**{k: (int(z[k]) if z[k].ndim == 0 else z[k]) for k in z.files})
    truth = read_json(d / TRUTH) if (d / TRUTH).exists() else None
    return graphs, splits, truth
