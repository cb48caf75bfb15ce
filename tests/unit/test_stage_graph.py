"""The declared graph is honest: dvc.yaml and the code folders are what the declarations generate,
run names agree with the declared grid, and each stage loads no code outside its code folder.

Neither Snakemake nor DVC sees which library modules a stage imports, so a stage whose code folder
missed one would not rerun after an edit to it. The folders are generated from the static import
closure (``metapt.graph``); here a real import of each stage's entry points checks that closure.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from dvc.repo import Repo

from metapt import graph
from metapt.config import load_params
from metapt.domain import domains

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def stages():
    with Repo(str(ROOT)) as repo:
        return [s for s in repo.index.stages if getattr(s, "cmd", None)]


def test_committed_dvc_yaml_is_the_generated_one():
    assert (ROOT / "dvc.yaml").read_text() == graph.dvc_yaml(), "dvc.yaml differs from the declarations: run python -m metapt.workflow graph --write"


def test_committed_code_folders_link_exactly_each_stage_kinds_closure():
    for name, files in graph.code_sets().items():
        folder = ROOT / graph.CODE / name
        links = sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_symlink())
        assert links == files, f"{folder} is stale: run python -m metapt.workflow graph --write"
        for f in files:
            assert (folder / f).resolve() == (ROOT / f).resolve()
    assert sorted(p.name for p in (ROOT / graph.CODE).iterdir()) == sorted(graph.code_sets())


def test_run_folders_match_the_declared_outputs(stages):
    profile = load_params(ROOT / "params.yaml").active
    outs = {o.def_path for s in stages for o in s.outs}
    runs = [r for d in domains() for r in d.runs(profile)]
    assert {o for o in outs if "/finetune/" in o} == {str(r.finetune_dir) for r in runs}
    assert {o for o in outs if "/pretrain/" in o} == {str(r.pretrain_dir) for r in runs if r.pretrain_dir}
    assert {r.method for r in runs if r.pretrain_dir is None} == {m.name for d in domains() for m in d.methods if not m.pretrains}


def test_every_stage_has_one_code_dep_and_its_data(stages):
    for s in stages:
        code = [d.def_path for d in s.deps if d.def_path.startswith("workflow/code/")]
        assert len(code) == 1, s.addressing


_PROBE = """
import json, sys
sys.path.insert(0, "stages")
from metapt.domain import domain, resolve
kind, name = sys.argv[1], sys.argv[2]
if kind == "report":
    import metapt.report
    from metapt.domain import domains
    [resolve(d.report_section) for d in domains() if d.report_section]  # what build_report resolves by name
else:
    import metapt.config, metapt.pipeline
    d = domain(name)
    resolve(d.code[kind])
    if kind == "finetune":
        resolve(d.encoder)
    import metapt.jobs, metapt.tracking, metapt.io  # what the generic stage imports when it runs
print(json.dumps(sorted(m.__file__ for m in list(sys.modules.values()) if getattr(m, "__name__", "").startswith("metapt") and getattr(m, "__file__", None))))
"""


def _probe(code_set: str) -> set[str]:
    kind, _, name = code_set.partition("_")
    out = subprocess.run([sys.executable, "-c", _PROBE, kind, name], cwd=ROOT, capture_output=True, text=True, check=True,
                         env={**os.environ, "PYTHONPATH": str(ROOT)})
    return {str(Path(f).resolve().relative_to(ROOT)) for f in json.loads(out.stdout)}


def test_a_stage_loads_no_module_outside_its_code_folder():
    """A real import of each stage kind's entry points (in its own process, two at a time): dynamic
    imports, the declarations' "module:function" references, included.

    The params schema of every domain is loaded to validate params.yaml: another domain's declaration
    and schema are validation, not computation, so they are not in the stage's code.
    """
    from concurrent.futures import ThreadPoolExecutor

    sets = graph.code_sets()
    with ThreadPoolExecutor(2) as pool:
        loaded = dict(zip(sets, pool.map(_probe, sets)))
    outside = {}
    for code_set, files in loaded.items():
        name = code_set.partition("_")[2]
        others = {f"metapt/{d.name}/{leaf}" for d in domains() if d.name != name for leaf in ("__init__.py", "domain.py", "settings.py")}
        if extra := files - set(sets[code_set]) - others:
            outside[code_set] = sorted(extra)
    assert not outside, f"stages load modules their code folder does not link: {outside}"
    assert all(any(f.endswith(f"/{c.partition('_')[2]}/domain.py") for f in loaded[c]) for c in sets if c != "report")


def test_edits_rerun_only_the_stages_whose_code_they_are(stages):
    """Which stage kinds an edit of a file reaches, from the code folders (the pipeline test checks the tools agree)."""
    sets = graph.code_sets()

    def reached(path):
        return {name for name, files in sets.items() if path in files}

    assert reached("metapt/download.py") == {"acquire_ppi", "acquire_ecg", "acquire_digits"}
    assert reached("metapt/ppi/report.py") == {"report"}  # a domain's report section, named in its declaration
    assert not {s for s in reached("metapt/ecg/augment_learned.py") if s.endswith("_ppi")}
    assert reached("metapt/ecg/augment_learned.py") == {"pretrain_ecg"}
    assert reached("metapt/engine/hypergrad.py") == {"pretrain_ppi", "pretrain_ecg", "pretrain_digits"}
    assert reached("metapt/digits/augment.py") == {"pretrain_digits"}  # not FT: FT never builds the policy
    assert reached("metapt/simclr.py") == {"pretrain_ecg", "pretrain_digits"}  # the shared NT-Xent
    for name in ("ppi", "ecg", "digits"):  # a domain's own files reach no other domain's stages
        others = {s for f in Path(ROOT / "metapt" / name).glob("*.py") for s in reached(f"metapt/{name}/{f.name}") if s != "report" and not s.endswith(f"_{name}")}
        assert not others, (name, others)


def test_generated_graph_expands_to_the_stage_names_the_tools_use():
    tree = yaml.safe_load(graph.dvc_yaml())["stages"]
    assert {"acquire_ppi", "pretrain_ppi_access", "finetune_ppi_nopt", "pretrain_ecg_meta", "finetune_ecg_meta", "report"} <= set(tree)
    assert tree["finetune_ppi_nopt"]["deps"] == ["workflow/code/finetune_ppi", "data/ppi/processed"]
    assert "results/ppi/pretrain/${item.method}-full-s${item.seed}" in tree["finetune_ppi"]["deps"]
