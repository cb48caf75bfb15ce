#!/usr/bin/env python3
"""Set up metapt from nothing but Python, then run a task.

    python3 bootstrap.py reproduce   # create .venv, install, then run the whole pipeline (embedded profile)
    python3 bootstrap.py reproduce --profile paper --cores 16   # the paper's data and settings
    python3 bootstrap.py test        # create .venv, install the locked dependencies, run the test suite
    python3 bootstrap.py bench       # same setup, then the hyper-step benchmark (benchmarks/README.md)
    python3 bootstrap.py lineage ppi/full/meta/test_hard_auroc/full   # where a report cell comes from
    python3 bootstrap.py tracking-server   # a site's shared MLflow server (mlflow.db, mlartifacts/, 127.0.0.1:5000);
                                           # jobs then set MLFLOW_TRACKING_URI=http://127.0.0.1:5000; later flags override

The virtual environment is reinstalled only when requirements-lock.txt changes.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
LOCK = ROOT / "requirements-lock.txt"
STAMP = VENV / ".metapt-lock-sha256"
PY = VENV / "bin" / "python"


def run(*cmd: str | Path, **kw) -> None:
    print("+", " ".join(map(str, cmd)), flush=True)
    subprocess.run([str(c) for c in cmd], check=True, cwd=ROOT, **kw)


def setup() -> None:
    """Create .venv and install the exact locked environment plus metapt itself (editable)."""
    digest = hashlib.sha256(LOCK.read_bytes() + (ROOT / "pyproject.toml").read_bytes()).hexdigest()
    if PY.exists() and STAMP.exists() and STAMP.read_text().strip() == digest:
        return
    if not PY.exists():
        print(f"creating {VENV}", flush=True)
        venv.EnvBuilder(with_pip=True, clear=VENV.exists()).create(VENV)
    run(PY, "-m", "pip", "install", "--quiet", "-r", LOCK)
    run(PY, "-m", "pip", "install", "--quiet", "--no-deps", "-e", ".")
    STAMP.write_text(digest + "\n")


def main(argv: list[str]) -> int:
    tasks = {
        "setup": [],
        "test": [PY, "-m", "pytest", *argv[1:]],
        "bench": [PY, "-m", "benchmarks.hyperstep", *argv[1:]],
        "reproduce": [PY, "-m", "metapt.workflow", *argv[1:]],
        "lineage": [PY, "stages/lineage.py", *argv[1:]],
        "tracking-server": [PY, "-m", "mlflow", "server", "--backend-store-uri", f"sqlite:///{ROOT / 'mlflow.db'}",
                            "--artifacts-destination", ROOT / "mlartifacts", "--host", "127.0.0.1", "--port", "5000", *argv[1:]],
    }
    if not argv or argv[0] not in tasks:
        print(__doc__, file=sys.stderr)
        print(f"unknown task {argv[0]!r}; choose one of {sorted(tasks)}" if argv else "no task given", file=sys.stderr)
        return 2
    setup()
    cmd = tasks[argv[0]]
    if not cmd:
        return 0
    env = {**os.environ, "PYTHONPATH": str(ROOT), "PATH": f"{PY.parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    return subprocess.run([str(c) for c in cmd], cwd=ROOT, env=env).returncode


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
