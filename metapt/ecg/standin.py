"""A full-size, format-exact stand-in of PhysioNet's PTB-XL zip, made by the ECG simulator.

PTB-XL 1.0.3 has 21,799 records (1.0.1, the version the authors linked: 21,837). The stand-in holds that
many simulated 12-lead records (``metapt.ecg.synth``) as WFDB files at 100 Hz, with
``ptbxl_database.csv``, ``scp_statements.csv`` and ``SHA256SUMS.txt`` (``synth.write_ptbxl_layout``),
under the version's top-level folder of the real zip. Left out: the 500 Hz folder ``records500/``
(``filename_hr`` still names it, as the real table does), which the paper's 100 Hz protocol never reads.
"""

from __future__ import annotations

import tempfile
import zipfile
from pathlib import Path

from metapt.ecg import synth
from metapt.ecg.data import DEFAULT_VERSION, ptbxl_folder
from metapt.io import atomic_path

N_RECORDS = {"1.0.3": 21_799, "1.0.1": 21_837}


def zip_ptbxl(root: str | Path, dest: str | Path, version: str = DEFAULT_VERSION) -> Path:
    """Zip a PTB-XL folder as PhysioNet does: every file under ``<ptbxl_folder(version)>/``; atomic."""
    root, top = Path(root), ptbxl_folder(version)
    with atomic_path(dest) as tmp, zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED, allowZip64=True) as zf:
        for p in sorted(root.rglob("*")):
            zf.write(p, f"{top}/{p.relative_to(root).as_posix()}")
    return Path(dest)


def build(out_dir: str | Path, scale: float = 1.0, version: str = DEFAULT_VERSION) -> list[Path]:
    """Write ``out_dir/<ptbxl_folder(version)>.zip`` with ``round(N · scale)`` records (at least 50)."""
    out = Path(out_dir)
    n = max(50, round(N_RECORDS[version] * scale))
    x, y, _ = synth.generate(synth.preset("default", n_records=n, seed=0))
    with tempfile.TemporaryDirectory(dir=out if out.exists() else None) as tmp:
        root = synth.write_ptbxl_layout(x, y, Path(tmp) / ptbxl_folder(version), seed=0)
        del x
        return [zip_ptbxl(root, out / f"{ptbxl_folder(version)}.zip", version)]
