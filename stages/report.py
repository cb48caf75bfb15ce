"""Report stage: tables, statistics, figures, summary.json and README from the evaluation files.

    python stages/report.py [--ppi results/ppi/evaluation.json] [--ecg results/ecg/evaluation.json] [--out results/report]

The report is built in a temporary sibling folder and renamed into place, so a failure never
leaves a half-written report behind.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # stages/ is not a package

from metapt.io import atomic_dir  # noqa: E402
from metapt.report import build_report  # noqa: E402


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--ppi", type=Path, default=Path("results/ppi/evaluation.json"))
    ap.add_argument("--ecg", type=Path, default=Path("results/ecg/evaluation.json"))
    ap.add_argument("--out", type=Path, default=Path("results/report"))
    args = ap.parse_args(argv)
    with atomic_dir(args.out) as tmp:
        summary = build_report(args.ppi, args.ecg, tmp)
    print(f"report: {len(summary['cells'])} cells, {len(summary['tables'])} tables, {len(summary['figures'])} figures -> {args.out}")
    return summary


if __name__ == "__main__":
    main()
