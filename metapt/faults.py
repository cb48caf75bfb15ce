"""Failpoints: named places where a test kills the running process with a real SIGKILL.

``METAPT_FAULT=<point>[@<n>]`` kills the process the n-th time (default: the first) it reaches
``<point>``. With ``METAPT_FAULT_ONCE=<file>`` only the first process of a whole pipeline to get
there dies: it creates the file exclusively and writes its pid and command line into it, so a test
knows which job it killed, and the rerun (the same command, the file now there) runs through.
``METAPT_FAULT_SCOPE=group`` kills the process's whole group instead (``reproduce``, Snakemake and
every job: what a ``kill -9`` of a session or a lost node does).
Unset (the normal case) a failpoint costs one environment lookup.

The points: ``pt.step`` (a PT step begins), ``checkpoint.saved`` (a resume checkpoint was just
written), ``hyper.step`` (a hypergradient is computed, φ not yet updated), ``pretrain.renamed`` (the
PT output folder is in place, its MLflow run not yet published, its resume folder not yet removed),
``workflow.committed`` (Snakemake's ``onsuccess`` has run ``dvc commit``, nothing is published yet),
``atomic_dir.written`` (an output folder is written in its temporary folder, not yet renamed in).
"""

from __future__ import annotations

import os
import signal
import sys

POINTS = ("pt.step", "checkpoint.saved", "hyper.step", "pretrain.renamed", "workflow.committed", "atomic_dir.written")
_seen: dict[str, int] = {}


def reach(point: str) -> None:
    spec = os.environ.get("METAPT_FAULT")
    if not spec:
        return
    name, _, nth = spec.partition("@")
    if name not in POINTS:
        raise ValueError(f"METAPT_FAULT: unknown failpoint {name!r}; the points are {', '.join(POINTS)}")
    if name != point:
        return
    _seen[point] = _seen.get(point, 0) + 1
    if _seen[point] != int(nth or 1):
        return
    once = os.environ.get("METAPT_FAULT_ONCE")
    if once:
        try:
            fd = os.open(once, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
        except FileExistsError:
            return
        os.write(fd, f"{os.getpid()} {point}@{_seen[point]} {' '.join(sys.argv)}\n".encode())
        os.fsync(fd)
        os.close(fd)
    if os.environ.get("METAPT_FAULT_SCOPE") == "group":  # the whole process group: reproduce, Snakemake and its jobs
        os.killpg(os.getpgid(0), signal.SIGKILL)
    os.kill(os.getpid(), signal.SIGKILL)
