"""Run ECG methods × label budgets × seeds on the synthetic 12-lead set; JSON per run and a summary.

    python -m metapt.ecg.trial --config configs/ecg_trial.yaml --n-records 1000 --labels 25 100 --seeds 0 1 --out results/trials/ecg
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import yaml

from metapt.ecg import synth
from metapt.ecg.data import preprocess
from metapt.ecg.finetune import finetune_and_test
from metapt.ecg.pretrain import METHODS, pretrain
from metapt.ecg.settings import ECGConfig
from metapt.io import write_json
from metapt.overrides import apply_overrides
from metapt.stats import paired, summarise


def synthetic_folds(n: int, seed: int = 0) -> np.ndarray:
    """PTB-XL-like strat_fold 1–10 for in-memory synthetic records."""
    return np.random.default_rng(seed).permutation(np.arange(n) % 10 + 1)


def run(cfg: ECGConfig, n_records: int, methods: list[str], labels: list[int], seeds: list[int], out: Path, modes: list[str] | None = None, progress: bool = True) -> list[dict]:
    t0 = time.perf_counter()
    x, y, _ = synth.generate(synth.preset("default", n_records=n_records, seed=0))
    folds = synthetic_folds(len(x))
    x = preprocess(x, folds, train_folds=range(1, 10), pad_to=1024).signals
    y = y.astype(np.float32)
    pt_idx, test_idx = np.flatnonzero(folds <= 9), np.flatnonzero(folds == 10)
    gen_s = time.perf_counter() - t0
    rows = []
    for seed in seeds:
        for n in labels:
            for method in methods:
                enc, log = pretrain(method, x, y, pt_idx, n, cfg, seed, progress=progress)
                ev = finetune_and_test(enc, x, y, pt_idx, test_idx, n, cfg, seed, modes=modes)
                row = {"method": method, "n_labels": n, "seed": seed, "pt": log, "ft": ev, "generate_s": gen_s}
                write_json(out / f"{method}_N{n}_seed{seed}.json", row)
                rows.append(row)
                print(f"{method:12s} N={n:4d} seed {seed}: " + ", ".join(f"{m} {ev[m]['test_macro_auroc']:.4f}" for m in ev) + f"  PT {log['pt_wall_s']:.1f}s", flush=True)
    return rows


def table(rows: list[dict], reference: str = "simclr") -> str:
    lines = [f"| N | method | mode | macro AUROC mean ± std (95% CI) | paired Δ vs {reference} (95% CI) |", "|---|---|---|---|---|"]
    for n in sorted({r["n_labels"] for r in rows}):
        for method in dict.fromkeys(r["method"] for r in rows):
            sel = sorted((r for r in rows if r["n_labels"] == n and r["method"] == method), key=lambda r: r["seed"])
            ref = sorted((r for r in rows if r["n_labels"] == n and r["method"] == reference), key=lambda r: r["seed"])
            for mode in sel[0]["ft"]:
                vals = [r["ft"][mode]["test_macro_auroc"] for r in sel]
                s = summarise(vals)
                delta = "–"
                if method != reference and ref and len(ref) == len(sel) > 1:
                    d = paired(vals, [r["ft"][mode]["test_macro_auroc"] for r in ref]).diff
                    delta = f"{d.mean:+.4f} [{d.ci_low:+.4f}, {d.ci_high:+.4f}]"
                lines.append(f"| {n} | {method} | {mode} | {s.mean:.4f} ± {s.std:.4f} ({s.ci_low:.4f}–{s.ci_high:.4f}), n={s.n} | {delta} |")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--config", type=Path, required=True)
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    ap.add_argument("--n-records", type=int, default=1000)
    ap.add_argument("--methods", nargs="+", default=list(METHODS), choices=METHODS)
    ap.add_argument("--labels", nargs="+", type=int, default=[10, 25, 50, 100, 250, 500])
    ap.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    ap.add_argument("--modes", nargs="+", default=None)
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args()
    tree = apply_overrides(yaml.safe_load(args.config.read_text()), args.set)
    rows = run(ECGConfig.model_validate(tree), args.n_records, args.methods, args.labels, args.seeds, args.out, args.modes)
    text = table(rows)
    print(text)
    (args.out / "summary.md").write_text(text + "\n")


if __name__ == "__main__":
    main()
