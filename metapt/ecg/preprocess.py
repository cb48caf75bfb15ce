"""Stage preprocess_ecg: read the PTB-XL folder (synthetic or real: one path), z-score on folds 1-9, pad to 1024 samples."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from metapt.config import Profile
from metapt.domain import processed_dir, raw_dir
from metapt.ecg.data import DATABASE_CSV, label_matrix, load_labels, read_records
from metapt.ecg.data import preprocess as normalise
from metapt.ecg.processed import FOLDS, LABELS, SIGNALS
from metapt.io import atomic_dir, read_json, write_json


def preprocess(profile: Profile) -> Path:
    d = profile.ecg.data
    raw = raw_dir("ecg")
    root = raw / read_json(raw / "source.json")["root"]
    if not (root / DATABASE_CSV).exists():
        raise FileNotFoundError(f"{root / DATABASE_CSV} missing: is {raw} a PTB-XL folder?")
    table = load_labels(root)  # the paper keeps records without a superclass as all-zero rows
    folds = table["strat_fold"].to_numpy()
    x = normalise(read_records(root, table, n_jobs=2), folds, train_folds=range(1, 10), pad_to=d.pad_to, highpass=d.highpass)
    with atomic_dir(processed_dir("ecg")) as tmp:
        np.save(tmp / SIGNALS, x.signals)
        np.save(tmp / LABELS, label_matrix(table).astype(np.float32))
        np.save(tmp / FOLDS, folds)
        write_json(tmp / "manifest.json", {"n_records": len(folds), "pad_to": d.pad_to, "highpass": d.highpass,
                                           "lead_mean": x.mean.tolist(), "lead_std": x.std.tolist()})
    return processed_dir("ecg")
