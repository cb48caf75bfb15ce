# Helpers for the DVC → Snakemake adapter (no rules here).
import json
import os
import subprocess
import sys
from pathlib import Path

import yaml
from dvc.dependency.param import ParamsDependency
from dvc.repo import Repo

sys.path.insert(0, str(Path(workflow.basedir)))
from metapt import tracking  # noqa: E402  (light: mlflow is imported only when a run starts)

# Only two scalars are needed here; the stages validate the whole file (metapt.config) when they run.
ACTIVE = yaml.safe_load(Path("params.yaml").read_text())["active"]
RAN_DIR = Path(".cache/ran")  # one marker per job that ran: onsuccess commits exactly those stages


def rule_name(addressing):
    """DVC's `finetune_ppi@meta-0` → a Snakemake rule name `finetune_ppi__meta_0`."""
    return "".join(c if c.isalnum() else "_" for c in addressing.replace("@", "__"))


def is_dir_path(path):
    return not Path(path).suffix or Path(path).is_dir()


def load_stages():
    """The expanded pipeline stages with what a rule needs: cmd, deps, outs, params values, meta."""
    with Repo(".") as repo:
        stages = [s for s in repo.index.stages if getattr(s, "cmd", None)]
        out_paths = [o.def_path for s in stages for o in s.outs]
        specs = []
        for s in stages:
            params, inputs = {}, []
            for d in s.deps:
                if isinstance(d, ParamsDependency):
                    params.update({f"{d.def_path}:{k}": v for k, v in d.read_params().items()})
                    continue
                inputs += expand_dep(d.def_path, out_paths)
            specs.append(dict(name=rule_name(s.addressing), addressing=s.addressing, cmd=s.cmd, inputs=inputs,
                              outs=[o.def_path for o in s.outs], params=params, meta=s.meta or {}))
    return specs


def expand_dep(path, out_paths):
    """Snakemake sees files and declared outputs, not folders: a folder dep becomes the outputs inside it,
    or (library code) its .py files, whose edits would not change the folder's mtime."""
    if path in out_paths:
        return [path]
    inside = [o for o in out_paths if o.startswith(path.rstrip("/") + "/")]
    if inside:
        return inside
    if Path(path).is_dir():
        return sorted(str(p) for p in Path(path).rglob("*.py"))
    return [path]


def resources_for(meta):
    """Scheduler hints from the stage's `meta:`; GPU requests only when the profile runs on a GPU."""
    res = dict(meta.get("resources", {}))
    if ACTIVE["device"] == "cpu":
        res.pop("gpu", None)
        res.pop("cpus_per_gpu", None)
    return res


def commit_ran_stages():
    """`dvc commit` only the stages whose jobs ran (never a blanket --force over everything)."""
    if not RAN_DIR.is_dir():
        return []
    markers = sorted(RAN_DIR.iterdir())
    stages = [m.read_text().strip() for m in markers]
    if stages:
        subprocess.run(["dvc", "commit", "--force", "--quiet", *stages], check=True)
    for m in markers:
        m.unlink()
    return stages
