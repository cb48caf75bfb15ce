"""Full-size, format-exact stand-ins of the paper profile's downloads, and a loopback mirror serving them.

    python -m metapt.standin build [--out data/standins] [--domains ppi ecg digits] [--scale 1]
    python -m metapt.standin serve [--root data/standins] [--port 8765]

Each domain declares its builder (``Domain.standin``); the ``rehearsal`` profile of ``params.yaml``
points the acquire stages at ``http://127.0.0.1:8765/`` (docs/rehearsal.md). The server speaks the
part of HTTP the download code uses: GET, ``Content-Length`` and ``Range: bytes=N-`` (resumes). It
streams files (the bio stand-in is GBs) and serves nothing outside its root.
"""

from __future__ import annotations

import argparse
import shutil
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote, urlparse

from metapt.domain import domains, resolve

DEFAULT_ROOT = Path("data/standins")
DEFAULT_PORT = 8765


def build(out: str | Path = DEFAULT_ROOT, names: list[str] | None = None, scale: float = 1.0) -> dict[str, list[Path]]:
    """Run each chosen domain's declared builder into ``out``; returns the files per domain."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    chosen = [d for d in domains() if d.standin and (names is None or d.name in names)]
    if names and (unknown := sorted(set(names) - {d.name for d in chosen})):
        raise ValueError(f"no stand-in declared for {unknown}; declared: {[d.name for d in domains() if d.standin]}")
    files = {}
    for d in chosen:
        t0 = time.perf_counter()
        files[d.name] = resolve(d.standin)(out, scale)
        size = sum(f.stat().st_size for f in files[d.name])
        print(f"{d.name}: {len(files[d.name])} file(s), {size / 1e6:,.1f} MB in {time.perf_counter() - t0:.0f} s", flush=True)
    return files


class _MirrorHandler(BaseHTTPRequestHandler):
    root: Path

    def do_GET(self):  # noqa: N802 (the stdlib's name)
        rel = unquote(urlparse(self.path).path).lstrip("/")
        path = (self.root / rel).resolve()
        if not path.is_relative_to(self.root) or not path.is_file():
            self.send_error(404)
            return
        size, start = path.stat().st_size, 0
        if (rng := self.headers.get("Range", "")).startswith("bytes=") and rng[6:].rstrip("-").isdigit():
            start = int(rng[6:].rstrip("-"))
        if start >= size and size:
            self.send_response(416)
            self.send_header("Content-Range", f"bytes */{size}")
            self.end_headers()
            return
        self.send_response(206 if start else 200)
        if start:
            self.send_header("Content-Range", f"bytes {start}-{size - 1}/{size}")
        self.send_header("Content-Length", str(size - start))
        self.send_header("Accept-Ranges", "bytes")
        self.end_headers()
        with open(path, "rb") as fh:
            fh.seek(start)
            try:
                shutil.copyfileobj(fh, self.wfile, 1 << 20)
            except (BrokenPipeError, ConnectionResetError):  # the client stopped (a test's cut-off, a killed job)
                pass

    def log_message(self, *args):
        pass


def mirror(root: str | Path = DEFAULT_ROOT, port: int = DEFAULT_PORT) -> ThreadingHTTPServer:
    """A server on 127.0.0.1 for the files under ``root`` (``port`` 0: any free port); call ``serve_forever``."""
    handler = type("Handler", (_MirrorHandler,), {"root": Path(root).resolve()})
    return ThreadingHTTPServer(("127.0.0.1", port), handler)


def serve_in_thread(root: str | Path = DEFAULT_ROOT, port: int = DEFAULT_PORT) -> ThreadingHTTPServer:
    """Start :func:`mirror` in a daemon thread; ``shutdown()`` stops it."""
    srv = mirror(root, port)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    return srv


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    b = sub.add_parser("build", help="write the stand-ins")
    b.add_argument("--out", type=Path, default=DEFAULT_ROOT)
    b.add_argument("--domains", nargs="+", help="default: every domain that declares one")
    b.add_argument("--scale", type=float, default=1.0, help="fraction of the real counts (1: full size)")
    s = sub.add_parser("serve", help="serve them on 127.0.0.1")
    s.add_argument("--root", type=Path, default=DEFAULT_ROOT)
    s.add_argument("--port", type=int, default=DEFAULT_PORT)
    args = ap.parse_args(argv)
    if args.cmd == "build":
        build(args.out, args.domains, args.scale)
        return
    srv = mirror(args.root, args.port)
    print(f"serving {args.root.resolve()} on http://127.0.0.1:{srv.server_address[1]}/ (Ctrl-C stops)", flush=True)
    try:
        srv.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
