"""Stage finetune_<domain>: fine-tune one PT run per FT mode and FT seed; test AUROC at the best validation epoch.

    python stages/finetune.py ppi --method meta --setting full --seed 0
    python stages/finetune.py ecg --method simclr --seed 0          (every N of the grid)
"""

import argparse

from _common import profile, run_args

from metapt import pipeline
from metapt.domain import Run

if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    run_args(ap)
    args = ap.parse_args()
    run = Run(args.domain, args.method, args.seed, args.setting, args.labels)
    print(pipeline.finetune(profile(), run))
