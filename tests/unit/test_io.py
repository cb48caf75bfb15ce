"""The atomic writers clean up after a killed predecessor, and never touch a live writer's temporaries.

The writers are the real ones (``metapt.io``), killed by a real SIGKILL at the ``atomic_dir.written``
failpoint, in a child process: SIGKILL runs no ``finally``, so only the next writer can clean up.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from metapt.io import atomic_dir, atomic_path, remove_dead_writers_temps, writer_tag

WRITE = """
import sys
from pathlib import Path
from metapt.io import atomic_dir
with atomic_dir(Path(sys.argv[1])) as tmp:
    (tmp / "weights.npz").write_bytes(b"half")
    sys.stdin.readline()  # a live writer: waits here until told to finish
"""


def writer(out: Path, env: dict | None = None) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", WRITE, str(out)], stdin=subprocess.PIPE, text=True,
                            env={**os.environ, **(env or {})})


def temps(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.startswith("."))


def dead_pid() -> int:
    p = subprocess.Popen([sys.executable, "-c", "pass"])
    p.wait()
    return p.pid


def test_a_writer_killed_inside_atomic_dir_leaves_a_temp_the_next_writer_removes(tmp_path):
    out = tmp_path / "pretrain" / "meta-s0"
    killed = writer(out, {"METAPT_FAULT": "atomic_dir.written"})
    killed.communicate("\n", timeout=60)
    assert killed.returncode == -signal.SIGKILL
    left = temps(out.parent)
    assert len(left) == 1 and left[0].startswith(".meta-s0.tmp-") and not out.exists()

    with atomic_dir(out) as tmp:
        (tmp / "weights.npz").write_bytes(b"whole")
    assert temps(out.parent) == [] and (out / "weights.npz").read_bytes() == b"whole"


def test_a_live_writers_temp_is_left_alone(tmp_path):
    out = tmp_path / "meta-s0"
    live = writer(out)
    try:
        while not temps(tmp_path):
            assert live.poll() is None
            time.sleep(0.01)
        assert remove_dead_writers_temps(tmp_path, recursive=True) == []
        with atomic_dir(tmp_path / "uniform-s0") as tmp:  # a sibling output written meanwhile
            (tmp / "w").write_bytes(b"u")
        assert len(temps(tmp_path)) == 1
    finally:
        live.communicate("\n", timeout=60)
    assert live.returncode == 0 and (out / "weights.npz").read_bytes() == b"half" and temps(tmp_path) == []


def test_the_sweep_removes_dead_temps_at_any_depth_and_keeps_other_hosts_and_other_files(tmp_path):
    pid, host = dead_pid(), writer_tag().split("@")[1]
    deep = tmp_path / "results" / "ppi" / "pretrain"
    deep.mkdir(parents=True)
    dead_dir = deep / f".meta-s0.tmp-{pid}@{host}-k2j4"
    dead_dir.mkdir()
    (dead_dir / f".phi.npz.tmp-{pid}@{host}").write_bytes(b"x")
    dead_file = tmp_path / "results" / f".summary.json.tmp-{pid}@{host}"
    dead_file.write_text("{")
    dead_old = deep / f".uniform-s0.old-{pid}@{host}"
    dead_old.mkdir()
    other_host = deep / f".meta-s1.tmp-{pid}@{'0' * 8 if host != '0' * 8 else '1' * 8}-aaaa"
    other_host.mkdir()
    kept = [other_host, deep / ".gitignore", deep / f".meta-s2.tmp-{os.getpid()}@{host}"]
    kept[1].write_text("*")
    kept[2].write_text("mine, still writing")

    gone = remove_dead_writers_temps(tmp_path / "results", recursive=True)
    assert sorted(gone) == sorted([dead_dir, dead_file, dead_old])
    assert not any(p.exists() for p in gone) and all(p.exists() for p in kept)
    assert remove_dead_writers_temps(tmp_path / "absent") == []


def test_atomic_path_removes_a_killed_writers_temp_of_the_same_folder_only(tmp_path):
    pid, host = dead_pid(), writer_tag().split("@")[1]
    (tmp_path / "sub").mkdir()
    beside = tmp_path / f".metrics.json.tmp-{pid}@{host}"
    below = tmp_path / "sub" / f".other.json.tmp-{pid}@{host}"
    beside.write_text("{")
    below.write_text("{")
    with atomic_path(tmp_path / "metrics.json") as tmp:
        tmp.write_text("{}")
    assert not beside.exists() and below.exists()  # a writer looks beside its output, not below
    assert (tmp_path / "metrics.json").read_text() == "{}"
