"""Verified, resumable downloads and safe unzip: the acquire stages' half of the file I/O.

Downloads use plain ``urllib`` rather than ``pooch.retrieve``: pooch verifies hashes but cannot resume,
and the bio archive is ~2 GB with no published checksum. The SHA-256 is computed while streaming (and
over the kept prefix on resume), so a 2 GB file is read once; with no pinned hash it is returned for the
caller to record ("trust on first use").
"""

from __future__ import annotations

import hashlib
import http.client
import os
import re
import shutil
import stat
import zipfile
import zlib
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from urllib.error import HTTPError
from urllib.request import Request, urlopen

from tqdm.auto import tqdm

from metapt.io import _CHUNK, remove_dead_writers_temps, sha256_file, temp_dir_beside


class ChecksumError(ValueError):
    """A downloaded file's SHA-256 or size differs from the pinned value; the file has been deleted."""

    def __init__(self, path: Path, expected: str | int, actual: str | int, what: str = "SHA-256"):
        self.path, self.expected, self.actual = Path(path), expected, actual
        super().__init__(f"{what} mismatch for {path}: expected {expected}, got {actual} (download deleted)")


class DownloadError(OSError):
    """The server refused the request (HTTP error); nothing was kept."""


class DownloadInterrupted(DownloadError):
    """The transfer broke off; bytes received so far stay in ``<dest>.part`` and the next call resumes."""


class UnsafeArchiveError(ValueError):
    """An archive entry would land outside the target folder (absolute path, ``..``, symlink)."""


class CorruptArchiveError(ValueError):
    """The archive is truncated or corrupt."""


@dataclass(frozen=True)
class Downloaded:
    """A verified file and the checksum to pin in config."""

    path: Path
    sha256: str
    size: int


def download(url: str, dest: str | os.PathLike, sha256: str | None = None, size: int | None = None,
             progress: bool = True, *, timeout: float = 60.0) -> Downloaded:
    """Fetch ``url`` to ``dest`` and verify ``size``/``sha256`` when given; return path, SHA-256 and size.

    Bytes go to ``<dest>.part`` and are renamed to ``dest`` only after verification. A broken transfer
    (connection lost, timeout) raises :class:`DownloadInterrupted` and keeps the ``.part`` so the next
    call resumes it with an HTTP Range request; every other failure (HTTP error, size or hash mismatch)
    deletes it. An existing ``dest`` that verifies is returned without network access.
    """
    dest = Path(dest)
    if dest.exists():
        found = Downloaded(dest, sha256_file(dest), dest.stat().st_size)
        if _matches(found, sha256, size):
            return found
        dest.unlink()  # stale or corrupt copy: fetch again
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".part")
    try:
        digest = _fetch(url, part, dest.name, progress, timeout)
        n = part.stat().st_size
        if size is not None and n != size:
            raise ChecksumError(dest, size, n, what="size")
        if sha256 is not None and digest != sha256.lower():
            raise ChecksumError(dest, sha256.lower(), digest)
    except (DownloadInterrupted, KeyboardInterrupt):
        if part.exists() and part.stat().st_size == 0:
            part.unlink()
        raise
    except BaseException:
        part.unlink(missing_ok=True)
        raise
    os.replace(part, dest)
    return Downloaded(dest, digest, n)


def _matches(found: Downloaded, sha256: str | None, size: int | None) -> bool:
    return (size is None or found.size == size) and (sha256 is None or found.sha256 == sha256.lower())


def _fetch(url: str, part: Path, name: str, progress: bool, timeout: float) -> str:
    """Stream ``url`` into ``part`` (appending from its current size if the server honours Range)."""
    offset = part.stat().st_size if part.exists() else 0
    req = Request(url, headers={"Range": f"bytes={offset}-"} if offset else {})
    try:
        resp = urlopen(req, timeout=timeout)
    except HTTPError as e:
        if e.code == 416 and offset:  # the kept prefix does not fit the remote file: start over
            part.unlink()
            return _fetch(url, part, name, progress, timeout)
        raise DownloadError(f"cannot download {url}: HTTP {e.code} {e.reason}") from None
    except (OSError, http.client.HTTPException) as e:
        raise DownloadInterrupted(f"cannot reach {url}: {e}; call again to retry") from e
    with resp:
        if offset and (resp.status != 206 or not resp.headers.get("Content-Range", "").startswith(f"bytes {offset}-")):
            offset = 0  # server ignored the Range request: restart from byte 0
        h = hashlib.sha256()
        if offset:
            sha256_file(part, h)
        length = resp.headers.get("Content-Length")
        total = offset + int(length) if length is not None else None
        try:
            with open(part, "ab" if offset else "wb") as fh, tqdm(
                total=total, initial=offset, unit="B", unit_scale=True, unit_divisor=1024, desc=name,
                disable=not progress,
            ) as bar:
                while chunk := resp.read(_CHUNK):
                    fh.write(chunk)
                    h.update(chunk)
                    bar.update(len(chunk))
                fh.flush()
                os.fsync(fh.fileno())
            if total is not None and part.stat().st_size < total:  # read(amt) returns b"" on early close
                raise http.client.IncompleteRead(b"", total - part.stat().st_size)
        except (OSError, http.client.HTTPException) as e:
            got = part.stat().st_size if part.exists() else 0
            raise DownloadInterrupted(
                f"download of {url} interrupted after {got} of {total or '?'} bytes ({e!r}); "
                f"kept {part}, call again to resume"
            ) from e
    return h.hexdigest()


def _unsafe_reason(info: zipfile.ZipInfo, root: Path) -> str | None:
    name = info.filename.replace("\\", "/")
    if PurePosixPath(name).is_absolute() or re.match(r"^[A-Za-z]:", name):
        return "an absolute path"
    if ".." in PurePosixPath(name).parts:
        return "a path with a '..' component"
    if stat.S_ISLNK(info.external_attr >> 16):
        return "a symbolic link"
    if not (root / name).resolve().is_relative_to(root):
        return "a path outside the target folder"
    return None


def safe_extract(zip_path: str | os.PathLike, target_dir: str | os.PathLike,
                 members: Iterable[str] | None = None) -> list[Path]:
    """Extract ``zip_path`` (or just ``members``) to ``target_dir``; return the extracted file paths.

    Every entry is checked before anything is written, and the whole archive is refused if one would
    escape ``target_dir``. Files go to a temporary sibling folder that is renamed to ``target_dir`` only
    when all of them extracted with valid CRCs, so a failure leaves nothing half-extracted.
    """
    zip_path, target = Path(zip_path), Path(target_dir)
    if target.exists() and any(target.iterdir()):
        raise FileExistsError(f"{target} exists and is not empty; refusing to extract {zip_path} over it")
    root = target.resolve()
    try:
        zf = zipfile.ZipFile(zip_path)
    except (zipfile.BadZipFile, EOFError, OSError) as e:
        if isinstance(e, FileNotFoundError):
            raise
        raise CorruptArchiveError(f"{zip_path} is not a readable zip archive (truncated or corrupt?): {e}") from None
    with zf:
        infos = zf.infolist()
        for info in infos:
            if (why := _unsafe_reason(info, root)) is not None:
                raise UnsafeArchiveError(f"refusing to extract {zip_path}: entry {info.filename!r} is {why}")
        if members is not None:
            wanted = set(members)
            if missing := sorted(wanted - {i.filename for i in infos}):
                raise FileNotFoundError(f"{zip_path} has no entry {', '.join(missing)}")
            infos = [i for i in infos if i.filename in wanted]
        target.parent.mkdir(parents=True, exist_ok=True)
        remove_dead_writers_temps(target.parent)
        tmp = temp_dir_beside(target, "extract")
        try:
            for info in infos:
                zf.extract(info, tmp)
            tmp.chmod(0o755)
            os.replace(tmp, target)
        except (zipfile.BadZipFile, EOFError, zlib.error) as e:
            raise CorruptArchiveError(f"{zip_path} is corrupt (failed while extracting): {e}") from None
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    return [target / i.filename for i in infos if not i.is_dir()]
