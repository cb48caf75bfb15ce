"""ECG data stages. The embedded profile simulates 12-lead records and writes them as a PTB-XL
folder (WFDB records, ``ptbxl_database.csv``, ``SHA256SUMS.txt``); the paper profile downloads
PTB-XL. From there on it is one path: read the records, z-score on folds 1–9, pad to 1024 samples.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from metapt import runs
from metapt.config import Profile
from metapt.ecg import synth
from metapt.ecg.data import DATABASE_CSV, fetch_ptbxl, label_matrix, load_labels, preprocess as normalise, read_records
from metapt.ecg.processed import FOLDS, LABELS, SIGNALS
from metapt.io import atomic_dir, read_json, write_json


def acquire(profile: Profile) -> Path:
    d, out = profile.ecg.data, runs.raw_dir("ecg")
    if d.source == "ptbxl":
        out.mkdir(parents=True, exist_ok=True)  # kept between attempts: the download resumes
        root = fetch_ptbxl(d.version, out, d.sha256, d.size, url=d.url)
        write_json(out / "source.json", {"source": "ptbxl", "version": d.version, "root": str(root.relative_to(out))})
        return out
    x, y, _ = synth.generate(synth.preset("default", n_records=d.n_records, seed=d.seed, **d.generator))
    with atomic_dir(out) as tmp:
        synth.write_ptbxl_layout(x, y, tmp / "ptbxl", seed=d.seed)
        write_json(tmp / "source.json", {"source": "synthetic", "n_records": d.n_records, "seed": d.seed, "generator": d.generator, "root": "ptbxl"})
    return out


def preprocess(profile: Profile) -> Path:
    d = profile.ecg.data
    raw = runs.raw_dir("ecg")
    root = raw / read_json(raw / "source.json")["root"]
    if not (root / DATABASE_CSV).exists():
        raise FileNotFoundError(f"{root / DATABASE_CSV} missing: is {raw} a PTB-XL folder?")
    table = load_labels(root)  # the paper keeps records without a superclass as all-zero rows
    folds = table["strat_fold"].to_numpy()
    x = normalise(read_records(root, table, n_jobs=2), folds, train_folds=range(1, 10), pad_to=d.pad_to, highpass=d.highpass)
    with atomic_dir(runs.processed_dir("ecg")) as tmp:
        np.save(tmp / SIGNALS, x.signals)
        np.save(tmp / LABELS, label_matrix(table).astype(np.float32))
        np.save(tmp / FOLDS, folds)
        write_json(tmp / "manifest.json", {"n_records": len(folds), "pad_to": d.pad_to, "highpass": d.highpass,
                                           "lead_mean": x.mean.tolist(), "lead_std": x.std.tolist()})
    return runs.processed_dir("ecg")
