"""Run PPI methods × seeds on a synthetic preset and write one JSON per run, plus a summary.

    python -m metapt.ppi.trial --preset discriminating --config configs/ppi_trial_discriminating.yaml --methods no_pt uniform oracle meta --seeds 0 1 2 --out results/trials/disc

Knobs come from a YAML/JSON file of ``PPIConfig`` fields (``--config``) and ``--set key=value``
overrides with dotted keys (``--set pretrain.loop.hypergrad.normalise=rms``).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import yaml

from metapt.evaluate import weights_vs_truth
from metapt.io import write_json
from metapt.overrides import apply_overrides, parse_pairs
from metapt.ppi import synth
from metapt.ppi.finetune import finetune_and_test
from metapt.ppi.legacy import load_converted
from metapt.ppi.pretrain import METHODS, pretrain
from metapt.ppi.settings import PPIConfig
from metapt.ppi.splits import make_splits, species_ids, with_ft_budget
from metapt.stats import paired
from metapt.stats import summarise as summarise_values


def load_graphs(preset: str | None, data_overrides: dict, data_seed: int = 0, bio: Path | None = None) -> tuple[list, dict | None, str]:
    """Synthetic graphs with their planted truth, or the converted real bio data (no truth)."""
    if bio is not None:
        return list(load_converted(bio)), None, "bio"
    graphs, truth = synth.generate(synth.preset(preset, **data_overrides), seed=data_seed)
    return graphs, truth, preset


def run_trial(preset: str | None, methods: list[str], seeds: list[int], cfg: PPIConfig, out: Path, data_overrides: dict, data_seed: int = 0, access: str = "full", fold: int = 0, modes: list[str] | None = None, bio: Path | None = None, progress: bool = True) -> list[dict]:
    t0 = time.perf_counter()
    graphs, truth, preset = load_graphs(preset, data_overrides, data_seed, bio)
    splits = with_ft_budget(make_splits(species_ids(graphs)), cfg.ft_budget)
    gen_s = time.perf_counter() - t0
    results = []
    for seed in seeds:
        learned = None
        for method in sorted(methods, key=lambda m: m != "meta"):  # task_selection needs meta's weights
            if method == "task_selection" and learned is None:
                raise ValueError("task_selection needs 'meta' in --methods")
            pt = pretrain(method, graphs, splits, cfg, seed, access=access, fold=fold, truth=truth, learned_weights=learned, progress=progress)
            if method == "meta":
                learned = pt.weights
            ev = finetune_and_test(pt.encoder, graphs, splits, cfg, access=access, fold=fold, modes=modes, progress=progress)
            row = {"preset": preset, "method": method, "seed": seed, "access": access, "fold": fold, "pt": pt.log, "ft": ev, "generate_s": gen_s}
            if pt.weights is not None and truth is not None:
                ok = np.isfinite(pt.weights)
                row["weights"] = weights_vs_truth(pt.weights[ok], np.asarray(truth["helpful_mask"])[ok], [k for k, o in zip(truth["pt_kind"], ok) if o], np.asarray(truth["helpfulness"])[ok])
            write_json(out / f"{method}_seed{seed}.json", row)
            if method in ("meta", "agnostic"):
                pt.trainer.save_trajectory(out / f"{method}_seed{seed}_phi.npz")
            results.append(row)
            summary = {m: ev[m]["test_hard"] for m in ev}
            print(f"{method:16s} seed {seed}: test_hard {summary}  weights_auc {row.get('weights', {}).get('weights_auc', float('nan')):.3f}  PT {pt.log['pt_wall_s']:.1f}s", flush=True)
    return results


def summarise(results: list[dict], reference: str = "uniform") -> str:
    """Per method and FT mode: test-hard mean ± std with CI, and the paired difference to ``reference``."""
    lines = [f"| method | mode | test_hard mean ± std (95% CI) | test_easy mean | paired Δ vs {reference} (95% CI) | p | weights AUC |", "|---|---|---|---|---|---|---|"]
    by_method = {m: sorted((r for r in results if r["method"] == m), key=lambda r: r["seed"]) for m in dict.fromkeys(r["method"] for r in results)}
    for m, rows in by_method.items():
        for mode in rows[0]["ft"]:
            hard = [r["ft"][mode]["test_hard"] for r in rows]
            easy = summarise_values([r["ft"][mode]["test_easy"] for r in rows])
            s = summarise_values(hard)
            delta, p = "–", "–"
            ref = by_method.get(reference)
            if ref is not None and m != reference and [r["seed"] for r in ref] == [r["seed"] for r in rows]:
                pr = paired(hard, [r["ft"][mode]["test_hard"] for r in ref])
                delta, p = f"{pr.diff.mean:+.4f} [{pr.diff.ci_low:+.4f}, {pr.diff.ci_high:+.4f}]", f"{pr.p_value:.3f}"
            auc = [r["weights"]["weights_auc"] for r in rows if "weights" in r]
            lines.append(f"| {m} | {mode} | {s.mean:.4f} ± {s.std:.4f} ({s.ci_low:.4f}–{s.ci_high:.4f}), n={s.n} | {easy.mean:.4f} | {delta} | {p} | {np.mean(auc) if auc else float('nan'):.3f} |")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--preset", default="discriminating", choices=list(synth.PRESETS))
    ap.add_argument("--bio", type=Path, help="converted real bio data (metapt.ppi.acquire.fetch_bio) instead of a synthetic preset")
    ap.add_argument("--methods", nargs="+", default=["no_pt", "uniform", "oracle", "meta"], choices=METHODS)
    ap.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    ap.add_argument("--config", type=Path, help="YAML with PPIConfig fields")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="dotted override, YAML value")
    ap.add_argument("--data", action="append", default=[], metavar="KEY=VALUE", help="generator override, e.g. n_graphs=3000")
    ap.add_argument("--access", default="full", choices=["full", "partial", "heldout"])
    ap.add_argument("--fold", type=int, default=0)
    ap.add_argument("--modes", nargs="+", default=None)
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args()
    tree = yaml.safe_load(args.config.read_text()) if args.config else {}
    cfg = PPIConfig.model_validate(apply_overrides(tree, args.set))
    data = parse_pairs(args.data)
    results = run_trial(args.preset, args.methods, args.seeds, cfg, args.out, data, access=args.access, fold=args.fold, modes=args.modes, bio=args.bio)
    table = summarise(results)
    print(table)
    (args.out / "summary.md").write_text(table + "\n")


if __name__ == "__main__":
    main()
