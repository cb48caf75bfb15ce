"""Stage preprocess_<domain>: PPI graphs + splits (+ planted truth); ECG signals z-scored on folds 1-9, padded.

    python stages/preprocess.py ppi|ecg
"""

import argparse

from _common import domain_arg, profile

from metapt import pipeline

if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    domain_arg(ap)
    args = ap.parse_args()
    print(pipeline.preprocess(args.domain, profile()))
