"""Stage preprocess_ppi: one graphs file for both sources, the paper's splits, the planted truth."""

from __future__ import annotations

import dataclasses
import shutil
from pathlib import Path

import numpy as np

from metapt.config import Profile
from metapt.domain import processed_dir, raw_dir
from metapt.io import atomic_dir, read_json, write_json
from metapt.ppi.legacy import load_converted
from metapt.ppi.processed import GRAPHS, SPLITS, TRUTH
from metapt.ppi.splits import make_splits, species_ids
from metapt.ppi.synth import TRUTH_FILE


def _count(value) -> int:
    """An index array's length, or the value of a count field (``n_ft_tasks``: np.size of an int is 1)."""
    return value if isinstance(value, int) else int(np.size(value))


def preprocess(profile: Profile) -> Path:
    """One graphs file for both sources, the paper's splits, and (synthetic) the planted truth."""
    raw = raw_dir("ppi")
    source = read_json(raw / "source.json")
    graphs = load_converted(raw / source["graphs"])
    splits = make_splits(species_ids(graphs))
    with atomic_dir(processed_dir("ppi")) as tmp:
        shutil.copy2(raw / source["graphs"], tmp / GRAPHS)
        np.savez(tmp / SPLITS, **{f.name: np.asarray(getattr(splits, f.name)) for f in dataclasses.fields(splits)})
        if (raw / TRUTH_FILE).exists():
            (tmp / TRUTH).write_text((raw / TRUTH_FILE).read_text())
        write_json(tmp / "manifest.json", {"n_graphs": len(graphs), "source": source, "splits": {f.name: _count(getattr(splits, f.name)) for f in dataclasses.fields(splits)}})
    return processed_dir("ppi")
