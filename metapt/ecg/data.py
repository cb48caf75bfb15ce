"""The PTB-XL layout: labels, 100 Hz signals, the paper's preprocessing and folds (the download and its checks: ``metapt.ecg.acquire``).

PhysioNet publishes one zip per version; ``wfdb.dl_database`` cannot pin a version and skips the CSVs, so
it is not used. Every extracted file listed in the archive's ``SHA256SUMS.txt`` is verified before use.
Labels are the 5 diagnostic superclasses (NORM, MI, STTC, CD, HYP) as multi-hot rows. The paper's
protocol: 100 Hz, no filtering, PT = folds 1–9, test = fold 10, a global per-lead z-score fitted on the
training folds, zero-padding 1000 → 1024 samples.
"""

from __future__ import annotations

import ast
import multiprocessing
import os
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import NamedTuple, Sequence

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

PHYSIONET_BASE = "https://physionet.org/static/published-projects/ptb-xl"
PTBXL_STEM = "ptb-xl-a-large-publicly-available-electrocardiography-dataset"
VERSIONS = ("1.0.3", "1.0.1")  # 1.0.3 is current (21,799 records); the paper used 1.0.1 (21,837)
DEFAULT_VERSION = "1.0.3"
SUPERCLASSES = ("NORM", "MI", "STTC", "CD", "HYP")
LEADS = ("I", "II", "III", "AVR", "AVL", "AVF", "V1", "V2", "V3", "V4", "V5", "V6")
FS = 100
N_SAMPLES = 1000
SUMS_FILE = "SHA256SUMS.txt"
DATABASE_CSV = "ptbxl_database.csv"
STATEMENTS_CSV = "scp_statements.csv"
_VERIFIED_MARKER = ".metapt-sha256sums-ok"

PAPER_FOLDS = {"pt": tuple(range(1, 10)), "test": (10,)}
STANDARD_FOLDS = {"train": tuple(range(1, 9)), "val": (9,), "test": (10,)}
PROTOCOLS = {"paper": PAPER_FOLDS, "standard": STANDARD_FOLDS}


class PTBXLFormatError(ValueError):
    """A PTB-XL file does not have the expected layout (missing column, wrong signal shape, ...)."""


def _check_version(version: str) -> str:
    if version not in VERSIONS:
        raise ValueError(f"unknown PTB-XL version {version!r}; known versions: {', '.join(VERSIONS)}")
    return version


def ptbxl_folder(version: str = DEFAULT_VERSION) -> str:
    """Name of the top-level folder inside the version's zip (the zip name without ``.zip``)."""
    return f"{PTBXL_STEM}-{_check_version(version)}"


def ptbxl_url(version: str = DEFAULT_VERSION, base: str = PHYSIONET_BASE) -> str:
    """URL of the version-pinned PTB-XL zip on PhysioNet."""
    return f"{base.rstrip('/')}/{ptbxl_folder(version)}.zip"


# ----------------------------------------------------------------------------------------------- labels

def _require(df: pd.DataFrame, cols: Sequence[str], path: Path) -> None:
    if missing := [c for c in cols if c not in df.columns]:
        raise PTBXLFormatError(f"{path} lacks column(s) {', '.join(missing)}; has {', '.join(map(str, df.columns))}")


def load_labels(root: str | os.PathLike, keep_unlabelled: bool = True) -> pd.DataFrame:
    """The record table (indexed by ``ecg_id``) with int8 multi-hot columns NORM, MI, STTC, CD, HYP.

    Every ``scp_codes`` key whose ``scp_statements.csv`` row has ``diagnostic == 1`` sets its
    ``diagnostic_class`` (likelihoods are ignored, as in the PTB-XL benchmark). Records with no
    superclass are kept as all-zero rows (the paper) or dropped (``keep_unlabelled=False``, the benchmark).
    Use :func:`label_matrix` for the float32 [N, 5] array.
    """
    root = Path(root)
    db_path, st_path = root / DATABASE_CSV, root / STATEMENTS_CSV
    for p in (db_path, st_path):
        if not p.is_file():
            raise FileNotFoundError(f"{p} not found (is {root} a PTB-XL folder?)")
    db = pd.read_csv(db_path)
    _require(db, ("ecg_id", "scp_codes", "strat_fold", "filename_lr"), db_path)
    st = pd.read_csv(st_path, index_col=0)
    _require(st, ("diagnostic", "diagnostic_class"), st_path)

    diag = st[pd.to_numeric(st["diagnostic"], errors="coerce") == 1]["diagnostic_class"]
    if bad := sorted(set(diag.dropna()) - set(SUPERCLASSES)):
        raise PTBXLFormatError(f"{st_path}: unknown diagnostic_class value(s) {bad}; expected {SUPERCLASSES}")
    code_to_class = {code: SUPERCLASSES.index(c) for code, c in diag.dropna().items()}

    y = np.zeros((len(db), len(SUPERCLASSES)), dtype=np.int8)
    for i, (ecg_id, raw) in enumerate(zip(db["ecg_id"], db["scp_codes"])):
        try:
            codes = ast.literal_eval(raw)
        except (ValueError, SyntaxError) as e:
            raise PTBXLFormatError(f"{db_path}: ecg_id {ecg_id}: scp_codes {raw!r} is not a dict literal ({e})") from None
        if not isinstance(codes, dict):
            raise PTBXLFormatError(f"{db_path}: ecg_id {ecg_id}: scp_codes {raw!r} is not a dict")
        for code in codes:
            if (k := code_to_class.get(code)) is not None:
                y[i, k] = 1
    for k, name in enumerate(SUPERCLASSES):
        db[name] = y[:, k]
    db["strat_fold"] = db["strat_fold"].astype(int)
    db = db.set_index("ecg_id", drop=False).sort_index()
    if not keep_unlabelled:
        db = db[db[list(SUPERCLASSES)].to_numpy().any(axis=1)]
    return db


def label_matrix(table: pd.DataFrame) -> np.ndarray:
    """float32 [N, 5] multi-hot labels in SUPERCLASSES order, from :func:`load_labels`'s table."""
    return table[list(SUPERCLASSES)].to_numpy(np.float32)


# ---------------------------------------------------------------------------------------------- signals

def _read_one(root: str, rel: str) -> np.ndarray:
    import wfdb

    path = os.path.join(root, rel)
    try:
        sig, fields = wfdb.rdsamp(path)
    except FileNotFoundError as e:
        raise FileNotFoundError(f"PTB-XL record {rel} not found under {root}: {e}") from None
    if sig.shape != (N_SAMPLES, len(LEADS)):
        raise PTBXLFormatError(f"record {rel}: signal shape {sig.shape}, expected ({N_SAMPLES}, {len(LEADS)}) at {FS} Hz")
    if fields.get("fs") != FS:
        raise PTBXLFormatError(f"record {rel}: sampling rate {fields.get('fs')} Hz, expected {FS}")
    names = tuple(str(n).upper() for n in fields.get("sig_name") or ())
    if names != LEADS:
        raise PTBXLFormatError(f"record {rel}: leads {names}, expected {LEADS}")
    return sig.astype(np.float32)


def _read_chunk(root: str, rels: list[str]) -> np.ndarray:
    return np.stack([_read_one(root, r) for r in rels]) if rels else np.zeros((0, N_SAMPLES, len(LEADS)), np.float32)


def read_records(root: str | os.PathLike, table: pd.DataFrame, n_jobs: int = 2, chunk_size: int = 256,
                 progress: bool = True, mp_context: str | None = None) -> np.ndarray:
    """Read the 100 Hz records (``filename_lr``) in ``table`` order → float32 [N, 1000, 12] in mV.

    ``n_jobs > 1`` reads chunks of ``chunk_size`` records in a pool of that many processes. The workers
    only run numpy/wfdb file parsing, so ``fork`` (the default where available) is safe even with torch
    loaded, and unlike ``spawn`` it works from scripts without an ``if __name__ == "__main__"`` guard;
    pass ``mp_context="spawn"`` to override.
    """
    _require(table, ("filename_lr",), Path(root) / DATABASE_CSV)
    root = str(root)
    rels = [str(r) for r in table["filename_lr"]]
    out = np.empty((len(rels), N_SAMPLES, len(LEADS)), dtype=np.float32)
    chunks = [(i, rels[i:i + chunk_size]) for i in range(0, len(rels), max(1, chunk_size))]
    with tqdm(total=len(rels), desc="PTB-XL records", unit="rec", disable=not progress) as bar:
        if n_jobs <= 1 or len(chunks) <= 1:
            for i, part in chunks:
                out[i:i + len(part)] = _read_chunk(root, part)
                bar.update(len(part))
        else:
            if mp_context is None:
                mp_context = "fork" if "fork" in multiprocessing.get_all_start_methods() else "spawn"
            ctx = multiprocessing.get_context(mp_context)
            with ProcessPoolExecutor(max_workers=min(n_jobs, len(chunks)), mp_context=ctx) as pool:
                futures = [(i, len(part), pool.submit(_read_chunk, root, part)) for i, part in chunks]
                for i, n, fut in futures:
                    out[i:i + n] = fut.result()
                    bar.update(n)
    return out


# ------------------------------------------------------------------------------------------- preprocess

class Preprocessed(NamedTuple):
    """Normalised, padded signals [N, pad_to, 12] and the per-lead statistics fitted on the training folds."""

    signals: np.ndarray
    mean: np.ndarray
    std: np.ndarray


def highpass_filter(signals: np.ndarray, cutoff: float = 0.5, fs: float = FS, order: int = 5,
                    chunk: int = 1024) -> np.ndarray:
    """Zero-phase Butterworth high-pass along time (axis 1) of [N, T, C] signals, in chunks; float32."""
    from scipy.signal import butter, sosfiltfilt

    sos = butter(order, cutoff, btype="highpass", fs=fs, output="sos")
    out = np.empty(signals.shape, dtype=np.float32)
    for i in range(0, len(signals), chunk):
        out[i:i + chunk] = sosfiltfilt(sos, signals[i:i + chunk], axis=1)
    return out


def preprocess(signals: np.ndarray, folds: Sequence[int] | np.ndarray, train_folds: Sequence[int],
               pad_to: int = 1024, highpass: bool = False, eps: float = 1e-8) -> Preprocessed:
    """Optional 0.5 Hz high-pass → global per-lead z-score fitted on ``train_folds`` only → zero-pad to ``pad_to``.

    The statistics pool every sample of every training record per lead; padding is appended after the
    normalisation, so padded samples are 0 (the training mean).
    """
    signals = np.asarray(signals)
    folds = np.asarray(folds)
    if signals.ndim != 3 or signals.shape[2] != len(LEADS):
        raise PTBXLFormatError(f"signals must be [N, T, {len(LEADS)}], got shape {signals.shape}")
    if folds.shape != (len(signals),):
        raise ValueError(f"folds has shape {folds.shape}, expected ({len(signals)},)")
    n, t, c = signals.shape
    if pad_to < t:
        raise ValueError(f"pad_to={pad_to} is shorter than the signals ({t} samples)")
    train = np.isin(folds, list(train_folds))
    if not train.any():
        raise ValueError(f"no record is in the training folds {tuple(train_folds)}")
    if highpass:
        signals = highpass_filter(signals)
    x_train = signals[train]
    mean = x_train.mean(axis=(0, 1), dtype=np.float64)
    std = x_train.std(axis=(0, 1), dtype=np.float64)
    del x_train
    if not (np.isfinite(mean).all() and np.isfinite(std).all()):
        raise ValueError("training signals contain NaN or inf")
    std = np.maximum(std, eps)
    out = np.zeros((n, pad_to, c), dtype=np.float32)
    for i in range(0, n, 1024):
        out[i:i + 1024, :t] = (signals[i:i + 1024] - mean.astype(np.float32)) / std.astype(np.float32)
    return Preprocessed(out, mean.astype(np.float32), std.astype(np.float32))


# ------------------------------------------------------------------------------------------------ folds

def split_indices(folds: Sequence[int] | np.ndarray, protocol: str = "paper") -> dict[str, np.ndarray]:
    """Row indices per split: ``paper`` → pt (folds 1–9), test (10); ``standard`` → train (1–8), val (9), test (10)."""
    if protocol not in PROTOCOLS:
        raise ValueError(f"unknown protocol {protocol!r}; choose from {', '.join(PROTOCOLS)}")
    folds = np.asarray(folds)
    return {name: np.flatnonzero(np.isin(folds, fs)) for name, fs in PROTOCOLS[protocol].items()}


def paper_ft_indices(folds: Sequence[int] | np.ndarray, n: int, seed: int) -> np.ndarray:
    """``n`` fine-tuning rows drawn from folds 1–9 with a seeded permutation (the paper's FT sets)."""
    pool = split_indices(folds, "paper")["pt"]
    if n > len(pool):
        raise ValueError(f"asked for {n} fine-tuning records but folds 1-9 hold only {len(pool)}")
    return pool[np.random.default_rng(seed).permutation(len(pool))[:n]]
