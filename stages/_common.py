"""Shared by the stage entry points: import the repo's package, load the active profile, name the domains."""

from __future__ import annotations

import atexit
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from metapt.forkserver import delegate  # noqa: E402

delegate()  # under the workflow: the job runs in a warm child of its fork server, with torch imported; this process waits

from metapt import jobstats  # noqa: E402
from metapt.config import ParamsError, active_profile  # noqa: E402
from metapt.domain import names  # noqa: E402

atexit.register(jobstats.write, time.time())  # this stage process's wall time and peak memory (reproduce's time table)


def profile():
    try:
        return active_profile()
    except ParamsError as err:
        sys.exit(f"error: {err}")


def domain_arg(ap) -> None:
    ap.add_argument("domain", choices=names())


def run_args(ap) -> None:
    """The fields of a ``metapt.domain.Run`` (the command dvc.yaml spells for a PT or FT job)."""
    domain_arg(ap)
    ap.add_argument("--method", required=True)
    ap.add_argument("--seed", type=int, required=True)
    ap.add_argument("--setting", help="PPI: FT access during meta-PT (full | partial | heldout)")
    ap.add_argument("--labels", type=int, help="ECG meta-SimCLR: N labelled examples seen in PT")
