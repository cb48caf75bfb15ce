"""Stage finetune_<domain>: fine-tune one PT run per FT mode and FT seed; test AUROC at the best validation epoch.

    python stages/finetune.py ppi --method meta --setting full --seed 0
    python stages/finetune.py ecg --method simclr --seed 0          (every N of the grid)
"""

import argparse

from _common import domain_module, profile

from metapt.runs import Run

if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("domain", choices=["ppi", "ecg"])
    ap.add_argument("--method", required=True)
    ap.add_argument("--seed", type=int, required=True)
    ap.add_argument("--setting", choices=["full", "partial", "heldout"])
    ap.add_argument("--labels", type=int)
    args = ap.parse_args()
    run = Run(args.domain, args.method, args.seed, args.setting, args.labels)
    print(domain_module(args.domain).finetune(profile(), run))
