"""The real PTB-XL path end to end against a local HTTP server serving a fixture in the exact PTB-XL layout.

The fixture is built here: WFDB format-16 records at gain 1000/mV under ``records100/NNNNN/xxxxx_lr``, the
two CSVs with the real column names, ``SHA256SUMS.txt``, all zipped under the version's top-level folder.
"""

from __future__ import annotations

import hashlib
import io
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import wfdb

from metapt.download import ChecksumError
from metapt.ecg.acquire import fetch_ptbxl, verify_sha256sums
from metapt.ecg.data import LEADS, SUPERCLASSES, PTBXLFormatError, highpass_filter, label_matrix, load_labels, paper_ft_indices, preprocess, ptbxl_folder, ptbxl_url, read_records, split_indices

# (scp_codes, strat_fold, expected multi-hot over NORM, MI, STTC, CD, HYP)
RECORDS = [
    ({"NORM": 100.0, "SR": 0.0}, 1, (1, 0, 0, 0, 0)),
    ({"IMI": 35.0, "ASMI": 100.0, "SR": 0.0}, 2, (0, 1, 0, 0, 0)),
    ({"NDT": 100.0}, 3, (0, 0, 1, 0, 0)),
    ({"LAFB": 100.0, "IRBBB": 50.0}, 4, (0, 0, 0, 1, 0)),
    ({"LVH": 100.0, "ISC_": 50.0, "SR": 0.0}, 5, (0, 0, 1, 0, 1)),
    ({"SR": 0.0}, 6, (0, 0, 0, 0, 0)),  # rhythm only: no superclass
    ({"NORM": 80.0, "LVH": 50.0}, 7, (1, 0, 0, 0, 1)),
    ({"AFIB": 100.0, "PVC": 100.0}, 8, (0, 0, 0, 0, 0)),  # rhythm + form only
    ({"IMI": 100.0, "LAFB": 100.0}, 9, (0, 1, 0, 1, 0)),
    ({"NORM": 100.0}, 10, (1, 0, 0, 0, 0)),
    ({"ISC_": 100.0}, 1, (0, 0, 1, 0, 0)),
    ({"NORM": 100.0, "SR": 0.0}, 10, (1, 0, 0, 0, 0)),
]
# code: (diagnostic, form, rhythm, diagnostic_class, diagnostic_subclass)
STATEMENTS = {
    "NDT": (1.0, 1.0, None, "STTC", "STTC"), "NST_": (1.0, 1.0, None, "STTC", "STTC"),
    "ISC_": (1.0, None, None, "STTC", "ISC_"), "NORM": (1.0, None, None, "NORM", "NORM"),
    "IMI": (1.0, None, None, "MI", "IMI"), "ASMI": (1.0, None, None, "MI", "AMI"),
    "LVH": (1.0, None, None, "HYP", "LVH"), "LAFB": (1.0, None, None, "CD", "LAFB/LPFB"),
    "IRBBB": (1.0, None, None, "CD", "IRBBB"), "PVC": (None, 1.0, None, None, None),
    "SR": (None, None, 1.0, None, None), "AFIB": (None, None, 1.0, None, None),
}
TEST_OFFSET = 3.0  # fold-10 records are shifted: statistics leaking from the test fold would show


def make_signals(n: int, seed: int = 0, folds=None) -> np.ndarray:
    rng = np.random.default_rng(seed)
    x = rng.normal(0.0, 0.4, (n, 1000, 12)) + np.linspace(-1.0, 1.0, 12)
    if folds is not None:
        x[np.asarray(folds) == 10] += TEST_OFFSET
    return x


def write_ptbxl(root: Path, signals: np.ndarray, records=RECORDS) -> None:
    """Write a PTB-XL folder: records100/, ptbxl_database.csv, scp_statements.csv, SHA256SUMS.txt."""
    rows = []
    for i, x in enumerate(signals):
        ecg_id = i + 1
        codes, fold, _ = records[i % len(records)]
        sub = f"{(ecg_id // 1000) * 1000:05d}"
        d = root / "records100" / sub
        d.mkdir(parents=True, exist_ok=True)
        wfdb.wrsamp(f"{ecg_id:05d}_lr", fs=100, units=["mV"] * 12, sig_name=list(LEADS), p_signal=x,
                    fmt=["16"] * 12, adc_gain=[1000.0] * 12, baseline=[0] * 12, write_dir=str(d))
        rows.append({"ecg_id": ecg_id, "patient_id": 15709.0 + i, "age": 56.0, "sex": i % 2, "height": None,
                     "weight": 63.0, "nurse": 2.0, "site": 0.0, "device": "CS-12   E",
                     "recording_date": "1984-11-09 09:17:34", "report": "sinusrhythmus",
                     "scp_codes": repr(codes), "heart_axis": None, "strat_fold": fold,
                     "filename_lr": f"records100/{sub}/{ecg_id:05d}_lr",
                     "filename_hr": f"records500/{sub}/{ecg_id:05d}_hr"})
    pd.DataFrame(rows).to_csv(root / "ptbxl_database.csv", index=False)
    st = pd.DataFrame.from_dict(STATEMENTS, orient="index",
                                columns=["diagnostic", "form", "rhythm", "diagnostic_class", "diagnostic_subclass"])
    st.insert(0, "description", "x")
    st.to_csv(root / "scp_statements.csv")
    lines = [f"{hashlib.sha256(p.read_bytes()).hexdigest()}  {p.relative_to(root).as_posix()}"
             for p in sorted(root.rglob("*")) if p.is_file()]
    (root / "SHA256SUMS.txt").write_text("\n".join(lines) + "\n")


def zip_folder(root: Path, top: str) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for p in sorted(root.rglob("*")):
            zf.write(p, f"{top}/{p.relative_to(root).as_posix()}")
    return buf.getvalue()


FOLDS = np.array([r[1] for r in RECORDS])


@pytest.fixture(scope="module")
def signals() -> np.ndarray:
    return make_signals(len(RECORDS), folds=FOLDS)


@pytest.fixture(scope="module")
def fixture_dir(tmp_path_factory, signals) -> Path:
    root = tmp_path_factory.mktemp("ptbxl") / ptbxl_folder("1.0.3")
    write_ptbxl(root, signals)
    return root


@pytest.fixture()
def local_copy(tmp_path, fixture_dir) -> Path:
    import shutil

    dst = tmp_path / fixture_dir.name
    shutil.copytree(fixture_dir, dst)
    return dst


def test_urls_and_versions():
    stem = "https://physionet.org/static/published-projects/ptb-xl/ptb-xl-a-large-publicly-available-electrocardiography-dataset"
    assert ptbxl_url() == f"{stem}-1.0.3.zip"
    assert ptbxl_url("1.0.1") == f"{stem}-1.0.1.zip"
    assert ptbxl_folder("1.0.1") == "ptb-xl-a-large-publicly-available-electrocardiography-dataset-1.0.1"
    with pytest.raises(ValueError, match="unknown PTB-XL version '1.0.2'.*1.0.3"):
        ptbxl_url("1.0.2")
    with pytest.raises(ValueError, match="unknown PTB-XL version"):
        fetch_ptbxl("2.0", "unused")


def test_fetch_verify_labels_read_preprocess(tmp_path, server, fixture_dir, signals):
    url = server.serve("ok/ptbxl-1.0.3.zip", zip_folder(fixture_dir, ptbxl_folder("1.0.3")))
    root = fetch_ptbxl("1.0.3", tmp_path, url=url, progress=False)
    assert root.name == ptbxl_folder("1.0.3") and (root / "records100/00000/00001_lr.dat").is_file()
    n_listed = len((root / "SHA256SUMS.txt").read_text().splitlines())
    assert verify_sha256sums(root) == n_listed == 2 * len(RECORDS) + 2
    # a second call reuses the verified extraction without touching the network
    n_requests = len(server.log)
    assert fetch_ptbxl("1.0.3", tmp_path, url=url, progress=False) == root
    assert len(server.log) == n_requests

    table = load_labels(root)
    assert list(table.index) == list(range(1, len(RECORDS) + 1))
    np.testing.assert_array_equal(label_matrix(table), np.array([r[2] for r in RECORDS], np.float32))
    assert list(SUPERCLASSES) == ["NORM", "MI", "STTC", "CD", "HYP"]

    x = read_records(root, table, n_jobs=2, chunk_size=5, progress=False)  # 3 chunks over 2 forked processes
    assert x.shape == (len(RECORDS), 1000, 12) and x.dtype == np.float32
    assert np.abs(x - signals).max() <= 1e-3  # WFDB format 16 at 1000/mV: 1 µV resolution
    np.testing.assert_array_equal(read_records(root, table, n_jobs=1, progress=False), x)

    folds = table["strat_fold"].to_numpy()
    split = split_indices(folds, "paper")
    out = preprocess(x, folds, train_folds=range(1, 10))
    train = x[split["pt"]]
    np.testing.assert_allclose(out.mean, train.mean(axis=(0, 1)), atol=1e-5)
    np.testing.assert_allclose(out.std, train.std(axis=(0, 1)), rtol=1e-5)
    assert out.signals.shape == (len(RECORDS), 1024, 12) and out.signals.dtype == np.float32
    assert not out.signals[:, 1000:].any()  # zero padding at the end
    np.testing.assert_allclose(out.signals[:, :1000], (x - out.mean) / out.std, atol=1e-5)
    z_train = out.signals[split["pt"], :1000]
    np.testing.assert_allclose(z_train.mean(axis=(0, 1)), 0.0, atol=1e-4)
    np.testing.assert_allclose(z_train.std(axis=(0, 1)), 1.0, atol=1e-4)
    # the test fold was not used for the fit: its shift survives normalisation
    assert (out.signals[split["test"], :1000].mean(axis=(0, 1)) > 0.5 * TEST_OFFSET / out.std).all()


def test_corrupted_file_fails_checksum_naming_it(tmp_path, server, local_copy):
    bad = local_copy / "records100/00000/00007_lr.dat"
    data = bytearray(bad.read_bytes())
    data[100] ^= 0xFF
    bad.write_bytes(bytes(data))
    with pytest.raises(ChecksumError, match=r"records100/00000/00007_lr\.dat") as ei:
        verify_sha256sums(local_copy)
    assert ei.value.path == bad
    # through fetch: the extraction and the unpinned zip are removed so the next call starts over
    url = server.serve("bad/ptbxl.zip", zip_folder(local_copy, ptbxl_folder("1.0.3")))
    dest = tmp_path / "data"
    with pytest.raises(ChecksumError, match="00007_lr.dat"):
        fetch_ptbxl("1.0.3", dest, url=url, progress=False)
    assert sorted(p.name for p in dest.iterdir()) == []


def test_missing_listed_file(local_copy):
    (local_copy / "records100/00000/00003_lr.hea").unlink()
    with pytest.raises(FileNotFoundError, match=r"records100/00000/00003_lr\.hea is listed in .*SHA256SUMS.txt but missing"):
        verify_sha256sums(local_copy)
    (local_copy / "SHA256SUMS.txt").unlink()
    with pytest.raises(FileNotFoundError, match="SHA256SUMS.txt not found"):
        verify_sha256sums(local_copy)


def test_unsafe_sums_entry_refused(local_copy):
    (local_copy / "SHA256SUMS.txt").write_text(f"{'0' * 64}  ../outside.txt\n")
    with pytest.raises(PTBXLFormatError, match="escapes"):
        verify_sha256sums(local_copy)


def test_keep_or_drop_unlabelled(fixture_dir):
    kept = load_labels(fixture_dir)
    dropped = load_labels(fixture_dir, keep_unlabelled=False)
    unlabelled = [i + 1 for i, r in enumerate(RECORDS) if not any(r[2])]
    assert unlabelled == [6, 8]
    assert len(kept) == len(RECORDS) and not label_matrix(kept.loc[unlabelled]).any()
    assert list(dropped.index) == [i for i in kept.index if i not in unlabelled]
    assert label_matrix(dropped).any(axis=1).all()


def test_highpass_removes_drift():
    t = np.arange(1000) / 100.0
    ecg_like = 0.5 * np.sin(2 * np.pi * 5.0 * t)
    drift = 2.0 * np.sin(2 * np.pi * 0.1 * t + 0.3)
    x = np.repeat((ecg_like + drift)[None, :, None], 12, axis=2).astype(np.float32)
    y = highpass_filter(x)[0, :, 0]
    mid = slice(200, 800)  # away from the filtfilt edge transients
    assert np.abs(y[mid] - ecg_like[mid]).max() < 0.015  # the 2 mV drift is gone, the 5 Hz content intact
    assert np.abs(y - ecg_like).max() < 0.25  # edges included
    folds = np.array([1])
    plain = preprocess(x, folds, [1])
    filt = preprocess(x, folds, [1], highpass=True)
    assert plain.std[0] > 1.4 and abs(filt.std[0] - ecg_like.std()) < 0.02
    assert abs(filt.mean[0]) < 0.01


def test_clear_errors(tmp_path, local_copy):
    db = pd.read_csv(local_copy / "ptbxl_database.csv")
    db.drop(columns="strat_fold").to_csv(local_copy / "ptbxl_database.csv", index=False)
    with pytest.raises(PTBXLFormatError, match="ptbxl_database.csv lacks column.*strat_fold"):
        load_labels(local_copy)
    with pytest.raises(FileNotFoundError, match="ptbxl_database.csv not found"):
        load_labels(tmp_path / "nowhere")

    # a 5 s record (500 samples) where 1000 are expected
    d = tmp_path / "short" / "records100" / "00000"
    d.mkdir(parents=True)
    wfdb.wrsamp("00001_lr", fs=100, units=["mV"] * 12, sig_name=list(LEADS), p_signal=np.zeros((500, 12)),
                fmt=["16"] * 12, adc_gain=[1000.0] * 12, baseline=[0] * 12, write_dir=str(d))
    table = pd.DataFrame({"filename_lr": ["records100/00000/00001_lr"]})
    with pytest.raises(PTBXLFormatError, match=r"00001_lr: signal shape \(500, 12\), expected \(1000, 12\)"):
        read_records(tmp_path / "short", table, n_jobs=1, progress=False)
    with pytest.raises(FileNotFoundError, match="00002_lr not found"):
        read_records(tmp_path / "short", pd.DataFrame({"filename_lr": ["records100/00000/00002_lr"]}),
                     n_jobs=1, progress=False)

    with pytest.raises(PTBXLFormatError, match=r"\[N, T, 12\]"):
        preprocess(np.zeros((2, 1000, 8), np.float32), [1, 10], [1])
    with pytest.raises(ValueError, match="pad_to=900"):
        preprocess(np.zeros((2, 1000, 12), np.float32), [1, 10], [1], pad_to=900)
    with pytest.raises(ValueError, match="no record is in the training folds"):
        preprocess(np.zeros((2, 1000, 12), np.float32), [10, 10], range(1, 10))


def test_fold_protocols():
    folds = np.array([r[1] for r in RECORDS])
    paper = split_indices(folds, "paper")
    assert set(paper) == {"pt", "test"}
    assert list(paper["test"]) == [9, 11] and len(paper["pt"]) == 10
    std = split_indices(folds, "standard")
    assert list(std["val"]) == [8] and list(std["test"]) == [9, 11] and len(std["train"]) == 9
    with pytest.raises(ValueError, match="unknown protocol"):
        split_indices(folds, "other")
    ft = paper_ft_indices(folds, 4, seed=0)
    assert len(set(ft)) == 4 and set(ft) <= set(paper["pt"])
    np.testing.assert_array_equal(ft, paper_ft_indices(folds, 4, seed=0))
    assert not np.array_equal(ft, paper_ft_indices(folds, 4, seed=1))
    with pytest.raises(ValueError, match="only 10"):
        paper_ft_indices(folds, 11, seed=0)
