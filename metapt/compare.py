"""Compare the report cells of two reproductions, every cell and every metric field.

    python -m metapt.compare results/report/summary.json other/summary.json

Exit code 0 when both hold the same cells with identical numbers (bit for bit: the pipeline is
deterministic on one platform and thread count), 1 otherwise, listing each difference. Wall times
are not in the cells; ``runs`` (which PT/FT folders fed a cell) is compared too.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

FIELDS = ("setting", "method", "metric", "mode", "mean", "std", "n", "n_nan", "ci_low", "ci_high", "seeds", "values", "runs",
          "best_baseline", "n_paired", "paired_seeds", "delta_mean", "delta_ci_low", "delta_ci_high", "p_value")


def compare(a: dict, b: dict) -> list[str]:
    """Differences between the ``cells`` of two summaries, one line each (empty: identical)."""
    ca, cb = ({c["id"]: c for c in s["cells"]} for s in (a, b))
    out = [f"only in the first: {i}" for i in sorted(set(ca) - set(cb))] + [f"only in the second: {i}" for i in sorted(set(cb) - set(ca))]
    for i in sorted(set(ca) & set(cb)):
        for f in FIELDS:
            if ca[i].get(f) != cb[i].get(f):
                out.append(f"{i}: {f} {ca[i].get(f)!r} != {cb[i].get(f)!r}")
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("first", type=Path)
    ap.add_argument("second", type=Path)
    args = ap.parse_args(argv)
    a, b = (json.loads(p.read_text()) for p in (args.first, args.second))
    diffs = compare(a, b)
    n = len({c["id"] for c in a["cells"]} & {c["id"] for c in b["cells"]})
    print("\n".join(diffs) if diffs else f"identical: {n} cells, every field of {', '.join(FIELDS)}")
    return 1 if diffs else 0


if __name__ == "__main__":
    sys.exit(main())
