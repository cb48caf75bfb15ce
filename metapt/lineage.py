"""Lineage of a result: from a report cell (or any output path) back to the raw data checksums.

It reads what the tools already record, and keeps no books of its own: ``dvc.lock`` gives each
stage's command, params and the hashes of its deps and outs; the MLflow run tagged with the output
and its hash holds the git commit and dirty flag; ``dvc status`` says what is stale.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

LOCK = Path("dvc.lock")
SUMMARY = Path("results/report/summary.json")


@dataclass
class Node:
    stage: str
    cmd: str
    params: dict[str, Any]
    outs: dict[str, str]  # path → md5
    deps: dict[str, str]
    mlflow_run_id: str | None = None
    git: dict[str, str] = field(default_factory=dict)
    stale: str = "up to date"
    parents: list["Node"] = field(default_factory=list)


def _md5(entry: dict) -> str:
    return entry.get("md5") or entry.get("hash") or "?"


def load_lock(path: Path = LOCK) -> dict[str, dict]:
    if not path.exists():
        raise FileNotFoundError(f"{path} not found: run the pipeline first (python3 bootstrap.py reproduce)")
    return yaml.safe_load(path.read_text()).get("stages", {})


def producer(lock: dict[str, dict], path: str) -> str | None:
    """The stage whose output is ``path`` or contains it."""
    path = path.rstrip("/")
    for name, st in lock.items():
        for out in st.get("outs", []):
            o = out["path"].rstrip("/")
            if path == o or path.startswith(o + "/"):
                return name
    return None


def producers_below(lock: dict[str, dict], path: str) -> list[str]:
    """Stages whose outputs lie inside the folder ``path`` (a dep on a parent folder)."""
    path = path.rstrip("/") + "/"
    return [n for n, st in lock.items() if any(o["path"].startswith(path) for o in st.get("outs", []))]


def feeders(lock: dict[str, dict], path: str) -> list[str]:
    """The stages a dep on ``path`` reads: the one whose output holds it, else (a folder dep) those with outputs inside it."""
    direct = producer(lock, path)
    return [direct] if direct else producers_below(lock, path)


def _mlflow(outs: dict[str, str]) -> tuple[str | None, dict[str, str]]:
    """The MLflow run that produced these outputs (tagged with their current hash) and its git tags."""
    from metapt.tracking import find_run

    for out, md5 in outs.items():  # by output and hash: also for outputs pulled from a remote or restored from the cache
        try:
            run = find_run(out, md5) or find_run(out)
        except Exception as err:  # tracking server down or DB moved: the rest of the chain still prints
            return None, {"commit": f"unavailable ({type(err).__name__})"}
        if run is None:
            return None, {}
        tags = run.data.tags
        hashed = "" if tags.get(f"dvc.out.{out}") == md5 else " (run predates this output's hash)"
        return run.info.run_id, {"commit": tags.get("git.commit", "?"), "dirty": tags.get("git.dirty", "?") + hashed}
    return None, {}


def stale_stages() -> dict[str, list]:
    """``dvc status``: stages whose deps, params or outs changed since they were committed."""
    from dvc.repo import Repo

    with Repo(".") as repo:
        return {k: v for k, v in repo.status().items()}


def trace(paths: list[str], lock: dict[str, dict] | None = None, stale: dict[str, Any] | None = None, with_mlflow: bool = True,
          allowed: set[str] | None = None) -> list[Node]:
    """The stage graph above ``paths``, each stage once (shared upstream stages are shared nodes).

    ``allowed`` keeps the walk to stages with one of these outputs (or a ``data/`` output): the report
    and evaluate stages depend on every run, a cell on a few of them.
    """
    lock = load_lock() if lock is None else lock
    stale = {} if stale is None else stale
    nodes: dict[str, Node] = {}

    def visit(name: str) -> Node:
        if name in nodes:
            return nodes[name]
        st = lock[name]
        outs = {o["path"]: _md5(o) for o in st.get("outs", [])}
        deps = {d["path"]: _md5(d) for d in st.get("deps", [])}
        params = {k: v for f in st.get("params", {}).values() for k, v in f.items()}
        run_id, git = _mlflow(outs) if with_mlflow else (None, {})
        node = Node(name, st.get("cmd", ""), params, outs, deps, run_id, git)
        if name in stale:
            node.stale = "STALE: " + "; ".join(_describe(c) for c in stale[name])
        nodes[name] = node
        for dep in deps:
            for up in feeders(lock, dep):
                if up != name and _keep(lock[up], allowed):
                    node.parents.append(visit(up))
        if node.stale == "up to date" and any(p.stale != "up to date" for p in node.parents):
            node.stale = "STALE: an upstream stage changed"
        return node

    roots = []
    for p in paths:
        name = producer(lock, p)
        if name is None:
            raise KeyError(f"no stage in dvc.lock produces {p}")
        roots.append(visit(name))
    return roots


def _keep(entry: dict, allowed: set[str] | None) -> bool:
    outs = [o["path"] for o in entry.get("outs", [])]
    return allowed is None or any(o in allowed or o.startswith("data/") for o in outs)


def cell_outputs(c: dict) -> set[str]:
    """The outputs a cell's numbers come from: its runs, their evaluation file, the report."""
    domain = c["id"].split("/")[0]
    runs = {r[k] for r in c["runs"] for k in ("ft_run", "pt_run") if r.get(k)}
    return runs | {f"results/{domain}/evaluation.json", "results/report"}


def _describe(change: Any) -> str:
    if isinstance(change, dict):
        return ", ".join(f"{k}: {v}" for k, v in change.items())
    return str(change)


def cell(cell_id: str, summary: Path = SUMMARY) -> dict:
    cells = json.loads(summary.read_text())["cells"]
    for c in cells:
        if c["id"] == cell_id:
            return c
    near = [c["id"] for c in cells if cell_id.split("/")[0] in c["id"]][:10]
    raise KeyError(f"no cell {cell_id!r} in {summary}; e.g. {', '.join(near)}")


def render(roots: list[Node]) -> str:
    """An indented chain: each stage with its command, params, hashes, MLflow run, commit and staleness."""
    lines, shown = [], set()

    def show(node: Node, depth: int) -> None:
        pad = "  " * depth
        if node.stage in shown:
            lines.append(f"{pad}└─ {node.stage} (shown above)")
            return
        shown.add(node.stage)
        lines.append(f"{pad}└─ {node.stage}  [{node.stale}]")
        lines.append(f"{pad}     cmd: {node.cmd}")
        for path, md5 in node.outs.items():
            lines.append(f"{pad}     out: {path}  md5 {md5}")
        if node.mlflow_run_id or node.git:
            lines.append(f"{pad}     mlflow run: {node.mlflow_run_id or '-'}  commit: {node.git.get('commit', '-')}  dirty: {node.git.get('dirty', '-')}")
        for k, v in node.params.items():
            text = json.dumps(v, sort_keys=True)
            lines.append(f"{pad}     param {k} = {text if len(text) < 160 else text[:157] + '...'}")
        for parent in node.parents:
            show(parent, depth + 1)

    for r in roots:
        show(r, 0)
    return "\n".join(lines)
