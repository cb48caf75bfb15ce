"""The declared graph is honest: run names agree with dvc.yaml, and each stage lists the code it runs.

Neither Snakemake nor DVC sees which library modules a stage imports (brief, trap 4), so a stage
whose deps missed one would not rerun after an edit to it. The import closure is computed from the
source (static imports, function-level ones included) and must lie inside the stage's deps.
"""

import ast
from pathlib import Path

import pytest
from dvc.dependency.param import ParamsDependency
from dvc.repo import Repo

from metapt import runs
from metapt.engine import _EXPORTS as _ENGINE_EXPORTS
from metapt.config import load_params

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def stages():
    with Repo(str(ROOT)) as repo:
        return [s for s in repo.index.stages if getattr(s, "cmd", None)]


def _deps(stage) -> list[str]:
    return [d.def_path for d in stage.deps if not isinstance(d, ParamsDependency)]


def test_run_folders_match_the_declared_outputs(stages):
    profile = load_params(ROOT / "params.yaml").active
    outs = {o.def_path for s in stages for o in s.outs}
    all_runs = [r for d in runs.DOMAINS for r in runs.runs(profile, d)]
    assert {o for o in outs if "/finetune/" in o} == {str(r.finetune_dir) for r in all_runs}
    assert {o for o in outs if "/pretrain/" in o} == {str(r.pretrain_dir) for r in all_runs if r.pretrain_dir}
    assert {r.method for r in all_runs if r.pretrain_dir is None} == {runs.NO_PT}


def _module_file(name: str) -> Path | None:
    base = ROOT / Path(*name.split("."))
    for cand in (base.with_suffix(".py"), base / "__init__.py"):
        if cand.exists():
            return cand
    return None


def _imports(path: Path) -> set[str]:
    names = set()
    pkg = ".".join(path.relative_to(ROOT).with_suffix("").parts[:-1])
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            mod = node.module or ""
            if node.level:
                mod = ".".join(pkg.split(".")[: len(pkg.split(".")) - node.level + 1] + ([mod] if mod else []))
            names.add(mod)
            names |= {f"{mod}.{a.name}" for a in node.names}
    # `from metapt.engine import MetaPretrainer` is a lazy re-export: it imports the submodule on use
    names |= {f"metapt.engine.{_ENGINE_EXPORTS[n.rsplit('.', 1)[1]]}" for n in names if n.rsplit(".", 1)[0] == "metapt.engine" and n.rsplit(".", 1)[1] in _ENGINE_EXPORTS}
    return {n for n in names if n == "metapt" or n.startswith("metapt.")}


def closure(entry: list[str]) -> set[Path]:
    seen: set[Path] = set()
    todo = [f for f in (_module_file(e) for e in entry) if f]
    while todo:
        f = todo.pop()
        if f in seen:
            continue
        seen.add(f)
        parts = f.relative_to(ROOT).with_suffix("").parts
        for i in range(1, len(parts)):  # importing a.b.c runs a/__init__ and a/b/__init__
            init = ROOT.joinpath(*parts[:i], "__init__.py")
            if init.exists() and init not in seen:
                todo.append(init)
        todo += [m for m in (_module_file(n) for n in _imports(f)) if m and m not in seen]
    return seen


def _entry(stage) -> list[str]:
    """The modules a stage's command imports (the stages pick their domain's pipeline at run time)."""
    script = stage.cmd.split()[1]  # python stages/<name>.py ...
    mods = {"stages/report.py": ["metapt.report"]}.get(script, ["metapt.config", "metapt.runs"])
    domain = next((d for d in runs.DOMAINS if stage.addressing.split("@")[0].endswith(d)), None)
    if domain and script != "stages/report.py":
        mods.append(f"metapt.{domain}.{'prepare' if script in ('stages/acquire.py', 'stages/preprocess.py') else 'pipeline'}")
    return mods


def test_every_stage_lists_the_library_code_it_imports(stages):
    missing = {}
    for s in stages:
        deps = _deps(s)
        script = s.cmd.split()[1]
        files = closure(_entry(s)) | {ROOT / script} | ({ROOT / "stages/_common.py"} if script != "stages/report.py" else set())
        uncovered = [str(f.relative_to(ROOT)) for f in files
                     if not any(str(f.relative_to(ROOT)) == d or str(f.relative_to(ROOT)).startswith(d.rstrip("/") + "/") for d in deps)]
        if uncovered:
            missing[s.addressing.split("@")[0]] = sorted(uncovered)
    assert not missing, f"stages miss code deps: {missing}"
