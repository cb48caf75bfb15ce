"""Stage evaluate_<domain>: gather every run's test AUROC into results/<domain>/evaluation.json (one row per cell value).

    python stages/evaluate.py ppi|ecg
"""

import argparse

from _common import domain_module, profile

from metapt.io import write_json
from metapt.runs import evaluation_file

if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("domain", choices=["ppi", "ecg"])
    args = ap.parse_args()
    write_json(evaluation_file(args.domain), domain_module(args.domain).evaluation(profile()))
    print(evaluation_file(args.domain))
