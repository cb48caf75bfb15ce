"""Report stage: tables, statistics, figures, summary.json and README from the evaluation files.

    python stages/report.py [--<domain> results/<domain>/evaluation.json ...] [--out results/report]

One input per declared domain (``metapt.domain.domains()``), by default its
``metapt.domain.evaluation_file``; a missing one is left out of the report with a warning. The
report is built in a temporary sibling folder and renamed into place, so a failure never leaves a
half-written report behind.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # stages/ is not a package

from metapt.domain import REPORT_DIR, domains, evaluation_file  # noqa: E402
from metapt.io import atomic_dir  # noqa: E402
from metapt.report import build_report  # noqa: E402


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    for d in domains():
        ap.add_argument(f"--{d.name}", dest=d.name, type=Path, default=evaluation_file(d.name), metavar="PATH",
                        help=f"{d.title}: its evaluation file (default: %(default)s)")
    ap.add_argument("--out", type=Path, default=REPORT_DIR)
    args = ap.parse_args(argv)
    inputs = {d.name: getattr(args, d.name) for d in domains()}
    with atomic_dir(args.out) as tmp:
        summary = build_report(inputs, tmp)
    print(f"report: {len(summary['cells'])} cells, {len(summary['tables'])} tables, {len(summary['figures'])} figures -> {args.out}")
    return summary


if __name__ == "__main__":
    import atexit
    import time

    from metapt import jobstats

    atexit.register(jobstats.write, time.time())  # wall time and peak memory (reproduce's time table)
    main()
