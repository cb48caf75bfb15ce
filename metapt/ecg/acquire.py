"""Stage acquire_ecg: simulate 12-lead records written as a PTB-XL folder (embedded), or download the
version-pinned PTB-XL zip, safe-extract it and verify every file in its ``SHA256SUMS.txt`` (paper).

PhysioNet publishes one zip per version; ``wfdb.dl_database`` cannot pin a version and skips the CSVs, so
it is not used. The only ECG module that imports the download code.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path, PurePosixPath

from tqdm.auto import tqdm

from metapt.config import Profile
from metapt.domain import raw_dir
from metapt.download import ChecksumError, download, safe_extract
from metapt.ecg import synth
from metapt.ecg.data import _VERIFIED_MARKER, DATABASE_CSV, DEFAULT_VERSION, SUMS_FILE, PTBXLFormatError, _check_version, ptbxl_folder, ptbxl_url
from metapt.io import atomic_dir, sha256_file, write_json

# ---------------------------------------------------------------------------------------------- checksums

def _read_sums(root: Path) -> list[tuple[str, str]]:
    sums = root / SUMS_FILE
    if not sums.is_file():
        raise FileNotFoundError(f"{sums} not found: cannot verify the PTB-XL files")
    entries = []
    for lineno, line in enumerate(sums.read_text().splitlines(), 1):
        if not line.strip():
            continue
        digest, sep, rel = line.strip().partition(" ")
        rel = rel.strip().lstrip("*")  # "<hash>  <path>" (text mode) or "<hash> *<path>" (binary mode)
        if not sep or len(digest) != 64 or not rel or any(c not in "0123456789abcdefABCDEF" for c in digest):
            raise PTBXLFormatError(f"{sums}:{lineno}: expected '<sha256>  <relative path>', got {line!r}")
        p = PurePosixPath(rel)
        if p.is_absolute() or ".." in p.parts:
            raise PTBXLFormatError(f"{sums}:{lineno}: path {rel!r} escapes the dataset folder")
        entries.append((digest.lower(), rel))
    if not entries:
        raise PTBXLFormatError(f"{sums} lists no files")
    return entries


def verify_sha256sums(root: str | os.PathLike, progress: bool = False) -> int:
    """Check every file listed in ``root/SHA256SUMS.txt``; return how many were verified.

    Raises :class:`FileNotFoundError` naming the first listed file that is missing and
    :class:`metapt.io.ChecksumError` naming the first whose SHA-256 differs.
    """
    root = Path(root)
    entries = _read_sums(root)
    for digest, rel in tqdm(entries, desc="SHA256SUMS", unit="file", disable=not progress):
        path = root / rel
        if not path.is_file():
            raise FileNotFoundError(f"{rel} is listed in {root / SUMS_FILE} but missing from {root}")
        actual = sha256_file(path)
        if actual != digest:
            err = ChecksumError(path, digest, actual)
            err.args = (f"SHA-256 mismatch for {rel} (in {root}): expected {digest}, got {actual}",)
            raise err
    return len(entries)


# ------------------------------------------------------------------------------------------------ fetch

def _dataset_root(extracted: Path, version: str) -> Path:
    expected = extracted / ptbxl_folder(version)
    if (expected / DATABASE_CSV).is_file():
        return expected
    found = [d for d in extracted.iterdir() if d.is_dir() and (d / DATABASE_CSV).is_file()]
    if len(found) == 1:
        return found[0]
    raise PTBXLFormatError(f"{extracted} has no top-level folder {expected.name!r} containing {DATABASE_CSV}")


def fetch_ptbxl(version: str = DEFAULT_VERSION, data_dir: str | os.PathLike = "data/ptbxl",
                sha256: str | None = None, size: int | None = None, *, url: str | None = None,
                progress: bool = True) -> Path:
    """Download the version's zip → safe-extract → verify ``SHA256SUMS.txt``; return the dataset root.

    Each step is skipped when already done (the extraction folder is named by the zip's hash prefix and
    marked once verified). A failed verification removes the extraction; an unpinned zip (``sha256``
    None) that fails is deleted too, so the next call fetches it again. ``url`` overrides the PhysioNet
    URL (mirrors, tests).
    """
    _check_version(version)
    data_dir = Path(data_dir)
    url = url or ptbxl_url(version)
    got = download(url, data_dir / f"{ptbxl_folder(version)}.zip", sha256, size, progress)
    extracted = data_dir / f"ptbxl-{version}-{got.sha256[:12]}"
    marker = extracted / _VERIFIED_MARKER
    if marker.is_file():
        return _dataset_root(extracted, version)
    try:
        if extracted.exists():  # a previous run stopped before the check finished: start clean
            shutil.rmtree(extracted)
        safe_extract(got.path, extracted)
        root = _dataset_root(extracted, version)
        verify_sha256sums(root, progress=progress)
    except Exception:
        shutil.rmtree(extracted, ignore_errors=True)
        if sha256 is None:
            got.path.unlink(missing_ok=True)
        raise
    marker.write_text(f"{got.sha256}\n")
    return root


def acquire(profile: Profile) -> Path:
    d, out = profile.ecg.data, raw_dir("ecg")
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
