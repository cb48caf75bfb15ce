"""Shared integration fixtures: a loopback HTTP server for the download paths (127.0.0.1 only), and
the tiny pipeline (the `tiny` profile) built once in a copy of the repository."""

from __future__ import annotations

import re
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from tests.integration.tiny import TinyBuild, copy_repo, lock_outs, run_results, sh, summary_cells


class _Handler(BaseHTTPRequestHandler):
    """Serves ``server.files`` with ``Range: bytes=N-`` support (unless the path is in ``server.no_range``);
    ``server.cut[path] = k`` drops the next reply after k bytes."""

    def do_GET(self):
        srv = self.server
        rng = self.headers.get("Range")
        srv.log.append((self.path, rng))
        rng = None if self.path in srv.no_range else rng
        body = srv.files.get(self.path)
        if body is None:
            self.send_error(404)
            return
        start = int(re.fullmatch(r"bytes=(\d+)-", rng)[1]) if rng else 0
        if start >= len(body) > 0:
            self.send_error(416)
            return
        self.send_response(206 if rng else 200)
        if rng:
            self.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
        self.send_header("Content-Length", str(len(body) - start))
        self.end_headers()
        cut = srv.cut.pop(self.path, None)
        self.wfile.write(body[start:cut])

    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def server():
    srv = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    srv.daemon_threads = True
    srv.files, srv.cut, srv.log, srv.no_range = {}, {}, [], set()
    t = threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    t.start()

    def serve(name: str, body: bytes) -> str:
        srv.files[f"/{name}"] = body
        return f"http://127.0.0.1:{srv.server_address[1]}/{name}"

    srv.serve = serve
    yield srv
    srv.shutdown()
    srv.server_close()


@pytest.fixture(autouse=True)
def _no_proxy(monkeypatch):
    for var in ("no_proxy", "NO_PROXY"):
        monkeypatch.setenv(var, "*")


@pytest.fixture(scope="session")
def tiny_build(tmp_path_factory) -> TinyBuild:
    """The tiny pipeline, built from nothing by the one command, locally on 2 cores."""
    dst = tmp_path_factory.mktemp("pipeline") / "repo"
    env = copy_repo(dst)
    t0 = time.perf_counter()
    run = sh(sys.executable, "-m", "metapt.workflow", "--cores", "2", cwd=dst, env=env, check=False)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    return TinyBuild(dst, env, time.perf_counter() - t0, run_results(dst), lock_outs(dst), summary_cells(dst), run.stdout)
