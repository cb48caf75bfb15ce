"""The digits part of the report: did the learned policy move each magnitude the way the task's
construction says it should (``metapt.digits.domain.PLANTED``)?

Read from the meta runs' policy trajectories (``phi.npz``, columns ``<task>/<transform>``): the change
of each magnitude over PT as ln(final / start), one cell per (task, transform, N) with seed
statistics and lineage like every other cell; per seed, how many of the scored directions are right;
and how often each magnitude fell between snapshots (the sign of what the hypergradient did).
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from metapt.digits.domain import PLANTED, TASKS, TRANSFORMS
from metapt.records import EvalRow, Evaluation, PhiTrajectory
from metapt.report.cells import Layout, Section, isnum, make_cell, warn
from metapt.report.figures import load_trajectory, meta_runs

ARROW = {"down": "↓", "not_down": "not ↓"}


def changes(traj: PhiTrajectory) -> dict[str, dict[str, float]]:
    """Per column ``<task>/<transform>``: ln(final/start) and the share of snapshot intervals where it fell."""
    out = {}
    for i, col in enumerate(traj.columns):
        v = np.asarray(traj.values[:, i], float)
        v = v[np.isfinite(v)]
        if len(v) < 2 or v[0] <= 0:
            continue
        steps = np.diff(v)
        moved = steps[steps != 0]
        out[col] = {"log_change": float(math.log(v[-1] / v[0])), "fell_share": float((moved < 0).mean()) if len(moved) else float("nan")}
    return out


def is_right(expected: str, log_change: float) -> bool:
    return log_change < 0 if expected == "down" else log_change >= 0


def planted_section(evaluation: Evaluation, layout: Layout, root: Path, folder: Path, sink: list[str] | None = None) -> Section:
    runs = meta_runs(evaluation, layout, "trajectory")
    seen: dict[tuple[int, int], dict[str, dict[str, float]]] = {}
    method = {}
    for r in runs:
        traj = load_trajectory(r.trajectory, root, sink)
        if traj is not None and traj.quantity == "magnitudes":
            seen[(r.labels, r.seed)] = changes(traj)
            method[(r.labels, r.seed)] = (r.method, r.run)
    if not seen:
        warn("digits planted-truth check skipped: no meta run wrote a policy trajectory", sink)
        return Section("Planted invariances", "", [], [])
    budgets = sorted({n for n, _ in seen})
    cells = []
    for n in budgets:
        for task in TASKS:
            for tr in TRANSFORMS:
                by_seed = {s: EvalRow("digits", f"{task}_N={n}", method[(m, s)][0], method[(m, s)][0], s, "pt", f"{tr}_log_change",
                                      ch[f"{task}/{tr}"]["log_change"], 0, method[(m, s)][1], None, n)
                           for (m, s), ch in seen.items() if m == n and f"{task}/{tr}" in ch}
                if by_seed:
                    cell = make_cell("digits", (f"{task}_N={n}", next(iter(by_seed.values())).row, f"{tr}_log_change", "pt"), by_seed)
                    if (task, tr) in PLANTED:
                        cell["planted"] = PLANTED[(task, tr)]
                        cell["n_right"] = sum(is_right(PLANTED[(task, tr)], v) for v in cell["values"] if isnum(v))
                    cells.append(cell)
    md = [markdown_directions(seen, budgets), "", markdown_changes(cells, budgets), "", markdown_signs(seen, budgets)]
    figures = []
    from metapt.report.figures import _save  # the report's one writer of figures (skips and warns on failure)

    if (path := _save(plot_magnitudes(runs, root, max(budgets), sink), folder / "digits_policy_magnitudes.png")):
        figures.append((path, f"DIGITS: learned policy magnitudes over meta-PT relative to their start (N={max(budgets)}), one line per seed, "
                              "one panel per task; the planted direction is in the panel title."))
    return Section("Planted invariances (digits)", "\n".join(md), cells, figures)


def markdown_directions(seen: dict, budgets: list[int]) -> str:
    scored = list(PLANTED)
    head = " | ".join(f"{t} {tr} ({ARROW[PLANTED[(t, tr)]]})" for t, tr in scored)
    lines = ["Per seed: the direction each scored magnitude moved over meta-PT (✓ = the planted direction). "
             "The planted directions follow from how each task is built, fixed before any run (docs/digits.md).", "",
             f"| N | seed | {head} | right |", "|---|---|" + "---|" * len(scored) + "---|"]
    for n in budgets:
        for (m, s), ch in sorted(seen.items()):
            if m != n:
                continue
            marks, right = [], 0
            for key in scored:
                c = ch.get(f"{key[0]}/{key[1]}")
                if c is None:
                    marks.append("–")
                    continue
                ok = is_right(PLANTED[key], c["log_change"])
                right += ok
                marks.append(f"{'↓' if c['log_change'] < 0 else '↑'} {c['log_change']:+.2f} {'✓' if ok else '✗'}")
            lines.append(f"| {n} | {s} | {' | '.join(marks)} | {right}/{len(scored)} |")
    return "\n".join(lines)


def markdown_changes(cells: list[dict], budgets: list[int]) -> str:
    """ln(final/start) of every magnitude: mean [95% CI] over seeds, and the share of snapshot steps where it fell."""
    lines = ["ln(final / start) of every magnitude, mean [95% CI] over seeds (scored cells: planted direction and seeds right).", "",
             "| task | N | " + " | ".join(TRANSFORMS) + " |", "|---|---|" + "---|" * len(TRANSFORMS)]
    at = {(c["setting"], c["metric"]): c for c in cells}
    for task in TASKS:
        for n in budgets:
            row = []
            for tr in TRANSFORMS:
                c = at.get((f"{task}_N={n}", f"{tr}_log_change"))
                if c is None:
                    row.append("–")
                    continue
                ci = f" [{c['ci_low']:+.2f}, {c['ci_high']:+.2f}]" if isnum(c["ci_low"]) else ""
                mark = f" {ARROW[c['planted']]} {c['n_right']}/{c['n']}" if "planted" in c else ""
                row.append(f"{c['mean']:+.2f}{ci}{mark}")
            lines.append(f"| {task} | {n} | " + " | ".join(row) + " |")
    return "\n".join(lines)


def markdown_signs(seen: dict, budgets: list[int]) -> str:
    """What the meta-updates did step by step: the share of snapshot intervals in which each magnitude fell, mean over seeds."""
    lines = ["Share of snapshot intervals in which each magnitude fell (the sign of the hypergradient's updates over PT; "
             "0.5 = no consistent direction), mean over seeds.", "",
             "| task | N | " + " | ".join(TRANSFORMS) + " |", "|---|---|" + "---|" * len(TRANSFORMS)]
    for task in TASKS:
        for n in budgets:
            shares = [[ch[f"{task}/{tr}"]["fell_share"] for (m, _), ch in seen.items() if m == n and f"{task}/{tr}" in ch] for tr in TRANSFORMS]
            row = [f"{np.nanmean(s):.2f}" if s and np.isfinite(s).any() else "–" for s in shares]
            lines.append(f"| {task} | {n} | " + " | ".join(row) + " |")
    return "\n".join(lines)


def plot_magnitudes(runs, root: Path, n: int, sink: list[str] | None = None):
    """m / m₀ over PT, a panel per task, a colour per transform, a line per seed (meta runs at N = ``n``)."""
    from metapt.plotting import plt

    trajs = [t for r in runs if r.labels == n and (t := load_trajectory(r.trajectory, root, sink)) is not None and t.quantity == "magnitudes"]
    if not trajs:
        return None
    fig, axes = plt.subplots(1, len(TASKS), figsize=(4.2 * len(TASKS), 3.6), sharey=True, squeeze=False)
    colours = dict(zip(TRANSFORMS, ("tab:red", "tab:blue", "tab:green", "tab:purple", "tab:grey")))
    for ax, task in zip(axes[0], TASKS):
        for traj in trajs:
            for tr in TRANSFORMS:
                col = f"{task}/{tr}"
                if col not in traj.columns:
                    continue
                v = np.asarray(traj.column(col), float)
                ok = np.isfinite(v) & (v > 0)
                if ok.sum() >= 2:
                    ax.plot(traj.steps[ok], v[ok] / v[ok][0], color=colours[tr], alpha=0.6, lw=1, label=tr if traj is trajs[0] else None)
        planted = ", ".join(f"{tr} {ARROW[d]}" for (t, tr), d in PLANTED.items() if t == task)
        ax.axhline(1, color="k", lw=0.5)
        ax.set_yscale("log")
        ax.set(title=f"{task}: planted {planted}", xlabel="PT step")
    axes[0][0].set_ylabel("magnitude / start")
    axes[0][0].legend(fontsize=7)
    return fig
