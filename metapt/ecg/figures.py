"""ECG figures from trial outputs: macro AUROC against N per method, and the warp magnitude over PT.

    python -m metapt.ecg.figures results/trials/ecg --out docs/figures/ecg_trial.png
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from metapt.plotting import plt, save_figure


def ecg_figure(trial_dir: Path, out: Path, mode: str = "linear") -> Path:
    rows = [json.loads(p.read_text()) for p in sorted(trial_dir.glob("*_N*_seed*.json"))]
    if not rows:
        raise FileNotFoundError(f"no *_N*_seed*.json in {trial_dir}")
    fig, (ax_n, ax_w) = plt.subplots(1, 2, figsize=(10, 3.8))
    for method in dict.fromkeys(r["method"] for r in rows):
        ns = sorted({r["n_labels"] for r in rows if r["method"] == method})
        vals = [[r["ft"][mode]["test_macro_auroc"] for r in rows if r["method"] == method and r["n_labels"] == n] for n in ns]
        mean, std = np.array([np.mean(v) for v in vals]), np.array([np.std(v) for v in vals])
        ax_n.errorbar(ns, mean, yerr=std, marker="o", capsize=3, label=method)
    all_n = sorted({r["n_labels"] for r in rows})
    ax_n.set_xscale("log")
    ax_n.minorticks_off()
    ax_n.set_xticks(all_n, [str(n) for n in all_n])
    ax_n.set(xlabel="labelled examples N", ylabel=f"test macro AUROC ({mode})", title="AUROC against N (mean ± std over seeds)")
    ax_n.legend(fontsize=8)
    for r in rows:
        if r["method"] == "meta_simclr":
            ax_w.plot(r["pt"]["trajectory_steps"], r["pt"]["warp_std_trajectory"], alpha=0.7, label=f"N={r['n_labels']} seed {r['seed']}")
    ax_w.set(xlabel="PT step", ylabel="global warp magnitude 100·s²", title="learned augmentation magnitude")
    if ax_w.lines:
        ax_w.legend(fontsize=6, ncol=2)
    return save_figure(fig, out)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("trial_dir", type=Path)
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--mode", default="linear")
    args = ap.parse_args()
    print(ecg_figure(args.trial_dir, args.out, args.mode))


if __name__ == "__main__":
    main()
