"""The report stage: seed statistics, paper-style tables, figures, summary.json and a README.

Input is one ``results/<domain>/evaluation.json`` (``metapt.records.Evaluation``) per declared domain
(``metapt.domain.domains()``); any may be missing. What a domain's methods are (which learn φ, which
is an upper bound, the row and column order, the headline metric, the paper's numbers) is read from
its declaration, never named here. The package is split by concern:

- ``cells``: seed statistics per cell, the best baseline, paired tests, verdicts, PT cost;
- ``tables``: markdown and CSV tables;
- ``figures``: the figures, drawn from the typed records;
- ``readme``: the README text and the comparison with the paper.

It imports no torch: the report must be cheap to rebuild. Its outputs are deterministic (no wall
times, hosts or absolute paths in summary.json).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Mapping

from metapt.domain import domain as declared_domain
from metapt.domain import resolve
from metapt.io import write_json
from metapt.records import Evaluation
from metapt.report.cells import Layout, domain_cells, jsonable, pt_cost, verdict, warn
from metapt.report.figures import make_figures
from metapt.report.readme import paper_comparison, readme_text
from metapt.report.tables import table_keys, write_table

__all__ = ["build_report", "load_evaluations", "Layout", "domain_cells", "verdict"]

PathLike = str | os.PathLike


def _shown(path: PathLike, root: Path) -> str:
    """A path as summary.json and the warnings show it: relative to ``root`` (never absolute)."""
    p = Path(path)
    if not p.is_absolute():
        return str(p)
    try:
        return str(p.relative_to(root))
    except ValueError:
        return os.path.relpath(p, root)


def load_evaluations(inputs: Mapping[str, PathLike | None], root: Path, sink: list[str] | None = None) -> dict[str, Evaluation]:
    """The evaluation files that exist, by domain in declared order; a missing one is warned about and left out."""
    found = {}
    for name in sorted(inputs, key=lambda n: declared_domain(n).order):
        path = inputs[name]
        if path is None:
            continue
        if not Path(path).exists():
            warn(f"{_shown(path, root)} not found; that domain is left out of the report", sink)
            continue
        ev = Evaluation.read(path)
        if ev.domain != name:
            raise ValueError(f"{_shown(path, root)} holds domain {ev.domain!r}, expected {name!r}")
        found[name] = ev
    return found


def build_report(inputs: Mapping[str, PathLike | None], out: PathLike = "results/report", root: PathLike | None = None) -> dict:
    """Write tables/, figures/, summary.json and README.md into ``out``; return the summary.

    ``inputs`` maps a declared domain's name to its evaluation file (``metapt.domain.evaluation_file``).
    Paths inside the evaluation files (truth, weights, trajectories) and relative input paths are
    resolved against ``root`` (default: the working directory, i.e. the repo root). A missing domain
    or artefact is warned about and skipped; having no evaluation file at all is an error.
    """
    out = Path(out)
    root = Path(root) if root is not None else Path.cwd()
    inputs = {name: (None if p is None else (Path(p) if Path(p).is_absolute() else root / p)) for name, p in inputs.items()}
    warnings: list[str] = []
    evals = load_evaluations(inputs, root, warnings)
    if not evals:
        raise FileNotFoundError(f"no evaluation file found (looked for {', '.join(str(p) for p in inputs.values() if p is not None)})")
    layouts = {d: Layout.of(ev, declared_domain(d)) for d, ev in evals.items()}
    cells = [c for d, ev in evals.items() for c in domain_cells(ev, layouts[d])]

    tables = []
    for domain, metric, mode in table_keys(cells, layouts):
        md, path = write_table(cells, layouts[domain], metric, mode, out / "tables")
        lay = layouts[domain]
        head = metric == lay.headline_metric and mode == lay.headline_mode({c["mode"] for c in cells if c["domain"] == domain})
        tables.append({"domain": domain, "metric": metric, "mode": mode, "headline": head,
                       "md": str(md.relative_to(out)), "csv": str(path.relative_to(out))})
    costs = {d: pt_cost(ev, layouts[d]) for d, ev in evals.items()}
    sections = [resolve(lay.decl.report_section)(evals[d], lay, root, out / "figures", warnings) for d, lay in layouts.items() if lay.decl.report_section]
    figures = make_figures(evals, layouts, cells, costs, root, out / "figures", warnings, [pair for s in sections for pair in s.figures])
    cells += [c for s in sections for c in s.cells]  # after the tables and figures: a section lays out its own cells

    profiles = sorted({str(e.profile) for e in evals.values()})
    summary = jsonable({
        "profile": profiles[0] if len(profiles) == 1 else "+".join(profiles),
        "inputs": {d: _shown(inputs[d], root) for d in evals},
        "domains": {d: {"profile": e.profile, "source": e.source, "truth": e.truth and _shown(e.truth, root)} for d, e in evals.items()},
        "cells": cells, "tables": tables, "figures": figures, "pt_cost": costs,
        "paper_comparison": paper_comparison(cells, layouts), "warnings": warnings,
    })
    write_json(out / "summary.json", summary)
    (out / "README.md").write_text(readme_text(summary, cells, tables, layouts, sections))
    return summary
