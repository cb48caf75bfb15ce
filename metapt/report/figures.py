"""The report's figures, drawn from the typed records (``PhiTrajectory``, ``PTSummary``, ``Evaluation``).

Which figures a domain gets is decided by what its records hold, not by its name:

- its φ-learning PT runs have a trajectory of task weights (quantity ``weights`` or ``logits``):
  the weight trajectories of one run;
- their trajectory is a learned augmentation (quantity ``warp`` with a ``warp_std`` column): the
  warp std over PT, one line per run;
- they wrote final task weights: the weights by planted kind (if the domain has a planted truth)
  and the top tasks;
- columns with a label budget (``EvalRow.ft_labels``): the headline metric against N, per FT mode;
- every domain: the PT cost in steps.

Each ``plot_*`` returns the matplotlib figure unsaved (tests inspect its artists); each ``fig_*``
saves it and returns the path. Planted-kind colours come from ``Domain.truth_kinds``.
"""

from __future__ import annotations

import math
from collections import defaultdict
from pathlib import Path

import numpy as np

from metapt.io import read_json
from metapt.plotting import plt, save_figure
from metapt.records import Evaluation, PhiTrajectory, PTSummary
from metapt.report.cells import Layout, isnum, warn

TOP_K = 20
FALLBACK_COLOUR = "tab:blue"
WEIGHT_QUANTITIES = ("weights", "logits")
WARP_COLUMN = "warp_std"


# ---- reading the artefacts the records point to ------------------------------------------------

def load_truth(evaluation: Evaluation, root: Path, sink: list[str] | None = None) -> dict | None:
    """The planted truth of synthetic data (task kinds), or None for real data or a missing file."""
    if not evaluation.truth:
        return None
    path = root / evaluation.truth
    if not path.exists():
        warn(f"truth file {evaluation.truth} not found; weight figures are drawn without planted kinds", sink)
        return None
    return read_json(path)


def load_trajectory(ref: str | None, root: Path, sink: list[str] | None = None) -> PhiTrajectory | None:
    """``PhiTrajectory.read`` of a run's trajectory, or None (with a warning) if it was not written."""
    if not ref:
        return None
    if not (root / ref).exists():
        warn(f"φ trajectory {ref} not found; skipped", sink)
        return None
    return PhiTrajectory.read(root / ref)


def load_weights(ref: str | None, root: Path, sink: list[str] | None = None) -> np.ndarray | None:
    """A run's final task weights (NaN for tasks held out of PT), or None (with a warning) if missing."""
    if not ref:
        return None
    if not (root / ref).exists():
        warn(f"final weights {ref} not found; skipped", sink)
        return None
    return np.asarray(np.load(root / ref), dtype=np.float64)


def kinds_of(truth: dict | None, n: int, sink: list[str] | None = None) -> list[str] | None:
    """Planted kind per PT task, if the truth exists and has the right length."""
    if truth is None:
        return None
    kinds = truth.get("pt_kind")
    if kinds is None or len(kinds) != n:
        warn(f"truth has {None if kinds is None else len(kinds)} PT-task kinds but the weights have {n}; not colouring by kind", sink)
        return None
    return list(kinds)


def meta_runs(evaluation: Evaluation, layout: Layout, field: str) -> list[PTSummary]:
    """The PT runs of φ-learning methods that recorded ``field``: by declared method, setting, label budget, seed."""
    settings = list(layout.decl.settings)
    names = list(layout.decl.method_names)

    def key(p: PTSummary):
        setting = settings.index(p.setting) if p.setting in settings else len(settings)
        return (names.index(p.method) if p.method in names else len(names), setting, p.labels or 0, str(p.setting), p.seed)

    return sorted((p for p in evaluation.pretrain if layout.learns_phi(p.method) and getattr(p, field)), key=key)


def run_label(run: PTSummary) -> str:
    where = run.setting if run.setting is not None else (f"N={run.labels}" if run.labels is not None else None)
    return f"{where} seed {run.seed}" if where is not None else f"seed {run.seed}"


# ---- (a) task weights over PT ------------------------------------------------------------------

def task_weights(traj: PhiTrajectory) -> np.ndarray:
    """The task weights w a trajectory holds: as they are for ``weights`` (already 2·sigmoid(λ)),
    2·sigmoid of the values for ``logits``."""
    values = np.asarray(traj.values, dtype=np.float64)
    if traj.quantity == "weights":
        return values
    if traj.quantity == "logits":
        return 2.0 / (1.0 + np.exp(-values))
    raise ValueError(f"a {traj.quantity!r} trajectory holds no task weights (expected one of {WEIGHT_QUANTITIES})")


def _kind_legend(ax, kinds: list[str], colours: dict[str, str], **where) -> None:
    from matplotlib.patches import Patch

    present = [k for k in colours if k in set(kinds)] + sorted(set(kinds) - set(colours))
    ax.legend(handles=[Patch(color=colours.get(k, FALLBACK_COLOUR), label=k) for k in present], fontsize=8, **where)


def plot_weight_trajectories(traj: PhiTrajectory, run: PTSummary, final: np.ndarray | None = None, kinds: list[str] | None = None,
                             colours: dict[str, str] | None = None, domain: str = ""):
    """How the learned task weights move during PT for one run (a sample of tasks); one line per task,
    labelled ``task <index>``, its y data the task's weights w. None if there is nothing to draw."""
    colours = colours or {}
    w = task_weights(traj)
    if w.ndim != 2 or not w.size:
        return None
    in_pt = np.isfinite(final) if final is not None and len(final) == w.shape[1] else np.ones(w.shape[1], bool)
    kinds = kinds if kinds is not None and len(kinds) == w.shape[1] else None
    rng = np.random.default_rng(0)
    groups = [np.flatnonzero(in_pt)] if kinds is None else [np.flatnonzero(in_pt & (np.array(kinds) == k)) for k in sorted(set(kinds))]
    per_group = 30 if kinds is None else 10
    pick = [int(t) for ix in groups if len(ix) for t in rng.choice(ix, size=min(per_group, len(ix)), replace=False)]
    if not pick:
        return None
    fig, ax = plt.subplots(figsize=(6.5, 4))
    for t in sorted(pick):
        colour = colours.get(kinds[t], FALLBACK_COLOUR) if kinds else None
        ax.plot(traj.steps, w[:, t], lw=1, alpha=0.7, color=colour, label=f"task {t}")
    if kinds:
        _kind_legend(ax, [kinds[t] for t in pick], colours)
    ax.axhline(1.0, color="black", lw=0.6, ls="--")
    ax.set(xlabel="PT step", ylabel="task weight w = 2·sigmoid(λ)",
           title=f"{domain.upper()} task weights during meta-PT ({len(pick)} of {int(in_pt.sum())} tasks; {run.method}, {run_label(run)})")
    ax.title.set_fontsize(9)
    return fig


# ---- (b), (c) final task weights ---------------------------------------------------------------

def plot_weights_by_kind(weights: list[np.ndarray], kinds: list[str], colours: dict[str, str] | None = None,
                         aucs: list[float] = (), what: str = "", sink: list[str] | None = None):
    """Do the learned weights separate the planted helpful tasks from noise and distractors?"""
    colours = colours or {}
    by_kind: dict[str, list[float]] = defaultdict(list)
    for w in weights:
        if len(w) != len(kinds):
            warn(f"truth has {len(kinds)} PT-task kinds but the weights have {len(w)}; that run is left out", sink)
            continue
        for k, v in zip(kinds, w):
            if math.isfinite(v):
                by_kind[k].append(float(v))
    if not by_kind:
        return None
    present = [k for k in colours if k in by_kind] + sorted(set(by_kind) - set(colours))
    fig, ax = plt.subplots(figsize=(5.5, 4))
    ax.boxplot([by_kind[k] for k in present], showfliers=False)
    ax.set_xticks(range(1, len(present) + 1), present)
    rng = np.random.default_rng(0)
    for i, k in enumerate(present, start=1):
        ax.scatter(rng.normal(i, 0.06, len(by_kind[k])), by_kind[k], s=6, alpha=0.5, color=colours.get(k, FALLBACK_COLOUR))
    aucs = [a for a in aucs if isnum(a)]
    auc = f"; weights-vs-helpful AUC {np.mean(aucs):.2f}" if aucs else ""
    ax.axhline(1.0, color="black", lw=0.6, ls="--")
    ax.set(ylabel="final task weight", title=f"final weights by planted kind\n({len(weights)} {what} seeds{auc})")
    ax.title.set_fontsize(9)
    return fig


def plot_top_tasks(weights: list[np.ndarray], kinds: list[str] | None = None, colours: dict[str, str] | None = None, k: int = TOP_K):
    """The k tasks meta-PT weights most (mean over seeds), coloured by planted kind."""
    colours = colours or {}
    weights = [w for w in weights if len(w)]
    if not weights or len({len(w) for w in weights}) != 1:
        return None
    with np.errstate(all="ignore"):
        mean = np.nanmean(np.vstack(weights), axis=0)
    order = [int(t) for t in np.argsort(-np.nan_to_num(mean, nan=-np.inf)) if math.isfinite(mean[t])][:k]
    if not order:
        return None
    kinds = kinds if kinds is not None and len(kinds) == len(mean) else None
    bar_colours = [colours.get(kinds[t], FALLBACK_COLOUR) for t in order] if kinds else FALLBACK_COLOUR
    fig, ax = plt.subplots(figsize=(7, 3.8))
    ax.bar(range(len(order)), mean[order], color=bar_colours)
    ax.set_xticks(range(len(order)), [str(t) for t in order], rotation=90, fontsize=7)
    if kinds:
        _kind_legend(ax, [kinds[t] for t in order], colours, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    ax.set(xlabel="PT task index", ylabel="mean final weight", title=f"top {len(order)} PT tasks by learned weight ({len(weights)} seeds)")
    return fig


# ---- (d) a learned augmentation over PT --------------------------------------------------------

def plot_warp_std(runs: list[tuple[PTSummary, PhiTrajectory]], domain: str = ""):
    """The augmentation magnitude (the trajectory's ``warp_std`` column) over PT, one line per run."""
    runs = [(r, t) for r, t in runs if WARP_COLUMN in t.columns and len(t.steps)]
    if not runs:
        return None
    fig, ax = plt.subplots(figsize=(6.5, 4))
    for r, t in runs:
        ax.plot(t.steps, t.column(WARP_COLUMN), alpha=0.8, label=run_label(r))
    methods = ", ".join(dict.fromkeys(r.method for r, _ in runs))
    ax.set(xlabel="PT step", ylabel="learned warp std", title=f"{domain.upper()}: learned augmentation magnitude ({methods})")
    ax.legend(fontsize=6, ncol=2)
    return fig


# ---- (e) the headline metric against the label budget ------------------------------------------

def errorbar_cells(ax, x: list, cells: list[dict], label: str) -> None:
    """Each cell's mean with its 95% CI (no bar where the CI is undefined, e.g. one seed)."""
    lo = [c["mean"] - c["ci_low"] if isnum(c["ci_low"]) else 0.0 for c in cells]
    hi = [c["ci_high"] - c["mean"] if isnum(c["ci_high"]) else 0.0 for c in cells]
    ax.errorbar(x, [c["mean"] for c in cells], yerr=[lo, hi], marker="o", capsize=3, label=label)


def plot_metric_vs_n(cells: list[dict], layout: Layout, mode: str, metric: str | None = None):
    """The headline metric against the label budget N per row, mean with 95% CI (rows that learned
    from fewer labels than they fine-tuned on are in the tables, not here)."""
    metric = metric or layout.headline_metric
    cells = [c for c in cells if c["domain"] == layout.name and c["metric"] == metric and c["mode"] == mode
             and layout.ft_labels(c["setting"]) is not None and isnum(c["mean"]) and layout.learned_from(c["method"]) is None]
    if not cells:
        return None
    fig, ax = plt.subplots(figsize=(6, 4))
    for m in layout.row_order({c["method"] for c in cells}):
        mc = sorted((c for c in cells if c["method"] == m), key=lambda c: layout.ft_labels(c["setting"]))
        errorbar_cells(ax, [layout.ft_labels(c["setting"]) for c in mc], mc, label=m)
    ns = sorted({layout.ft_labels(c["setting"]) for c in cells})
    ax.set_xscale("log")
    ax.minorticks_off()
    ax.set_xticks(ns, [str(n) for n in ns])
    ax.set(xlabel="labelled examples N", ylabel=f"{metric} ({mode})", title=f"{layout.name.upper()}: {metric} against N\n(mean, 95% CI over PT seeds)")
    ax.legend(fontsize=8)
    return fig


# ---- (f) pre-training cost ---------------------------------------------------------------------

def plot_pt_cost(costs: dict[str, dict]):
    """Mean PT steps and hyper-steps per method per domain, each meta method's hyper-steps per PT step written on it."""
    costs = {d: c for d, c in costs.items() if c["methods"]}
    if not costs:
        return None
    fig, axes = plt.subplots(1, len(costs), figsize=(5 * len(costs), 3.8), squeeze=False)
    for ax, (domain, cost) in zip(axes[0], costs.items()):
        names = list(cost["methods"])
        x = np.arange(len(names))
        steps = [cost["methods"][m]["mean_pt_steps"] for m in names]
        hyper = [cost["methods"][m]["mean_hyper_steps"] for m in names]
        ax.bar(x - 0.2, np.nan_to_num(steps), width=0.4, color="tab:blue", label="PT steps")
        ax.bar(x + 0.2, np.nan_to_num(hyper), width=0.4, color="tab:red", label="hyper-steps")
        ax.set_xticks(x, names, rotation=30, ha="right")
        top = max([v for v in steps + hyper if isnum(v)], default=0.0)
        ax.set_ylim(0, 1.35 * top if top > 0 else 1.0)  # room for the text above the bars
        text = "\n".join(f"{m['method']}: {m['hyper_steps_per_pt_step']:.3f} hyper-steps per PT step" if isnum(m["hyper_steps_per_pt_step"])
                         else f"{m['method']}: no PT steps recorded" for m in cost["meta"]) or "no meta method run"
        ax.text(0.02, 0.95, text, transform=ax.transAxes, va="top", fontsize=8)
        ax.set(ylabel="steps (mean over PT runs)", title=f"{domain.upper()}: pre-training cost")
        ax.legend(fontsize=7, loc="upper right")
    return fig


def _save(fig, out: Path) -> Path | None:
    return save_figure(fig, out) if fig is not None else None


# ---- every figure of a report ------------------------------------------------------------------

PT_COST_CAPTION = ("Pre-training cost: mean PT steps and hyper-steps per method, with each meta method's hyper-steps "
                   "per PT step. Wall times are logged to MLflow (`pt_wall_s`), not to the DVC outputs.")


def domain_figures(evaluation: Evaluation, layout: Layout, cells: list[dict], root: Path, folder: Path,
                   sink: list[str] | None = None) -> list[tuple[Path, str]]:
    """The figures one domain's records allow, as (path, caption)."""
    d, D = evaluation.domain, evaluation.domain.upper()
    colours = dict(layout.decl.truth_kinds)
    made: list[tuple[Path, str]] = []
    truth = load_truth(evaluation, root, sink)
    coloured = ", coloured by planted kind." if truth else "."

    # φ trajectories: task weights, or a learned augmentation
    traj_runs = meta_runs(evaluation, layout, "trajectory")
    loaded = [(r, t) for r in traj_runs if (t := load_trajectory(r.trajectory, root, sink)) is not None]
    for run, traj in loaded:
        if traj.quantity in WEIGHT_QUANTITIES:
            final = load_weights(run.weights, root, sink)
            kinds = kinds_of(truth, np.asarray(traj.values).shape[-1], sink) if truth is not None else None
            if (path := _save(plot_weight_trajectories(traj, run, final, kinds, colours, d), folder / f"{d}_weight_trajectories.png")):
                made.append((path, f"{D}: a sample of PT-task weights over meta-PT steps for one {run.method} run{coloured}"))
                break
    warp = [(r, t) for r, t in loaded if t.quantity == "warp"]
    if (path := _save(plot_warp_std(warp, d), folder / f"{d}_warp_std.png")):
        methods = ", ".join(dict.fromkeys(r.method for r, _ in warp))
        made.append((path, f"{D}: learned augmentation magnitude (warp std) over PT, one line per {methods} run."))
    if traj_runs and not loaded:
        warn(f"figure {d} φ trajectories skipped: its inputs are missing", sink)

    # final task weights of one meta method and setting, pooled over seeds
    weight_runs = meta_runs(evaluation, layout, "weights")
    if weight_runs:
        first = weight_runs[0]
        group = [r for r in weight_runs if r.method == first.method and r.setting == first.setting]
        weights = [w for r in group if (w := load_weights(r.weights, root, sink)) is not None]
        what = f"{first.method} {first.setting}-access" if first.setting is not None else first.method
        kinds = truth.get("pt_kind") if truth is not None else None
        if kinds is not None:
            aucs = [r.weights_vs_truth.get("weights_auc") for r in group if r.weights_vs_truth]
            if (path := _save(plot_weights_by_kind(weights, list(kinds), colours, aucs, what, sink), folder / f"{d}_weights_by_kind.png")):
                made.append((path, f"{D} (synthetic): final learned weights by planted task kind, pooled over {what} seeds."))
            else:
                warn(f"figure {d}_weights_by_kind skipped: its inputs are missing", sink)
        top_kinds = kinds_of(truth, len(weights[0]), sink) if truth is not None and weights else None
        if (path := _save(plot_top_tasks(weights, top_kinds, colours), folder / f"{d}_top_tasks.png")):
            made.append((path, f"{D}: the top {TOP_K} PT tasks by mean final weight{coloured}"))
        else:
            warn(f"figure {d}_top_tasks skipped: its inputs are missing", sink)

    # the headline metric against the label budget
    for mode in sorted({c["mode"] for c in cells if c["domain"] == d}):
        for metric in layout.decl.metrics:
            name = f"{d}_auroc_vs_n_{mode}.png" if metric == layout.headline_metric else f"{d}_{metric}_vs_n_{mode}.png"
            if (path := _save(plot_metric_vs_n(cells, layout, mode, metric), folder / name)):
                made.append((path, f"{D}: {metric} against labelled examples N per method (FT mode {mode}), 95% CI error bars."))
    return made


def make_figures(evals: dict[str, Evaluation], layouts: dict[str, Layout], cells: list[dict], costs: dict[str, dict],
                 root: Path, folder: Path, sink: list[str] | None = None, drawn: list[tuple[Path, str]] = ()) -> list[dict]:
    """Draw every figure whose inputs exist; return [{file, caption}] relative to the report folder, with
    the ``drawn`` ones (the domains' report sections') last."""
    made = [pair for d, ev in evals.items() for pair in domain_figures(ev, layouts[d], cells, root, folder, sink)]
    if (path := _save(plot_pt_cost(costs), folder / "pt_cost.png")):
        made.append((path, PT_COST_CAPTION))
    return [{"file": f"figures/{Path(p).name}", "caption": caption} for p, caption in [*made, *drawn]]
