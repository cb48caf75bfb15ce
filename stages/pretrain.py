"""Stage pretrain_<domain>: pre-train one (method, setting or N, seed); meta-methods learn φ by hypergradient.

    python stages/pretrain.py ppi --method meta --setting partial --seed 2
    python stages/pretrain.py ecg --method meta_simclr --labels 25 --seed 0
"""

import argparse

from _common import domain_module, profile

from metapt.runs import Run

if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("domain", choices=["ppi", "ecg"])
    ap.add_argument("--method", required=True)
    ap.add_argument("--seed", type=int, required=True)
    ap.add_argument("--setting", choices=["full", "partial", "heldout"], help="PPI: FT access during meta-PT")
    ap.add_argument("--labels", type=int, help="ECG meta-SimCLR: N labelled examples")
    ap.add_argument("--quiet", action="store_true", help="no progress bar")
    args = ap.parse_args()
    run = Run(args.domain, args.method, args.seed, args.setting, args.labels)
    print(domain_module(args.domain).pretrain(profile(), run, progress=not args.quiet))
