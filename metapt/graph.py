"""The stage graph, generated from the domain declarations: ``dvc.yaml`` and each stage kind's code.

    python -m metapt.workflow graph --write     (after adding a domain, a method group or a module import)

Every stage depends on its code through one folder, ``workflow/code/<kind>_<domain>/``, of relative
symlinks to exactly the files in the import closure of that stage kind's entry point. DVC hashes a
folder's files through the links (one ``dvc.lock`` entry per stage, not one per file) and Snakemake
is given the link targets, so an edit reruns exactly the stages whose code it is part of: an edit
under ``metapt/ecg/`` no PPI stage, the download code only the acquire stages, the hypergradient no
data stage and no no-PT fine-tuning. The closure is read from the source (static imports, those
inside functions too); ``tests/unit/test_stage_graph.py`` checks the committed graph equals the
generated one and that a stage loads no module outside its closure.
"""

from __future__ import annotations

import ast
import os
import shutil
from pathlib import Path
from typing import Any

import yaml

from metapt.domain import Domain, RunGroup, domains, evaluation_file, processed_dir, raw_dir

ROOT = Path(__file__).resolve().parents[1]
CODE = Path("workflow/code")
HEADER = """\
# GENERATED from the domain declarations (metapt/<domain>/domain.py) by
#   python -m metapt.workflow graph --write
# Do not edit by hand: tests/unit/test_stage_graph.py fails when this file differs from the generated one.
# The Snakefile turns every expanded stage into one Snakemake rule; `meta:` carries scheduler hints.
# Parameters: only `active.*` (the selected profile in params.yaml). Code deps: one folder per stage
# kind, workflow/code/<kind>_<domain>/, linking the files of that kind's import closure (metapt/graph.py).
"""
RESOURCES: dict[str, dict[str, Any]] = {
    "acquire": {"resources": {"runtime": 120}, "head_node": True},  # downloads run on the login node
    "preprocess": {"resources": {"runtime": 60}},
    "pretrain": {"resources": {"gpu": 1, "runtime": 720, "mem_mb": 16000, "cpus_per_gpu": 4}},
    "finetune": {"resources": {"gpu": 1, "runtime": 240, "mem_mb": 16000, "cpus_per_gpu": 4}},
    "evaluate": {"resources": {"runtime": 30}},
    "report": {"resources": {"runtime": 30}, "report": {"patterns": ["figures/{name}.png"], "caption": "workflow/report/figures.rst", "category": "Figures"}},
}


# ---------------------------------------------------------------------------------------- code closure
def _module_file(name: str) -> Path | None:
    base = ROOT / Path(*name.split("."))
    for cand in (base.with_suffix(".py"), base / "__init__.py"):
        if cand.exists():
            return cand
    return None


def _imports(path: Path) -> set[str]:
    """Every ``metapt`` module a file imports, at module level or inside functions."""
    from metapt.engine import _EXPORTS as engine_exports

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
    names |= {f"metapt.engine.{engine_exports[n.rsplit('.', 1)[1]]}" for n in names
              if n.rsplit(".", 1)[0] == "metapt.engine" and n.rsplit(".", 1)[1] in engine_exports}
    return {n for n in names if n == "metapt" or n.startswith("metapt.")}


def closure(entry: list[str], scripts: list[str] = ()) -> list[str]:
    """Repository-relative paths of the files that importing ``entry`` modules (and running ``scripts``) can load."""
    seen: set[Path] = set()
    todo = [f for f in (_module_file(e) for e in entry) if f] + [ROOT / s for s in scripts]
    while todo:
        f = todo.pop()
        if f in seen:
            continue
        seen.add(f)
        if f.is_relative_to(ROOT / "metapt"):
            parts = f.relative_to(ROOT).with_suffix("").parts
            for i in range(1, len(parts)):  # importing a.b.c runs a/__init__ and a/b/__init__
                init = ROOT.joinpath(*parts[:i], "__init__.py")
                if init.exists() and init not in seen:
                    todo.append(init)
        todo += [m for m in (_module_file(n) for n in _imports(f)) if m and m not in seen]
    return sorted(str(f.relative_to(ROOT)) for f in seen)


def _module(ref: str) -> str:
    return ref.partition(":")[0]


def stage_code(kind: str, d: Domain | None) -> list[str]:
    """The files a stage kind of a domain runs (``d`` None: the report)."""
    if d is None:
        sections = [_module(x.report_section) for x in domains() if x.report_section]  # resolved by name: no static import reaches them
        return closure(["metapt.report"] + [f"metapt.{x.name}.domain" for x in domains()] + sections, ["stages/report.py"])
    entry = ["metapt.config", "metapt.pipeline", f"metapt.{d.name}.domain", _module(d.params_model), _module(d.code[kind])]
    if kind == "finetune":
        entry.append(_module(d.encoder))
    return closure(entry, [f"stages/{kind}.py", "stages/_common.py"])


def code_sets() -> dict[str, list[str]]:
    """``<kind>_<domain>`` (and ``report``) → the files of its closure."""
    sets = {f"{kind}_{d.name}": stage_code(kind, d) for d in domains() for kind in ("acquire", "preprocess", "pretrain", "finetune", "evaluate")}
    sets["report"] = stage_code("report", None)
    return sets


def write_code_links(root: Path = ROOT) -> list[str]:
    """Make ``workflow/code/<set>/`` hold a relative symlink to each file of the set; returns the sets changed."""
    changed = []
    sets = code_sets()
    base = root / CODE
    for name in sorted(p.name for p in base.iterdir()) if base.exists() else []:
        if name not in sets:
            shutil.rmtree(base / name)
            changed.append(name)
    for name, files in sets.items():
        folder = base / name
        current = sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_symlink()) if folder.exists() else None
        if current == files and all(os.readlink(folder / f) == _link_target(folder / f, root / f) for f in files):
            continue
        shutil.rmtree(folder, ignore_errors=True)
        for f in files:
            link = folder / f
            link.parent.mkdir(parents=True, exist_ok=True)
            link.symlink_to(_link_target(link, root / f))
        changed.append(name)
    return changed


def _link_target(link: Path, target: Path) -> str:
    return os.path.relpath(target, link.parent)


# ---------------------------------------------------------------------------------------- dvc.yaml
def _cmd(kind: str, d: Domain, template) -> str:
    args = [f"python stages/{kind}.py {d.name}", f"--method {template.method}"]
    if template.setting is not None:
        args.append(f"--setting {template.setting}")
    if template.labels is not None:
        args.append(f"--labels {template.labels}")
    return " ".join(args + [f"--seed {template.seed}"])


class _OneLine(dict):
    """A mapping dumped on one line (the scheduler hints)."""


def _stage(cmd: str, deps: list[str], params: list[str], outs: list[str], kind: str, matrix: dict | None = None) -> dict:
    s: dict[str, Any] = {}
    if matrix:
        s["matrix"] = matrix
    s.update(cmd=cmd, deps=deps, params=[f"active.{p}" for p in params], outs=outs, meta=_OneLine(RESOURCES[kind]))
    return s


def _group_stages(d: Domain, g: RunGroup) -> dict[str, dict]:
    t = g.template(d.name)
    matrix = {axis: f"${{active.{key}}}" for axis, key in g.axes.items()}
    suffix = f"_{g.name}" if g.name else ""
    code = lambda kind: str(CODE / f"{kind}_{d.name}")  # noqa: E731
    out: dict[str, dict] = {}
    if d.pretrains(g):
        source = d.source(t)  # learn, then re-PT: the run whose learned φ this PT reads
        out[f"pretrain_{d.name}{suffix}"] = _stage(_cmd("pretrain", d, t), [code("pretrain"), str(processed_dir(d.name))] + ([str(source.pretrain_dir)] if source else []),
                                                   d.params_keys("pretrain"), [str(t.pretrain_dir)], "pretrain", matrix)
    deps = [code("finetune"), str(processed_dir(d.name))] + ([str(t.pretrain_dir)] if d.pretrains(g) else [])
    out[f"finetune_{d.name}{suffix}"] = _stage(_cmd("finetune", d, t), deps, d.params_keys("finetune", g), [str(t.finetune_dir)], "finetune", matrix)
    return out


def dvc_stages() -> dict[str, dict]:
    """Every stage of the graph, in order: data, then each domain's PT and FT groups, evaluation, report."""
    stages: dict[str, dict] = {}
    for d in domains():
        stages[f"acquire_{d.name}"] = _stage(f"python stages/acquire.py {d.name}", [str(CODE / f"acquire_{d.name}")],
                                             d.params_keys("acquire"), [str(raw_dir(d.name))], "acquire")
        stages[f"preprocess_{d.name}"] = _stage(f"python stages/preprocess.py {d.name}", [str(CODE / f"preprocess_{d.name}"), str(raw_dir(d.name))],
                                                d.params_keys("preprocess"), [str(processed_dir(d.name))], "preprocess")
    for d in domains():
        groups = [_group_stages(d, g) for g in d.groups]
        for part in ("pretrain", "finetune"):
            stages.update({k: v for gs in groups for k, v in gs.items() if k.startswith(part)})
    for d in domains():
        results = Path("results") / d.name
        stages[f"evaluate_{d.name}"] = _stage(f"python stages/evaluate.py {d.name}", [str(CODE / f"evaluate_{d.name}"), str(results / "finetune"),
                                              str(results / "pretrain"), str(processed_dir(d.name))], d.params_keys("evaluate"),
                                              [str(evaluation_file(d.name))], "evaluate")
    stages["report"] = _stage("python stages/report.py", [str(CODE / "report")] + [str(evaluation_file(d.name)) for d in domains()],
                              ["name"], ["results/report"], "report")
    return stages


class _Flow(yaml.SafeDumper):
    """Block style for the stage mappings, flow style (one line) for lists; no anchors for shared hints."""

    def ignore_aliases(self, data):
        return True


def _represent_list(dumper, data):
    return dumper.represent_sequence("tag:yaml.org,2002:seq", data, flow_style=True)


_Flow.add_representer(list, _represent_list)
_Flow.add_representer(_OneLine, lambda dumper, data: dumper.represent_mapping("tag:yaml.org,2002:map", data, flow_style=True))


def dvc_yaml() -> str:
    body = yaml.dump({"stages": dvc_stages()}, Dumper=_Flow, sort_keys=False, width=200, default_flow_style=False)
    return HEADER + body


def write(root: Path = ROOT) -> dict[str, Any]:
    """Write ``dvc.yaml`` and the code folders; returns what changed."""
    text = dvc_yaml()
    path = root / "dvc.yaml"
    changed_yaml = not path.exists() or path.read_text() != text
    if changed_yaml:
        from metapt.io import atomic_path

        with atomic_path(path) as tmp:
            tmp.write_text(text)
    return {"dvc.yaml": changed_yaml, "code": write_code_links(root)}
