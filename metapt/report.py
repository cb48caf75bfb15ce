"""The report stage: seed statistics, paper-style tables, figures, summary.json and a README.

Input is one ``results/<domain>/evaluation.json`` per domain (PPI, ECG); either may be missing.
Every table cell is one (domain, setting, method, metric, FT mode): mean ± std over PT seeds, n, a
t-based 95 % CI and, for the meta method, a paired test against the best baseline in its column
(highest mean among the other methods, ``oracle`` excluded because it is an upper bound). Pairing is
over the seeds both methods share, so a setting run with fewer seeds is never compared to the wrong
runs. NaN values are kept in ``values`` and counted in ``n_nan`` (and flagged in the tables) rather
than dropped silently; the statistics use the finite ones.

This module deliberately imports no torch: the report must be cheap to rebuild.
"""

from __future__ import annotations

import csv
import json
import math
import os
import re
import sys
from collections import defaultdict
from pathlib import Path

import numpy as np

from metapt.io import write_json
from metapt.plotting import plt, save_figure
from metapt.stats import paired, summarise

DOMAINS = ("ppi", "ecg")
META = {"ppi": "meta", "ecg": "meta_simclr"}
PLAIN = {"ppi": "uniform", "ecg": "simclr"}  # the meta method's plain counterpart, for the cost ratio
UPPER_BOUNDS = {"oracle"}  # never a "baseline": it sees the planted truth
METHOD_ORDER = {
    "ppi": ["no_pt", "uniform", "cotrain", "cotrain_pcgrad", "meta", "oracle"],
    "ecg": ["no_pt", "simclr", "meta_simclr"],
}
SETTING_ORDER = {"ppi": ["full", "partial", "heldout"]}
HEADLINE = {  # metric, then FT modes in order of preference
    "ppi": ("test_hard_auroc", ("full", "linear")),
    "ecg": ("test_macro_auroc", ("linear", "full")),
}
KIND_COLOURS = {"helpful": "tab:green", "distractor": "tab:orange", "noise": "tab:grey"}
TOP_K = 20
CSV_COLUMNS = [
    "id", "domain", "setting", "method", "metric", "mode", "mean", "std", "n", "n_nan", "ci_low", "ci_high",
    "seeds", "best_baseline", "n_paired", "delta_mean", "delta_ci_low", "delta_ci_high", "p_value",
]


# ---- small helpers -----------------------------------------------------------------------------

def warn(msg: str, sink: list[str] | None = None) -> None:
    """A skipped figure or missing input is worth a line on stderr (and in summary.json), not a crash."""
    print(f"report: warning: {msg}", file=sys.stderr)
    if sink is not None:
        sink.append(msg)


def _isnum(x) -> bool:
    return x is not None and isinstance(x, (int, float, np.floating, np.integer)) and math.isfinite(float(x))


def _float(x) -> float:
    """Row values may be null or NaN in the evaluation file; both mean "no number"."""
    return float(x) if x is not None else float("nan")


def jsonable(obj):
    """Strict JSON: non-finite floats become null, numpy scalars plain numbers, tuples lists."""
    if isinstance(obj, dict):
        return {str(k): jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [jsonable(v) for v in obj]
    if isinstance(obj, (np.integer,)):
        return int(obj)
    if isinstance(obj, (float, np.floating)):
        return float(obj) if math.isfinite(obj) else None
    if isinstance(obj, Path):
        return str(obj)
    return obj


def n_of(setting: str) -> int | None:
    """ECG columns are named like ``N=100``; the number orders them and is the figure's x axis."""
    m = re.fullmatch(r"\s*N\s*=\s*(\d+)\s*", str(setting))
    return int(m.group(1)) if m else None


def order_methods(domain: str, methods) -> list[str]:
    """The paper's row order, then any other method alphabetically."""
    fixed = METHOD_ORDER.get(domain, [])
    present = set(methods)
    by_name_then_n = lambda m: (m.partition("@")[0], int(m.partition("@")[2]) if m.partition("@")[2].isdigit() else -1, m)  # noqa: E731
    return [m for m in fixed if m in present] + sorted(present - set(fixed), key=by_name_then_n)


def order_settings(domain: str, settings) -> list[str]:
    """PPI: full, partial, heldout; ECG: by N; anything else alphabetically after."""
    present = set(settings)
    fixed = [s for s in SETTING_ORDER.get(domain, []) if s in present]
    rest = present - set(fixed)
    numbered = sorted((s for s in rest if n_of(s) is not None), key=n_of)
    return fixed + numbered + sorted(rest - set(numbered))


def headline_mode(domain: str, modes) -> str | None:
    """The FT mode the README leads with: the preferred one if it was run, else the first by name."""
    modes = sorted(set(modes))
    return next((m for m in HEADLINE[domain][1] if m in modes), modes[0] if modes else None)


def cell_id(domain: str, setting: str, method: str, metric: str, mode: str) -> str:
    """Stable key used by ``stages/lineage.py`` to trace a number back to its runs."""
    return f"{domain}/{setting}/{method}/{metric}/{mode}"


# ---- loading -----------------------------------------------------------------------------------

def load_evaluation(path: str | os.PathLike | None, sink: list[str] | None = None) -> dict | None:
    """The evaluation file, or None (with a warning) when that domain was not run."""
    if path is None:
        return None
    path = Path(path)
    if not path.exists():
        warn(f"{path} not found; that domain is left out of the report", sink)
        return None
    return json.loads(path.read_text())


def load_truth(evaluation: dict, root: Path, sink: list[str] | None = None) -> dict | None:
    """The planted truth of synthetic PPI (task kinds), or None for real data or a missing file."""
    ref = evaluation.get("truth")
    if not ref:
        return None
    path = root / ref
    if not path.exists():
        warn(f"truth file {path} not found; weight figures are drawn without planted kinds", sink)
        return None
    return json.loads(path.read_text())


def load_array(ref: str | None, root: Path, what: str, sink: list[str] | None = None):
    """``np.load`` of a run artefact, or None (with a warning) if it was not written."""
    if not ref:
        return None
    path = root / ref
    if not path.exists():
        warn(f"{what} {path} not found; skipped", sink)
        return None
    return np.load(path)


# ---- cells and paired tests --------------------------------------------------------------------

def group_rows(rows: list[dict]) -> dict[tuple, dict]:
    """Rows keyed by (setting, method, metric, mode), then by PT seed; a repeated seed is an upstream bug."""
    groups: dict[tuple, dict] = defaultdict(dict)
    for row in rows:
        key = (row["setting"], row["method"], row["metric"], row["mode"])
        if row["seed"] in groups[key]:
            raise ValueError(f"two evaluation rows for {key} seed {row['seed']}")
        groups[key][row["seed"]] = row
    return groups


def make_cell(domain: str, key: tuple, by_seed: dict) -> dict:
    """Seed statistics of one table cell; the statistics use finite values, NaNs are counted."""
    setting, method, metric, mode = key
    seeds = sorted(by_seed)
    values = [_float(by_seed[s]["value"]) for s in seeds]
    finite = [v for v in values if math.isfinite(v)]
    s = summarise(finite) if finite else None
    return {
        "id": cell_id(domain, setting, method, metric, mode),
        "domain": domain, "setting": setting, "method": method, "metric": metric, "mode": mode,
        "mean": s.mean if s else float("nan"), "std": s.std if s else float("nan"),
        "n": len(finite), "n_nan": len(values) - len(finite),
        "ci_low": s.ci_low if s else float("nan"), "ci_high": s.ci_high if s else float("nan"),
        "seeds": seeds, "values": values,
        "runs": [{"seed": sd, "pt_run": by_seed[sd].get("pt_run"), "ft_run": by_seed[sd].get("ft_run")} for sd in seeds],
    }


def is_meta(domain: str, method: str) -> bool:
    """The meta method, or its partial-access variant (``meta_simclr@25``: learned from 25 labels, fine-tuned on more)."""
    return method == META[domain] or method.startswith(f"{META[domain]}@")


def best_baseline(column: list[dict], domain: str) -> dict | None:
    """Highest-mean cell among the non-meta methods in one column (oracle excluded); ties go to row order."""
    candidates = [c for c in column if not is_meta(domain, c["method"]) and c["method"] not in UPPER_BOUNDS and _isnum(c["mean"])]
    if not candidates:
        return None
    rank = {m: i for i, m in enumerate(order_methods(domain, [c["method"] for c in candidates]))}
    return max(candidates, key=lambda c: (c["mean"], -rank[c["method"]]))


def compare(meta: dict, base: dict | None) -> dict:
    """Paired test of meta − baseline over the seeds where both have a finite value."""
    nan = float("nan")
    out = {"best_baseline": base["method"] if base else None, "n_paired": 0, "paired_seeds": [],
           "delta_mean": nan, "delta_ci_low": nan, "delta_ci_high": nan, "p_value": nan}
    if base is None:
        return out
    a = dict(zip(meta["seeds"], meta["values"]))
    b = dict(zip(base["seeds"], base["values"]))
    common = [s for s in meta["seeds"] if s in b and math.isfinite(a[s]) and math.isfinite(b[s])]
    if not common:
        return out
    pr = paired([a[s] for s in common], [b[s] for s in common])
    out.update(n_paired=len(common), paired_seeds=common, delta_mean=pr.diff.mean,
               delta_ci_low=pr.diff.ci_low, delta_ci_high=pr.diff.ci_high, p_value=pr.p_value)
    return out


def domain_cells(evaluation: dict) -> list[dict]:
    """All cells of one domain, in table order, with the meta cells' paired tests attached."""
    domain = evaluation["domain"]
    cells = [make_cell(domain, key, by_seed) for key, by_seed in group_rows(evaluation["rows"]).items()]
    columns: dict[tuple, list[dict]] = defaultdict(list)
    for c in cells:
        columns[(c["setting"], c["metric"], c["mode"])].append(c)
    for column in columns.values():
        for c in column:
            if is_meta(domain, c["method"]):
                c.update(compare(c, best_baseline(column, domain)))
    settings = order_settings(domain, {c["setting"] for c in cells})
    methods = order_methods(domain, {c["method"] for c in cells})
    return sorted(cells, key=lambda c: (c["metric"], c["mode"], settings.index(c["setting"]), methods.index(c["method"])))


def verdict(cell: dict) -> str:
    """Plain words for a meta cell: does it beat the best baseline, with its CI clear of zero?"""
    base, d, lo, hi = cell.get("best_baseline"), cell.get("delta_mean"), cell.get("delta_ci_low"), cell.get("delta_ci_high")
    if base is None or not _isnum(d):
        return "no paired comparison (no baseline on shared seeds)"
    if not (_isnum(lo) and _isnum(hi)):
        return f"cannot tell: only {cell['n_paired']} shared seed(s) with {base}"
    if lo > 0:
        return f"beats {base} (95% CI of Δ above 0)"
    if d <= 0:
        return f"does NOT beat {base} (Δ ≤ 0)"
    return f"does NOT beat {base} significantly (95% CI of Δ includes 0)"


# ---- tables ------------------------------------------------------------------------------------

def _fmt(x, digits: int = 3, sign: bool = False) -> str:
    if not _isnum(x):
        return "nan"
    return f"{x:+.{digits}f}" if sign else f"{x:.{digits}f}"


def _fmt_p(p) -> str:
    return "p=n/a" if not _isnum(p) else (f"p={p:.2g}" if p >= 1e-3 else "p<0.001")


def format_cell(cell: dict, bold: bool = False) -> str:
    """``mean ± std [CI] n=…``, flagging NaN seeds so they cannot go unnoticed."""
    main = f"{_fmt(cell['mean'])} ± {_fmt(cell['std'])}"
    main = f"**{main}**" if bold else main
    ci = f" [{_fmt(cell['ci_low'])}, {_fmt(cell['ci_high'])}]" if _isnum(cell["ci_low"]) else ""
    nan = f" (+{cell['n_nan']} NaN)" if cell["n_nan"] else ""
    return f"{main}{ci} n={cell['n']}{nan}"


def format_delta(cell: dict) -> str:
    """The paired-test row: Δ meta − best baseline, its CI, p and the number of shared seeds."""
    if cell.get("best_baseline") is None:
        return "—"
    if not _isnum(cell.get("delta_mean")):
        return f"vs {cell['best_baseline']}: no shared seeds"
    ci = f" [{_fmt(cell['delta_ci_low'], sign=True)}, {_fmt(cell['delta_ci_high'], sign=True)}]" if _isnum(cell["delta_ci_low"]) else ""
    return f"{_fmt(cell['delta_mean'], sign=True)}{ci} vs {cell['best_baseline']}, {_fmt_p(cell['p_value'])}, n={cell['n_paired']}"


def markdown_table(cells: list[dict], domain: str, metric: str, mode: str) -> str:
    """Rows = methods, columns = settings (the paper's layout), plus a row of paired tests."""
    cells = [c for c in cells if c["domain"] == domain and c["metric"] == metric and c["mode"] == mode]
    settings = order_settings(domain, {c["setting"] for c in cells})
    methods = order_methods(domain, {c["method"] for c in cells})
    at = {(c["setting"], c["method"]): c for c in cells}
    top = {s: max((c for c in cells if c["setting"] == s and c["method"] not in UPPER_BOUNDS and _isnum(c["mean"])),
                  key=lambda c: c["mean"], default=None) for s in settings}
    lines = [f"| method | {' | '.join(settings)} |", "|---|" + "---|" * len(settings)]
    for m in methods:
        row = [format_cell(at[(s, m)], bold=top[s] is at[(s, m)]) if (s, m) in at else "—" for s in settings]
        lines.append(f"| {m} | {' | '.join(row)} |")
    for meta in (m for m in methods if is_meta(domain, m)):
        row = [format_delta(at[(s, meta)]) if (s, meta) in at else "—" for s in settings]
        lines.append(f"| Δ {meta} − best baseline | {' | '.join(row)} |")
    return "\n".join(lines)


def table_title(domain: str, metric: str, mode: str) -> str:
    return f"{domain.upper()} — {metric}, FT mode `{mode}`"


TABLE_NOTE = ("Mean ± std over PT seeds [t-based 95% CI of the mean], n = PT seeds with a finite value "
              "(NaN seeds are counted, not used). **Bold**: best non-oracle mean per column. Last row: paired "
              "difference of the meta method and the best baseline (highest mean, oracle excluded) over their "
              "shared seeds, its 95% CI and two-sided paired t-test p.")


def csv_row(cell: dict) -> dict:
    """One CSV line per cell; empty fields for no number."""
    row = {k: cell.get(k) for k in CSV_COLUMNS}
    row["seeds"] = " ".join(str(s) for s in cell["seeds"])
    return {k: ("" if v is None or (isinstance(v, float) and not math.isfinite(v)) else v) for k, v in row.items()}


def write_table(cells: list[dict], domain: str, metric: str, mode: str, folder: Path) -> tuple[Path, Path]:
    """``<domain>_<metric>_<mode>.md`` (paper layout) and ``.csv`` (long, one line per cell)."""
    folder.mkdir(parents=True, exist_ok=True)
    stem = folder / f"{domain}_{metric}_{mode}"
    md = stem.with_suffix(".md")
    md.write_text(f"# {table_title(domain, metric, mode)}\n\n{markdown_table(cells, domain, metric, mode)}\n\n{TABLE_NOTE}\n")
    path = stem.with_suffix(".csv")
    with open(path, "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=CSV_COLUMNS)
        w.writeheader()
        for c in cells:
            if c["domain"] == domain and c["metric"] == metric and c["mode"] == mode:
                w.writerow(csv_row(c))
    return md, path


def table_keys(cells: list[dict]) -> list[tuple[str, str, str]]:
    """(domain, metric, mode) of every table, the headline metric first."""
    keys = {(c["domain"], c["metric"], c["mode"]) for c in cells}
    return sorted(keys, key=lambda k: (DOMAINS.index(k[0]) if k[0] in DOMAINS else 99, k[1] != HEADLINE.get(k[0], ("",))[0], k[1], k[2]))


# ---- figures -----------------------------------------------------------------------------------

def _meta_runs(evaluation: dict, field: str, setting: str | None = None) -> list[dict]:
    """The meta method's PT runs that recorded ``field``, full access first, then by seed."""
    domain = evaluation["domain"]
    runs = [r for r in evaluation.get("pretrain", []) if r.get("method") == META[domain] and r.get(field)]
    if setting is not None:
        runs = [r for r in runs if r.get("setting") == setting]
    return sorted(runs, key=lambda r: (r.get("setting") != "full", str(r.get("setting")), r.get("seed") or 0))


def _kinds(truth: dict | None, n: int, sink: list[str] | None) -> list[str] | None:
    """Planted kind per PT task, if the truth exists and has the right length."""
    if truth is None:
        return None
    kinds = truth.get("pt_kind")
    if kinds is None or len(kinds) != n:
        warn(f"truth has {None if kinds is None else len(kinds)} PT-task kinds but the weights have {n}; not colouring by kind", sink)
        return None
    return list(kinds)


def _kind_legend(ax, kinds: list[str], **where) -> None:
    from matplotlib.patches import Patch

    present = [k for k in KIND_COLOURS if k in set(kinds)] + sorted(set(kinds) - set(KIND_COLOURS))
    ax.legend(handles=[Patch(color=KIND_COLOURS.get(k, "tab:blue"), label=k) for k in present], fontsize=8, **where)


def fig_weight_trajectories(ppi: dict, truth: dict | None, root: Path, out: Path, sink: list[str] | None = None) -> Path | None:
    """(a) How the learned PT-task weights move during PT, for one meta run (a sample of tasks)."""
    runs = _meta_runs(ppi, "trajectory")
    for run in runs:
        traj = load_array(run["trajectory"], root, "φ trajectory", sink)
        if traj is not None and traj["phi"].ndim == 2 and traj["phi"].size:
            break
    else:
        return None
    steps, w = traj["steps"], 2.0 / (1.0 + np.exp(-traj["phi"].astype(np.float64)))  # w = 2·sigmoid(λ)
    final = load_array(run.get("weights"), root, "final weights", sink)
    in_pt = np.isfinite(final) if final is not None and len(final) == w.shape[1] else np.ones(w.shape[1], bool)
    kinds = _kinds(truth, w.shape[1], sink)
    rng = np.random.default_rng(0)
    groups = [np.flatnonzero(in_pt)] if kinds is None else [np.flatnonzero(in_pt & (np.array(kinds) == k)) for k in sorted(set(kinds))]
    per_group = 30 if kinds is None else 10
    pick = [t for ix in groups if len(ix) for t in rng.choice(ix, size=min(per_group, len(ix)), replace=False)]
    if not pick:
        return None
    fig, ax = plt.subplots(figsize=(6.5, 4))
    for t in sorted(pick):
        colour = KIND_COLOURS.get(kinds[t], "tab:blue") if kinds else None
        ax.plot(steps, w[:, t], lw=1, alpha=0.7, color=colour)
    if kinds:
        _kind_legend(ax, [kinds[t] for t in pick])
    ax.axhline(1.0, color="black", lw=0.6, ls="--")
    ax.set(xlabel="PT step", ylabel="task weight w = 2·sigmoid(λ)",
           title=f"PPI task weights during meta-PT ({len(pick)} of {int(in_pt.sum())} tasks; {run.get('setting')}, seed {run.get('seed')})")
    ax.title.set_fontsize(9)
    return save_figure(fig, out)


def _final_weights(ppi: dict, root: Path, sink: list[str] | None) -> list[np.ndarray]:
    """Final per-task weights of the meta full-access runs (NaN = task held out of PT)."""
    arrays = [load_array(r["weights"], root, "final weights", sink) for r in _meta_runs(ppi, "weights", setting="full")]
    return [np.asarray(a, dtype=np.float64) for a in arrays if a is not None]


def fig_weights_by_kind(ppi: dict, truth: dict | None, root: Path, out: Path, sink: list[str] | None = None) -> Path | None:
    """(b) Do the learned weights separate the planted helpful tasks from noise and distractors?"""
    weights = _final_weights(ppi, root, sink)
    if truth is None or not weights:
        return None
    by_kind: dict[str, list[float]] = defaultdict(list)
    for w in weights:
        kinds = _kinds(truth, len(w), sink)
        for k, v in zip(kinds or [], w):
            if math.isfinite(v):
                by_kind[k].append(float(v))
    if not by_kind:
        return None
    kinds = [k for k in KIND_COLOURS if k in by_kind] + sorted(set(by_kind) - set(KIND_COLOURS))
    fig, ax = plt.subplots(figsize=(5.5, 4))
    ax.boxplot([by_kind[k] for k in kinds], showfliers=False)
    ax.set_xticks(range(1, len(kinds) + 1), kinds)
    rng = np.random.default_rng(0)
    for i, k in enumerate(kinds, start=1):
        ax.scatter(rng.normal(i, 0.06, len(by_kind[k])), by_kind[k], s=6, alpha=0.5, color=KIND_COLOURS.get(k, "tab:blue"))
    aucs = [r["weights_vs_truth"]["weights_auc"] for r in _meta_runs(ppi, "weights_vs_truth", setting="full")
            if _isnum(r["weights_vs_truth"].get("weights_auc"))]
    auc = f"; weights-vs-helpful AUC {np.mean(aucs):.2f}" if aucs else ""
    ax.axhline(1.0, color="black", lw=0.6, ls="--")
    ax.set(ylabel="final task weight", title=f"final weights by planted kind\n({len(weights)} meta full-access seeds{auc})")
    ax.title.set_fontsize(9)
    return save_figure(fig, out)


def fig_top_tasks(ppi: dict, truth: dict | None, root: Path, out: Path, k: int = TOP_K, sink: list[str] | None = None) -> Path | None:
    """(c) The k tasks meta-PT weights most (mean over full-access seeds), coloured by planted kind."""
    weights = [w for w in _final_weights(ppi, root, sink) if len(w)]
    if not weights or len({len(w) for w in weights}) != 1:
        return None
    with np.errstate(all="ignore"):
        mean = np.nanmean(np.vstack(weights), axis=0)
    order = [t for t in np.argsort(-np.nan_to_num(mean, nan=-np.inf)) if math.isfinite(mean[t])][:k]
    if not order:
        return None
    kinds = _kinds(truth, len(mean), sink)
    colours = [KIND_COLOURS.get(kinds[t], "tab:blue") for t in order] if kinds else "tab:blue"
    fig, ax = plt.subplots(figsize=(7, 3.8))
    ax.bar(range(len(order)), mean[order], color=colours)
    ax.set_xticks(range(len(order)), [str(t) for t in order], rotation=90, fontsize=7)
    if kinds:
        _kind_legend(ax, [kinds[t] for t in order], loc="upper left", bbox_to_anchor=(1.01, 1.0))
    ax.set(xlabel="PT task index", ylabel="mean final weight", title=f"top {len(order)} PT tasks by learned weight ({len(weights)} seeds)")
    return save_figure(fig, out)


def fig_warp_std(ecg: dict, out: Path) -> Path | None:
    """(d) The augmentation magnitude meta-parameterised SimCLR learns, over PT."""
    runs = [r for r in _meta_runs(ecg, "warp_std_trajectory") if r.get("trajectory_steps")]
    if not runs:
        return None
    fig, ax = plt.subplots(figsize=(6.5, 4))
    for r in runs:
        ax.plot(r["trajectory_steps"], r["warp_std_trajectory"], alpha=0.8, label=f"{r.get('setting')} seed {r.get('seed')}")
    ax.set(xlabel="PT step", ylabel="learned warp std", title="ECG: learned augmentation magnitude (meta_simclr)")
    ax.legend(fontsize=6, ncol=2)
    return save_figure(fig, out)


def fig_auroc_vs_n(cells: list[dict], mode: str, out: Path) -> Path | None:
    """(e) ECG macro AUROC against the number of labelled examples, mean with 95% CI per method."""
    metric = HEADLINE["ecg"][0]
    cells = [c for c in cells if c["domain"] == "ecg" and c["metric"] == metric and c["mode"] == mode
             and n_of(c["setting"]) is not None and _isnum(c["mean"]) and "@" not in c["method"]]  # partial access: in the tables
    if not cells:
        return None
    fig, ax = plt.subplots(figsize=(6, 4))
    for m in order_methods("ecg", {c["method"] for c in cells}):
        mc = sorted((c for c in cells if c["method"] == m), key=lambda c: n_of(c["setting"]))
        mean = np.array([c["mean"] for c in mc])
        lo = np.array([c["mean"] - c["ci_low"] if _isnum(c["ci_low"]) else 0.0 for c in mc])
        hi = np.array([c["ci_high"] - c["mean"] if _isnum(c["ci_high"]) else 0.0 for c in mc])
        ax.errorbar([n_of(c["setting"]) for c in mc], mean, yerr=[lo, hi], marker="o", capsize=3, label=m)
    ns = sorted({n_of(c["setting"]) for c in cells})
    ax.set_xscale("log")
    ax.minorticks_off()
    ax.set_xticks(ns, [str(n) for n in ns])
    ax.set(xlabel="labelled examples N", ylabel=f"test macro AUROC ({mode})", title="ECG: AUROC against N (mean, 95% CI over PT seeds)")
    ax.legend(fontsize=8)
    return save_figure(fig, out)


def pt_cost(evaluation: dict) -> dict:
    """Mean PT wall time per method, and the meta ÷ plain ratio: what the hyper-steps cost."""
    domain = evaluation["domain"]
    by_method: dict[str, list[dict]] = defaultdict(list)
    for r in evaluation.get("pretrain", []):
        if _isnum(r.get("pt_wall_s")):
            by_method[r["method"]].append(r)

    def mean_of(runs, key):
        vals = [float(r[key]) for r in runs if _isnum(r.get(key))]
        return float(np.mean(vals)) if vals else float("nan")

    methods = {m: {"mean_wall_s": mean_of(rs, "pt_wall_s"), "n_runs": len(rs), "mean_pt_steps": mean_of(rs, "pt_steps"),
                   "mean_hyper_steps": mean_of(rs, "hyper_steps")} for m, rs in by_method.items()}
    meta, plain = methods.get(META[domain]), methods.get(PLAIN[domain])
    ratio = meta["mean_wall_s"] / plain["mean_wall_s"] if meta and plain and plain["mean_wall_s"] > 0 else float("nan")
    return {"methods": {m: methods[m] for m in order_methods(domain, methods)}, "meta": META[domain], "plain": PLAIN[domain], "ratio": ratio}


def fig_pt_cost(costs: dict[str, dict], out: Path) -> Path | None:
    """(f) PT wall time per method per domain, with the meta ÷ plain ratio written on it."""
    costs = {d: c for d, c in costs.items() if c["methods"]}
    if not costs:
        return None
    fig, axes = plt.subplots(1, len(costs), figsize=(5 * len(costs), 3.8), squeeze=False)
    for ax, (domain, cost) in zip(axes[0], costs.items()):
        names = list(cost["methods"])
        ax.bar(names, [cost["methods"][m]["mean_wall_s"] for m in names],
               color=["tab:red" if m == cost["meta"] else "tab:blue" for m in names])
        ax.tick_params(axis="x", rotation=30)
        ratio = f"{cost['meta']} ÷ {cost['plain']} = {cost['ratio']:.2f}×" if _isnum(cost["ratio"]) else "no ratio (a method missing)"
        ax.text(0.02, 0.95, ratio, transform=ax.transAxes, va="top", fontsize=9)
        ax.set(ylabel="PT wall time (s, mean over runs)", title=f"{domain.upper()}: pre-training cost")
    return save_figure(fig, out)


def make_figures(evals: dict[str, dict], cells: list[dict], costs: dict[str, dict], root: Path, folder: Path,
                 sink: list[str] | None = None) -> list[dict]:
    """Draw every figure whose inputs exist; return [{file, caption}] relative to the report folder."""
    made: list[dict] = []

    def add(path, caption):
        if path is not None:
            made.append({"file": f"figures/{Path(path).name}", "caption": caption})

    if (ppi := evals.get("ppi")) is not None:
        truth = load_truth(ppi, root, sink)
        add(fig_weight_trajectories(ppi, truth, root, folder / "ppi_weight_trajectories.png", sink),
            "PPI: a sample of PT-task weights over meta-PT steps for one meta run" + (", coloured by planted kind." if truth else "."))
        add(fig_weights_by_kind(ppi, truth, root, folder / "ppi_weights_by_kind.png", sink),
            "PPI (synthetic): final learned weights by planted task kind, pooled over meta full-access seeds.")
        add(fig_top_tasks(ppi, truth, root, folder / "ppi_top_tasks.png", sink=sink),
            f"PPI: the top {TOP_K} PT tasks by mean final weight" + (", coloured by planted kind." if truth else "."))
    if (ecg := evals.get("ecg")) is not None:
        add(fig_warp_std(ecg, folder / "ecg_warp_std.png"), "ECG: learned augmentation magnitude (warp std) over PT, one line per meta_simclr run.")
        for mode in sorted({c["mode"] for c in cells if c["domain"] == "ecg"}):
            add(fig_auroc_vs_n(cells, mode, folder / f"ecg_auroc_vs_n_{mode}.png"),
                f"ECG: test macro AUROC against labelled examples N per method (FT mode {mode}), 95% CI error bars.")
    add(fig_pt_cost(costs, folder / "pt_cost.png"),
        "Hyper-step cost: mean PT wall time per method, with the meta ÷ plain-baseline ratio (PPI meta/uniform, ECG meta_simclr/simclr).")
    for name, needs in [("ppi_weight_trajectories", "ppi"), ("ppi_weights_by_kind", "ppi"), ("ppi_top_tasks", "ppi"), ("ecg_warp_std", "ecg")]:
        if needs in evals and not any(f["file"] == f"figures/{name}.png" for f in made):
            warn(f"figure {name} skipped: its inputs are missing", sink)
    return made


# ---- paper comparison and README ---------------------------------------------------------------

def _find(cells: list[dict], **kw) -> dict | None:
    return next((c for c in cells if all(c.get(k) == v for k, v in kw.items())), None)


def _pts(x) -> float:
    return 100.0 * x if _isnum(x) else float("nan")


def best_gain(cells: list[dict], domain: str, mode: str | None) -> dict | None:
    """The meta cell (headline metric and mode) with the largest Δ over its best baseline."""
    metric = HEADLINE[domain][0]
    meta = [c for c in cells if c["domain"] == domain and c["method"] == META[domain] and c["metric"] == metric
            and c["mode"] == mode and _isnum(c.get("delta_mean"))]
    return max(meta, key=lambda c: c["delta_mean"], default=None)


def paper_comparison(cells: list[dict]) -> list[dict]:
    """Our numbers beside the paper's (AUROC × 100), each with the cell it came from."""
    rows = []
    modes = {d: headline_mode(d, {c["mode"] for c in cells if c["domain"] == d}) for d in DOMAINS}
    ppi_metric, ecg_metric = HEADLINE["ppi"][0], HEADLINE["ecg"][0]
    for setting, label, paper in [("full", "PPI, full FT access: meta-PT mean test AUROC", 78.6),
                                  ("heldout", "PPI, 10 held-out FT tasks: meta-PT mean test AUROC", 77.0)]:
        c = _find(cells, domain="ppi", setting=setting, method="meta", metric=ppi_metric, mode=modes["ppi"])
        rows.append({"quantity": label, "paper": paper, "ours": _pts(c["mean"]) if c else float("nan"),
                     "cell": c["id"] if c else None, "verdict": verdict(c) if c else None})
    ecg = [c for c in cells if c["domain"] == "ecg" and c["method"] == "meta_simclr" and c["metric"] == ecg_metric
           and c["mode"] == modes["ecg"] and n_of(c["setting"]) is not None]
    c = max(ecg, key=lambda c: n_of(c["setting"]), default=None)
    rows.append({"quantity": "PTB-XL: meta-parameterised SimCLR macro AUROC (ours: largest N)", "paper": 86.7,
                 "ours": _pts(c["mean"]) if c else float("nan"), "cell": c["id"] if c else None, "verdict": verdict(c) if c else None})
    for domain, paper in [("ppi", 3.9), ("ecg", 1.9)]:
        c = best_gain(cells, domain, modes[domain])
        rows.append({"quantity": f"{domain.upper()}: largest gain of meta over best baseline (AUROC points)", "paper": paper,
                     "ours": _pts(c["delta_mean"]) if c else float("nan"),
                     "ours_ci": [_pts(c["delta_ci_low"]), _pts(c["delta_ci_high"])] if c else None,
                     "cell": c["id"] if c else None, "verdict": verdict(c) if c else None})
    return rows


def comparison_markdown(rows: list[dict]) -> str:
    lines = ["| quantity | paper | ours | our cell | verdict (meta vs best baseline) |", "|---|---|---|---|---|"]
    for r in rows:
        ours = f"{r['ours']:+.1f}" if "ours_ci" in r and _isnum(r["ours"]) else (f"{r['ours']:.1f}" if _isnum(r["ours"]) else "not run")
        if r.get("ours_ci") and _isnum(r["ours_ci"][0]):
            ours += f" [{r['ours_ci'][0]:+.1f}, {r['ours_ci'][1]:+.1f}]"
        paper = f"+{r['paper']:.1f}" if "ours_ci" in r else f"{r['paper']:.1f}"
        cell = f"`{r['cell']}`" if r["cell"] else "—"
        lines.append(f"| {r['quantity']} | {paper} | {ours} | {cell} | {r['verdict'] or '—'} |")
    return "\n".join(lines)


def verdict_lines(cells: list[dict]) -> list[str]:
    """One sentence per headline meta cell, so a failure to beat the baseline is said outright."""
    out = []
    for domain in DOMAINS:
        mode = headline_mode(domain, {c["mode"] for c in cells if c["domain"] == domain})
        for c in cells:
            if c["domain"] == domain and is_meta(domain, c["method"]) and c["metric"] == HEADLINE[domain][0] and c["mode"] == mode:
                d = f"Δ = {_pts(c.get('delta_mean')):+.1f} points" if _isnum(c.get("delta_mean")) else "no Δ"
                out.append(f"- `{c['id']}`: {c['method']} {verdict(c)}; {d}, {_fmt_p(c.get('p_value'))}.")
    return out


def readme_text(summary: dict, cells: list[dict], tables: list[dict]) -> str:
    """A short README: provenance, headline tables, the paper comparison, verdicts, figures."""
    parts = ["# Report: Meta-Learning to Improve Pre-Training (Raghu et al., NeurIPS 2021)", ""]
    for d, info in summary["domains"].items():
        parts.append(f"- {d.upper()}: profile `{info['profile']}`, data source `{info['source']}`, from `{summary['inputs'][d]}`.")
    if any(i["profile"] == "embedded" or i["source"] == "synthetic" for i in summary["domains"].values()):
        parts += ["", "**The `embedded` profile runs on small synthetic data, so these numbers are not comparable to the paper's.**"]
    parts += ["", "## Headline tables", "", TABLE_NOTE, ""]
    for t in tables:
        if t["headline"]:
            parts += [f"### {table_title(t['domain'], t['metric'], t['mode'])}", "",
                      markdown_table(cells, t["domain"], t["metric"], t["mode"]), ""]
    others = [t for t in tables if not t["headline"]]
    if others:
        parts += ["Other tables: " + ", ".join(f"[{Path(t['md']).stem}]({t['md']})" for t in others) + ".", ""]
    parts += ["## Against the paper", "", "AUROC × 100. Gains are Δ of the meta method over the best baseline in the same column.", "",
              comparison_markdown(summary["paper_comparison"]), "", "## Does meta beat the best baseline?", ""]
    parts += verdict_lines(cells) or ["- no meta cells were evaluated."]
    nan_cells = [c for c in cells if c["n_nan"]]
    if nan_cells:
        parts += ["", "## NaN values", "", "These cells had seeds with a NaN value (shown as null in summary.json, left out of the statistics):", ""]
        parts += [f"- `{c['id']}`: {c['n_nan']} of {c['n'] + c['n_nan']} seeds" for c in nan_cells]
    parts += ["", "## Figures", ""]
    parts += [f"- [{f['file']}]({f['file']}): {f['caption']}" for f in summary["figures"]] or ["- none (their inputs are missing)."]
    if summary["warnings"]:
        parts += ["", "## Warnings", ""] + [f"- {w}" for w in summary["warnings"]]
    parts += ["", "Every number is in `summary.json` under `cells`, keyed by `id`; "
              "`python stages/lineage.py <id>` traces it back to its runs.", ""]
    return "\n".join(parts)


# ---- entry points ------------------------------------------------------------------------------

def build_report(ppi: str | os.PathLike | None = "results/ppi/evaluation.json",
                 ecg: str | os.PathLike | None = "results/ecg/evaluation.json",
                 out: str | os.PathLike = "results/report", root: str | os.PathLike | None = None) -> dict:
    """Write tables/, figures/, summary.json and README.md into ``out``; return the summary.

    Paths inside the evaluation files (truth, weights, trajectories) are resolved against ``root``
    (default: the working directory, i.e. the repo root). A missing domain or artefact is warned
    about and skipped; having no evaluation file at all is an error.
    """
    out, root = Path(out), Path(root) if root is not None else Path.cwd()
    warnings: list[str] = []
    inputs = {"ppi": ppi, "ecg": ecg}
    evals = {d: e for d, p in inputs.items() if (e := load_evaluation(p, warnings)) is not None}
    if not evals:
        raise FileNotFoundError(f"no evaluation file found (looked for {ppi} and {ecg})")
    for d, e in evals.items():
        if e.get("domain", d) != d:
            raise ValueError(f"{inputs[d]} holds domain {e.get('domain')!r}, expected {d!r}")
        e["domain"] = d
    cells = [c for d in DOMAINS if d in evals for c in domain_cells(evals[d])]

    tables = []
    for domain, metric, mode in table_keys(cells):
        md, path = write_table(cells, domain, metric, mode, out / "tables")
        head = metric == HEADLINE[domain][0] and mode == headline_mode(domain, {c["mode"] for c in cells if c["domain"] == domain})
        tables.append({"domain": domain, "metric": metric, "mode": mode, "headline": head,
                       "md": str(md.relative_to(out)), "csv": str(path.relative_to(out))})
    costs = {d: pt_cost(e) for d, e in evals.items()}
    figures = make_figures(evals, cells, costs, root, out / "figures", warnings)

    profiles = sorted({str(e.get("profile")) for e in evals.values()})
    summary = jsonable({
        "profile": profiles[0] if len(profiles) == 1 else "+".join(profiles),
        "inputs": {d: str(inputs[d]) for d in evals},
        "domains": {d: {"profile": e.get("profile"), "source": e.get("source"), "truth": e.get("truth")} for d, e in evals.items()},
        "cells": cells, "tables": tables, "figures": figures, "pt_cost": costs,
        "paper_comparison": paper_comparison(cells), "warnings": warnings,
    })
    write_json(out / "summary.json", summary)
    (out / "README.md").write_text(readme_text(summary, cells, tables))
    return summary
