"""Stage preprocess_<domain>: PPI graphs + splits (+ planted truth); ECG signals z-scored on folds 1-9, padded.

    python stages/preprocess.py ppi|ecg
"""

import argparse

from _common import domain_module, profile

if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("domain", choices=["ppi", "ecg"])
    args = ap.parse_args()
    print(domain_module(args.domain, "prepare").preprocess(profile()))
