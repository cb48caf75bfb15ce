"""Stage pretrain_<domain>: pre-train one (method, setting or N, seed); meta-methods learn φ by hypergradient.

    python stages/pretrain.py ppi --method meta --setting partial --seed 2
    python stages/pretrain.py ecg --method meta_simclr --labels 25 --seed 0
"""

import argparse

from _common import profile, run_args

from metapt import pipeline
from metapt.domain import Run

if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    run_args(ap)
    ap.add_argument("--quiet", action="store_true", help="no progress bar")
    args = ap.parse_args()
    run = Run(args.domain, args.method, args.seed, args.setting, args.labels)
    print(pipeline.pretrain(profile(), run, progress=not args.quiet))
