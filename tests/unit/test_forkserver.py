"""The fork server: a job delegated to it behaves as the same job run in its own process (stdio, argv, cwd, environment,
exit status, atexit), and a killed client leaves no job behind."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from metapt import forkserver

ROOT = Path(__file__).resolve().parents[2]
START = textwrap.dedent(f"""
    import sys
    sys.path.insert(0, {str(ROOT)!r})
    from metapt.forkserver import delegate
    delegate()
""")  # the job's sibling module that delegates, as stages/_common.py does: the child must find it again from the job's folder
JOB = textwrap.dedent("""
    import atexit, os, sys, time
    import _start
    atexit.register(lambda: print("atexit ran", flush=True))
    print("argv", sys.argv[1:], "pid", os.getpid(), "ppid", os.getppid(), "torch", "torch" in sys.modules, "cwd", os.getcwd(),
          "X", os.environ.get("X"), flush=True)
    print("on stderr", file=sys.stderr, flush=True)
    if sys.argv[1] == "sleep":
        time.sleep(60)
    if sys.argv[1] == "boom":
        raise RuntimeError("boom")
    sys.exit(int(sys.argv[1]))
""")


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    folder = tmp_path_factory.mktemp("fork")
    (folder / "job.py").write_text(JOB)
    (folder / "_start.py").write_text(START)
    with forkserver.running(ROOT) as env:
        path = Path(env[forkserver.ENV])
        for _ in range(300):  # it imports torch and PyG first
            if path.exists():
                break
            time.sleep(0.1)
        time.sleep(0.3)
        yield folder, env


def _field(out: str, name: str) -> str:
    words = out.split()
    return words[words.index(name) + 1]


def test_a_delegated_job_is_the_job_in_its_own_process(server, tmp_path):
    folder, env = server
    runs = {}
    for arg in ("0", "3", "boom"):
        runs[arg] = subprocess.run([sys.executable, str(folder / "job.py"), arg], cwd=tmp_path, env={**env, "X": "hello"},
                                   capture_output=True, text=True, timeout=60)
    assert [runs[a].returncode for a in ("0", "3", "boom")] == [0, 3, 1]
    for arg, r in runs.items():
        assert f"argv ['{arg}']" in r.stdout and "X hello" in r.stdout and f"cwd {tmp_path}" in r.stdout
        assert "atexit ran" in r.stdout and "on stderr" in r.stderr
        assert _field(r.stdout, "torch") == "True"  # warm: the server had imported it
        assert int(_field(r.stdout, "ppid")) != os.getpid()  # a child of the server, not of this client
    assert "RuntimeError: boom" in runs["boom"].stderr
    alone = subprocess.run([sys.executable, str(folder / "job.py"), "0"], env={**env, forkserver.ENV: str(tmp_path / "none")},
                           capture_output=True, text=True, timeout=60)
    assert alone.returncode == 0 and _field(alone.stdout, "torch") == "False"  # no server there: it ran on its own


def _started(folder: Path, env: dict, out: Path) -> tuple[subprocess.Popen, int]:
    client = subprocess.Popen([sys.executable, str(folder / "job.py"), "sleep"], env=env, stdout=out.open("w"), stderr=subprocess.STDOUT)
    for _ in range(200):
        if "pid" in out.read_text():
            return client, int(_field(out.read_text(), "pid"))
        time.sleep(0.05)
    raise AssertionError(out.read_text())


def _gone(pid: int, within: float = 5.0) -> bool:
    end = time.time() + within
    while time.time() < end:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        time.sleep(0.05)
    return False


def test_killing_the_client_ends_the_job(server, tmp_path):
    folder, env = server
    client, job = _started(folder, env, tmp_path / "a.txt")
    client.send_signal(signal.SIGTERM)  # forwarded: the job dies of it, and so does the client
    assert client.wait(10) == -signal.SIGTERM and _gone(job)
    client, job = _started(folder, env, tmp_path / "b.txt")
    client.kill()  # SIGKILL: no chance to forward; the job sees its connection close
    client.wait(10)
    assert _gone(job)


def test_off_switch_starts_no_server(monkeypatch):
    monkeypatch.setenv(forkserver.OFF_ENV, "1")
    with forkserver.running(ROOT) as env:
        assert forkserver.ENV not in env
