"""Figures of learned task weights against the planted truth (synthetic PPI), from trial outputs.

    python -m metapt.ppi.figures results/trials/wr_rms --out docs/figures/ppi_weight_recovery.png

Left: weights-versus-truth ROC-AUC per PT epoch, one line per seed. Right: final weights by
planted kind (helpful, distractor, noise), pooled over seeds.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from metapt.plotting import plt, save_figure
from metapt.ppi import synth
from metapt.records import PhiTrajectory


def weight_figure(trial_dir: Path, out: Path, method: str = "meta") -> Path:
    runs = sorted(trial_dir.glob(f"{method}_seed*.json"))
    runs = [r for r in runs if not r.name.endswith("_phi.npz")]
    if not runs:
        raise FileNotFoundError(f"no {method}_seed*.json in {trial_dir}")
    fig, (ax_auc, ax_w) = plt.subplots(1, 2, figsize=(10, 3.8))
    by_kind: dict[str, list[float]] = {}
    for path in runs:
        row = json.loads(path.read_text())
        per_epoch = row["pt"]["weights_vs_truth_per_epoch"]
        ax_auc.plot([e["epoch"] for e in per_epoch], [e["weights_auc"] for e in per_epoch], marker="o", ms=3, label=f"seed {row['seed']}")
        traj = PhiTrajectory.read(path.with_name(f"{method}_seed{row['seed']}_phi.npz"))
        assert traj.quantity == "weights", f"expected task weights in the trajectory, got {traj.quantity}"
        phi = traj.values[-1]
        _, truth = synth.generate(synth.preset(row["preset"], n_graphs=1, n_pt_tasks=len(phi)), seed=0)
        for kind, w in zip(truth["pt_kind"], phi):
            by_kind.setdefault(kind, []).append(float(w))
    ax_auc.axhline(0.5, color="grey", lw=0.8, ls="--")
    ax_auc.set(xlabel="PT epoch", ylabel="ROC-AUC of weights vs helpful mask", title=f"{trial_dir.name}: weight recovery")
    ax_auc.legend(fontsize=8)
    kinds = [k for k in ("helpful", "distractor", "noise") if k in by_kind]
    ax_w.boxplot([by_kind[k] for k in kinds], tick_labels=kinds, showfliers=False)
    for i, k in enumerate(kinds, start=1):
        ax_w.scatter(np.random.default_rng(0).normal(i, 0.05, len(by_kind[k])), by_kind[k], s=4, alpha=0.4)
    ax_w.set(ylabel="final weight w = 2·sigmoid(λ)", title="final weights by planted kind (all seeds)")
    return save_figure(fig, out)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("trial_dir", type=Path)
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--method", default="meta")
    args = ap.parse_args()
    print(weight_figure(args.trial_dir, args.out, args.method))


if __name__ == "__main__":
    main()
