"""The PPI part of the report: the MetaFT label-budget map and the signal ceiling (``metapt.ppi.probe``).

Columns ``full`` (MetaFT at ``ft_budget``) and ``N=<n>`` (``ppi.grid.budgets``) are points of one axis, the
MetaFT-train label count. Per budget:

- the share of the uniform → oracle gap the meta method closes, from the FT cells (``against_plain``);
- the AUC of the learned weights against the planted helpful tasks (the meta runs' PT summaries);
- the signal ceiling of the uniform runs at each probed epoch: the AUC of the full-batch alignment ranking,
  with the MetaFT head held fixed and through the re-fitted L2-logistic head, and the ranking's stability
  under bootstrap resamples of MetaFT (mean pairwise Spearman).

Every number is a cell with seed statistics and lineage, like the tables' cells. One sentence per budget
says whether meta helps there and whether the signal exists; one figure shows all three against budget.
"""

from __future__ import annotations

from pathlib import Path

from metapt.plotting import plt, save_figure
from metapt.records import EvalRow, Evaluation
from metapt.report.cells import Layout, Section, domain_cells, isnum, make_cell
from metapt.report.figures import errorbar_cells
from metapt.report.tables import format_cell

QUANTITIES = {"auc_fixed_head": "ceiling AUC, fixed head", "auc_through_head": "ceiling AUC, through the head",
              "stability_through_head": "bootstrap rank stability"}
METRIC = "test_hard_auroc"


def _ci(c: dict | None) -> str:
    return "–" if c is None else format_cell(c)


def _budgets(evaluation: Evaluation, layout: Layout) -> dict[str, tuple[int, int] | None]:
    """Column → (MetaFT train, val) graphs, in budget order; from the probe's records, else from the rows."""
    sizes = {e.get("column", "full"): tuple(e["n_metaft"]) for p in evaluation.pretrain for e in (p.signal_ceiling or [])}
    present = {r.setting for r in evaluation.rows} | set(sizes)
    columns = [c for c in present if c == "full" or layout.ft_labels(c) is not None]  # full: ft_budget, or the paper's whole split
    return {c: sizes.get(c) for c in sorted(columns, key=lambda c: (layout.ft_labels(c) is not None, layout.ft_labels(c) or 0))}


def _label(column: str, size: tuple[int, int] | None, layout: Layout) -> str:
    return f"{size[0]}/{size[1]}" if size else str(layout.ft_labels(column)) if layout.ft_labels(column) else "the whole FT split"


def ceiling_cells(evaluation: Evaluation) -> list[dict]:
    """``ppi/<column>/uniform/ceiling_<quantity>/epoch<e>``: the probe's numbers, one value per PT seed."""
    runs = [p for p in evaluation.pretrain if p.signal_ceiling]
    found = sorted({(e.get("column", "full"), e["epoch"]) for p in runs for e in p.signal_ceiling}, key=lambda k: (k[1], k[0]))
    cells = []
    for column, epoch in found:
        for key in QUANTITIES:
            by_seed = {p.seed: EvalRow("ppi", column, p.method, p.method, p.seed, f"epoch{epoch}", f"ceiling_{key}", e[key], 0, p.run, p.run)
                       for p in runs for e in p.signal_ceiling if e.get("column", "full") == column and e["epoch"] == epoch and key in e}
            if by_seed:
                cells.append(make_cell("ppi", (column, runs[0].method, f"ceiling_{key}", f"epoch{epoch}"), by_seed))
    return cells


def weights_cells(evaluation: Evaluation, layout: Layout, columns) -> list[dict]:
    """``ppi/<column>/<meta method>/weights_auc/pt``: the learned weights' AUC against the planted helpful tasks."""
    groups: dict[tuple[str, str], dict[int, EvalRow]] = {}
    for p in evaluation.pretrain:
        if layout.learns_phi(p.method) and p.weights_vs_truth and p.setting in columns:
            groups.setdefault((p.setting, p.method), {})[p.seed] = EvalRow("ppi", p.setting, p.method, p.method, p.seed, "pt", "weights_auc",
                                                                           p.weights_vs_truth.get("weights_auc"), 0, p.run, p.run)
    return [make_cell("ppi", (col, m, "weights_auc", "pt"), by_seed) for (col, m), by_seed in sorted(groups.items())]


def budget_section(evaluation: Evaluation, layout: Layout, root: Path, folder: Path, sink: list[str] | None = None) -> Section:
    budgets = _budgets(evaluation, layout)
    ceiling, weights = ceiling_cells(evaluation), weights_cells(evaluation, layout, budgets)
    if not budgets:
        return Section("MetaFT label budget and the signal ceiling (PPI)", "", ceiling + weights, [])
    ft = {(c["setting"], c["method"], c["mode"]): c for c in domain_cells(evaluation, layout) if c["metric"] == METRIC and c["setting"] in budgets}
    modes = [m for m in layout.decl.ft_mode_preference[::-1] if any(k[2] == m for k in ft)]  # linear first: the claims
    metas = [m for m in layout.meta_methods if any(k[1] == m for k in ft)]
    last = max((int(c["mode"][5:]) for c in ceiling), default=None)
    at = {(c["setting"], c["metric"], c["mode"]): c for c in ceiling}
    wat = {(c["setting"], c["method"]): c for c in weights}

    lines = ["Each column is a MetaFT label budget (FT train / val graphs); final FT uses the same FT data, as the paper does. "
             "Gap closed = (meta − uniform) / (oracle − uniform) on seed means, with the paired 95% CI of meta − uniform "
             "divided by the gap (shown only where the oracle's gain is itself significant); p = paired t-test of meta − uniform. "
             "Weights AUC: the learned task weights against the planted helpful tasks. Ceiling: during uniform PT, each PT task's "
             "full-batch alignment ⟨∇θ ℓ_t, ∇θ L_val⟩ with the MetaFT objective, the ranking any one-step task-weighting method "
             "estimates, noise-free: its AUC against the helpful tasks (0.5 = chance) and its stability between bootstrap "
             "resamples of MetaFT (the check that needs no truth). Mean [95% CI] over PT seeds.", ""]
    for mode in modes:
        lines += [f"**{METRIC}, {mode} FT**", "",
                  "| MetaFT budget | uniform | oracle | " + " | ".join(f"{m} | gap closed by {m} | p ({m} − uniform)" for m in metas) + " |",
                  "|---|---|---|" + "---|---|---|" * len(metas)]
        for col, size in budgets.items():
            row = [_label(col, size, layout), _ci(ft.get((col, "uniform", mode))), _ci(ft.get((col, "oracle", mode)))]
            for m in metas:
                c = ft.get((col, m, mode))
                row += [_ci(c), _gap(c), f"{c['plain_p_value']:.3f}" if c and isnum(c.get("plain_p_value")) else "–"]
            lines.append("| " + " | ".join(row) + " |")
        lines.append("")
    if ceiling or weights:
        epochs = sorted({int(c["mode"][5:]) for c in ceiling})
        head = [f"{q}, epoch {e}" for e in epochs for q in QUANTITIES.values()]
        lines += ["**Weights and the signal ceiling**", "", "| MetaFT budget | " + " | ".join([f"weights AUC, {m}" for m in metas] + head) + " |",
                  "|---|" + "---|" * (len(metas) + len(head))]
        for col, size in budgets.items():
            row = [_ci(wat.get((col, m))) for m in metas] + [_ci(at.get((col, f"ceiling_{q}", f"epoch{e}"))) for e in epochs for q in QUANTITIES]
            lines.append(f"| {_label(col, size, layout)} | " + " | ".join(row) + " |")
        lines.append("")
    mode = modes[0] if modes else None
    if mode:
        lines.append(f"Per budget ({mode} FT, {METRIC}):")
        lines += [f"- {_sentence(_label(col, size, layout), [ft.get((col, m, mode)) for m in metas], at.get((col, 'ceiling_auc_through_head', f'epoch{last}')), last)}"
                  for col, size in budgets.items()]
    fig = plot_budget_map(budgets, ft, mode, metas, weights, ceiling, last, layout)
    figures = [(p, "the MetaFT label-budget map: gap closed, weights AUC and the signal ceiling against budget")
               for p in ([save_figure(fig, folder / "ppi_budget_map.png")] if fig is not None else [])]
    return Section("MetaFT label budget and the signal ceiling (PPI)", "\n".join(lines), ceiling + weights, figures)


def _gap_share(c: dict | None) -> tuple[float, float, float] | None:
    """(share, CI low, CI high) in %: the gap closed, and the paired CI of meta − plain divided by the gap."""
    if c is None or c.get("gap_closed") is None or not isnum(c.get("gap")):
        return None
    return 100 * c["gap_closed"], 100 * c["plain_delta_ci_low"] / c["gap"], 100 * c["plain_delta_ci_high"] / c["gap"]


def _gap(c: dict | None) -> str:
    share = _gap_share(c)
    return "–" if share is None else "{:+.0f} % [{:+.0f}, {:+.0f}]".format(*share)


def _signal(ceil: dict | None, epoch: int | None) -> str:
    if ceil is None or not isnum(ceil["ci_low"]):
        return "the signal ceiling was not measured with enough seeds"
    where = f"through-head ceiling AUC {ceil['mean']:.3f} [{ceil['ci_low']:.3f}, {ceil['ci_high']:.3f}] at PT epoch {epoch}"
    if ceil["ci_low"] > 0.5:
        return f"the signal exists ({where})"
    if ceil["ci_high"] < 0.5:
        return f"the ranking is inverted ({where})"
    return f"no signal distinguishable from chance ({where}), so no one-step method can find the helpful tasks"


def _sentence(label: str, cells: list[dict | None], ceil: dict | None, epoch: int | None) -> str:
    said = []
    for c in cells:
        if c is None or not isnum(c.get("plain_p_value")):
            said.append(f"{c['method'] if c else 'meta'}: no paired comparison with uniform")
            continue
        helps = c["plain_delta_ci_low"] > 0
        gap = f", closing {100 * c['gap_closed']:.0f} % of the gap to the oracle" if c.get("gap_closed") is not None else ""
        said.append(f"{c['method']} {'helps' if helps else 'does NOT help'} (Δ vs uniform {c['plain_delta_mean']:+.4f}, p = {c['plain_p_value']:.3f}{gap})")
    return f"MetaFT {label}: " + "; ".join(said) + f"; {_signal(ceil, epoch)}."


def plot_budget_map(budgets: dict, ft: dict, mode: str | None, metas: list[str], weights: list[dict], ceiling: list[dict], epoch: int | None, layout: Layout):
    """Three panels against MetaFT-train labels: gap closed (with CI), weights AUC, ceiling AUC."""
    if not budgets or mode is None:
        return None
    xs = {col: layout.ft_labels(col) for col in budgets if layout.ft_labels(col) is not None}
    if not xs:
        return None
    fig, axes = plt.subplots(1, 3, figsize=(14, 4))
    for m in metas:
        pts = [(xs[col], share) for col in xs for share in [_gap_share(ft.get((col, m, mode)))] if share is not None]
        if pts:
            _line(axes[0], [x for x, _ in pts], [{"mean": y, "ci_low": lo, "ci_high": hi} for _, (y, lo, hi) in pts], label=m)
    axes[0].axhline(0, color="grey", lw=0.8)
    axes[0].axhline(50, color="tab:green", lw=0.8, ls=":", label="50 % of the gap")
    axes[0].set(ylabel=f"gap closed, % ({METRIC}, {mode} FT)", title="meta vs the uniform → oracle gap")
    for m in metas:
        wc = sorted((c for c in weights if c["method"] == m and c["setting"] in xs), key=lambda c: xs[c["setting"]])
        _line(axes[1], [xs[c["setting"]] for c in wc], wc, label=f"learned weights ({m})")
    for key, name in (("auc_through_head", "ceiling, through the head"), ("auc_fixed_head", "ceiling, fixed head")):
        cc = sorted((c for c in ceiling if c["metric"] == f"ceiling_{key}" and c["mode"] == f"epoch{epoch}" and c["setting"] in xs), key=lambda c: xs[c["setting"]])
        _line(axes[1 if key == "auc_through_head" else 2], [xs[c["setting"]] for c in cc], cc, label=f"{name} (epoch {epoch})")
    cc = sorted((c for c in ceiling if c["metric"] == "ceiling_stability_through_head" and c["mode"] == f"epoch{epoch}" and c["setting"] in xs),
                key=lambda c: xs[c["setting"]])
    _line(axes[2], [xs[c["setting"]] for c in cc], cc, label="bootstrap rank stability")
    axes[1].set(ylabel="AUC against the planted helpful tasks", title="learned weights and the signal ceiling")
    axes[2].set(ylabel="AUC / Spearman", title="ceiling, fixed head, and its stability")
    for ax in axes:
        ax.set_xscale("log")
        ax.minorticks_off()
        ax.set_xticks(sorted(xs.values()), [_label(c, budgets[c], layout) for c in sorted(xs, key=xs.get)])
        ax.set_xlabel("MetaFT budget (train / val graphs)")
        ax.legend(fontsize=8)
    for ax in axes[1:]:
        ax.axhline(0.5, color="grey", lw=0.8, ls="--")
    fig.suptitle("PPI: when does meta-learned task weighting help? (mean, 95% CI over PT seeds)")
    fig.tight_layout()
    return fig


def _line(ax, x: list, cells: list[dict], label: str) -> None:
    """Mean with its 95% CI; each further series on an axis is nudged sideways on the log axis so the bars do not overlap."""
    if not cells:
        return
    errorbar_cells(ax, [v * 1.04 ** len(ax.lines) for v in x], cells, label)
