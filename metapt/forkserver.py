"""A warm start for stage jobs: one process imports torch, PyG and the other heavy libraries once and forks a child per job.

Every stage job paid about 3 s of imports (torch; torch._dynamo, which the first optimiser pulls in; torch_geometric;
scipy and scikit-learn) before any work. The embedded reproduction runs about 240 jobs on 2 cores, so that was about
6 minutes of its wall time. ``python -m metapt.workflow`` starts this server and sets ``METAPT_FORKSERVER`` to its
socket; a stage script's first import (``stages/_common.py``) calls :func:`delegate`, which hands the job's argv, cwd,
environment and stdio to the server and waits for its exit status. Without the variable (``dvc repro``, a job run by
hand, a SLURM node), or when the socket does not answer, the job runs in its own process as before. A job seeds every
generator it uses, so its outputs do not depend on which way it ran (the pipeline tests compare ``dvc repro`` with the
workflow's outputs byte for byte).

Kills: the client forwards SIGTERM, SIGINT and SIGHUP to the job. If the client dies without a chance to forward
(SIGKILL), the job sees its connection close and kills itself, so a killed pipeline leaves no orphan computing.

    python -m metapt.forkserver <socket path>      (what the workflow runs; it stops the server with SIGTERM)
"""

from __future__ import annotations

import importlib
import json
import os
import select
import signal
import socket
import struct
import sys
import threading
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

ENV = "METAPT_FORKSERVER"  # the socket's path, set by the workflow for its jobs
CHILD_ENV = "METAPT_FORKSERVER_CHILD"  # set in a forked job: it must not delegate again
OFF_ENV = "METAPT_NO_FORKSERVER"  # set: the workflow starts no server, every job imports for itself (A/B timing, debugging)
PRELOAD = ("numpy", "yaml", "pydantic", "tqdm", "scipy.stats", "sklearn.metrics", "torch", "torch._dynamo", "torch.nn.functional",
           "torch_geometric", "torch_geometric.nn")  # third-party only: the job imports metapt from its own checkout
_INT = struct.Struct("!i")


def _recv_exact(sock: socket.socket, n: int) -> bytes:
    buf = b""
    while len(buf) < n:
        chunk = sock.recv(n - len(buf))
        if not chunk:
            raise ConnectionError("the fork server closed the connection")
        buf += chunk
    return buf


def delegate() -> None:
    """Run this process's job in a child of the fork server, then exit with the child's status; return if there is none."""
    path = os.environ.get(ENV)
    if not path or os.environ.get(CHILD_ENV):
        return
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.connect(path)
    except OSError:
        sock.close()
        return  # no server (a stale variable, another node): run here
    request = json.dumps({"argv": sys.argv, "cwd": os.getcwd(), "env": dict(os.environ), "path": sys.path}).encode()
    socket.send_fds(sock, [_INT.pack(len(request)) + request], [0, 1, 2])
    pid = _INT.unpack(_recv_exact(sock, 4))[0]
    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, lambda s, _f: os.kill(pid, s))
    status = _INT.unpack(_recv_exact(sock, 4))[0]
    code = os.waitstatus_to_exitcode(status)
    if code < 0:  # killed by a signal: die of the same one, as the job would have in its own process
        signal.signal(-code, signal.SIG_DFL)
        os.kill(os.getpid(), -code)
    os._exit(code)


def _run_job(conn: socket.socket, request: dict, fds: list[int]) -> None:
    """In the forked child: become the job (stdio, cwd, environment, argv), run its script, exit with its status."""
    for sig in (signal.SIGTERM, signal.SIGHUP, signal.SIGCHLD):
        signal.signal(sig, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    for name in [m for m in sys.modules if m == "metapt" or m.startswith("metapt.")]:
        del sys.modules[name]  # the server's own import of this module: the job resolves metapt from its sys.path
    for target, fd in zip((0, 1, 2), fds):
        os.dup2(fd, target)
        os.close(fd)
    os.chdir(request["cwd"])
    os.environ.clear()
    os.environ.update(request["env"])
    os.environ[CHILD_ENV] = "1"
    sys.argv = list(request["argv"])
    sys.path[:] = request["path"]  # the client's whole path: its script's folder (stages/, for `_common`) and its checkout
    _reseed()

    def watch() -> None:  # the client is gone (SIGKILL): so is the job
        try:
            conn.recv(1)
        finally:
            os.kill(os.getpid(), signal.SIGKILL)

    threading.Thread(target=watch, daemon=True).start()
    import atexit
    import runpy
    import traceback

    code = 0
    try:
        runpy.run_path(sys.argv[0], run_name="__main__")
    except SystemExit as e:
        if e.code is None or isinstance(e.code, int):
            code = e.code or 0
        else:
            print(e.code, file=sys.stderr)
            code = 1
    except BaseException:
        traceback.print_exc()
        code = 1
    try:
        atexit._run_exitfuncs()  # os._exit skips them; the stages record their cost there (metapt.jobstats)
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)


def _reseed() -> None:
    """A fresh process draws its global generators' seeds from the OS; a fork would share the server's."""
    import random

    random.seed()
    if "numpy" in sys.modules:
        sys.modules["numpy"].random.seed()
    if "torch" in sys.modules:
        sys.modules["torch"].seed()


def serve(path: str, preload: tuple[str, ...] = PRELOAD) -> None:
    """Import ``preload``, listen on ``path``, fork a child per request; report each child's wait status to its client."""
    for name in preload:
        try:
            importlib.import_module(name)
        except ImportError:
            pass
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(path)
    listener.listen(64)
    jobs: dict[int, socket.socket] = {}
    stopping = []
    signal.signal(signal.SIGTERM, lambda *_: stopping.append(True))
    parent = os.getppid()
    try:
        while not stopping and os.getppid() == parent:  # the workflow that started it died (SIGKILL): stop too
            ready, _, _ = select.select([listener], [], [], 0.05)
            if ready:
                conn, _ = listener.accept()
                pid = _spawn(conn, listener, jobs)
                if pid is not None:
                    jobs[pid] = conn
            _reap(jobs)
    finally:
        listener.close()
        for pid in list(jobs):  # stopped with jobs running: they end with the server
            os.kill(pid, signal.SIGTERM)
        os.unlink(path)


def _spawn(conn: socket.socket, listener: socket.socket, jobs: dict[int, socket.socket]) -> int | None:
    conn.settimeout(10)  # a client that connects and says nothing must not stall the others
    fds: list[int] = []
    try:
        head, fds, _, _ = socket.recv_fds(conn, 4, 3)
        head += _recv_exact(conn, 4 - len(head)) if head else b""
        request = json.loads(_recv_exact(conn, _INT.unpack(head)[0])) if len(head) == 4 else None
        conn.settimeout(None)
    except (OSError, ValueError, ConnectionError, struct.error):
        request = None
    if not request or len(fds) != 3:
        for fd in fds:
            os.close(fd)
        conn.close()
        return None
    pid = os.fork()
    if pid == 0:
        listener.close()
        for other in jobs.values():
            other.close()
        _run_job(conn, request, fds)
    for fd in fds:
        os.close(fd)
    conn.sendall(_INT.pack(pid))
    return pid


def _reap(jobs: dict[int, socket.socket]) -> None:
    while jobs:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return
        conn = jobs.pop(pid, None)
        if conn is not None:
            try:
                conn.sendall(_INT.pack(status))
            except OSError:
                pass  # the client is gone
            conn.close()


@contextmanager
def running(cwd: Path) -> Iterator[dict[str, str]]:
    """A server for the jobs of one workflow run, in ``cwd``; yields the environment that points the jobs to it.

    Jobs that start before it has imported everything find no socket yet and run on their own.
    """
    import shutil
    import subprocess
    import tempfile

    if os.environ.get(OFF_ENV):
        yield dict(os.environ)
        return
    folder = tempfile.mkdtemp(prefix="metapt-fork-")  # 0700: only this user's jobs can connect
    path = os.path.join(folder, "socket")
    proc = subprocess.Popen([sys.executable, "-m", "metapt.forkserver", path], cwd=cwd, stdin=subprocess.DEVNULL)
    try:
        yield {**os.environ, ENV: path}
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    serve(sys.argv[1])
