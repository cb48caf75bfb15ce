"""Synthetic ECG generator: agrees with neurokit2, label priors, determinism, PTB-XL layout, honest learnability."""

from __future__ import annotations

import ast
import csv
import signal
import warnings
from contextlib import contextmanager

import numpy as np
import pytest
from pydantic import ValidationError
from scipy.signal import find_peaks
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import cross_val_predict
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from metapt.ecg.synth import AI0, BI0, CLASSES, LEADS, TI0, SynthECGConfig, ecgsyn_batch, expected_label_rates, generate, preset, sample_labels, write_ptbxl_layout
from metapt.io import sha256_file


@pytest.fixture(scope="module")
def data400():
    cfg = preset("default", n_records=400, seed=0)
    return cfg, *generate(cfg)


# ---------------------------------------------------------------- agreement with neurokit2


@contextmanager
def time_limit(seconds: int):
    """neurokit2 0.2.13's ECGSYN hangs forever for ~1 in 200 seeds: fail instead of hanging (main thread only)."""
    def _raise(signum, frame):
        raise TimeoutError(f"nk.ecg_simulate did not finish within {seconds} s (the known hang?)")
    old = signal.signal(signal.SIGALRM, _raise)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)


def average_beat(x: np.ndarray, hr: float, fs: int = 100) -> tuple[np.ndarray, int]:
    """Mean [-0.3 s, +0.5 s] window around the R peaks of lead I (R dominates there)."""
    s = x[:, 0]
    peaks, _ = find_peaks(s, distance=int(0.6 * 60 / hr * fs), prominence=0.5 * np.ptp(s))
    peaks = peaks[(peaks >= 30) & (peaks < len(s) - 50)]
    return np.mean([x[p - 30: p + 50] for p in peaks], axis=0), len(peaks)


NK_SETTINGS = {  # (heart rate, random_state, ti, ai, bi): seeds checked not to hit neurokit2's hang
    "default_waves": (70.0, 1, TI0, AI0, BI0),
    "mi_sttc_cd_like": (60.0, 2, TI0 + [0, 0, 0, 0, -20], AI0 * [1, 4, 1, 1, -0.6], BI0 * [1, 1.8, 1.5, 1.5, 1.4]),
    "hyp_like_fast": (90.0, 3, TI0 - [30, 0, 0, 0, 0], AI0 * [1, 1, 1.8, 2.5, -0.3], BI0),
}


@pytest.mark.parametrize("name", sorted(NK_SETTINGS))
def test_batched_ecgsyn_matches_neurokit(name):
    import neurokit2 as nk
    hr, seed, ti, ai, bi = NK_SETTINGS[name]
    with warnings.catch_warnings(), time_limit(30):
        warnings.simplefilter("ignore")
        ref = nk.ecg_simulate(duration=10, sampling_rate=100, method="multileads", heart_rate=hr, heart_rate_std=1,
                              noise=0, random_state=seed, ti=tuple(ti), ai=tuple(ai), bi=tuple(bi)).to_numpy()
    ours = ecgsyn_batch(np.array([hr]), ti[None], ai[None], bi[None], [np.random.default_rng(seed)])[0]
    assert ours.shape == ref.shape == (1000, 12)
    np.testing.assert_allclose(ours.min(0), -0.4, atol=1e-9)
    np.testing.assert_allclose(ours.max(0), 1.2, atol=1e-9)
    a, na = average_beat(ours, hr)
    b, nb = average_beat(ref, hr)
    assert abs(na - nb) <= 1 and na >= 0.8 * 10 * hr / 60 - 2
    corr = np.array([np.corrcoef(a[:, lead], b[:, lead])[0, 1] for lead in range(12)])
    assert corr.min() >= 0.95, dict(zip(LEADS, corr.round(3)))


def test_beat_rate_follows_heart_rate():
    hr = np.array([50.0, 75.0, 110.0])
    x = ecgsyn_batch(hr, np.tile(TI0, (3, 1)), np.tile(AI0, (3, 1)), np.tile(BI0, (3, 1)),
                     [np.random.default_rng(i) for i in range(3)], hr_std=0.5, burn_in_s=1.0)
    for h, xi in zip(hr, x):
        peaks, _ = find_peaks(xi[:, 0], distance=int(0.6 * 60 / h * 100), prominence=0.5 * np.ptp(xi[:, 0]))
        assert 60 * 100 / np.median(np.diff(peaks)) == pytest.approx(h, rel=0.06)


# ---------------------------------------------------------------- config and labels


def test_config_is_strict():
    with pytest.raises(ValidationError):
        SynthECGConfig(n_record=10)  # typo: extra='forbid'
    with pytest.raises(ValidationError):
        SynthECGConfig(sfint=250)  # not a multiple of fs=100
    with pytest.raises(ValidationError):
        SynthECGConfig(severity=(0.5, 1.5))
    with pytest.raises(KeyError):
        preset("nope")
    assert preset("prototype", n_records=5).cd_qrs_width == 2.4


def test_label_sampler_priors():
    cfg = SynthECGConfig()
    rng = np.random.default_rng(0)
    y = np.stack([sample_labels(rng, cfg) for _ in range(20000)])
    rates = expected_label_rates(cfg)
    np.testing.assert_allclose(y.mean(0), rates, atol=0.012)
    assert rates[0] == cfg.p_norm and rates[1] > rates[2] > rates[3] > rates[4]  # PTB-XL order: MI > STTC > CD > HYP
    assert not (y[:, 0] & y[:, 1:].any(1)).any(), "NORM records carry no other superclass"
    assert set(y[:, 1:].sum(1)[y[:, 0] == 0]) == {1, 2}


def test_generated_labels_and_signals(data400):
    cfg, X, Y, info = data400
    assert X.shape == (400, 1000, 12) and X.dtype == np.float32 and np.isfinite(X).all()
    assert Y.shape == (400, 5) and Y.dtype == np.int8 and set(np.unique(Y)) <= {0, 1}
    np.testing.assert_allclose(Y.mean(0), expected_label_rates(cfg), atol=0.08)  # ≈ 3 binomial sd at n = 400
    flipped = (Y != info["y_true"]).any(1).mean()
    assert flipped < 0.08, "3 % of labels are redrawn (some redraws land on the same label)"
    sev = info["severity"]
    assert (sev[:, 0] == 0).all(), "NORM has no severity"
    np.testing.assert_array_equal(sev[:, 1:] > 0, info["y_true"][:, 1:].astype(bool))
    assert sev.max() <= cfg.severity[1] and sev[sev > 0].min() >= cfg.severity[0]
    assert set(info["territory"][info["y_true"][:, 1] == 1]) <= {"inferior", "anterior", "lateral"}
    assert np.abs(X).max() < 10, "plausible mV"


def test_determinism_and_batch_independence():
    a = generate(preset("default", n_records=6, seed=7))
    b = generate(preset("default", n_records=6, seed=7, batch_size=4))
    c = generate(preset("default", n_records=6, seed=8))
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[1], b[1])
    assert not np.allclose(a[0], c[0])
    # record i does not depend on how many records are generated
    d = generate(preset("default", n_records=3, seed=7))
    np.testing.assert_array_equal(a[0][:3], d[0])


# ---------------------------------------------------------------- PTB-XL layout


@pytest.fixture(scope="module")
def layout(tmp_path_factory, data400):
    _, X, Y, _ = data400
    X, Y = X[:25], Y.copy()[:25]
    Y[3] = 0  # a record with no superclass (only the rhythm code)
    root = write_ptbxl_layout(X, Y, tmp_path_factory.mktemp("ptbxl") / "synthetic")
    return root, X, Y


def test_layout_round_trips_through_wfdb(layout):
    import wfdb
    root, X, _ = layout
    for i in (0, 13, 24):
        sig, fields = wfdb.rdsamp(str(root / f"records100/00000/{i + 1:05d}_lr"))
        assert sig.shape == (1000, 12)
        assert fields["fs"] == 100 and fields["units"] == ["mV"] * 12 and tuple(fields["sig_name"]) == LEADS
        np.testing.assert_allclose(sig, X[i], atol=1e-3)
        hdr = wfdb.rdheader(str(root / f"records100/00000/{i + 1:05d}_lr"))
        assert hdr.fmt == ["16"] * 12 and hdr.adc_gain == [1000.0] * 12 and hdr.baseline == [0] * 12


def test_layout_csvs_and_checksums(layout):
    root, X, Y = layout
    with open(root / "ptbxl_database.csv", newline="") as fh:
        db = list(csv.DictReader(fh))
    with open(root / "scp_statements.csv", newline="") as fh:
        st = {r[""]: r for r in csv.DictReader(fh)}
    assert len(db) == len(X)
    assert {"ecg_id", "patient_id", "scp_codes", "strat_fold", "filename_lr", "filename_hr"} <= set(db[0])
    code_class = {c: r["diagnostic_class"] for c, r in st.items() if r["diagnostic"] and float(r["diagnostic"]) == 1}
    assert set(code_class.values()) == set(CLASSES)
    for i, row in enumerate(db):
        assert int(row["ecg_id"]) == i + 1 and row["filename_lr"] == f"records100/00000/{i + 1:05d}_lr"
        assert row["filename_hr"] == f"records500/00000/{i + 1:05d}_hr"
        codes = ast.literal_eval(row["scp_codes"])
        assert isinstance(codes, dict)
        y = np.zeros(5, np.int8)
        for c in codes:
            if c in code_class:
                y[CLASSES.index(code_class[c])] = 1
        np.testing.assert_array_equal(y, Y[i])
    assert {int(r["strat_fold"]) for r in db} == set(range(1, 11))

    lines = (root / "SHA256SUMS.txt").read_text().splitlines()
    listed = {}
    for line in lines:
        digest, rel = line.split("  ", 1)
        listed[rel] = digest
    on_disk = {p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file()} - {"SHA256SUMS.txt"}
    assert set(listed) == on_disk and len(on_disk) == 2 * len(X) + 2
    for rel, digest in listed.items():
        assert sha256_file(root / rel) == digest


def test_real_reader_runs_unchanged(layout):
    from metapt.ecg import acquire, data
    root, X, Y = layout
    assert acquire.verify_sha256sums(root) == 2 * len(X) + 2
    table = data.load_labels(root)
    np.testing.assert_array_equal(data.label_matrix(table), Y)
    assert len(data.load_labels(root, keep_unlabelled=False)) == len(X) - 1
    np.testing.assert_allclose(data.read_records(root, table, n_jobs=1), X, atol=1e-3)


def test_layout_refuses_bad_input_and_existing_folder(tmp_path, data400):
    _, X, Y, _ = data400
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "keep.txt").write_text("x")
    with pytest.raises(FileExistsError):
        write_ptbxl_layout(X[:2], Y[:2], tmp_path / "full")
    bad = X[:2].copy()
    bad[0, 0, 0] = np.nan
    with pytest.raises(ValueError):
        write_ptbxl_layout(bad, Y[:2], tmp_path / "nan")
    with pytest.raises(ValueError):
        write_ptbxl_layout(X[:2], Y[:3], tmp_path / "mismatch")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["full"], "nothing half-written"
    (tmp_path / "empty").mkdir()
    write_ptbxl_layout(X[:2], Y[:2], tmp_path / "empty")  # an empty folder is fine
    assert (tmp_path / "empty" / "SHA256SUMS.txt").is_file()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["empty", "full"], "no temp folder left behind"


# ---------------------------------------------------------------- learnability (honest)


def crude_features(X: np.ndarray, fs: int = 100) -> np.ndarray:
    """Per-lead mean, sd, peak-to-peak and log power in 5 bands: 96 features a linear probe can use."""
    f = np.fft.rfftfreq(X.shape[1], 1 / fs)
    power = np.abs(np.fft.rfft(X - X.mean(1, keepdims=True), axis=1)) ** 2
    bands = [(0.5, 3), (3, 8), (8, 15), (15, 30), (30, 50)]
    bp = np.stack([np.log(power[:, (f >= lo) & (f < hi)].sum(1) + 1e-8) for lo, hi in bands], -1)
    return np.concatenate([X.mean(1), X.std(1), np.ptp(X, 1), bp.reshape(len(X), -1)], 1)


def probe_auroc(X: np.ndarray, Y: np.ndarray) -> list[float]:
    model = make_pipeline(StandardScaler(), LogisticRegression(C=0.1, max_iter=2000))
    F = crude_features(X)
    return [roc_auc_score(Y[:, k], cross_val_predict(model, F, Y[:, k], cv=5, method="predict_proba")[:, 1])
            for k in range(Y.shape[1])]


def test_learnable_but_not_trivial(data400):
    _, X, Y, _ = data400
    aucs = probe_auroc(X, Y)
    macro = float(np.mean(aucs))
    print(f"crude-feature linear probe, 400 records: macro AUROC {macro:.3f}",
          dict(zip(CLASSES, np.round(aucs, 3))))
    assert macro > 0.6  # measured 0.80 here (0.83 on 1000 records); target band 0.75–0.85 (docs/background.md, "Synthetic ECG targets")
    Xp, Yp, _ = generate(preset("prototype", n_records=400, seed=0))
    easy = float(np.mean(probe_auroc(Xp, Yp)))
    print(f"prototype preset: macro AUROC {easy:.3f}")
    assert easy > macro, "the difficulty knobs make the task harder than the prototype"
