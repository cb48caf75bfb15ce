"""Print the lineage of a report cell or an output: stages, params, hashes, MLflow runs, commits, staleness.

    python stages/lineage.py ppi/full/meta/test_hard_auroc/full      (a cell id from results/report/summary.json)
    python stages/lineage.py results/ppi/finetune/meta-full-s0       (any pipeline output)
"""

import argparse
import sys

from _common import ROOT  # noqa: F401  (puts the repository on sys.path)

from metapt import lineage

if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("target", help="cell id or output path")
    ap.add_argument("--no-mlflow", action="store_true", help="skip the MLflow lookups (commit, dirty flag)")
    ap.add_argument("--seeds", type=int, nargs="*", help="only these PT seeds of a cell")
    args = ap.parse_args()
    try:
        if "/" in args.target and not args.target.startswith(("results/", "data/")):
            c = lineage.cell(args.target)
            print(f"cell {c['id']}: mean {c['mean']} ± {c['std']} (n={c['n']}, 95% CI [{c['ci_low']}, {c['ci_high']}])")
            if c.get("best_baseline"):
                print(f"  vs best baseline {c['best_baseline']}: Δ {c.get('delta_mean')} [{c.get('delta_ci_low')}, {c.get('delta_ci_high')}], p = {c.get('p_value')}")
            c["runs"] = [r for r in c["runs"] if args.seeds is None or r["seed"] in args.seeds]
            paths, allowed = ["results/report"], lineage.cell_outputs(c)
        else:
            paths, allowed = [args.target], None
        print(lineage.render(lineage.trace(paths, stale=lineage.stale_stages(), with_mlflow=not args.no_mlflow, allowed=allowed)))
    except (KeyError, FileNotFoundError) as err:
        sys.exit(f"error: {err}")
