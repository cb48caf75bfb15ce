"""The signal ceiling against the MetaFT label budget, from the same uniform PT runs (a research runner).

    python -m metapt.ppi.ceiling_map [--graphs 1200 3200] [--seeds 0 1 2 3 4] [--epochs 4] [--out docs/results/ceiling_map.json]

Uniform PT never reads MetaFT labels, so one uniform run per (generator size, seed) serves every budget:
at the end of its PT, ``metapt.ppi.probe.signal_ceiling`` scores the PT tasks against MetaFT cut to each
budget (``with_ft_budget``; the largest is the whole FT pool). Everything else is the embedded profile's
PPI section (model, PT schedule, batch sizes). Not a pipeline stage: it is the first look at issue 13's
budget axis, recorded in docs/ppi_signal.md.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from tqdm.auto import tqdm

from metapt.config import load_params
from metapt.io import write_json
from metapt.ppi import synth
from metapt.ppi.pretrain import pretrain
from metapt.ppi.probe import signal_ceilings
from metapt.ppi.splits import make_splits, species_ids, with_ft_budget
from metapt.stats import summarise

BUDGETS = ((100, 100), (300, 100), (1000, 200), (2000, 400))


def ceiling_map(n_graphs: int, seeds: list[int], epochs: int, bootstrap: int = 0) -> list[dict]:
    cfg = load_params().profiles["embedded"].ppi
    cfg = cfg.model_copy(update={"pretrain": cfg.pretrain.model_copy(update={
        "loop": cfg.pretrain.loop.model_copy(update={"epochs": epochs}), "probe": cfg.pretrain.probe.model_copy(update={"epochs": []})})})
    graphs, truth = synth.generate(synth.preset(cfg.data.preset, **{**cfg.data.generator, "n_graphs": n_graphs}), seed=cfg.data.seed)
    full = make_splits(species_ids(graphs))
    pool = (len(full.ft_train), len(full.ft_val))
    budgets = [b for b in BUDGETS if b[0] < pool[0] and b[1] < pool[1]] + [pool]
    rows = []
    for seed in tqdm(seeds, desc=f"{n_graphs} graphs"):
        pt = pretrain("uniform", graphs, full, cfg, seed, truth=truth)
        metaft = {b: (s.ft_train, s.ft_val) for b in budgets for s in [with_ft_budget(full, b)]}
        for b, r in signal_ceilings(pt.trainer.problem, graphs, full.meta_pt, metaft, truth, bootstrap=bootstrap, seed=seed).items():
            rows.append({"n_graphs": n_graphs, "seed": seed, "budget": list(b), "pool": b == pool,
                         **{k: r[k] for k in ("auc_fixed_head", "auc_through_head", "lam") if k in r},
                         **({"stability_through_head": r["stability_through_head"]} if "stability_through_head" in r else {})})
    return rows


def table(rows: list[dict]) -> str:
    lines = ["| graphs | MetaFT budget | AUC, fixed head | AUC, through the head | stability | n |", "|---|---|---|---|---|---|"]
    keys = sorted({(r["n_graphs"], tuple(r["budget"])) for r in rows})
    for g, b in keys:
        sel = [r for r in rows if r["n_graphs"] == g and tuple(r["budget"]) == b]
        cells = []
        for k in ("auc_fixed_head", "auc_through_head", "stability_through_head"):
            v = [r[k] for r in sel if k in r]
            s = summarise(v) if len(v) > 1 else None
            cells.append(f"{s.mean:.3f} [{s.ci_low:.3f}, {s.ci_high:.3f}]" if s else "–")
        pool = " (whole pool)" if sel[0]["pool"] else ""
        lines.append(f"| {g} | {b[0]}/{b[1]}{pool} | " + " | ".join(cells) + f" | {len(sel)} |")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--graphs", type=int, nargs="+", default=[1200, 3200])
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    ap.add_argument("--epochs", type=int, default=4)
    ap.add_argument("--bootstrap", type=int, default=3)
    ap.add_argument("--out", type=Path, default=Path("docs/results/ceiling_map.json"))
    args = ap.parse_args()
    rows = [r for g in args.graphs for r in ceiling_map(g, args.seeds, args.epochs, args.bootstrap)]
    write_json(args.out, {"epochs": args.epochs, "bootstrap": args.bootstrap, "rows": rows})
    print(table(rows))


if __name__ == "__main__":
    main()
