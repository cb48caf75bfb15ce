"""Table cells: seed statistics per (setting, row, metric, FT mode), the best baseline, paired tests, verdicts.

Every cell is mean ± std over PT seeds, n, a t-based 95 % CI and, for a row whose method learns φ,
a paired test against the best baseline in its column (highest mean among the rows whose method
neither learns φ nor is an upper bound). Pairing is over the seeds both share, so a setting run
with fewer seeds is never compared to the wrong runs. NaN values are kept in ``values`` and counted
in ``n_nan`` rather than dropped silently; the statistics use the finite ones.

Which rows learn φ, which are upper bounds and the row and column order come from the domain's
declaration (``metapt.domain.Domain``) and the typed evaluation rows (``metapt.records.EvalRow``):
nothing here names a domain's methods.
"""

from __future__ import annotations

import math
import sys
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable

import numpy as np

from metapt.domain import Domain, Method
from metapt.domain import domain as declared_domain
from metapt.records import EvalRow, Evaluation
from metapt.stats import paired, summarise

Key = tuple[str, str, str, str]  # (setting, row, metric, mode)


# ---- small helpers -----------------------------------------------------------------------------

def warn(msg: str, sink: list[str] | None = None) -> None:
    """A skipped figure or missing input is worth a line on stderr (and in summary.json), not a crash."""
    print(f"report: warning: {msg}", file=sys.stderr)
    if sink is not None:
        sink.append(msg)


def isnum(x) -> bool:
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


def cell_id(domain: str, setting: str, row: str, metric: str, mode: str) -> str:
    """Stable key used by ``stages/lineage.py`` to trace a number back to its runs."""
    return f"{domain}/{setting}/{row}/{metric}/{mode}"


@dataclass(frozen=True)
class Section:
    """A domain's own part of the report (``Domain.report_section``): markdown for the README, cells for
    summary.json (seed statistics and runs like every other cell, so ``lineage`` traces them), figures."""

    title: str
    markdown: str
    cells: list[dict]
    figures: list[tuple[Path, str]]


# ---- the layout of a domain's tables -----------------------------------------------------------

@dataclass(frozen=True)
class Layout:
    """A domain's declaration plus what its evaluation rows say about each table row and column.

    ``rows`` maps a table row label to (declared method, ``learned_from``); ``columns`` maps a
    column (setting) to its label budget ``ft_labels`` (None for a named setting).
    """

    decl: Domain
    rows: dict[str, tuple[str, int | None]] = field(default_factory=dict)
    columns: dict[str, int | None] = field(default_factory=dict)

    @classmethod
    def of(cls, evaluation: Evaluation, decl: Domain | None = None) -> "Layout":
        decl = decl if decl is not None else declared_domain(evaluation.domain)
        rows: dict[str, tuple[str, int | None]] = {}
        columns: dict[str, int | None] = {}
        for r in evaluation.rows:
            rows.setdefault(r.row, (r.method, r.learned_from))
            if columns.get(r.setting) is None:
                columns[r.setting] = r.ft_labels
        return cls(decl, rows, columns)

    @property
    def name(self) -> str:
        return self.decl.name

    def method_of(self, row: str) -> str:
        """The declared method behind a table row (the row itself when no evaluation row names it)."""
        return self.rows.get(row, (row, None))[0]

    def declared(self, method: str) -> Method | None:
        try:
            return self.decl.method(method)
        except KeyError:
            return None

    def learns_phi(self, row: str) -> bool:
        """Learns φ in its own PT (it has weights and a φ trajectory)."""
        m = self.declared(self.method_of(row))
        return m is not None and m.learns_phi

    def meta_learned(self, row: str) -> bool:
        """Uses a learned φ, its own or a reused run's (``Method.meta_learned``): tested against the baselines, never one."""
        m = self.declared(self.method_of(row))
        return m is not None and m.meta_learned

    def upper_bound(self, row: str) -> bool:
        m = self.declared(self.method_of(row))
        return m is not None and m.upper_bound

    def learned_from(self, row: str) -> int | None:
        """Set for a run fine-tuned on more labels than it learned from (row ``meta_simclr@10``)."""
        return self.rows.get(row, (row, None))[1]

    @property
    def meta_methods(self) -> tuple[str, ...]:
        """The declared methods that use a learned φ, in declaration order."""
        return tuple(m.name for m in self.decl.methods if m.meta_learned)

    def row_order(self, rows: Iterable[str]) -> list[str]:
        """Declared methods in declaration order (the paper's), then rows with ``learned_from`` by
        (method, learned_from), then anything else by name."""
        names = self.decl.method_names

        def key(row: str):
            method, learned = self.rows.get(row, (row, None))
            if row in names and learned is None:
                return (0, names.index(row), 0, row)
            if learned is not None and method in names:
                return (1, names.index(method), learned, row)
            return (2, 0, 0, row)

        return sorted(set(rows), key=key)

    def column_order(self, settings: Iterable[str]) -> list[str]:
        """Declared settings in their order, then columns with a label budget by that budget, then the rest by name."""
        present = set(settings)
        named = [s for s in self.decl.settings if s in present]
        rest = present - set(named)
        budgeted = sorted((s for s in rest if self.columns.get(s) is not None), key=lambda s: (self.columns[s], s))
        return named + budgeted + sorted(rest - set(budgeted))

    def ft_labels(self, setting: str) -> int | None:
        return self.columns.get(setting)

    @property
    def headline_metric(self) -> str:
        return self.decl.headline_metric

    def headline_mode(self, modes: Iterable[str]) -> str | None:
        """The FT mode the README leads with: the preferred one if it was run, else the first by name."""
        modes = sorted(set(modes))
        return next((m for m in self.decl.ft_mode_preference if m in modes), modes[0] if modes else None)


# ---- cells and paired tests --------------------------------------------------------------------

def group_rows(rows: Iterable[EvalRow]) -> dict[Key, dict[int, EvalRow]]:
    """Rows keyed by (setting, row, metric, mode), then by PT seed; a repeated seed is an upstream bug."""
    groups: dict[Key, dict[int, EvalRow]] = defaultdict(dict)
    for r in rows:
        key = (r.setting, r.row, r.metric, r.mode)
        if r.seed in groups[key]:
            raise ValueError(f"two evaluation rows for {key} seed {r.seed}")
        groups[key][r.seed] = r
    return groups


def make_cell(domain: str, key: Key, by_seed: dict[int, EvalRow]) -> dict:
    """Seed statistics of one table cell; the statistics use finite values, NaNs are counted.

    The cell's ``method`` is its table row label (``meta_simclr@10`` for a partial-access row).
    """
    setting, row, metric, mode = key
    seeds = sorted(by_seed)
    values = [_float(by_seed[s].value) for s in seeds]
    finite = [v for v in values if math.isfinite(v)]
    s = summarise(finite) if finite else None
    return {
        "id": cell_id(domain, setting, row, metric, mode),
        "domain": domain, "setting": setting, "method": row, "metric": metric, "mode": mode,
        "mean": s.mean if s else float("nan"), "std": s.std if s else float("nan"),
        "n": len(finite), "n_nan": len(values) - len(finite),
        "ci_low": s.ci_low if s else float("nan"), "ci_high": s.ci_high if s else float("nan"),
        "seeds": seeds, "values": values,
        "runs": [{"seed": sd, "pt_run": by_seed[sd].pt_run, "ft_run": by_seed[sd].ft_run} for sd in seeds],
    }


def best_baseline(column: list[dict], layout: Layout) -> dict | None:
    """Highest-mean cell in one column among rows that neither learn φ nor are upper bounds; ties go to row order."""
    candidates = [c for c in column if not layout.meta_learned(c["method"]) and not layout.upper_bound(c["method"]) and isnum(c["mean"])]
    if not candidates:
        return None
    rank = {m: i for i, m in enumerate(layout.row_order(c["method"] for c in candidates))}
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


def against_plain(meta: dict, column: list[dict], layout: Layout) -> dict:
    """The meta cell against its declared plain counterpart (``Method.plain``: SimCLR, uniform), which the
    best baseline need not be: the paired test of meta − plain (``plain_*``), and the share of the
    plain → upper-bound gap it closes, (meta − plain) / (upper − plain) on seed means (``gap_closed``;
    None unless the gap is real: the paired 95% CI of upper − plain above 0, else a share of noise would
    read as hundreds of percent). Empty where the column lacks the plain row.
    """
    plain = layout.decl.method(layout.method_of(meta["method"])).plain
    at = {c["method"]: c for c in column}
    if plain not in at:
        return {}
    vs = compare(meta, at[plain])
    out = {"plain": plain, **{f"plain_{k}": vs[k] for k in ("n_paired", "delta_mean", "delta_ci_low", "delta_ci_high", "p_value")}}
    uppers = [c for c in column if layout.upper_bound(c["method"])]
    if uppers and all(isnum(x) for x in (meta["mean"], at[plain]["mean"], uppers[0]["mean"])):
        base, top = at[plain]["mean"], uppers[0]["mean"]
        gap = compare(uppers[0], at[plain])  # is there a gap at all? upper − plain, paired over seeds
        real = isnum(gap["delta_ci_low"]) and gap["delta_ci_low"] > 0
        out.update(gap_upper=uppers[0]["method"], gap=top - base, gap_ci_low=gap["delta_ci_low"], gap_ci_high=gap["delta_ci_high"],
                   gap_closed=(meta["mean"] - base) / (top - base) if real else None)
    return out


def domain_cells(evaluation: Evaluation, layout: Layout | None = None) -> list[dict]:
    """All cells of one domain, in table order, with the paired tests of the rows that learn φ attached."""
    layout = layout if layout is not None else Layout.of(evaluation)
    cells = [make_cell(evaluation.domain, key, by_seed) for key, by_seed in group_rows(evaluation.rows).items()]
    columns: dict[tuple, list[dict]] = defaultdict(list)
    for c in cells:
        columns[(c["setting"], c["metric"], c["mode"])].append(c)
    for column in columns.values():
        for c in column:
            if layout.meta_learned(c["method"]):
                c.update(compare(c, best_baseline(column, layout)))
                c.update(against_plain(c, column, layout))
    settings = layout.column_order({c["setting"] for c in cells})
    rows = layout.row_order({c["method"] for c in cells})
    return sorted(cells, key=lambda c: (c["metric"], c["mode"], settings.index(c["setting"]), rows.index(c["method"])))


def verdict(cell: dict) -> str:
    """Plain words for a meta cell: does it beat the best baseline, with its CI clear of zero?"""
    base, d, lo, hi = cell.get("best_baseline"), cell.get("delta_mean"), cell.get("delta_ci_low"), cell.get("delta_ci_high")
    if base is None or not isnum(d):
        return "no paired comparison (no baseline on shared seeds)"
    if not (isnum(lo) and isnum(hi)):
        return f"cannot tell: only {cell['n_paired']} shared seed(s) with {base}"
    if lo > 0:
        return f"beats {base} (95% CI of Δ above 0)"
    if d <= 0:
        return f"does NOT beat {base} (Δ ≤ 0)"
    return f"does NOT beat {base} significantly (95% CI of Δ includes 0)"


# ---- pre-training cost -------------------------------------------------------------------------

def pt_cost(evaluation: Evaluation, layout: Layout | None = None) -> dict:
    """Mean PT steps and hyper-steps per method, and each φ-learning method's hyper-steps per PT step.

    Wall times are not in the records (DVC outputs must be deterministic); they are logged to MLflow
    as ``pt_wall_s``. ``pt_steps_vs_plain`` compares a meta method's PT steps with its declared plain
    counterpart's (``Method.plain``).
    """
    layout = layout if layout is not None else Layout.of(evaluation)
    by_method: dict[str, list] = defaultdict(list)
    for p in evaluation.pretrain:
        by_method[p.method].append(p)

    def mean_of(runs, key):
        vals = [float(getattr(r, key)) for r in runs if isnum(getattr(r, key))]
        return float(np.mean(vals)) if vals else float("nan")

    methods = {m: {"n_runs": len(rs), "mean_pt_steps": mean_of(rs, "pt_steps"), "mean_hyper_steps": mean_of(rs, "hyper_steps")}
               for m, rs in by_method.items()}
    meta = []
    for name in layout.meta_methods:
        if name not in methods:
            continue
        m, plain = methods[name], layout.decl.method(name).plain
        per = m["mean_hyper_steps"] / m["mean_pt_steps"] if isnum(m["mean_hyper_steps"]) and isnum(m["mean_pt_steps"]) and m["mean_pt_steps"] > 0 else float("nan")
        p = methods.get(plain) if plain else None
        vs = m["mean_pt_steps"] / p["mean_pt_steps"] if p and isnum(m["mean_pt_steps"]) and isnum(p["mean_pt_steps"]) and p["mean_pt_steps"] > 0 else float("nan")
        meta.append({"method": name, "plain": plain, "hyper_steps_per_pt_step": per, "pt_steps_vs_plain": vs})
    return {"methods": {m: methods[m] for m in layout.row_order(methods)}, "meta": meta}
