# Helpers for the DVC → Snakemake adapter (no rules here).
import hashlib
import json
import os
import sys
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(workflow.basedir)))
from metapt import tracking  # noqa: E402  (light: mlflow is imported only when a run starts)
from metapt.workflow import commit_stages  # noqa: E402

# Jobs run `python ...` and `dvc ...` from PATH: make it the interpreter running Snakemake (the venv).
os.environ["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"

# Only two scalars are needed here; the stages validate the whole file (metapt.config) when they run.
ACTIVE = yaml.safe_load(Path("params.yaml").read_text())["active"]
RAN_DIR = Path(".cache/ran")  # one marker per job that ran: onsuccess commits exactly those stages


def rule_name(addressing):
    """DVC's `finetune_ppi@meta-0` → a Snakemake rule name `finetune_ppi__meta_0`."""
    return "".join(c if c.isalnum() else "_" for c in addressing.replace("@", "__"))


def is_dir_path(path):
    return not Path(path).suffix or Path(path).is_dir()


STAGE_CACHE = Path(".cache/dvc-stages.json")


def load_stages():
    """The expanded pipeline stages with what a rule needs: cmd, deps, outs, params values, meta.

    DVC's resolution of `dvc.yaml` (~1 s) is cached under the hash of `dvc.yaml`, `params.yaml` and
    the DVC version; folder deps are expanded afresh every time (a new module must be seen).
    """
    import dvc

    key = hashlib.sha256(Path("dvc.yaml").read_bytes() + Path("params.yaml").read_bytes() + dvc.__version__.encode()).hexdigest()
    if STAGE_CACHE.exists() and (cached := json.loads(STAGE_CACHE.read_text())).get("key") == key:
        raw = cached["stages"]
    else:
        raw = resolve_dvc_stages()
        STAGE_CACHE.parent.mkdir(parents=True, exist_ok=True)
        tmp = STAGE_CACHE.with_suffix(f".tmp{os.getpid()}")
        tmp.write_text(json.dumps({"key": key, "stages": raw}))
        os.replace(tmp, STAGE_CACHE)
    out_paths = [o for s in raw for o in s["outs"]]
    return [dict(s, inputs=[i for d in s["deps"] for i in expand_dep(d, out_paths)]) for s in raw]


def resolve_dvc_stages():
    """Ask DVC for the expanded stages; only `dvc.yaml` is read (the lock file is not needed for rules)."""
    from dvc.dependency.param import ParamsDependency
    from dvc.dvcfile import ProjectFile
    from dvc.repo import Repo

    params_tree = yaml.load(Path("params.yaml").read_text(), Loader=yaml.CSafeLoader)
    with Repo(".") as repo:
        project = ProjectFile(repo, "dvc.yaml")
        project.__dict__["lockfile_contents"] = {}  # a cached_property: skip parsing dvc.lock
        specs = []
        for s in project.stages.values():
            params = {f"{d.def_path}:{k}": dotted(params_tree, k) for d in s.deps if isinstance(d, ParamsDependency) for k in d.params}
            specs.append(dict(name=rule_name(s.addressing), addressing=s.addressing, cmd=s.cmd, params=params, meta=s.meta or {},
                              deps=[d.def_path for d in s.deps if not isinstance(d, ParamsDependency)], outs=[o.def_path for o in s.outs]))
    return specs


def dotted(tree, key):
    for part in key.split("."):
        tree = tree[part]
    return tree


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
        commit_stages(stages)
    for m in markers:
        m.unlink()
    if stages:
        tracking.tag_with_lock(stages)  # the MLflow runs learn their DVC hashes
    return stages
