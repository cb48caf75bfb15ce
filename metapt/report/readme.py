"""The report's README: provenance, headline tables, our numbers beside the paper's, verdicts, figures.

The paper's numbers are declared by each domain (``Domain.paper``): an entry with ``"cell"`` names a
setting (or ``"largest_n"``: the meta method's column with the largest label budget) whose meta cell
is set beside it; an entry with ``"gain": True`` takes the meta cell with the largest Δ over its best
baseline. ``"method"`` may name the meta method; by default it is the first declared one that learns φ.
"""

from __future__ import annotations

from pathlib import Path

from metapt.report.cells import Layout, Section, isnum, verdict
from metapt.report.tables import COST_NOTE, TABLE_NOTE, cost_markdown, fmt_p, markdown_table, table_title


def _pts(x) -> float:
    return 100.0 * x if isnum(x) else float("nan")


def _meta_method(layout: Layout, entry: dict) -> str | None:
    return entry.get("method") or next(iter(layout.meta_methods), None)


def headline_cells(cells: list[dict], layout: Layout, method: str | None, mode: str | None) -> list[dict]:
    """The cells of one row (a declared method's own row) in the headline metric and FT mode."""
    return [c for c in cells if c["domain"] == layout.name and c["method"] == method and c["metric"] == layout.headline_metric
            and c["mode"] == mode]


def paper_cell(cells: list[dict], layout: Layout, entry: dict, mode: str | None) -> dict | None:
    """The cell a ``Domain.paper`` entry is compared with."""
    mine = headline_cells(cells, layout, _meta_method(layout, entry), mode)
    if entry.get("gain"):
        return max((c for c in mine if isnum(c.get("delta_mean"))), key=lambda c: c["delta_mean"], default=None)
    if entry.get("cell") == "largest_n":
        budgeted = [c for c in mine if layout.ft_labels(c["setting"]) is not None]
        return max(budgeted, key=lambda c: layout.ft_labels(c["setting"]), default=None)
    return next((c for c in mine if c["setting"] == entry.get("cell")), None)


def paper_comparison(cells: list[dict], layouts: dict[str, Layout]) -> list[dict]:
    """Our numbers beside the paper's (AUROC × 100), each with the cell it came from: every domain's
    levels first, then every domain's gains."""
    rows = []
    modes = {d: lay.headline_mode({c["mode"] for c in cells if c["domain"] == d}) for d, lay in layouts.items()}
    entries = [(lay, e) for lay in layouts.values() for e in lay.decl.paper]
    for lay, e in [x for x in entries if not x[1].get("gain")] + [x for x in entries if x[1].get("gain")]:
        c = paper_cell(cells, lay, e, modes[lay.name])
        row = {"quantity": e["quantity"], "paper": e["paper"]}
        if e.get("gain"):
            row.update(ours=_pts(c["delta_mean"]) if c else float("nan"),
                       ours_ci=[_pts(c["delta_ci_low"]), _pts(c["delta_ci_high"])] if c else None)
        else:
            row.update(ours=_pts(c["mean"]) if c else float("nan"))
        row.update(cell=c["id"] if c else None, verdict=verdict(c) if c else None)
        rows.append(row)
    return rows


def comparison_markdown(rows: list[dict]) -> str:
    lines = ["| quantity | paper | ours | our cell | verdict (meta vs best baseline) |", "|---|---|---|---|---|"]
    for r in rows:
        ours = f"{r['ours']:+.1f}" if "ours_ci" in r and isnum(r["ours"]) else (f"{r['ours']:.1f}" if isnum(r["ours"]) else "not run")
        if r.get("ours_ci") and isnum(r["ours_ci"][0]):
            ours += f" [{r['ours_ci'][0]:+.1f}, {r['ours_ci'][1]:+.1f}]"
        paper = f"+{r['paper']:.1f}" if "ours_ci" in r else f"{r['paper']:.1f}"
        cell = f"`{r['cell']}`" if r["cell"] else "—"
        lines.append(f"| {r['quantity']} | {paper} | {ours} | {cell} | {r['verdict'] or '—'} |")
    return "\n".join(lines)


def verdict_lines(cells: list[dict], layouts: dict[str, Layout]) -> list[str]:
    """One sentence per cell of a φ-learning row in every declared metric (headline FT mode), so a failure to beat the baseline is said outright."""
    out = []
    for d, lay in layouts.items():
        mode = lay.headline_mode({c["mode"] for c in cells if c["domain"] == d})
        for c in cells:
            if c["domain"] == d and lay.meta_learned(c["method"]) and c["metric"] in lay.decl.metrics and c["mode"] == mode:
                delta = f"Δ = {_pts(c.get('delta_mean')):+.1f} points" if isnum(c.get("delta_mean")) else "no Δ"
                out.append(f"- `{c['id']}`: {c['method']} {verdict(c)}; {delta}, {fmt_p(c.get('p_value'))}.")
    return out


def readme_text(summary: dict, cells: list[dict], tables: list[dict], layouts: dict[str, Layout], sections: list[Section] = ()) -> str:
    """A short README: provenance, headline tables, the paper comparison, verdicts, PT cost, figures."""
    parts = ["# Report: Meta-Learning to Improve Pre-Training (Raghu et al., NeurIPS 2021)", ""]
    for d, info in summary["domains"].items():
        parts.append(f"- {d.upper()}: profile `{info['profile']}`, data source `{info['source']}`, from `{summary['inputs'][d]}`.")
    synthetic = sorted({str(i["profile"]) for i in summary["domains"].values() if i["source"] == "synthetic"})
    if synthetic:
        parts += ["", f"**Profile {', '.join(f'`{p}`' for p in synthetic)}: small synthetic data, so these numbers are not comparable to the paper's.**"]
    parts += ["", "## Headline tables", "", TABLE_NOTE, ""]
    for t in tables:
        if t["headline"]:
            parts += [f"### {table_title(t['domain'], t['metric'], t['mode'])}", "",
                      markdown_table(cells, layouts[t["domain"]], t["metric"], t["mode"]), ""]
    others = [t for t in tables if not t["headline"]]
    if others:
        parts += ["Other tables: " + ", ".join(f"[{Path(t['md']).stem}]({t['md']})" for t in others) + ".", ""]
    parts += ["## Against the paper", "", "AUROC × 100. Gains are Δ of the meta method over the best baseline in the same column.", "",
              comparison_markdown(summary["paper_comparison"]), "", "## Does meta beat the best baseline?", ""]
    parts += verdict_lines(cells, layouts) or ["- no meta cells were evaluated."]
    for s in sections:
        if s.markdown:
            parts += ["", f"## {s.title}", "", s.markdown]
    nan_cells = [c for c in cells if c["n_nan"]]
    if nan_cells:
        parts += ["", "## NaN values", "", "These cells had seeds with a NaN value (shown as null in summary.json, left out of the statistics):", ""]
        parts += [f"- `{c['id']}`: {c['n_nan']} of {c['n'] + c['n_nan']} seeds" for c in nan_cells]
    if any(c["methods"] for c in summary["pt_cost"].values()):
        parts += ["", "## Pre-training cost", "", COST_NOTE, "", cost_markdown(summary["pt_cost"])]
    parts += ["", "## Figures", ""]
    parts += [f"- [{f['file']}]({f['file']}): {f['caption']}" for f in summary["figures"]] or ["- none (their inputs are missing)."]
    if summary["warnings"]:
        parts += ["", "## Warnings", ""] + [f"- {w}" for w in summary["warnings"]]
    parts += ["", "Every number is in `summary.json` under `cells`, keyed by `id`; "
              "`python stages/lineage.py <id>` traces it back to its runs.", ""]
    return "\n".join(parts)
