"""The paper-layout markdown tables (rows = table rows, columns = settings) and their long CSVs."""

from __future__ import annotations

import csv
import math
from pathlib import Path

from metapt.report.cells import Layout, isnum

CSV_COLUMNS = [
    "id", "domain", "setting", "method", "metric", "mode", "mean", "std", "n", "n_nan", "ci_low", "ci_high",
    "seeds", "best_baseline", "n_paired", "delta_mean", "delta_ci_low", "delta_ci_high", "p_value",
]

TABLE_NOTE = ("Mean ± std over PT seeds [t-based 95% CI of the mean], n = PT seeds with a finite value "
              "(NaN seeds are counted, not used). **Bold**: best non-oracle mean per column. Last row: paired "
              "difference of the meta method and the best baseline (highest mean, oracle excluded) over their "
              "shared seeds, its 95% CI and two-sided paired t-test p.")


def fmt(x, digits: int = 3, sign: bool = False) -> str:
    if not isnum(x):
        return "nan"
    return f"{x:+.{digits}f}" if sign else f"{x:.{digits}f}"


def fmt_p(p) -> str:
    return "p=n/a" if not isnum(p) else (f"p={p:.2g}" if p >= 1e-3 else "p<0.001")


def format_cell(cell: dict, bold: bool = False) -> str:
    """``mean ± std [CI] n=…``, flagging NaN seeds so they cannot go unnoticed."""
    main = f"{fmt(cell['mean'])} ± {fmt(cell['std'])}"
    main = f"**{main}**" if bold else main
    ci = f" [{fmt(cell['ci_low'])}, {fmt(cell['ci_high'])}]" if isnum(cell["ci_low"]) else ""
    nan = f" (+{cell['n_nan']} NaN)" if cell["n_nan"] else ""
    return f"{main}{ci} n={cell['n']}{nan}"


def format_delta(cell: dict) -> str:
    """The paired-test row: Δ meta − best baseline, its CI, p and the number of shared seeds."""
    if cell.get("best_baseline") is None:
        return "—"
    if not isnum(cell.get("delta_mean")):
        return f"vs {cell['best_baseline']}: no shared seeds"
    ci = f" [{fmt(cell['delta_ci_low'], sign=True)}, {fmt(cell['delta_ci_high'], sign=True)}]" if isnum(cell["delta_ci_low"]) else ""
    gap = ""
    if cell.get("plain") and cell["plain"] != cell["best_baseline"] and isnum(cell.get("plain_delta_mean")):
        gap += f"; vs {cell['plain']} {fmt(cell['plain_delta_mean'], sign=True)}, {fmt_p(cell['plain_p_value'])}"
    if isnum(cell.get("gap_closed")):
        gap += f"; {cell['gap_closed']:+.0%} of the {cell['plain']} → {cell['gap_upper']} gap"
    elif cell.get("gap_upper"):
        gap += f"; no {cell['plain']} → {cell['gap_upper']} gap to close (its 95% CI includes 0)"
    return f"{fmt(cell['delta_mean'], sign=True)}{ci} vs {cell['best_baseline']}, {fmt_p(cell['p_value'])}, n={cell['n_paired']}{gap}"


def markdown_table(cells: list[dict], layout: Layout, metric: str, mode: str) -> str:
    """Rows = table rows, columns = settings (the paper's layout), plus a row of paired tests per φ-learning row."""
    cells = [c for c in cells if c["domain"] == layout.name and c["metric"] == metric and c["mode"] == mode]
    settings = layout.column_order({c["setting"] for c in cells})
    rows = layout.row_order({c["method"] for c in cells})
    at = {(c["setting"], c["method"]): c for c in cells}
    top = {s: max((c for c in cells if c["setting"] == s and not layout.upper_bound(c["method"]) and isnum(c["mean"])),
                  key=lambda c: c["mean"], default=None) for s in settings}
    lines = [f"| method | {' | '.join(settings)} |", "|---|" + "---|" * len(settings)]
    for m in rows:
        line = [format_cell(at[(s, m)], bold=top[s] is at[(s, m)]) if (s, m) in at else "—" for s in settings]
        lines.append(f"| {m} | {' | '.join(line)} |")
    for meta in (m for m in rows if layout.meta_learned(m)):
        line = [format_delta(at[(s, meta)]) if (s, meta) in at else "—" for s in settings]
        lines.append(f"| Δ {meta} − best baseline | {' | '.join(line)} |")
    return "\n".join(lines)


def table_title(domain: str, metric: str, mode: str) -> str:
    return f"{domain.upper()} — {metric}, FT mode `{mode}`"


def csv_row(cell: dict) -> dict:
    """One CSV line per cell; empty fields for no number."""
    row = {k: cell.get(k) for k in CSV_COLUMNS}
    row["seeds"] = " ".join(str(s) for s in cell["seeds"])
    return {k: ("" if v is None or (isinstance(v, float) and not math.isfinite(v)) else v) for k, v in row.items()}


def write_table(cells: list[dict], layout: Layout, metric: str, mode: str, folder: Path) -> tuple[Path, Path]:
    """``<domain>_<metric>_<mode>.md`` (paper layout) and ``.csv`` (long, one line per cell)."""
    folder.mkdir(parents=True, exist_ok=True)
    domain = layout.name
    stem = folder / f"{domain}_{metric}_{mode}"
    md = stem.with_suffix(".md")
    md.write_text(f"# {table_title(domain, metric, mode)}\n\n{markdown_table(cells, layout, metric, mode)}\n\n{TABLE_NOTE}\n")
    path = stem.with_suffix(".csv")
    with open(path, "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=CSV_COLUMNS)
        w.writeheader()
        for c in cells:
            if c["domain"] == domain and c["metric"] == metric and c["mode"] == mode:
                w.writerow(csv_row(c))
    return md, path


def table_keys(cells: list[dict], layouts: dict[str, Layout]) -> list[tuple[str, str, str]]:
    """(domain, metric, mode) of every table: domains in their declared order, the headline metric first."""
    order = list(layouts)
    keys = {(c["domain"], c["metric"], c["mode"]) for c in cells}

    def key(k):
        d, metric, mode = k
        head = layouts[d].headline_metric if d in layouts else ""
        return (order.index(d) if d in order else len(order), metric != head, metric, mode)

    return sorted(keys, key=key)


COST_NOTE = ("Pre-training cost in steps: mean PT steps and hyper-steps per method (over its PT runs), and each "
             "meta method's hyper-steps per PT step. Wall times are logged to MLflow (`pt_wall_s`), not to the "
             "DVC outputs, which must be deterministic.")


def cost_markdown(costs: dict[str, dict]) -> str:
    """One line per (domain, method) of the PT-cost summary."""
    lines = ["| domain | method | PT runs | mean PT steps | mean hyper-steps | hyper-steps per PT step |", "|---|---|---|---|---|---|"]
    for domain, cost in costs.items():
        ratio = {m["method"]: m["hyper_steps_per_pt_step"] for m in cost["meta"]}
        for name, m in cost["methods"].items():
            per = fmt(ratio[name], 3) if name in ratio else "—"
            lines.append(f"| {domain.upper()} | {name} | {m['n_runs']} | {fmt(m['mean_pt_steps'], 1)} | {fmt(m['mean_hyper_steps'], 1)} | {per} |")
    return "\n".join(lines)
