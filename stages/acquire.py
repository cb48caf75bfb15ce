"""Stage acquire_<domain>: download the real data (paper profile) or generate the synthetic stand-in (embedded).

    python stages/acquire.py ppi|ecg
"""

import argparse

from _common import domain_module, profile

if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("domain", choices=["ppi", "ecg"])
    args = ap.parse_args()
    print(domain_module(args.domain, "prepare").acquire(profile()))
