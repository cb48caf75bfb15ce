"""Stage evaluate_<domain>: gather every run's test scores into results/<domain>/evaluation.json (one row per cell value).

    python stages/evaluate.py ppi|ecg
"""

import argparse

from _common import domain_arg, profile

from metapt import pipeline

if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    domain_arg(ap)
    args = ap.parse_args()
    print(pipeline.evaluate(args.domain, profile()))
