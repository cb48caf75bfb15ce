"""Stage acquire_<domain>: download the real data (paper profile) or generate the synthetic stand-in (embedded).

    python stages/acquire.py ppi|ecg
"""

import argparse

from _common import domain_arg, profile

from metapt import pipeline

if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    domain_arg(ap)
    args = ap.parse_args()
    print(pipeline.acquire(args.domain, profile()))
