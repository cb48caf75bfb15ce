"""What one stage process cost: its wall time and peak memory, written at its exit, read by ``reproduce``'s
time table (``metapt.workflow.job_time_table``). Keyed by the stage's command line, which ``dvc.yaml``
spells and the process sees as its argv, so no scheduler variable is needed. Torch-free."""

from __future__ import annotations

import hashlib
import json
import os
import resource
import sys
import time
from pathlib import Path

STATS_DIR = Path(".cache/job-stats")


def _key(cmd: str) -> str:
    return hashlib.sha1(" ".join(cmd.split()).encode()).hexdigest()[:16]


def own_command() -> str:
    """This process's stage command as dvc.yaml writes it: ``python stages/<kind>.py <args>``."""
    return " ".join(["python", f"stages/{Path(sys.argv[0]).name}", *sys.argv[1:]])


def write(started: float, cmd: str | None = None, root: Path = Path(".")) -> Path:
    """Record wall seconds since ``started`` and the peak RSS of this process and of its largest child (workers)."""
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    child = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    cmd = cmd or own_command()
    path = root / STATS_DIR / f"{_key(cmd)}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}")
    tmp.write_text(json.dumps({"cmd": cmd, "wall_s": time.time() - started, "peak_rss_mb": own,
                               "child_peak_rss_mb": child, "end": time.time()}))
    os.replace(tmp, path)
    return path


def read(cmd: str, root: Path = Path("."), since: float = 0.0) -> dict | None:
    """The stats of the last run of ``cmd`` if it ended after ``since``, else None."""
    path = root / STATS_DIR / f"{_key(cmd)}.json"
    if not path.is_file():
        return None
    stats = json.loads(path.read_text())
    return stats if stats.get("end", 0) >= since else None


def folder_bytes(path: Path) -> int:
    """Bytes of the files under ``path`` (a file: its size; missing: 0), links not followed."""
    if path.is_file():
        return path.stat().st_size
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file() and not p.is_symlink()) if path.is_dir() else 0
