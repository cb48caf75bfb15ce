"""Files that never hold a partial write: atomic files and folders, JSON, SHA-256.

Every stage imports this; the download half (HTTP, resume, checksums, safe unzip) is
``metapt.download``, imported only by the acquire stages, so an edit there reruns nothing else.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import re
import shutil
import socket
import tempfile
import zlib
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterator

from metapt import faults

_CHUNK = 1 << 20


class DiskFullError(OSError):
    """A write ran out of disk space (or quota); the file or folder it was replacing is unchanged."""


def out_of_space(err: BaseException, path: Path, what: str) -> DiskFullError | None:
    """The error to raise instead of ``err`` when the write failed for want of space, else None.

    ``torch.save`` reports a full disk as an opaque ``RuntimeError`` from its zip writer, so besides
    ENOSPC/EDQUOT a failed write also counts when its file system has under 1 MiB left (measured
    before the partial file is removed).
    """
    full = isinstance(err, OSError) and err.errno in (errno.ENOSPC, errno.EDQUOT)
    try:
        free = shutil.disk_usage(path.parent).free
    except OSError:
        free = None
    if not (full or (free is not None and free < 1 << 20)):
        return None
    left = "" if free is None else f" ({free / 2**20:.2f} MiB free there)"
    return DiskFullError(errno.ENOSPC, f"no space left on the device writing {path}{left}; {what} is unchanged")


@contextmanager
def naming_full_disk(path: Path, unchanged: Callable[[], str]) -> Iterator[None]:
    """A write that fails for want of space raises :class:`DiskFullError` naming ``path`` and what is
    ``unchanged()`` (asked at the failure: whether an old file exists then); other errors pass through."""
    try:
        yield
    except Exception as err:
        if (full := out_of_space(err, path, unchanged())) is not None:
            raise full from err
        raise


_HOST = f"{zlib.crc32(socket.gethostname().encode()):08x}"
_TEMP = re.compile(r"^\..+\.(?:tmp|old|extract)-(\d+)@([0-9a-f]{8})(?:-.*)?$")


def writer_tag() -> str:
    """``<pid>@<host hash>``: put in the name of every temporary file or folder beside an output, so that
    what a killed writer left can be told from what a live one is writing (:func:`remove_dead_writers_temps`)."""
    return f"{os.getpid()}@{_HOST}"


def temp_dir_beside(path: Path, kind: str = "tmp") -> Path:
    """A new empty hidden folder beside ``path``, named for its writer (``.<name>.<kind>-<pid>@<host>-<random>``)."""
    return Path(tempfile.mkdtemp(prefix=f".{path.name}.{kind}-{writer_tag()}-", dir=path.parent))


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    return True


def remove_dead_writers_temps(folder: Path, recursive: bool = False) -> list[Path]:
    """Remove the temporary and moved-aside files and folders under ``folder`` whose writer was killed
    (SIGKILL runs no cleanup); returns them. Only this host's writers are judged, by pid: a temp of a
    live writer, or of another node on a shared file system, is left alone."""
    if not folder.is_dir():
        return []
    found = folder.rglob(".*") if recursive else folder.glob(".*")
    gone = []
    for p in sorted(found, key=lambda q: len(q.parts)):  # a dead folder before what it holds
        m = _TEMP.match(p.name)
        if m and m[2] == _HOST and not _alive(int(m[1])) and (p.exists() or p.is_symlink()):
            shutil.rmtree(p) if p.is_dir() and not p.is_symlink() else p.unlink(missing_ok=True)
            gone.append(p)
    return gone


@contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success it replaces ``path`` atomically, on error it is removed.

    A temp that a killed earlier writer left beside ``path`` is removed first."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    remove_dead_writers_temps(path.parent)
    tmp = path.with_name(f".{path.name}.tmp-{writer_tag()}")
    try:
        with naming_full_disk(path, lambda: f"the previous {path.name}" if path.exists() else "nothing"):
            yield tmp
            with open(tmp, "rb") as fh:
                os.fsync(fh.fileno())
            os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def sha256_file(path: str | os.PathLike, h=None) -> str:
    """Hex SHA-256 of a file, read in chunks (optionally continuing an existing hash object)."""
    h = h if h is not None else hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(_CHUNK):
            h.update(chunk)
    return h.hexdigest()


def write_json(path: str | os.PathLike, obj) -> None:
    """Indented JSON, written atomically (numpy scalars become floats)."""
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(obj, indent=1, default=float))


@contextmanager
def atomic_dir(path: str | os.PathLike) -> Iterator[Path]:
    """Yield an empty temporary folder beside ``path``; on success it replaces ``path`` whole, on error it is removed.

    The old folder is moved aside before the new one is renamed in, then deleted: ``path`` never
    holds a half-written result. What a killed earlier writer left beside ``path`` is removed first.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    remove_dead_writers_temps(path.parent)
    tmp = temp_dir_beside(path)
    old = path.with_name(f".{path.name}.old-{writer_tag()}")
    try:
        with naming_full_disk(path, lambda: f"the previous complete {path.name}/" if path.exists() else "nothing"):
            yield tmp
            faults.reach("atomic_dir.written")
            tmp.chmod(0o755)
            if path.exists():
                os.replace(path, old)
            os.replace(tmp, path)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
        shutil.rmtree(old, ignore_errors=True)


def read_json(path: str | os.PathLike):
    return json.loads(Path(path).read_text())
